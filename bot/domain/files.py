"""Received files: what they are (judged by content only) and where they are kept.

``inspect`` classifies bytes as one of the accepted kinds (PDF, PNG, JPEG, DOCX, XLSX) or
returns a refusal *code* for the caller to explain. Neither the sender's file name nor the
declared MIME type is ever trusted; the name only yields a cleaned display name.

``FileStore`` keeps each distinct content once, under its SHA-256
(``root/ab/cd/abcd…``), written with a temporary name, fsync and an atomic rename so that a
stored file is complete before the database row that references it commits.

Choices worth knowing:

* Executable signatures (MZ, ELF, Mach-O, ``#!``) at offset 0 are refused whatever follows,
  so an ``MZ…%PDF`` polyglot never counts as a PDF.
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
* pypdf has no time limit; callers run ``inspect`` in a worker thread.
* ``pdf_from_images`` turns photos of a paper resolution (already accepted by ``inspect`` as
  PNG/JPEG) into one PDF, one page per photo, with Pillow; the result is inspected like any
  PDF an officer sends.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from bot.modes import fsync_dir, write_atomically

FileKind = Literal["pdf", "png", "jpeg", "docx", "xlsx"]
Purpose = Literal["resolution", "attachment"]
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

MAX_DOWNLOAD_BYTES: Final = 20 * 1024 * 1024  # Telegram's getFile limit for bots
MAX_ZIP_UNCOMPRESSED: Final = 100 * 1024 * 1024  # sum of declared sizes in a DOCX/XLSX
MAX_ZIP_RATIO: Final = 100  # per entry, for entries bigger than RATIO_MIN_SIZE
RATIO_MIN_SIZE: Final = 1024 * 1024  # small XML parts legitimately compress very well
MAX_ZIP_ENTRIES: Final = 1000
MAX_CONTENT_TYPES_BYTES: Final = 1024 * 1024
MAX_IMAGE_PIXELS: Final = 89_478_485  # Pillow's DecompressionBombWarning threshold

_MIME: Final[dict[FileKind, str]] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_EXTENSION: Final[dict[FileKind, str]] = {
    "pdf": "pdf",
    "png": "png",
    "jpeg": "jpg",
    "docx": "docx",
    "xlsx": "xlsx",
}
_ALLOWED: Final[dict[Purpose, frozenset[FileKind]]] = {
    "resolution": frozenset({"pdf"}),
    "attachment": frozenset({"pdf", "png", "jpeg", "docx", "xlsx"}),
}

# Executable formats refused whatever follows them (label, signature at offset 0).
_EXECUTABLE_SIGNATURES: Final = (
    ("exe", b"MZ"),
    ("elf", b"\x7fELF"),
    ("macho", b"\xfe\xed\xfa\xce"),
    ("macho", b"\xfe\xed\xfa\xcf"),
    ("macho", b"\xce\xfa\xed\xfe"),
    ("macho", b"\xcf\xfa\xed\xfe"),
    ("macho", b"\xca\xfe\xba\xbe"),  # also Java class files
    ("script", b"#!"),
)
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_OLE_SIGNATURE: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PDF_TRAILING_OK: Final = b" \t\r\n\x00\x0c"
_DOCX_MAIN: Final = (
    b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
)
_XLSX_MAIN: Final = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
_CONTENT_TYPE_ATTR: Final = re.compile(rb"""ContentType\s*=\s*["']([^"']+)["']""")
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_UNSAFE_NAME_CHARS: Final = re.compile(r'[<>:"/\\|?*]')
_WINDOWS_RESERVED: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_MAX_DISPLAY_STEM: Final = 80


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The verdict on some bytes: an accepted ``kind`` or a ``refusal`` code, never both.

    ``detected`` names what refused content looks like ("exe", "zip", "heic", "docm"...) so
    the caller can say what to send instead. ``display_name`` is the sender's name cleaned for
    showing (never for storing), with the extension of the real content.
    """

    size: int
    kind: FileKind | None = None
    refusal: Refusal | None = None
    mime: str | None = None
    extension: str | None = None
    pages: int | None = None
    detected: str | None = None
    display_name: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is None) == (self.refusal is None):
            raise ValueError("exactly one of kind and refusal")

    @property
    def ok(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True, slots=True)
class StoredFile:
    sha256: str
    size: int
    path: Path


class FileIntegrityError(Exception):
    """A stored file no longer matches its hash."""


def allowed_for(purpose: Purpose) -> frozenset[FileKind]:
    return _ALLOWED[purpose]


def refusal_for(purpose: Purpose, check: FileCheck) -> Refusal | None:
    """The refusal for using this file for ``purpose`` (None: accepted).

    A good image offered as the resolution gets ``pdf_required`` rather than a bare refusal,
    so the officer is told a PDF is needed (e.g. a photo converted to PDF).
    """
    if check.refusal is not None:
        return check.refusal
    if check.kind in _ALLOWED[purpose]:
        return None
    return "pdf_required" if purpose == "resolution" else "file_type_not_allowed"


def too_big(declared_size: int | None, limit: int = MAX_DOWNLOAD_BYTES) -> bool:
    """Whether a declared size already rules a file out (unknown size: check after download)."""
    return declared_size is not None and declared_size > limit


