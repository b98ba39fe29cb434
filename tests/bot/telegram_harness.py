"""The Telegram end-to-end harness: a real SMTP server (aiosmtpd) on loopback, the simulated
officer on the fake Bot API, the request's happy path step by step (``STEPS``, ``walk``) and
its test data. Shared by every Telegram suite; fixtures are imported as ``name as name``."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import socket
import sqlite3
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import openpyxl
import pytest
from aiosmtpd.controller import Controller

from bot.settings import Settings
from bot.texts import Texts
from tests.bot.conftest import Starter
from tests.fakes.telegram_api import BotMessage, FakeBotAPI, FakeUser
from tests.walks import make_pdf as make_pdf

HOST = "127.0.0.1"
HELP_DESK = "mesadeayuda@example.gob.pe"
MAIL_FROM = "asistente@example.gob.pe"
RUC = "20131312955"
ENTITY = "Municipalidad Distrital de Pérez <Ruiz> & Cía"
OFFICER_EMAIL = "ana.perez@munisjl.gob.pe"
PHONE = "+51987654321"
RESOLUTION = "Resolución de Alcaldía N.° 045-2026-MDSJL"
RESOLUTION_DATE = "15/03/2025"  # in the past whatever day the suite runs
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_INTERACTIONS = 19

TEXTS = Texts(helpdesk=HELP_DESK)


def text(key: str, **data: Any) -> str:
    """A template as the officer reads it in Telegram (plain text)."""
    return TEXTS.plain(key, data)


def make_png() -> bytes:
    """A real 1x1 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


PDF = make_pdf(2)
EXECUTABLE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + b"\x00" * 48
    + b"This program cannot be run in DOS mode.\r\r\n$"
)


