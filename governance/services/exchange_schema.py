"""The inventory exchange format: columns per object type, reading CSV/JSON with line numbers, values.

One schema serves import, export and the idempotency comparison, so what export writes is exactly
what import reads back. References use natural keys (names, usernames), never database ids.
docs/import-format.md documents this module for people who write import files.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import Prefetch

from governance import json_input
from governance.json_input import JSONInputError, parse_json_object
from governance.models import Binding, Credential, Person, SecretStore, System, Team, Workflow
from governance.secret_guard import secret_kind

OBJECT_TYPES = ("teams", "people", "systems", "secret_stores", "credentials", "workflows", "bindings")
LIST_SEPARATOR = ";"
NOT_GIVEN: Any = object()  # an empty cell for a field that cannot be empty: keep the current value
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, field {self.field or '-'}: {self.message}"


class ImportRejected(Exception):
    """Nothing was imported; every error found is listed, each with its line and field."""

    def __init__(self, errors: Iterable[RowError]):
        self.errors = sorted(errors, key=lambda e: (e.line, e.field))
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass(frozen=True)
class Field:
    """One column. kind: text, bool, int, datetime, list, json, ref (natural key), refs (list of keys)."""

    name: str
    kind: str = "text"
    ref: str = ""
    key: bool = False
    required: bool = False  # needed to create a new object
    min_value: int | None = None


@dataclass(frozen=True)
class Schema:
    model: type[models.Model]
    label: str
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def key_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.key)


def _texts(*names: str) -> tuple[Field, ...]:
    return tuple(Field(n) for n in names)


_OWNED = (Field("owner", "ref", ref="people"), Field("team", "ref", ref="teams"))
SCHEMAS: dict[str, Schema] = {
    "teams": Schema(Team, "team", (Field("name", key=True), Field("manager", "ref", ref="people"),
                                   Field("description"))),
    "people": Schema(Person, "person", (
        Field("username", key=True), *_texts("first_name", "last_name", "email", "job_title", "status"),
        Field("teams", "refs", ref="teams"),
    )),
    "systems": Schema(System, "system", (
        Field("name", key=True), *_texts("description", "lifecycle", "environment", "criticality"),
        Field("third_party", "bool"), Field("vendor"), Field("hosts", "list"), *_OWNED,
    )),
    "secret_stores": Schema(SecretStore, "secret store", (
        Field("name", key=True), Field("kind", required=True), Field("address"), Field("settings", "json"),
        *_texts("credential_env_var", "description"),
    )),
    "credentials": Schema(Credential, "credential", (
        Field("system", "ref", ref="systems", key=True), Field("identifier", key=True),
        Field("name", required=True), Field("kind", required=True),
        Field("store", "ref", ref="secret_stores"), *_texts("store_path", "store_version", "fingerprint"),
        Field("scopes", "list"), Field("privilege_level"),
        Field("issued_at", "datetime"), Field("last_rotated_at", "datetime"), Field("expires_at", "datetime"),
        Field("rotation_max_age_days", "int", min_value=1), Field("status"), *_OWNED,
        Field("last_used_at", "datetime"), Field("human_use_detected", "bool"), Field("human_use_evidence"),
        Field("third_party_reviewed_at", "datetime"), Field("notes"),
    )),
    "workflows": Schema(Workflow, "workflow", (
        Field("name", key=True), Field("description"), Field("kind", required=True),
        Field("platform", required=True), Field("systems", "refs", ref="systems"), Field("status"),
        Field("criticality"), *(Field(f"can_{verb}", "bool") for verb in
                                ("authenticate", "provision", "change", "rotate", "revoke")),
        Field("shutdown_procedure"), Field("kill_switch_steps"), Field("last_drilled_at", "datetime"),
        Field("last_drill_result"), *_OWNED,
    )),
    "bindings": Schema(Binding, "binding", (
        Field("workflow", "ref", ref="workflows", key=True), Field("credential_system", key=True),
        Field("credential_identifier", key=True), Field("purpose", required=True),
        Field("scopes_used", "list"),
    )),
}


# --- keys -------------------------------------------------------------------------------------


def key_of_values(object_type: str, values: dict[str, Any]) -> Any:
    """The natural key of a row: a string, or a tuple for credentials and bindings."""
    names = [f.name for f in SCHEMAS[object_type].key_fields]
    return values[names[0]] if len(names) == 1 else tuple(values[n] for n in names)


def key_of(object_type: str, obj: models.Model) -> Any:
    if object_type == "people":
        return obj.username
    if object_type == "credentials":
        return (obj.system.name, obj.identifier)
    if object_type == "bindings":
        return (obj.workflow.name, obj.credential.system.name, obj.credential.identifier)
    return obj.name


def describe_key(key: Any) -> str:
    return "/".join(key) if isinstance(key, tuple) else key


_RELATED = {"teams": ("manager",), "systems": ("owner", "team"),
            "credentials": ("system", "store", "owner", "team"),
            "workflows": ("owner", "team"), "bindings": ("workflow", "credential__system")}


def prepared(object_type: str, queryset: models.QuerySet) -> models.QuerySet:
    """Load what current_values() reads, in a fixed number of queries whatever the number of rows."""
    queryset = queryset.select_related(*_RELATED[object_type]) if object_type in _RELATED else queryset
    if object_type == "people":
        teams = Group.objects.filter(team__isnull=False).select_related("team")
        return queryset.prefetch_related(Prefetch("groups", queryset=teams, to_attr="exchange_teams"))
    return queryset.prefetch_related("systems") if object_type == "workflows" else queryset


def base_queryset(object_type: str) -> models.QuerySet:
    return SCHEMAS[object_type].model.objects.all()


def current_values(object_type: str, obj: models.Model) -> dict[str, Any]:
    """The object in the exchange schema: every column, references as natural keys."""
    values: dict[str, Any] = {}
    for f in SCHEMAS[object_type].fields:
        if object_type == "bindings" and f.name.startswith("credential_"):
            values[f.name] = key_of("credentials", obj.credential)[f.name != "credential_system"]
        elif f.name == "teams":
            values[f.name] = sorted(g.team.name for g in obj.exchange_teams)
        elif f.kind == "refs":
            values[f.name] = sorted(s.name for s in getattr(obj, f.name).all())
        elif f.kind == "ref":
            related = getattr(obj, f.name)
            values[f.name] = None if related is None else key_of(f.ref, related)
        else:
            values[f.name] = getattr(obj, f.name)
    return values


# --- values -----------------------------------------------------------------------------------


def _model_field(schema: Schema, name: str) -> models.Field | None:
    try:
        return schema.model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def empty_value(schema: Schema, f: Field) -> Any:
    """What an empty cell means: nothing (null), blank text, an empty list, or 'not given'."""
    if f.kind in ("list", "refs"):
        return []
    if f.kind == "json":
        return {}
    model_field = _model_field(schema, f.name)
    if model_field is None or f.key:
        return NOT_GIVEN
    return None if model_field.null else "" if model_field.blank and f.kind == "text" else NOT_GIVEN


def _parse_list(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(LIST_SEPARATOR) if part.strip()]
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        return list(raw)
    raise ValueError(f"Give a list of text (a JSON array, or values separated by {LIST_SEPARATOR!r} in CSV).")


def parse_datetime(raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError("Give an ISO 8601 date and time, for example 2025-03-01T12:00:00Z.") from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _convert(f: Field, raw: Any) -> Any:
    if f.kind in ("list", "refs"):
        return _parse_list(raw)
    if f.kind == "json":
        try:
            return parse_json_object(raw)
        except JSONInputError as exc:
            raise ValueError(f"{exc.path}: {exc.message}" if exc.path else exc.message) from None
    if f.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower() if isinstance(raw, str | int) else ""
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ValueError("Give true or false (also accepted: 1/0, yes/no).")
    if f.kind == "int":
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            raw = int(raw.strip())
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise ValueError("Give a whole number.")
        if f.min_value is not None and raw < f.min_value:
            raise ValueError(f"Give a whole number of at least {f.min_value}.")
        return raw
    if not isinstance(raw, str):
        raise ValueError("Give text.")
    if f.kind == "datetime":
        return parse_datetime(raw)
    return raw.strip() if f.kind == "ref" or f.key else raw


def parse_value(schema: Schema, f: Field, raw: Any) -> Any:
    """A cell or JSON value as a Python value; raises ValueError with a message for the person."""
    if raw is None or raw == "" or raw == []:
        return empty_value(schema, f)
    value = _convert(f, raw)
    model_field = _model_field(schema, f.name)
    if model_field is None or model_field.is_relation:
        return value
    if model_field.choices and f.kind == "text":
        allowed = [str(c[0]) for c in model_field.flatchoices]
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of: {', '.join(a or '(empty)' for a in allowed)}.")
    try:
        model_field.clean(value, None)
    except ValidationError as exc:
        raise ValueError(" ".join(exc.messages)) from None
    return value


def same_value(f: Field, new: Any, old: Any) -> bool:
    """Whether a row's value already holds. Team membership is additive: listed teams must be held."""
    if f.name == "teams":
        return set(new) <= set(old)
    if f.kind == "refs":
        return sorted(new) == sorted(old)
    return new == old


