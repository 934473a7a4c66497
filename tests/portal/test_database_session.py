"""Steward's PostgreSQL sessions run without JIT: compiling its short visibility queries cost more than running
them (96 of 97 ms for an owner's approval-request list at 1M credentials, bench/portal_scale.py)."""

import pytest
from django.db import connection

pytestmark = [pytest.mark.django_db]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's JIT")
def test_sessions_run_without_jit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's JIT")
def test_the_sweep_alone_runs_with_jit_and_leaves_the_session_without_it():
    from django.test.utils import CaptureQueriesContext

    from governance.services.sweep import sweep_run
    from tests.factories_checks import load_catalogue

    load_catalogue()
    with CaptureQueriesContext(connection) as captured:
        sweep_run(checks=["rotation-age"], trigger="test")
    statements = [q["sql"] for q in captured.captured_queries]
    on, off = statements.index("SET jit = on"), statements.index("RESET jit")
    assert on < off and any("governance_credential" in sql for sql in statements[on:off])
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
