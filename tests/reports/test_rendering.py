"""The renderer: a fetcher that loads only static files and data: URLs, fixed metadata, attachments."""

from __future__ import annotations

import datetime as dt

import pytest
from pypdf import PdfReader

from reports.rendering import AttachmentFile, PdfMetadata, RefusedURL, local_only_url_fetcher, write_pdf

REFUSED = ["http://example.com/x.png", "https://example.com/a.css", "file:///etc/passwd", "ftp://example.com/x",
           "static:../portal/settings.py", "static:css/../../portal/settings.py", "static:css/nothing.css"]


@pytest.mark.embedded
@pytest.mark.parametrize("url", REFUSED)
def test_fetcher_refuses_everything_but_static_files_and_data(url):
    fetcher = local_only_url_fetcher()
    with pytest.raises(RefusedURL):
        fetcher.fetch(url)


def test_fetcher_loads_static_files_and_data_urls():
    fetcher = local_only_url_fetcher()
    css = fetcher.fetch("static:css/report-print.css")
    assert b"@page" in css.read() and css.content_type == "text/css"
    assert fetcher.fetch("data:text/plain;base64,aGVsbG8=").read() == b"hello"


def _render(tmp_path, name: str, html: str):
    evidence = tmp_path / "evidence.json"
    evidence.write_text('{"ok": true}\n')
    metadata = PdfMetadata(title="Test report", subject="Subject", as_of=dt.datetime(2026, 3, 31, 23, 59, 59,
                                                                                     tzinfo=dt.UTC),
                           identifier_source='{"kind":"test"}', keywords=("a", "b"))
    return write_pdf(html=html, metadata=metadata, target=tmp_path / name,
                     attachments=[AttachmentFile("evidence.json", evidence, "The evidence")])


@pytest.mark.embedded
def test_same_input_same_bytes_with_metadata_attachments_and_no_remote_fetch(tmp_path):
    html = ('<html><head><link rel="stylesheet" href="static:css/report-print.css"></head><body>'
            '<h1>Hello</h1><img src="http://127.0.0.1:9/tracker.png"><img src="file:///etc/hostname"></body></html>')
    first = _render(tmp_path, "a.pdf", html)
    second = _render(tmp_path, "b.pdf", html)
    assert first.sha256 == second.sha256
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert set(first.refused_urls) == {"http://127.0.0.1:9/tracker.png", "file:///etc/hostname"}
    reader = PdfReader(tmp_path / "a.pdf")
    assert reader.metadata["/Title"] == "Test report"
    assert reader.metadata["/CreationDate"].startswith("D:20260331235959")
    assert reader.metadata["/Creator"].startswith("Steward ")
    assert reader.attachments["evidence.json"] == [b'{"ok": true}\n']
    root = reader.trailer["/Root"]
    assert root["/AF"][0].get_object()["/AFRelationship"] == "/Data"
    assert 'pdfaid:part="3"' in root["/Metadata"].get_object().get_data().decode()


def test_same_input_same_bytes_whatever_the_clock(tmp_path, monkeypatch):
    """Subsetting fonts with fontTools writes the clock into them unless the render pins it."""
    import os
    import time as clock

    from fontTools.misc import timeTools

    class Clock:
        now = clock.time()

        @classmethod
        def time(cls):
            return cls.now

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.setattr(timeTools, "time", Clock)
    html = ('<html><head><link rel="stylesheet" href="static:css/report-print.css"></head>'
            '<body><h1>Hello</h1></body></html>')
    first = _render(tmp_path, "a.pdf", html)
    Clock.now += 3600
    second = _render(tmp_path, "b.pdf", html)
    assert first.sha256 == second.sha256
    assert "SOURCE_DATE_EPOCH" not in os.environ
