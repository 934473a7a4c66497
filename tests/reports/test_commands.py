"""generate_report and verify_report from the command line."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from reports.models import ReportJob
from tests.reports.conftest import compact, pdf_text, read_pdf

pytestmark = pytest.mark.django_db


@pytest.mark.embedded
def test_generate_then_verify_and_detect_an_altered_copy(personas, estate, catalogue, tmp_path):
    output = tmp_path / "out" / "owasp.pdf"
    stdout = io.StringIO()
    call_command("generate_report", "--framework", "owasp_nhi_top10_2025", "--scope", "system:payments-db",
                 "--period-start", "2026-01-01", "--period-end", "2026-03-31", "--output", str(output),
                 stdout=stdout, stderr=io.StringIO())
    job = ReportJob.objects.get()
    assert job.requester is None and job.status == "succeeded" and job.scope_system == estate["system"]
    assert job.sha256 in stdout.getvalue()
    data = output.read_bytes()
    reader, _ = read_pdf(data)
    assert compact("System payments-db") in pdf_text(reader) and compact("command line (system)") in pdf_text(reader)

    verified = io.StringIO()
    call_command("verify_report", str(output), stdout=verified)
    assert f"KNOWN: report job #{job.pk}" in verified.getvalue()
    assert "its hash verifies" in verified.getvalue()

    altered = tmp_path / "altered.pdf"
    altered.write_bytes(data.replace(b"payments-db", b"payments-dc", 1) if b"payments-db" in data else data + b"\n")
    with pytest.raises(CommandError, match="UNKNOWN"):
        call_command("verify_report", str(altered), stdout=io.StringIO())


def test_generate_refuses_bad_input(personas, estate, catalogue, tmp_path):
    with pytest.raises(CommandError, match="framework"):
        call_command("generate_report", "--framework", "nope", "--output", str(tmp_path / "x.pdf"),
                     stderr=io.StringIO())
    with pytest.raises(CommandError, match="--framework KEY"):
        call_command("generate_report", "--output", str(tmp_path / "x.pdf"), stderr=io.StringIO())
    with pytest.raises(CommandError, match="own teams"):
        call_command("generate_report", "--kind", "inventory", "--requested-by", personas.owner.username,
                     "--output", str(tmp_path / "x.pdf"), stderr=io.StringIO())
    assert not ReportJob.objects.exists()
    assert not (tmp_path / "x.pdf").exists()
