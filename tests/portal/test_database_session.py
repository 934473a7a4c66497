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