def secret_in(raw: Any, field: str = "") -> str | None:
    """What kind of secret value a cell holds, looking into lists and objects (keys too)."""
    if isinstance(raw, str):
        return secret_kind(raw, field=field)
    parts = [*raw.keys(), *raw.values()] if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    return next((kind for part in parts if (kind := secret_in(part, field))), None)


def jsonable_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value


def csv_cell(value: Any) -> str:
    value = jsonable_value(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return LIST_SEPARATOR.join(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True) if value else ""
    return str(value)


# --- files ------------------------------------------------------------------------------------


@dataclass
class Row:
    line: int
    cells: dict[str, Any] = field(default_factory=dict)


def file_format(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ImportRejected([RowError(1, "file", "Give a .csv or .json file.")])
    return suffix[1:]


def guess_type(filename: str) -> str | None:
    stem = PurePath(filename).stem.lower()
    return stem if stem in OBJECT_TYPES else None


def decode(content: bytes) -> str:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ImportRejected([RowError(line, "file", "The file is not UTF-8 text.")]) from None
    if "\x00" in text:  # PostgreSQL can store no NUL; the csv module would pass it into a cell
        line = text[: text.index("\x00")].count("\n") + 1
        raise ImportRejected([RowError(line, "file", "The file contains a NUL character; save it as plain text.")])
    return text


def read_csv(text: str, object_type: str, errors: list[RowError]) -> list[Row]:
    """CSV rows with the line each starts on (the header is line 1); unknown columns are header errors."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise ImportRejected([RowError(1, "file", "The file is empty: give a header line of column names.")])
    header = [name.strip() for name in header]
    schema = SCHEMAS[object_type]
    for position, name in enumerate(header):
        if name in header[:position]:
            errors.append(RowError(1, name, "This column appears twice."))
        elif schema.field(name) is None:
            columns = ", ".join(f.name for f in schema.fields)
            errors.append(RowError(1, name, f"Unknown column for {object_type}; the columns are {columns}."))
    rows, previous_end = [], reader.line_num
    for cells in reader:
        line, previous_end = previous_end + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            errors.append(RowError(line, "", f"Expected {len(header)} cells, found {len(cells)}."))
            continue
        rows.append(Row(line, {n: c for n, c in zip(header, cells, strict=True) if schema.field(n)}))
    return rows


class _Pairs(list):
    """A JSON object as its (key, value) pairs, so duplicate keys are seen and a line can be attached."""

    line = 0


def _container_lines(text: str) -> Iterator[int]:
    """The line of every '{' and '[' outside strings, in document order (the parser's pre-order)."""
    line, in_string, escaped = 1, False, False
    for char in text:
        if char == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            yield line


def _attach_lines(value: Any, lines: Iterator[int], array_lines: dict[int, int]) -> None:
    if isinstance(value, _Pairs):
        value.line = next(lines)
        for _, item in value:
            _attach_lines(item, lines, array_lines)
    elif isinstance(value, list):
        array_lines[id(value)] = next(lines)
        for item in value:
            _attach_lines(item, lines, array_lines)


def _plain(value: Any) -> Any:
    if isinstance(value, _Pairs):
        return {name: _plain(item) for name, item in value}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _json_rows(items: Any, line: int, errors: list[RowError]) -> list[Row]:
    if not isinstance(items, list) or isinstance(items, _Pairs):
        errors.append(RowError(line, "file", "Give a JSON array of objects."))
        return []
    rows = []
    for item in items:
        if not isinstance(item, _Pairs):
            errors.append(RowError(line, "", "Each entry must be a JSON object."))
            continue
        row = Row(item.line)
        for name, value in item:
            if name in row.cells:
                errors.append(RowError(item.line, name, "This field appears twice in the object."))
            row.cells[name] = _plain(value)
            try:
                json_input.check_value(row.cells[name], path=name)
            except json_input.JSONInputError as exc:
                errors.append(RowError(item.line, name, exc.message))
        rows.append(row)
    return rows


def read_json(text: str, object_type: str | None, errors: list[RowError]) -> dict[str, list[Row]]:
    """A list of objects of object_type, or a document {"type": [objects], ...}."""
    try:  # depth first: the line-attaching walks below recurse; values are checked per row, with lines
        document = json_input.loads(text, object_pairs_hook=_Pairs, values=False)
    except json_input.JSONInputError as exc:
        raise ImportRejected([RowError(exc.line or 1, "file", exc.message)]) from None
    array_lines: dict[int, int] = {}
    _attach_lines(document, _container_lines(text), array_lines)
    if isinstance(document, _Pairs):
        found: dict[str, list[Row]] = {}
        for name, items in document:
            line = array_lines.get(id(items), document.line)
            if name not in OBJECT_TYPES:
                known = ", ".join(OBJECT_TYPES)
                errors.append(RowError(line, name, f"Unknown object type; give some of {known}."))
            elif object_type and name != object_type:
                errors.append(RowError(line, name, f"This import takes {object_type} only."))
            else:
                found.setdefault(name, []).extend(_json_rows(items, line, errors))
        return found
    if isinstance(document, list):
        if object_type is None:
            raise ImportRejected([RowError(1, "file", "Say which object type this list holds (--type), or "
                                                      'give a document such as {"credentials": [...]}.')])
        return {object_type: _json_rows(document, array_lines[id(document)], errors)}
    raise ImportRejected([RowError(1, "file", "Give a JSON array of objects or an object of arrays.")])
