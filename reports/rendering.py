"""HTML to PDF: WeasyPrint with a locked-down URL fetcher, fixed metadata, PDF/A-3b and attachments.

Why it is built this way:
- The fetcher loads only static files of this project (``static:`` URLs, resolved through the
  staticfiles finders) and ``data:`` URLs; anything else (http, file, ftp, ...) is refused, so a
  template or a value that slipped into one can never make the renderer reach the network or
  read arbitrary files.
- Everything that would otherwise vary between two renders (creation and modification dates,
  the file identifier, the attachments' dates) comes from the report's own parameters, so the
  same inputs give byte-identical PDFs and a checksum identifies a report.
- The machine-readable evidence travels inside the PDF as PDF/A-3 associated files. They can be far
  bigger than the pages (hundreds of MB on a large estate), so they are not handed to WeasyPrint
  (which reads each file whole and compresses it at level 9 on every access, twice when the file
  has an /ID). Each one is compressed once, streamed from disk, into a temporary file; a finisher
  adds it as an /EmbeddedFile (with the PDF/A-3 file specification, name tree and /AF entries
  WeasyPrint itself would write) and the PDF is written by EvidencePDF, which copies those streams
  from disk in blocks and digests the /ID object by object, so memory does not follow their size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import mimetypes
import os
import tempfile
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from math import ceil, log
from pathlib import Path
from urllib.parse import unquote

import pydyf
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
BLOCK = 1 << 20  # bytes read, compressed and copied at a time
PACKING_THREADS = 2
# zlib level 3: on check-results-like CSV 282 MB/s at 11.3:1, against level 6 130 MB/s at 12.9:1 (and 9 about half
# that again): a 1M-credential pack holds 1.9 GB of attachments, so the level is seconds of CPU.
ATTACHMENT_COMPRESSION = 3
# Fixed, not mimetypes.guess_type: that reads the host's /etc/mime.types, and the bytes must not depend on it.
ATTACHMENT_TYPES = {".json": "application/json", ".csv": "text/csv"}


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
class PackedAttachment:
    """An attachment compressed (zlib, for /FlateDecode) into its own file, with what PDF needs of the original."""

    name: str
    description: str
    mime_type: str
    packed: Path  # the compressed bytes
    packed_size: int
    size: int  # of the uncompressed file
    md5: str  # of the uncompressed file (the /CheckSum of the embedded file's /Params)


def pack_attachment(attachment: AttachmentFile, packed: Path) -> PackedAttachment:
    """Compress the attachment into packed once, block by block, digesting and counting the original as it
    is read."""
    compressor = zlib.compressobj(ATTACHMENT_COMPRESSION)
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(attachment.path, "rb") as source, open(packed, "wb") as out:
        for block in iter(lambda: source.read(BLOCK), b""):
            digest.update(block)
            size += len(block)
            out.write(compressor.compress(block))
        out.write(compressor.flush())
    return PackedAttachment(
        name=attachment.name, description=attachment.description,
        mime_type=ATTACHMENT_TYPES.get(Path(attachment.name).suffix, "application/octet-stream"),
        packed=packed, packed_size=packed.stat().st_size, size=size, md5=digest.hexdigest(),
    )


class EmbeddedFileStream(pydyf.Stream):
    """A stream whose Flate-compressed bytes are in a file: EvidencePDF copies them from there in blocks."""

    def __init__(self, attachment: PackedAttachment, extra: pydyf.Dictionary):
        super().__init__(extra=extra, compress=False)
        self.attachment = attachment

    def chunks(self) -> Iterator[bytes]:
        """The object's data in pieces: exactly the bytes of pydyf's Stream.data for a compressed stream."""
        extra = pydyf.Dictionary({**self.extra, "Filter": "/FlateDecode", "Length": self.attachment.packed_size})
        yield extra.data + b"\nstream\n"
        with open(self.attachment.packed, "rb") as fh:
            yield from iter(lambda: fh.read(BLOCK), b"")
        yield b"\nendstream"

    @property
    def data(self) -> bytes:
        # Whole, for a writer that wants it so (pydyf's own PDF.write); EvidencePDF never asks.
        return b"".join(self.chunks())


class EvidencePDF(pydyf.PDF):
    """pydyf 0.13's PDF.write for a compressed PDF 1.5+ (object and cross-reference streams), writing the
    same bytes, except that embedded files are copied from disk and the /ID digest is fed object by object:
    pydyf joins every object's data into one bytes for it, the whole file in memory at once."""

    def write(self, output, version=b"1.7", identifier=False, compress=False):
        version = version if isinstance(version, bytes) else str(version or "1.7").encode()
        if version < b"1.5" or not compress:  # not a report's PDF/A-3b: pydyf's own writer
            return super().write(output, version, identifier, compress)
        if identifier not in (False, True, None) and not isinstance(identifier, bytes):
            identifier = str(identifier).encode()
        if self.info:
            self.add_object(self.info)
        self.write_line(b"%PDF-" + version, output)
        self.write_line(b"%\xf0\x9f\x96\xa4", output)

        compressed_objects = []
        for object_ in self.objects:
            if object_.free == "f":
                continue
            if object_.compressible:
                compressed_objects.append(object_)
                continue
            object_.offset = self.current_position
            if isinstance(object_, EmbeddedFileStream):
                self._write_pieces([f"{object_.number} {object_.generation} obj\n".encode(), *object_.chunks(),
                                    b"\nendobj\n"], output)
            else:
                self.write_line(object_.indirect, output)

        stream = [[]]
        position = 0
        for object_ in compressed_objects:
            data = object_.data
            stream.append(data)
            stream[0].append(object_.number)
            stream[0].append(position)
            position += len(data) + 1
        stream[0] = " ".join(str(i) for i in stream[0])
        extra = {"Type": "/ObjStm", "N": len(compressed_objects), "First": len(stream[0]) + 1}
        object_stream = pydyf.Stream(stream, extra, compress)
        object_stream.offset = self.current_position
        self.add_object(object_stream)
        self.write_line(object_stream.indirect, output)

        xref = []
        dict_index = 0
        for object_ in self.objects:
            if object_.compressible:
                xref.append((2, object_stream.number, dict_index))
                dict_index += 1
            else:
                xref.append((bool(object_.number), object_.offset, object_.generation))
        xref.append((1, self.current_position, 0))
        field2_size = ceil(log(self.current_position + 1, 256))
        max_generation = max(object_.generation for object_ in self.objects)
        field3_size = ceil(log(max(max_generation, len(compressed_objects)) + 1, 256))
        xref_lengths = (1, field2_size, field3_size)
        xref_stream = b"".join(value.to_bytes(length, "big")
                               for line in xref for length, value in zip(xref_lengths, line, strict=True))
        extra = {"Type": "/XRef", "Index": pydyf.Array((0, len(self.objects) + 1)), "W": pydyf.Array(xref_lengths),
                 "Size": len(self.objects) + 1, "Root": self.catalog.reference}
        if self.info:
            extra["Info"] = self.info.reference
        if identifier:
            data_hash = self._digest().hexdigest().encode()
            if identifier is True:
                identifier = data_hash
            extra["ID"] = pydyf.Array((pydyf.String(identifier).data, pydyf.String(data_hash).data))
        dict_stream = pydyf.Stream([xref_stream], extra, compress)
        self.xref_position = dict_stream.offset = self.current_position
        self.add_object(dict_stream)
        self.write_line(dict_stream.indirect, output)
        self.write_line(b"startxref", output)
        self.write_line(f"{self.xref_position}".encode(), output)
        self.write_line(b"%%EOF", output)

    def _write_pieces(self, pieces, output) -> None:
        for piece in pieces:
            output.write(piece)
            self.current_position += len(piece)

    def _digest(self):
        """md5 of every object's data in order, as pydyf computes the /ID, without joining them first."""
        digest = hashlib.md5(usedforsecurity=False)
        for object_ in self.objects:
            if object_.free == "f":
                continue
            if isinstance(object_, EmbeddedFileStream):
                for chunk in object_.chunks():
                    digest.update(chunk)
            else:
                digest.update(object_.data)
        return digest


