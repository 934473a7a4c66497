"""Database errors reach the logs without their values (issue 15: tracebacks logged SQL with field values).

The logging configuration of portal/settings.py is the one under test: records go through the
real console handler (its stream captured here) and the real loggers.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import sys

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client

from governance.log_filters import scrub_sql, scrub_text
from governance.models import System
from governance.views import inventory as inventory_pages

pytestmark = pytest.mark.django_db

VALUE = "Sup3r-private-value-7f3a"


@pytest.fixture
def console():
    """What the console handler (root logger, LOGGING["handlers"]["console"]) writes."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def duplicate_system(name: str) -> None:
    """A real unique violation from PostgreSQL, past the model's own uniqueness check."""
    System.objects.create(name=name)
    with transaction.atomic():
        System.objects.bulk_create([System(name=name)])


def test_an_integrity_error_is_logged_with_its_constraint_and_columns_but_no_value(console, caplog):
    try:
        duplicate_system(VALUE)
    except IntegrityError:
        exc_info = sys.exc_info()
    assert VALUE in str(exc_info[1])  # PostgreSQL's DETAIL names it: this is what must not be logged
    logging.getLogger("django.request").error("Internal Server Error: %s", "/systems/new/", exc_info=exc_info)
    logging.getLogger("governance.api.base").error("API error on POST /api/v1/systems/", exc_info=exc_info)
    written = console.getvalue()
    assert "governance_system_name_key" in written and "Key (name)=(…)" in written
    assert VALUE not in written
    assert all(VALUE not in record.getMessage() and VALUE not in (record.exc_text or "")
               and record.exc_info is None for record in caplog.records if record.name == "django.request")


def test_a_database_error_in_a_request_is_logged_without_the_value(console, caplog, personas, monkeypatch):
    """A request whose service fails inside PostgreSQL: Django logs the 500; the value stays out."""

    def failing_create(actor, data):
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::integer", [VALUE])

    pages = inventory_pages.PAGES["secretstore"]
    writes = dataclasses.replace(pages.writes, create=failing_create)
    monkeypatch.setitem(inventory_pages.PAGES, "secretstore", dataclasses.replace(pages, writes=writes))
    client = Client(raise_request_exception=False)
    client.force_login(personas.secadmin)
    with caplog.at_level(logging.ERROR):
        response = client.post("/stores/new/", {"name": "scrub-me", "kind": "openbao_kv", "address": "",
                                                "settings": ""})
    assert response.status_code == 500
    written = console.getvalue()
    assert "DataError" in written and "invalid input syntax for type integer" in written
    assert VALUE not in written
    assert [r for r in caplog.records if r.name == "django.request"]
    assert all(VALUE not in r.getMessage() and VALUE not in (r.exc_text or "") for r in caplog.records)


def test_the_query_log_keeps_the_statement_but_not_its_parameters(console, settings):
    logger = logging.getLogger("django.db.backends")
    previous, connection.force_debug_cursor = connection.force_debug_cursor, True
    logger.setLevel(logging.DEBUG)
    root_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        System.objects.filter(name=VALUE, description__contains="x'y").exists()
    finally:
        connection.force_debug_cursor = previous
        logger.setLevel(logging.INFO)
        logging.getLogger().setLevel(root_level)
    written = console.getvalue()
    assert "governance_system" in written and "[removed]" in written
    assert VALUE not in written


@pytest.mark.parametrize(("raw", "kept", "gone"), [
    ('DETAIL:  Key (system_id, identifier)=(4, k-secret) already exists.', "Key (system_id, identifier)=(…)",
     "k-secret"),
    ("DETAIL:  Failing row contains (12, secret-name, null).", "DETAIL:", "secret-name"),
    ('invalid input syntax for type json\nDETAIL:  Token "Infinity" is invalid.\nCONTEXT:  JSON data, line 1: {"t":Inf',
     "invalid input syntax for type json", "Infinity"),
    ('invalid input syntax for type integer: "abc-secret"\nLINE 1: SELECT \'abc-secret\'::integer', "type integer",
     "abc-secret"),
    ("Field 'id' expected a number but got 'abc-secret'.", "expected a number but got", "abc-secret"),
])
def test_scrub_text_removes_values_and_keeps_the_kind(raw, kept, gone):
    scrubbed = scrub_text(raw)
    assert kept in scrubbed and gone not in scrubbed


def test_scrub_sql_blanks_literals_only():
    sql = "SELECT 1 FROM \"governance_system\" WHERE name = 'it''s secret' AND id = 5"
    assert scrub_sql(sql) == "SELECT 1 FROM \"governance_system\" WHERE name = '…' AND id = 5"