def inspect(
    data: bytes, declared_name: str | None = None, *, max_bytes: int = MAX_DOWNLOAD_BYTES
) -> FileCheck:
    """Classify ``data`` by its content alone."""
    size = len(data)
    if size == 0:
        return FileCheck(size, refusal="file_empty")
    if size > max_bytes:
        return FileCheck(size, refusal="file_too_big")
    for label, signature in _EXECUTABLE_SIGNATURES:
        if data.startswith(signature):
            return FileCheck(size, refusal="file_type_not_allowed", detected=label)

    if data.startswith(b"%PDF-"):
        verdict = _check_pdf(data)
    elif data.startswith(_PNG_SIGNATURE):
        verdict = _check_png(data)
    elif data.startswith(b"\xff\xd8\xff"):
        verdict = _check_jpeg(data)
    elif data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        verdict = _check_ooxml(data)
    elif data.startswith(_OLE_SIGNATURE):
        # Legacy .doc/.xls/.ppt, and also password-protected DOCX/XLSX: Office wraps
        # encrypted OOXML in this container. Either way: ask for a PDF or a plain DOCX/XLSX.
        return FileCheck(size, refusal="file_type_not_allowed", detected="ole_office")
    else:
        detected = _guessed_extension(data) or "unknown"
        return FileCheck(size, refusal="file_type_not_allowed", detected=detected)

    if isinstance(verdict, _Refused):
        return FileCheck(size, refusal=verdict.code, detected=verdict.detected)
    kind, pages = verdict
    return FileCheck(
        size,
        kind=kind,
        mime=_MIME[kind],
        extension=_EXTENSION[kind],
        pages=pages,
        display_name=safe_display_name(declared_name, _EXTENSION[kind]),
    )


def safe_display_name(declared_name: str | None, extension: str) -> str | None:
    """The sender's name made harmless for display or as a mail attachment name.

    Drops any directory part, control and format characters (such as the right-to-left
    override used to disguise ``exe`` as ``pdf``), reserved characters and the declared
    extension, then appends the extension of the real content. None when nothing is left.
    """
    if not declared_name:
        return None
    name = unicodedata.normalize("NFC", declared_name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(_display_char(ch) for ch in name)
    name = _UNSAFE_NAME_CHARS.sub("_", name)
    name = " ".join(name.split())
    stem, dot, ext = name.rpartition(".")
    if dot and stem and 1 <= len(ext) <= 5 and ext.isalnum():
        name = stem
    name = name[:_MAX_DISPLAY_STEM].strip(" .")
    if not name:
        return None
    if name.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        name = "_" + name
    return f"{name}.{extension}"


def _display_char(ch: str) -> str:
    category = unicodedata.category(ch)
    if category.startswith("Z"):
        return " "  # any space or separator
    if category.startswith("C"):
        return ""  # control, format (bidi overrides, zero-width), private, unassigned
    return ch


# --- content checks ---------------------------------------------------------------------


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


# --- photos of a paper document -----------------------------------------------------------

PAGE_DPI: Final = 150.0  # how Pillow sizes each page: a phone photo fills about an A4 sheet


def pdf_from_images(images: list[bytes]) -> bytes:
    """One PDF page per image, in order; each turned upright (EXIF orientation) and in RGB.

    Pillow, not img2pdf: img2pdf would embed JPEGs without re-encoding, but it needs pikepdf
    (qpdf's C++ library) for a feature this one step uses; Pillow alone decodes, rotates and
    writes the pages, and it already guards against decompression bombs."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    pages = []
    for data in images:
        with Image.open(io.BytesIO(data)) as opened:
            upright = ImageOps.exif_transpose(opened) or opened
            pages.append(upright.convert("RGB"))
    out = io.BytesIO()
    first, *rest = pages
    first.save(out, "PDF", save_all=True, append_images=rest, resolution=PAGE_DPI)
    return out.getvalue()


# --- storage ----------------------------------------------------------------------------


class FileStore:
    """Content-addressed files under ``root``: ``root/ab/cd/<sha256>``, each content once.

    Directories are created 0700 and files 0600: resolutions carry DNIs and signatures.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if not _SHA256_HEX.fullmatch(sha256):
            raise ValueError("not a lowercase hex SHA-256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        data = self.path_for(sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise FileIntegrityError(sha256)
        return data

    def put(self, data: bytes) -> StoredFile:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha256)
        try:
            if path.stat().st_size == len(data):
                return StoredFile(sha256, len(data), path)
        except FileNotFoundError:
            pass
        self._make_dirs(path.parent)
        write_atomically(path, data)
        return StoredFile(sha256, len(data), path)

    def _make_dirs(self, directory: Path) -> None:
        """Create ``directory`` and its parents, fsyncing each parent that gained an entry."""
        missing: list[Path] = []
        current = directory
        while not current.is_dir():
            missing.append(current)
            current = current.parent
        for new_dir in reversed(missing):
            try:
                new_dir.mkdir(mode=0o700)
            except FileExistsError:  # another thread made it first
                continue
            fsync_dir(new_dir.parent)
