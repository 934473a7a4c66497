"""HTML to PDF: WeasyPrint with a locked-down URL fetcher, fixed metadata, PDF/A-3b and attachments.

Why it is built this way:
- The fetcher loads only static files of this project (``static:`` URLs, resolved through the
  staticfiles finders) and ``data:`` URLs; anything else (http, file, ftp, ...) is refused, so a
  template or a value that slipped into one can never make the renderer reach the network or
  read arbitrary files.
- Everything that would otherwise vary between two renders (creation and modification dates,
  the file identifier, the attachments' dates) comes from the report's own parameters, so the
  same inputs give byte-identical PDFs and a checksum identifies a report.
- The machine-readable evidence travels inside the PDF as PDF/A-3 associated files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import mimetypes
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)
# Font subsetting and WeasyPrint's progress log every step at INFO: far too much for a worker's log.
for _name in ("fontTools", "weasyprint.progress"):
    logging.getLogger(_name).setLevel(logging.WARNING)

STATIC_SCHEME = "static:"
PDF_VARIANT = "pdf/a-3b"
STYLESHEET = "static:css/report-print.css"


class RefusedURL(OSError):
    """The report renderer only loads local static files and data: URLs."""


def static_file_path(url: str) -> Path:
    """The file behind a ``static:`` URL, found by the staticfiles finders; no way out of them."""
    relative = unquote(url[len(STATIC_SCHEME):]).split("?", 1)[0].split("#", 1)[0].lstrip("/")
    if not relative or ".." in Path(relative).parts or "\\" in relative:
        raise RefusedURL(f"refused static path {url!r}")
    found = finders.find(relative)
    if not found:
        raise RefusedURL(f"no static file {relative!r}")
    return Path(found)


def _fetcher_class():
    # WeasyPrint loads Pango at import: only report workers pay for it
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class LocalOnlyURLFetcher(URLFetcher):
        """Loads ``static:`` and ``data:`` URLs; refuses every other URL (and logs it)."""

        def __init__(self):
            super().__init__(allowed_protocols=("data",), allow_redirects=False, timeout=1)
            self.refused: list[str] = []

        def fetch(self, url, headers=None):
            if url.startswith(STATIC_SCHEME):
                path = static_file_path(url)
                mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime})
            if url.startswith("data:"):
                return super().fetch(url, headers)
            self.refused.append(url)
            logger.warning("report renderer refused to fetch %s", url[:200])
            raise RefusedURL(f"the report renderer loads only static files and data: URLs, not {url[:200]}")

    return LocalOnlyURLFetcher


def local_only_url_fetcher():
    """A fresh fetcher (it records what it refused, per render)."""
    return _fetcher_class()()


@dataclass(frozen=True)
class AttachmentFile:
    """A file to embed in the PDF (PDF/A-3 associated file, relationship Data)."""

    name: str
    path: Path
    description: str


@dataclass(frozen=True)
class PdfMetadata:
    title: str
    subject: str
    as_of: dt.datetime
    identifier_source: str  # canonical parameters: the PDF's /ID is derived from them
    keywords: tuple[str, ...] = ()

    @property
    def w3c_date(self) -> str:
        return self.as_of.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def identifier(self) -> bytes:
        return hashlib.sha256(self.identifier_source.encode()).hexdigest()[:32].encode()


@dataclass(frozen=True)
class RenderResult:
    path: Path
    sha256: str
    size: int
    page_count: int
    refused_urls: tuple[str, ...]


def render_html(template: str, context: dict, metadata: PdfMetadata) -> str:
    context = {
        **context,
        "pdf_meta": metadata,
        "stylesheet_url": STYLESHEET,
        "steward_version": settings.STEWARD_VERSION,
    }
    return render_to_string(template, context)


_CLOCK_LOCK = threading.Lock()


@contextmanager
def _fonts_dated(as_of: dt.datetime):
    """fontTools writes the clock into every font it subsets (the 'head' table's modified time) unless
    SOURCE_DATE_EPOCH is set (reproducible-builds.org). WeasyPrint subsets with fontTools when HarfBuzz's
    subsetter is not installed, so the render pins it to the report's as_of; the lock keeps two renders
    in one process from restoring each other's value."""
    with _CLOCK_LOCK:
        previous = os.environ.get("SOURCE_DATE_EPOCH")
        os.environ["SOURCE_DATE_EPOCH"] = str(int(as_of.timestamp()))
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("SOURCE_DATE_EPOCH", None)
            else:
                os.environ["SOURCE_DATE_EPOCH"] = previous


def write_pdf(
    *, html: str, metadata: PdfMetadata, attachments: list[AttachmentFile], target: Path
) -> RenderResult:
    """Render html into target (the caller owns cleaning target up when this raises)."""
    with _fonts_dated(metadata.as_of):
        return _write_pdf(html=html, metadata=metadata, attachments=attachments, target=target)


def _write_pdf(*, html: str, metadata: PdfMetadata, attachments: list[AttachmentFile], target: Path) -> RenderResult:
    # WeasyPrint loads Pango at import: only report workers pay for it
    import weasyprint

    fetcher = local_only_url_fetcher()
    document = weasyprint.HTML(string=html, base_url=STATIC_SCHEME, url_fetcher=fetcher).render()
    # Metadata from the parameters only: never the clock.
    document.metadata.title = metadata.title
    document.metadata.description = metadata.subject
    document.metadata.authors = ["Steward"]
    document.metadata.generator = f"Steward {settings.STEWARD_VERSION}"
    document.metadata.keywords = list(metadata.keywords)
    document.metadata.created = metadata.w3c_date
    document.metadata.modified = metadata.w3c_date
    document.metadata.lang = "en"
    as_of_naive = metadata.as_of.astimezone(dt.UTC).replace(tzinfo=None)
    pdf_attachments = [
        weasyprint.Attachment(
            filename=str(a.path), name=a.name, description=a.description,
            created=as_of_naive, modified=as_of_naive, relationship="Data",
        )
        for a in attachments
    ]
    document.write_pdf(
        target=str(target),
        pdf_variant=PDF_VARIANT,
        pdf_identifier=metadata.identifier,
        attachments=pdf_attachments,
    )
    digest = hashlib.sha256()
    with open(target, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return RenderResult(
        path=target, sha256=digest.hexdigest(), size=target.stat().st_size,
        page_count=len(document.pages), refused_urls=tuple(fetcher.refused),
    )


def sha256_of_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
