"""Every hostile file is built here, in the test: no binary fixtures in the repository."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import openpyxl
import pytest

from bot.domain.file_formats import MAX_ZIP_ENTRIES
from bot.domain.file_store import FileIntegrityError, FileStore
from bot.domain.files import (
    MAX_DOWNLOAD_BYTES,
    FileCheck,
    allowed_for,
    inspect,
    refusal_for,
    safe_display_name,
    too_big,
)
from tests.walks import make_pdf

# --- builders -------------------------------------------------------------------------------


def make_zip(entries: dict[str, bytes], comment: bytes = b"") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
        archive.comment = comment
    return out.getvalue()


CONTENT_TYPES_DOCX = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" '
    b'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    b"</Types>"
)
ROOT_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
DOCUMENT_XML = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body><w:p><w:r><w:t>Hola</w:t></w:r></w:p></w:body></w:document>"
)
DOCX_PARTS = {
    "[Content_Types].xml": CONTENT_TYPES_DOCX,
    "_rels/.rels": ROOT_RELS,
    "word/document.xml": DOCUMENT_XML,
}


def make_docx() -> bytes:
    return make_zip(DOCX_PARTS)


def make_xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "hola"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def make_zip_bomb(zeros: int) -> bytes:
    """A docx-shaped archive holding ``zeros`` bytes of zeros (compressed ~1000x)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in DOCX_PARTS.items():
            archive.writestr(name, content)
        chunk = bytes(1024 * 1024)
        with archive.open("word/media/image1.png", "w") as entry:
            for _ in range(zeros // len(chunk)):
                entry.write(chunk)
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def make_png(width: int = 1, height: int = 1) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def make_jpeg() -> bytes:
    """A 1x1 baseline-structured JPEG: SOI, APP0, DQT, SOF0, DHT, SOS, data, EOI."""

    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\x00" + bytes([1] * 64)
    sof0 = b"\x08" + struct.pack(">HH", 1, 1) + b"\x01\x01\x11\x00"
    dht_dc = b"\x00" + bytes([1] + [0] * 15) + b"\x00"
    dht_ac = b"\x10" + bytes([1] + [0] * 15) + b"\x00"
    sos = b"\x01\x01\x00\x00\x3f\x00"
    return (
        b"\xff\xd8"
        + segment(0xE0, app0)
        + segment(0xDB, dqt)
        + segment(0xC0, sof0)
        + segment(0xC4, dht_dc)
        + segment(0xC4, dht_ac)
        + segment(0xDA, sos)
        + b"\x00\x00"
        + b"\xff\xd9"
    )


def make_pe() -> bytes:
    """The start of a Windows executable: MZ header whose e_lfanew points at "PE\\0\\0"."""
    dos_header = b"MZ" + bytes(58) + struct.pack("<I", 64)
    return dos_header + b"PE\x00\x00" + bytes(200)


# --- inspect: accepted ----------------------------------------------------------------------


def test_real_pdf_is_accepted_with_its_page_count() -> None:
    check = inspect(make_pdf(pages=3), "Resolución 012-2026.pdf")
    assert check.ok
    assert check.kind == "pdf"
    assert check.mime == "application/pdf"
    assert check.extension == "pdf"
    assert check.pages == 3
    assert check.display_name == "Resolución 012-2026.pdf"


@pytest.mark.parametrize(
    ("data", "kind", "mime", "extension"),
    [
        (make_png(), "png", "image/png", "png"),
        (make_jpeg(), "jpeg", "image/jpeg", "jpg"),
        (
            make_docx(),
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "docx",
        ),
        (
            make_xlsx(),
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
    ],
)
def test_allowed_kinds_are_recognised_by_content(
    data: bytes, kind: str, mime: str, extension: str
) -> None:
    # The declared name lies on purpose: only the content counts.
    check = inspect(data, "captura.exe")
    assert check.ok
    assert (check.kind, check.mime, check.extension) == (kind, mime, extension)
    assert check.display_name == f"captura.{extension}"


def test_pdf_named_as_image_is_still_a_pdf() -> None:
    check = inspect(make_pdf(), "foto.jpg")
    assert check.kind == "pdf"
    assert check.display_name == "foto.pdf"


def test_jpeg_with_bytes_after_eoi_is_accepted() -> None:
    # Phones append maker data and thumbnails after the end-of-image marker.
    assert inspect(make_jpeg() + b"SEFH trailer written by a phone", None).kind == "jpeg"


# --- inspect: refused -----------------------------------------------------------------------


def refused(data: bytes, name: str | None = None) -> tuple[str | None, str | None]:
    check = inspect(data, name)
    assert not check.ok
    assert check.kind is None
    assert check.mime is None
    return check.refusal, check.detected


def test_zero_byte_file_is_empty() -> None:
    assert refused(b"", "resolucion.pdf") == ("file_empty", None)


def test_encrypted_pdf_is_refused() -> None:
    assert refused(make_pdf(password="secreto"))[0] == "pdf_encrypted"


def test_truncated_pdf_is_damaged() -> None:
    pdf = make_pdf()
    assert refused(pdf[: len(pdf) // 2])[0] == "pdf_damaged"


def test_pdf_signature_with_unreadable_body_is_damaged() -> None:
    assert refused(b"%PDF-1.7\nnot really a pdf\n%%EOF\n")[0] == "pdf_damaged"


def test_pdf_without_pages_is_refused() -> None:
    assert refused(make_pdf(pages=0))[0] == "pdf_no_pages"


def test_executable_renamed_pdf_is_not_allowed() -> None:
    assert refused(make_pe(), "resolucion.pdf") == ("file_type_not_allowed", "exe")


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (b"\x7fELF\x02\x01\x01" + bytes(100), "elf"),
        (b"#!/bin/sh\nrm -rf /\n", "script"),
        (b"\xcf\xfa\xed\xfe" + bytes(100), "macho"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "gif"),
        (b"Rar!\x1a\x07\x00" + bytes(100), "rar"),
        (b"hola, adjunto la resolucion", "unknown"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "ole_office"),  # .doc, .xls
    ],
)
def test_other_types_are_not_allowed(data: bytes, detected: str) -> None:
    assert refused(data, "documento.pdf") == ("file_type_not_allowed", detected)


def test_executable_carrying_a_pdf_is_refused_as_executable() -> None:
    # "MZ" first, a whole clean PDF inside: what runs is what counts.
    polyglot = make_pe() + make_pdf()
    assert refused(polyglot, "resolucion.pdf") == ("file_type_not_allowed", "exe")


def test_pdf_with_appended_zip_is_suspicious() -> None:
    polyglot = make_pdf() + make_zip({"payload.exe": make_pe()})
    assert refused(polyglot)[0] == "file_suspicious"


def test_pdf_hiding_a_zip_before_its_final_eof_is_suspicious() -> None:
    # The zip's comment carries "%%EOF" so nothing but whitespace follows the last marker,
    # and a zip reader still finds the archive: pypdf alone would accept this file.
    polyglot = make_pdf() + make_zip({"payload.exe": make_pe()}, comment=b"\n%%EOF\n")
    assert polyglot.rstrip().endswith(b"%%EOF")
    assert refused(polyglot) == ("file_suspicious", "pdf_zip_polyglot")


def test_png_with_appended_zip_is_suspicious() -> None:
    assert refused(make_png() + make_zip({"a.txt": b"x"}))[0] == "file_suspicious"


def test_png_hiding_a_zip_in_a_chunk_is_suspicious() -> None:
    # Nothing follows IEND, yet zip readers find the archive: they do not check that the
    # end-of-central-directory record is really at the end of the file.
    png = make_png()
    iend = png_chunk(b"IEND", b"")
    polyglot = png[: -len(iend)] + png_chunk(b"zIPp", make_zip({"a.js": b"alert(1)"})) + iend
    assert refused(polyglot) == ("file_suspicious", "png_zip_polyglot")


def test_jpeg_with_appended_zip_is_suspicious() -> None:
    polyglot = make_jpeg() + make_zip({"a.js": b"alert(1)"})
    assert refused(polyglot) == ("file_suspicious", "jpeg_zip_polyglot")


def test_png_with_bad_crc_is_damaged() -> None:
    png = bytearray(make_png())
    png[-20] ^= 0xFF  # inside IDAT
    assert refused(bytes(png))[0] == "image_damaged"


def test_truncated_png_is_damaged() -> None:
    assert refused(make_png()[:-12])[0] == "image_damaged"


def test_png_declaring_a_gigantic_canvas_is_suspicious() -> None:
    header = b"\x89PNG\r\n\x1a\n" + png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    )
    assert refused(header + png_chunk(b"IEND", b"")) == (
        "file_suspicious",
        "image_too_many_pixels",
    )


def test_jpeg_without_end_marker_is_damaged() -> None:
    assert refused(make_jpeg()[:-2])[0] == "image_damaged"


def test_jpeg_signature_alone_is_damaged() -> None:
    assert refused(b"\xff\xd8\xff\xe0")[0] == "image_damaged"


def test_zip_bomb_named_docx_is_suspicious() -> None:
    bomb = make_zip_bomb(200 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024  # tiny on the wire...
    assert refused(bomb, "informe.docx") == ("file_suspicious", "zip_bomb")


def test_small_but_highly_compressed_entry_is_suspicious() -> None:
    bomb = make_zip_bomb(50 * 1024 * 1024)  # under the total limit, over the ratio limit
    assert refused(bomb, "informe.docx") == ("file_suspicious", "zip_bomb")


def test_zip_with_too_many_entries_is_suspicious() -> None:
    entries = dict(DOCX_PARTS) | {f"word/media/{i}.xml": b"<a/>" for i in range(MAX_ZIP_ENTRIES)}
    assert refused(make_zip(entries)) == ("file_suspicious", "zip_too_many_entries")


def test_zip_with_path_traversal_names_is_suspicious() -> None:
    entries = dict(DOCX_PARTS) | {"../../etc/cron.d/x": b"* * * * * root sh"}
    assert refused(make_zip(entries)) == ("file_suspicious", "zip_unsafe_names")


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
def test_zip_with_duplicate_names_is_suspicious() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in DOCX_PARTS.items():
            archive.writestr(name, content)
        archive.writestr("word/document.xml", b"<other/>")  # which one would Word read?
    assert refused(out.getvalue()) == ("file_suspicious", "zip_duplicate_names")


def test_plain_zip_is_not_allowed() -> None:
    assert refused(make_zip({"fotos/1.jpg": make_jpeg()}), "fotos.docx") == (
        "file_type_not_allowed",
        "zip",
    )


def test_macro_enabled_document_is_not_allowed() -> None:
    content_types = CONTENT_TYPES_DOCX.replace(
        b"vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        b"vnd.ms-word.document.macroEnabled.main+xml",
    )
    docm = make_zip(
        DOCX_PARTS | {"[Content_Types].xml": content_types, "word/vbaProject.bin": b"\0" * 64}
    )
    assert refused(docm, "informe.docx") == ("file_type_not_allowed", "docm")


def test_office_parts_without_content_types_are_damaged() -> None:
    parts = {k: v for k, v in DOCX_PARTS.items() if k != "[Content_Types].xml"}
    assert refused(make_zip(parts))[0] == "office_damaged"


def test_content_types_without_main_part_is_damaged() -> None:
    content_types = CONTENT_TYPES_DOCX.replace(b"document.main+xml", b"unknown+xml")
    parts = DOCX_PARTS | {"[Content_Types].xml": content_types}
    assert refused(make_zip(parts))[0] == "office_damaged"


def test_truncated_docx_is_damaged() -> None:
    docx = make_docx()
    assert refused(docx[: len(docx) // 2])[0] == "office_damaged"


def test_corrupted_content_types_is_damaged() -> None:
    docx = bytearray(make_zip({"[Content_Types].xml": CONTENT_TYPES_DOCX} | DOCX_PARTS))
    start = docx.index(b"[Content_Types].xml") + len("[Content_Types].xml")
    docx[start + 5] ^= 0xFF  # inside the compressed bytes of the first entry
    assert refused(bytes(docx))[0] == "office_damaged"


def test_content_over_the_limit_is_too_big() -> None:
    check = inspect(make_pdf(), None, max_bytes=100)
    assert check.refusal == "file_too_big"


def test_file_check_needs_exactly_one_verdict() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        FileCheck(size=1)
    with pytest.raises(ValueError, match="exactly one"):
        FileCheck(size=1, kind="pdf", refusal="file_empty")


# --- purposes and sizes ---------------------------------------------------------------------


def test_resolution_takes_only_pdf() -> None:
    assert allowed_for("resolution") == frozenset({"pdf"})
    assert allowed_for("attachment") == frozenset({"pdf", "png", "jpeg", "docx", "xlsx"})


def test_photo_offered_as_resolution_asks_for_a_pdf() -> None:
    photo = inspect(make_jpeg(), "resolucion.jpg")
    assert photo.ok
    assert refusal_for("resolution", photo) == "pdf_required"
    assert refusal_for("attachment", photo) is None
    assert refusal_for("resolution", inspect(make_pdf(), None)) is None
    assert refusal_for("attachment", inspect(b"", None)) == "file_empty"


def test_declared_size_is_checked_before_download() -> None:
    assert MAX_DOWNLOAD_BYTES == 20 * 1024 * 1024
    assert not too_big(None)
    assert not too_big(MAX_DOWNLOAD_BYTES)
    assert too_big(MAX_DOWNLOAD_BYTES + 1)
    assert too_big(11, limit=10)


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("Resolución N° 012.pdf", "Resolución N° 012.pdf"),
        ("../../etc/passwd", "passwd.pdf"),
        ("C:\\Users\\ana\\oficio.docx", "oficio.pdf"),
        ("factura\u202egpj.exe", "facturagpj.pdf"),  # right-to-left override removed
        ("  .hidden  ", "hidden.pdf"),
        ("a<b>:c?.pdf", "a_b__c_.pdf"),
        ("CON.pdf", "_CON.pdf"),
        ("...", None),
        ("", None),
        (None, None),
    ],
)
def test_display_name_is_harmless(declared: str | None, expected: str | None) -> None:
    assert safe_display_name(declared, "pdf") == expected


def test_display_name_is_bounded() -> None:
    name = safe_display_name("x" * 500 + ".pdf", "pdf")
    assert name is not None
    assert len(name) <= 84


# --- store ----------------------------------------------------------------------------------


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_store_puts_content_under_its_hash(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    data = make_pdf()
    digest = hashlib.sha256(data).hexdigest()

    stored = store.put(data)

    assert stored.sha256 == digest
    assert stored.size == len(data)
    assert stored.path == tmp_path / "files" / digest[:2] / digest[2:4] / digest
    assert stored.path.read_bytes() == data
    assert store.exists(digest)
    assert store.read(digest) == data
    assert store.path_for(digest) == stored.path
    assert stat.S_IMODE(stored.path.stat().st_mode) == 0o600


def test_store_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "files"
    store = FileStore(root)
    first = store.put(b"same content")
    mtime = first.path.stat().st_mtime_ns
    second = store.put(b"same content")
    assert first == second
    assert second.path.stat().st_mtime_ns == mtime  # not rewritten
    assert all_files(root) == [first.path]


def test_store_keeps_files_only_under_root_with_hash_names(tmp_path: Path) -> None:
    root = tmp_path / "files"
    store = FileStore(root)
    contents = [make_pdf(), make_png(), make_jpeg(), b"x"]
    stored = [store.put(c) for c in contents]

    files = all_files(root)
    assert files == sorted(s.path for s in stored)
    for path in files:
        assert path.is_relative_to(root)
        assert path.name == hashlib.sha256(path.read_bytes()).hexdigest()
        assert path.parent.name == path.name[2:4]
        assert path.parent.parent.name == path.name[:2]
    assert not any(p.name.startswith(".tmp-") for p in root.rglob("*"))
    assert sorted(os.listdir(tmp_path)) == ["files"]


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABC", "g" * 64, "A" * 64, ""])
def test_store_refuses_anything_but_a_hash(tmp_path: Path, bad: str) -> None:
    store = FileStore(tmp_path)
    with pytest.raises(ValueError, match="SHA-256"):
        store.path_for(bad)


def test_store_read_detects_tampering(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    stored = store.put(b"original")
    stored.path.write_bytes(b"tampered")
    with pytest.raises(FileIntegrityError):
        store.read(stored.sha256)


def test_store_repairs_a_partial_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    stored = store.put(b"complete content")
    stored.path.write_bytes(b"compl")  # e.g. copied back from a broken backup
    assert store.put(b"complete content").path.read_bytes() == b"complete content"


def test_store_missing_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    digest = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(digest)
    with pytest.raises(FileNotFoundError):
        store.read(digest)