def _pdf_date(moment: dt.datetime) -> pydyf.String:
    return pydyf.String(moment.astimezone(dt.UTC).strftime("D:%Y%m%d%H%M%SZ"))


def embed_attachments(pdf: pydyf.PDF, attachments: list[PackedAttachment], as_of: dt.datetime) -> None:
    """Add the attachments as PDF/A-3 associated files (relationship Data): for each an /EmbeddedFile stream
    and a /Filespec, then the catalog's /EmbeddedFiles name tree (sorted by name, as name trees are) and /AF.
    The structure WeasyPrint's write_pdf_attachment and PDF/A variant give, with the streams left on disk."""
    specs: list[tuple[str, pydyf.Dictionary]] = []
    for attachment in attachments:
        stream = EmbeddedFileStream(attachment, pydyf.Dictionary({
            "Type": "/EmbeddedFile",
            "Subtype": "/" + attachment.mime_type.replace("/", "#2f"),
            "Params": pydyf.Dictionary({
                "CheckSum": f"<{attachment.md5}>", "Size": attachment.size,
                "CreationDate": _pdf_date(as_of), "ModDate": _pdf_date(as_of),
            }),
        }))
        pdf.add_object(stream)
        spec = pydyf.Dictionary({
            "Type": "/Filespec",
            "F": pydyf.String(attachment.name.encode(errors="ignore")),
            "UF": pydyf.String(attachment.name),
            "EF": pydyf.Dictionary({"F": stream.reference}),
            "Desc": pydyf.String(attachment.description),
            "AFRelationship": "/Data",
        })
        pdf.add_object(spec)
        specs.append((attachment.name, spec))
    if not specs:
        return
    names = pydyf.Array()
    for name, spec in sorted(specs, key=lambda item: item[0]):
        names.extend([pydyf.String(name), spec.reference])
    tree = pydyf.Dictionary({"Names": names})
    pdf.add_object(tree)
    if "Names" not in pdf.catalog:
        pdf.catalog["Names"] = pydyf.Dictionary()
    pdf.catalog["Names"]["EmbeddedFiles"] = tree.reference
    pdf.catalog.setdefault("AF", pydyf.Array()).extend(spec.reference for _, spec in specs)


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
    with tempfile.TemporaryDirectory(prefix="steward-attachments-") as directory, \
            ThreadPoolExecutor(max_workers=PACKING_THREADS, thread_name_prefix="pack-attachment") as pool:
        # zlib releases the GIL: the attachments compress on the other cores while WeasyPrint lays out the pages.
        packing = [pool.submit(pack_attachment, a, Path(directory) / f"{i}.deflate") for i, a in enumerate(attachments)]
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
        packed = [future.result() for future in packing]

        def finish(_document, pdf: pydyf.PDF) -> None:
            """Called by WeasyPrint with the finished PDF (PDF/A-3b already applied), just before it writes."""
            embed_attachments(pdf, packed, metadata.as_of)
            pdf.__class__ = EvidencePDF  # the same object, written by the writer that streams the attachments

        document.write_pdf(target=str(target), pdf_variant=PDF_VARIANT, pdf_identifier=metadata.identifier,
                           finisher=finish)
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
