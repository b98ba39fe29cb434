"""How each accepted kind of file is judged by its content: the structure of PDF, PNG, JPEG
and DOCX/XLSX walked without trusting a name or a declared type, and the verdict each walk
gives (a kind, or a refusal code). :func:`bot.domain.files.inspect` picks the walk by the
first bytes and turns its verdict into a :class:`~bot.domain.files.FileCheck`.

Choices worth knowing:

* A PDF must start with ``%PDF-`` at offset 0 (the spec tolerates 1 KiB of junk before it;
  that tolerance is what polyglots live on), open cleanly with pypdf, have no bytes but
  whitespace after its last ``%%EOF`` and not also be a readable zip archive. A PDF with an
  appended zip (or anything else appended) is ``file_suspicious``; a missing ``%%EOF`` is a
  truncated upload, ``pdf_damaged``.
* Any encryption is refused (``pdf_encrypted``), even an owner-password-only PDF that opens
  without a password: the domain rule is "not encrypted" and the help desk must be able to
  copy from and annotate the resolution.
* DOCX/XLSX are zip archives: only the central directory is read (declared sizes, ratios,
  entry count, names) and one small part, ``[Content_Types].xml``, with a bounded read.
  Nothing is ever extracted to disk. Macro-enabled documents are refused.
* PNG and JPEG structure is walked without decoding pixels; images above Pillow's default
  pixel limit are refused as decompression bombs for whoever opens them.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Final, Literal

FileKind = Literal["pdf", "png", "jpeg", "docx", "xlsx"]
Refusal = Literal[
    "file_empty",
    "file_too_big",
    "file_type_not_allowed",
    "file_suspicious",
    "pdf_damaged",
    "pdf_encrypted",
    "pdf_no_pages",
    "pdf_required",
    "office_damaged",
    "image_damaged",
]

MAX_ZIP_UNCOMPRESSED: Final = 100 * 1024 * 1024  # sum of declared sizes in a DOCX/XLSX
MAX_ZIP_RATIO: Final = 100  # per entry, for entries bigger than RATIO_MIN_SIZE
RATIO_MIN_SIZE: Final = 1024 * 1024  # small XML parts legitimately compress very well
MAX_ZIP_ENTRIES: Final = 1000
MAX_CONTENT_TYPES_BYTES: Final = 1024 * 1024
MAX_IMAGE_PIXELS: Final = 89_478_485  # Pillow's DecompressionBombWarning threshold

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PDF_TRAILING_OK: Final = b" \t\r\n\x00\x0c"
_DOCX_MAIN: Final = (
    b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
)
_XLSX_MAIN: Final = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
_CONTENT_TYPE_ATTR: Final = re.compile(rb"""ContentType\s*=\s*["']([^"']+)["']""")


@dataclass(frozen=True, slots=True)
class _Refused:
    code: Refusal
    detected: str | None = None


_Verdict = tuple[FileKind, int | None] | _Refused


def _guessed_extension(data: bytes) -> str | None:
    """What ``filetype`` takes a refused file for (imported on first use, issue 18)."""
    import filetype

    guess = filetype.guess(data)
    return str(guess.extension) if guess is not None else None


def _is_zip(data: bytes) -> bool:
    """Whether a zip reader would find an archive in ``data`` (a polyglot's second face)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return len(archive.infolist()) > 0
    except Exception:  # hostile input may break the parser in any way: it is then no zip
        return False


def _check_pdf(data: bytes) -> _Verdict:
    eof = data.rfind(b"%%EOF")
    if eof < 0:
        return _Refused("pdf_damaged")  # truncated upload
    if data[eof + 5 :].strip(_PDF_TRAILING_OK):
        return _Refused("file_suspicious", "pdf_trailing_data")
    if _is_zip(data):
        return _Refused("file_suspicious", "pdf_zip_polyglot")
    from pypdf import PdfReader  # imported on first use (start-up time, issue 18)

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return _Refused("pdf_encrypted")
        pages = len(reader.pages)
    except Exception:  # pypdf raises many types on hostile input; all mean "cannot open"
        return _Refused("pdf_damaged")
    if pages == 0:
        return _Refused("pdf_no_pages")
    return ("pdf", pages)


def _check_png(data: bytes) -> _Verdict:
    """Walk the chunks (no decompression): IHDR first, CRCs right, nothing after IEND."""
    offset = len(_PNG_SIGNATURE)
    first = True
    while True:
        if offset + 12 > len(data):
            return _Refused("image_damaged")
        length, chunk_type = struct.unpack(">I4s", data[offset : offset + 8])
        end = offset + 12 + length
        if end > len(data):
            return _Refused("image_damaged")
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(chunk_type + body) != crc:
            return _Refused("image_damaged")
        if first:
            if chunk_type != b"IHDR" or length != 13:
                return _Refused("image_damaged")
            width, height = struct.unpack(">II", body[:8])
            if width == 0 or height == 0:
                return _Refused("image_damaged")
            if width * height > MAX_IMAGE_PIXELS:
                return _Refused("file_suspicious", "image_too_many_pixels")
            first = False
        offset = end
        if chunk_type == b"IEND":
            break
    if offset != len(data):
        return _Refused("file_suspicious", "png_trailing_data")
    if _is_zip(data):  # a zip can hide in a chunk: zip readers accept bytes after its end
        return _Refused("file_suspicious", "png_zip_polyglot")
    return ("png", None)


# JPEG start-of-frame markers carry the dimensions (C4, C8 and CC are other segments).
_JPEG_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _check_jpeg(data: bytes) -> _Verdict:
    """Walk the marker segments up to start-of-scan; require a frame header and an EOI.

    Bytes after EOI are allowed: phones append thumbnails and maker data there.
    """
    offset = 2
    frame_seen = False
    while True:
        if offset >= len(data) or data[offset] != 0xFF:
            return _Refused("image_damaged")
        while offset < len(data) and data[offset] == 0xFF:
            offset += 1  # the 0xFF that starts each marker, and any fill bytes
        if offset >= len(data):
            return _Refused("image_damaged")
        marker = data[offset]
        offset += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue  # standalone markers, no length
        if marker in (0xD8, 0xD9):
            return _Refused("image_damaged")  # a second SOI, or EOI before any scan
        if offset + 2 > len(data):
            return _Refused("image_damaged")
        (length,) = struct.unpack(">H", data[offset : offset + 2])
        if length < 2 or offset + length > len(data):
            return _Refused("image_damaged")
        if marker in _JPEG_SOF:
            if length < 7:
                return _Refused("image_damaged")
            height, width = struct.unpack(">HH", data[offset + 3 : offset + 7])
            if width == 0:
                return _Refused("image_damaged")
            if width * height > MAX_IMAGE_PIXELS:
                return _Refused("file_suspicious", "image_too_many_pixels")
            frame_seen = True
        offset += length
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
    if not frame_seen or data.find(b"\xff\xd9", offset) < 0:
        return _Refused("image_damaged")
    if _is_zip(data):
        return _Refused("file_suspicious", "jpeg_zip_polyglot")
    return ("jpeg", None)


def _check_ooxml(data: bytes) -> _Verdict:
    """Judge a zip as DOCX/XLSX from its central directory and ``[Content_Types].xml``.

    Declared sizes are all that is read for the bomb checks; the one part read is bounded by
    its (already checked) declared size, which zipfile enforces while reading.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception:  # a zip we cannot read is most likely a damaged Office file
        return _Refused("office_damaged")
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            return _Refused("file_suspicious", "zip_too_many_entries")
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            return _Refused("file_suspicious", "zip_duplicate_names")
        if any(
            n.startswith(("/", "\\")) or ".." in n.replace("\\", "/").split("/") for n in names
        ):
            return _Refused("file_suspicious", "zip_unsafe_names")
        if any(info.flag_bits & 0x1 for info in infos):
            return _Refused("file_suspicious", "zip_encrypted_entries")
        if sum(info.file_size for info in infos) > MAX_ZIP_UNCOMPRESSED:
            return _Refused("file_suspicious", "zip_bomb")
        for info in infos:
            ratio_limit = MAX_ZIP_RATIO * max(info.compress_size, 1)
            if info.file_size > RATIO_MIN_SIZE and info.file_size > ratio_limit:
                return _Refused("file_suspicious", "zip_bomb")

        has_word = any(n.startswith("word/") for n in names)
        has_xl = any(n.startswith("xl/") for n in names)
        if "[Content_Types].xml" not in names:
            if has_word or has_xl:
                return _Refused("office_damaged")
            return _Refused("file_type_not_allowed", _guessed_extension(data) or "zip")
        info = archive.getinfo("[Content_Types].xml")
        if info.file_size > MAX_CONTENT_TYPES_BYTES:
            return _Refused("file_suspicious", "zip_bomb")
        try:
            content_types = archive.read(info)
        except Exception:  # bad CRC, bad deflate stream, unsupported method
            return _Refused("office_damaged")

    types = set(_CONTENT_TYPE_ATTR.findall(content_types))
    if any(b"macroEnabled" in t for t in types) or any(
        n.endswith("vbaProject.bin") for n in names
    ):
        return _Refused("file_type_not_allowed", "docm" if has_word else "xlsm")
    is_docx = _DOCX_MAIN in types and has_word
    is_xlsx = _XLSX_MAIN in types and has_xl
    if is_docx and is_xlsx:
        return _Refused("file_suspicious", "ooxml_ambiguous")
    if is_docx:
        return ("docx", None)
    if is_xlsx:
        return ("xlsx", None)
    if has_word or has_xl:
        return _Refused("office_damaged")
    if any(n.startswith("ppt/") for n in names):
        return _Refused("file_type_not_allowed", "pptx")
    return _Refused("file_type_not_allowed", "zip")
