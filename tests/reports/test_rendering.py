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


def _evidence_pdf_objects(pdf, attachment):
    """A small document: one page and one embedded file, the objects a report's PDF is made of."""
    import pydyf

    from reports.rendering import embed_attachments

    page = pydyf.Stream([b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET"], compress=True)
    pdf.add_object(page)
    pdf.add_page(pydyf.Dictionary({"Type": "/Page", "Parent": pdf.pages.reference,
                                   "MediaBox": pydyf.Array([0, 0, 612, 792]), "Contents": page.reference}))
    pdf.info["Title"] = pydyf.String("Test")
    embed_attachments(pdf, [attachment], dt.datetime(2026, 3, 31, 23, 59, 59, tzinfo=dt.UTC))
    return pdf


def test_evidence_pdf_writes_the_bytes_pydyf_writes_without_holding_the_attachments(tmp_path):
    """EvidencePDF is pydyf's writer with the embedded files copied from disk and the /ID digested object
    by object: the output must not differ by one byte from pydyf's own."""
    import io

    import pydyf

    from reports.rendering import EvidencePDF, pack_attachment

    source = tmp_path / "objects.csv"
    source.write_text("".join(f"governance.credential,{n},cred-{n}\n" for n in range(200_000)))  # > one block
    attachment = pack_attachment(AttachmentFile("objects.csv", source, "Objects"), tmp_path / "0.deflate")
    ours, theirs = io.BytesIO(), io.BytesIO()
    _evidence_pdf_objects(EvidencePDF(), attachment).write(ours, "1.7", b"0123456789abcdef", True)
    _evidence_pdf_objects(pydyf.PDF(), attachment).write(theirs, "1.7", b"0123456789abcdef", True)
    assert ours.getvalue() == theirs.getvalue()
    reader = PdfReader(io.BytesIO(ours.getvalue()), strict=True)
    assert reader.attachments["objects.csv"] == [source.read_bytes()]


def test_attachments_are_compressed_once_with_their_checksum_and_size(tmp_path):
    """Each attachment is an /EmbeddedFile with /FlateDecode whose /Params carry the MD5 and the size of the
    uncompressed bytes (PDF/A-3), a /Filespec with /AFRelationship /Data, in the name tree and in /AF."""
    import hashlib

    big = tmp_path / "check-results.csv"
    big.write_text("check,object_type,object_id,result\n" + "".join(
        f"secret-in-vault,governance.credential,{n},{'fail' if n % 7 == 0 else 'pass'}\n" for n in range(100_000)))
    small = tmp_path / "evidence.json"
    small.write_text('{"ok": true}\n')
    metadata = PdfMetadata(title="T", subject="S", as_of=dt.datetime(2026, 3, 31, 23, 59, 59, tzinfo=dt.UTC),
                           identifier_source="{}")
    html = "<html><body><h1>Attachments</h1></body></html>"
    files = [AttachmentFile("evidence.json", small, "The evidence"),
             AttachmentFile("check-results.csv", big, "Results")]
    write_pdf(html=html, metadata=metadata, target=tmp_path / "a.pdf", attachments=files)
    write_pdf(html=html, metadata=metadata, target=tmp_path / "b.pdf", attachments=files)
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    reader = PdfReader(tmp_path / "a.pdf", strict=True)
    root = reader.trailer["/Root"]
    names = root["/Names"]["/EmbeddedFiles"]["/Names"]
    assert [names[0], names[2]] == ["check-results.csv", "evidence.json"]  # a name tree is sorted
    assert len(root["/AF"]) == 2
    for spec_ref, path in zip(root["/AF"], (small, big), strict=True):
        spec = spec_ref.get_object()
        assert spec["/Type"] == "/Filespec" and spec["/AFRelationship"] == "/Data"
        assert spec["/UF"] == spec["/F"] == path.name
        stream = spec["/EF"]["/F"].get_object()
        raw = path.read_bytes()
        assert stream["/Type"] == "/EmbeddedFile" and stream["/Filter"] == "/FlateDecode"
        assert stream["/Params"]["/Size"] == len(raw)
        assert stream["/Params"]["/CheckSum"] == hashlib.md5(raw).digest()
        assert stream["/Params"]["/ModDate"] == "D:20260331235959Z"
        assert stream.get_data() == raw
    assert reader.attachments["check-results.csv"] == [big.read_bytes()]
    assert len((tmp_path / "a.pdf").read_bytes()) < len(big.read_bytes()) / 4  # compressed
