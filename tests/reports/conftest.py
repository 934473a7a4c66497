"""Fixtures of the reports tests: the loaded catalogue, a private MEDIA_ROOT, synchronous runs."""

from __future__ import annotations

import io
import re

import pytest

from governance.audit import Actor
from reports.models import ReportJob
from reports.services import report_job_create, report_job_run


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def catalogue(db):
    from governance.services.catalogue import catalogue_load

    return catalogue_load(actor=Actor.system(task_id="test", label="test")).version


def run_report(actor: Actor, kind: str, parameters: dict) -> ReportJob:
    """Create a job as the portal does (without the broker) and render it in-process."""
    job = report_job_create(actor=actor, kind=kind, parameters=parameters, enqueue=False)
    report_job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def read_pdf(job_or_bytes):
    from pypdf import PdfReader

    if isinstance(job_or_bytes, bytes | bytearray):
        data = bytes(job_or_bytes)
    else:
        with job_or_bytes.file.open("rb") as fh:
            data = fh.read()
    return PdfReader(io.BytesIO(data)), data


def pdf_text(reader) -> str:
    """The PDF's text without whitespace (extraction splits kerned words: "T eam"). Compare with
    compact("expected words")."""
    return compact("\n".join(page.extract_text() or "" for page in reader.pages))


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)