# --- a real SMTP server on loopback ---------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    """aiosmtpd handler: keeps every message it is given (appended from the server thread)."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(bytes(envelope.content), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK queued"

    def matching(self, subject_prefix: str) -> list[Received]:
        return [r for r in self.received if str(r.message["Subject"]).startswith(subject_prefix)]

    async def wait_for(
        self,
        subject_prefix: str,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[Received]:
        """Wait for the SMTP server to receive ``count`` messages with that subject."""
        deadline = time.monotonic() + timeout
        while len(found := self.matching(subject_prefix)) < count:
            if time.monotonic() > deadline:
                subjects = [str(r.message["Subject"]) for r in self.received]
                raise AssertionError(
                    f"{count} mail(s) {subject_prefix!r} not received in {timeout}s: {subjects}"
                )
            await asyncio.sleep(0.02)
        return found

    async def code(self, address: str) -> str:
        """The verification code in the newest code mail sent to ``address``."""
        prefix = text("mail.code_subject")
        sent = [r for r in await self.wait_for(prefix) if address in r.rcpt_tos]
        assert sent, f"no code mail to {address}"
        body = sent[-1].message.get_body(("plain",))
        assert body is not None
        found = re.search(r"\b(\d{6})\b", body.get_content())
        assert found is not None, body.get_content()
        return found.group(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpServer:
    inbox: Inbox
    port: int


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    inbox = Inbox()
    controller = Controller(inbox, hostname=HOST, port=free_port(), server_hostname="smtp.test")
    controller.start()
    try:
        yield SmtpServer(inbox, controller.port)
    finally:
        controller.stop()


# --- the bot --------------------------------------------------------------------------------


def rejected(api: FakeBotAPI) -> list[str]:
    """Bot API calls that were refused (an in-flight long poll is not)."""
    return [
        str(c)
        for c in api.calls
        if c.status not in (0, 200)
        and c.method != "getUpdates"
        and "not modified" not in (c.description or "")
    ]


def query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """Read the bot's SQLite file directly, read-only."""
    uri = f"file:{settings.database_path}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        return list(conn.execute(sql).fetchall())


# --- the officer ----------------------------------------------------------------------------


@dataclass
class Officer:
    """The simulated officer; counts every message sent and button tapped."""

    user: FakeUser
    smtp: SmtpServer
    interactions: int = 0

    async def say(self, message: str, n: int = 1) -> list[BotMessage]:
        self.interactions += 1
        return await self.user.say(message, n=n)

    async def press(self, label: str, n: int = 1) -> list[BotMessage]:
        self.interactions += 1
        return await self.user.press(label, n=n)

    async def share_contact(self, phone: str, n: int = 1) -> list[BotMessage]:
        self.interactions += 1
        await self.user.share_contact(phone)
        return await self.user.expect(n)

    async def send_document(
        self, content: bytes, name: str, n: int = 1, **kwargs: Any
    ) -> list[BotMessage]:
        self.interactions += 1
        await self.user.send_document(content, name, **kwargs)
        return await self.user.expect(n)

    async def type_code(self) -> list[BotMessage]:
        return await self.say(await self.smtp.inbox.code(OFFICER_EMAIL))


# The happy path, step by step: (name of the step answered, action, the question that follows).
STEPS: list[tuple[str, Callable[[Officer], Awaitable[list[BotMessage]]], str]] = [
    ("start", lambda o: o.say("/start"), "¿Aceptas?"),
    ("consent", lambda o: o.press("Acepto"), "¿Qué necesitas hacer?"),
    ("menu", lambda o: o.press("Solicitar accesos al PTE"), "Paso 1 de 16"),
    ("ruc", lambda o: o.say(RUC), "Paso 2 de 16"),
    ("entidad", lambda o: o.say(ENTITY), "Paso 3 de 16"),
    ("nombres", lambda o: o.say("Ana María"), "Paso 4 de 16"),
    ("apellidos", lambda o: o.say("Pérez Ruiz"), "Paso 5 de 16"),
    ("dni", lambda o: o.say("45678912"), "Paso 6 de 16"),
    ("cargo", lambda o: o.say("Jefa de Tecnologías de la Información"), "Paso 7 de 16"),
    ("correo", lambda o: o.say(OFFICER_EMAIL), "Paso 8 de 16"),
    ("codigo", lambda o: o.type_code(), "Paso 9 de 16"),
    ("celular", lambda o: o.share_contact(PHONE), "Paso 10 de 16"),
    ("res_numero", lambda o: o.say(RESOLUTION), "Paso 11 de 16"),
    ("res_fecha", lambda o: o.say(RESOLUTION_DATE), "Paso 12 de 16"),
    ("res_autoridad", lambda o: o.press("Alcalde o alcaldesa"), "Paso 13 de 16"),
    ("res_pdf", lambda o: o.send_document(PDF, "Resolución 045-2026.pdf"), "Paso 14 de 16"),
    ("justicia", lambda o: o.press("No"), "Paso 15 de 16"),
    ("perfiles_modo", lambda o: o.press("Yo"), "Paso 16 de 16"),
]


async def walk(officer: Officer, until: str | None = None, after: str | None = None) -> None:
    """Answer the steps in order, from the one after ``after`` up to (not including) ``until``.

    Each answer must be followed by the next question, and nothing else."""
    names = [name for name, _, _ in STEPS]
    first = names.index(after) + 1 if after else 0
    last = names.index(until) if until else len(STEPS)
    for name, action, follows in STEPS[first:last]:
        replies = await action(officer)
        assert follows in replies[-1].text, f"after {name}: {[str(m) for m in replies]}"


@pytest.fixture
async def officer(api: FakeBotAPI, smtp: SmtpServer, start_bot: Starter) -> Officer:
    await start_bot()
    return Officer(api.user(7001, first_name="Ana"), smtp)


def sheet_cells(content: bytes) -> list[str]:
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    sheet = workbook.active
    assert sheet is not None
    return [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c is not None]


def attachments(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    result: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        result[str(part.get_filename())] = (part.get_content_type(), payload)
    return result
