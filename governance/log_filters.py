"""Logs keep the shape of a database error, never the values in it.

A failed write's traceback carries PostgreSQL's message: "DETAIL: Key (name)=(<value>) already
exists", "Failing row contains (...)", "invalid input syntax for type integer: "<value>"", and
Django's query log carries the SQL with its parameters. Those values may be personal data or a
secret someone pasted; a log is kept and shipped far more widely than the database. This filter
(configured in portal/settings.py LOGGING on the console handler and on the django.request,
django.db.backends and celery.app.trace loggers) removes them and keeps what an operator needs:
the error class, the constraint, the columns, the statement with its literals blanked.
"""

from __future__ import annotations

import logging
import re
import traceback

from django.db import Error as DatabaseError

REMOVED = "[removed]"
_LINE_RULES = [
    # DETAIL:  Key (team_id, name)=(4, payments) already exists.  -> the columns stay
    (re.compile(r"(DETAIL:\s+Key \((?P<cols>[^)\n]*)\)=\().*$", re.M), r"\g<1>…) [values removed]"),
    # any other DETAIL / CONTEXT line (failing row, JSON token, the offending value)
    (re.compile(r"((?:DETAIL|CONTEXT):\s+)(?!.*=\(…\)).*$", re.M), rf"\g<1>{REMOVED}"),
    # LINE 1: INSERT ... VALUES ('x', ...)   (the statement as PostgreSQL quotes it)
    (re.compile(r"^(\s*LINE \d+:\s+).*$", re.M), rf"\g<1>{REMOVED}"),
    # invalid input syntax for type integer: "abc"; invalid input value for enum x: "y"
    (re.compile(r'(invalid input (?:syntax|value) for (?:type|enum) [\w" .]+?): ".*?"(?=$|\s|\n)', re.M),
     r'\g<1>: "…"'),
    (re.compile(r'(value) ".*?" (is out of range|too long)', re.M), r'\g<1> "…" \g<2>'),
    # Django: Field 'id' expected a number but got 'abc'.
    (re.compile(r"(expected [\w ]+ but got) .*?(\.?)$", re.M), rf"\g<1> {REMOVED}\g<2>"),
]
_SQL_LITERAL = re.compile(r"(?:E|N)?'(?:[^']|'')*'")


def scrub_text(text: str) -> str:
    for pattern, replacement in _LINE_RULES:
        text = pattern.sub(replacement, text)
    return text


def scrub_sql(sql: str) -> str:
    """The statement with every string literal blanked (psycopg's client-side binding inlines them)."""
    return _SQL_LITERAL.sub("'…'", sql)


def _database_error_in(exc: BaseException | None) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DatabaseError) or type(exc).__module__.startswith("psycopg"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class DatabaseValueFilter(logging.Filter):
    """Removes SQL parameters and PostgreSQL's quoted values from a record; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.db.backends"):
            self._query_record(record)
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            scrubbed = scrub_text(text)
            if scrubbed != text or _database_error_in(record.exc_info[1]):
                # exc_text is what formatters print; without exc_info no handler re-renders the raw
                # exception (or, like the admin mail, the frames' local variables).
                record.exc_text, record.exc_info = scrubbed.rstrip("\n"), None
        message = record.getMessage()
        scrubbed = scrub_text(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True

    @staticmethod
    def _query_record(record: logging.LogRecord) -> None:
        """django.db.backends: "(%.3f) %s; args=%s; alias=%s"; the schema editor: "%s; (params %r)"."""
        if hasattr(record, "params"):
            record.params = REMOVED
        if isinstance(getattr(record, "sql", None), str):
            record.sql = scrub_sql(record.sql)
        if isinstance(record.args, tuple):
            record.args = tuple(
                REMOVED if isinstance(arg, list | tuple | dict) else scrub_sql(arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
