"""Received files: what they are, judged by content only.

``inspect`` classifies bytes as one of the accepted kinds (PDF, PNG, JPEG, DOCX, XLSX) or
returns a refusal *code* for the caller to explain. Neither the sender's file name nor the
declared MIME type is ever trusted; the name only yields a cleaned display name.

Below it: :mod:`bot.domain.file_formats` (how each kind's structure is walked, and the limits
the walks enforce) and :mod:`bot.domain.file_store` (:class:`FileStore`, the content-addressed
store).

Choices worth knowing:

* Executable signatures (MZ, ELF, Mach-O, ``#!``) at offset 0 are refused whatever follows,
  so an ``MZ…%PDF`` polyglot never counts as a PDF.
* pypdf has no time limit; callers run ``inspect`` in a worker thread.
* ``pdf_from_images`` turns photos of a paper resolution (already accepted by ``inspect`` as
  PNG/JPEG) into one PDF, one page per photo, with Pillow; the result is inspected like any
  PDF an officer sends.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

from bot.domain.file_formats import (
    _PNG_SIGNATURE,
    MAX_IMAGE_PIXELS,
    FileKind,
    Refusal,
    _check_jpeg,
    _check_ooxml,
    _check_pdf,
    _check_png,
    _guessed_extension,
    _Refused,
)

__all__ = [
    "MAX_DOWNLOAD_BYTES",
    "PAGE_DPI",
    "FileCheck",
    "Purpose",
    "allowed_for",
    "inspect",
    "pdf_from_images",
    "refusal_for",
    "safe_display_name",
    "too_big",
]

Purpose = Literal["resolution", "attachment"]

MAX_DOWNLOAD_BYTES: Final = 20 * 1024 * 1024  # Telegram's getFile limit for bots

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
_OLE_SIGNATURE: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
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
