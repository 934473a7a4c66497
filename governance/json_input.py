"""JSON from outside, checked once: a depth limit, finite numbers, text PostgreSQL can store.

Python's json module accepts what Steward cannot keep: `1e999` becomes infinity (PostgreSQL's
jsonb refuses it), "\\ud800" a lone surrogate (neither UTF-8 nor jsonb can hold it), "\\u0000" a
NUL (no PostgreSQL text can), and a deep enough nesting overflows the parser's recursion. Each of
those used to surface as a 500 from the database or the audit digest. Every JSON text Steward
reads (API bodies through governance.api.parsers, the portal's JSON fields and import cells
through parse_json_object, import files through loads) passes here, so a bad value is refused
with the path of the field that holds it before anything is written.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")
_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[\[\]{}:,\n]')
OBJECT_EXAMPLE = 'Give a JSON object, for example {"mount": "secret"}.'


class JSONInputError(ValueError):
    """A JSON text or value Steward will not take; path names the field ("settings.mount"), line if known."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None):
        super().__init__(message)
        self.message, self.path, self.line = message, path, line


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "Text may not contain NUL characters."
    if _SURROGATE.search(text):
        return "Text may not contain a lone surrogate (\\ud800-\\udfff): it is not valid Unicode."
    return None


def check_value(value: Any, *, path: str = "", max_depth: int = MAX_DEPTH, values: bool = True) -> None:
    """Raise JSONInputError for the first thing Steward cannot store; values=False checks depth only.

    Walks without recursion, so it is safe on any depth the parser produced. A tuple is a (key,
    value) pair, as object_pairs_hook lists hold them.
    """
    stack = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                raise JSONInputError(f"Nested deeper than {max_depth} levels.", path=where.split(".")[0])
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(child, tuple) and len(child) == 2:  # an object as its pairs
                    key, child = child
                if values and isinstance(key, str) and (problem := _text_problem(key)):
                    raise JSONInputError(problem, path=where)
                stack.append((child, _join(where, key), depth + 1))
        elif not values:
            continue
        elif isinstance(item, float) and not math.isfinite(item):
            raise JSONInputError("Give a finite number (this one is out of range).", path=where)
        elif isinstance(item, str) and (problem := _text_problem(item)):
            raise JSONInputError(problem, path=where)


def deep_location(text: str, max_depth: int = MAX_DEPTH) -> tuple[int, str]:
    """(line, top-level field) where nesting first goes deeper than max_depth; on the error path only."""
    stack: list[list] = []  # per open container: [key or index, is_array]
    line, last_string = 1, ""
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token == "\n":
            line += 1
        elif token in "[{":
            if len(stack) >= max_depth:
                return line, str(stack[0][0]) if stack and stack[0][0] is not None else ""
            stack.append([0 if token == "[" else None, token == "["])
        elif token in "]}":
            if stack:
                stack.pop()
        elif token == ":" and stack:
            stack[-1][0] = last_string
        elif token == "," and stack and stack[-1][1]:
            stack[-1][0] += 1
        elif token.startswith('"'):
            last_string = token[1:-1]
    return line, ""


def _constant(name: str) -> float:
    return float(name)  # NaN and Infinity are read, then refused with their path by check_value


def loads(text: str, *, object_pairs_hook: Callable | None = None, max_depth: int = MAX_DEPTH,
          values: bool = True) -> Any:
    """json.loads, then check_value; every failure is a JSONInputError (with a line where known)."""
    try:
        document = json.loads(text, object_pairs_hook=object_pairs_hook, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).", line=exc.lineno) from None
    except RecursionError:
        line, path = deep_location(text, max_depth)
        raise JSONInputError(f"Nested deeper than {max_depth} levels.", path=path, line=line) from None
    try:
        check_value(document, max_depth=max_depth, values=values)
    except JSONInputError as exc:
        if exc.message.startswith("Nested"):
            exc.line = deep_location(text, max_depth)[0]
        raise
    return document


def parse_json_object(raw: Any, *, path: str = "") -> dict:
    """A JSON object from text or an already-parsed value; the one parser of JSON-object fields.

    Used by the portal's JSON fields, import cells and the API's object fields, so each refuses a
    non-object, bad JSON, out-of-range numbers, lone surrogates, NUL and deep nesting alike.
    """
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return {}
        raw = loads(text)
    if not isinstance(raw, dict):
        raise JSONInputError(OBJECT_EXAMPLE, path=path)
    check_value(raw, path=path)
    return raw
