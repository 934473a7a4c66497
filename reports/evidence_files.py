"""Machine-readable evidence written to files while it is collected, so that a report on a large
estate never holds the whole evidence twice in memory. The files are attached inside the PDF.

JSON: one object whose top-level keys are written in order; list sections are streamed row by
row. CSV: one file per table, a header row then one row per record. Values are made plain JSON
with governance.audit.jsonable, so dates are ISO 8601 UTC everywhere.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from governance.audit import jsonable

PLAIN_CELLS = frozenset({str, int, type(None)})


def _json_default(value: Any) -> Any:
    """Only for values json cannot write itself (dates, decimals, ids): the audit trail's forms."""
    return jsonable(value)


def _dump(value: Any, sort_keys: bool = True) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=sort_keys, separators=(",", ":"), default=_json_default)


class JsonEvidenceWriter:
    """Writes {"key": value, "list_key": [row, row, ...], ...} incrementally, in call order."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = open(path, "w", encoding="utf-8", newline="\n")
        self._fh.write("{")
        self._first_key = True

    def _key(self, key: str) -> None:
        self._fh.write("\n" if self._first_key else ",\n")
        self._first_key = False
        self._fh.write(json.dumps(key) + ":")

    def value(self, key: str, value: Any) -> None:
        self._key(key)
        self._fh.write(_dump(value))

    def rows(self, key: str, rows: Iterable[Any]) -> int:
        self._key(key)
        self._fh.write("[")
        count = 0
        for row in rows:
            self._fh.write("\n" if count == 0 else ",\n")
            self._fh.write(_dump(row, sort_keys=False))  # rows are built in a fixed key order
            count += 1
        self._fh.write("\n]" if count else "]")
        return count

    def text_rows(self, key: str, rows: Iterable[Iterable[str]]) -> int:
        """Like rows, for rows that come as pieces of JSON text already (too big to be one value in memory)."""
        self._key(key)
        self._fh.write("[")
        count = 0
        for pieces in rows:
            self._fh.write("\n" if count == 0 else ",\n")
            for piece in pieces:
                self._fh.write(piece)
            count += 1
        self._fh.write("\n]" if count else "]")
        return count

    def close(self) -> None:
        self._fh.write("\n}\n")
        self._fh.close()


class CsvEvidenceWriter:
    """One CSV table: header, then rows (dicts); nested values as compact JSON."""

    def __init__(self, path: Path, columns: list[str]):
        self.path = path
        self.columns = columns
        self._fh = open(path, "w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._fh, lineterminator="\n")
        self._writer.writerow(columns)
        self.count = 0

    def row(self, row: dict[str, Any]) -> None:
        values = [row.get(c) for c in self.columns]
        # csv writes str, int and None (as "") as _cell would: only other values need it (a row per object).
        self._writer.writerow([v if type(v) in PLAIN_CELLS else _cell(v) for v in values])
        self.count += 1

    def rows(self, rows: Iterable[dict[str, Any]]) -> int:
        for row in rows:
            self.row(row)
        return self.count

    def write_lines(self, lines: list[str]) -> None:
        """Rows already formatted as CSV lines (values that need no quoting)."""
        self._fh.write("".join(lines))
        self.count += len(lines)

    def raw_writer(self):
        """A function writing one row of plain str/int values in column order (for hot loops)."""
        writerow = self._writer.writerow

        def write(values) -> None:
            writerow(values)
            self.count += 1

        return write

    def close(self) -> None:
        self._fh.close()


def _cell(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
