"""Solicitar accesos al PTE end to end: the real python-telegram-bot Application polling the
fake Bot API, our app on a real SQLite file, and mail through a real SMTP server (aiosmtpd)
on loopback. The verification code is read from the mail that server received."""

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
from datetime import date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfWriter

from bot.dates import lima_date, long_date
from bot.domain.calendar import BusinessCalendar
from bot.settings import Settings
from bot.texts import Texts
from tests.bot.conftest import Starter
from tests.fakes.telegram_api import BotMessage, FakeBotAPI, FakeUser

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


def make_pdf(pages: int = 2) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


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


PDF = make_pdf()
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


@pytest.fixture
def settings(tmp_path: Path, api: FakeBotAPI, smtp: SmtpServer) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        telegram_bot_token=api.token,
        telegram_base_url=api.base_url,
        telegram_base_file_url=api.base_file_url,
        smtp_host=HOST,
        smtp_port=smtp.port,
        smtp_starttls=False,
        helpdesk_email=HELP_DESK,
        mail_from=MAIL_FROM,
        _env_file=None,
    )


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


# --- 1. the whole request ---------------------------------------------------------------------


async def test_whole_request_through_telegram_with_a_real_smtp_server(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, officer: Officer
) -> None:
    await walk(officer)
    summary = officer.user.last
    assert ENTITY in summary.text  # shown literally...
    assert "Pérez &lt;Ruiz&gt; &amp; Cía" in summary.html  # ...because it was escaped
    assert f"(RUC {RUC})" in summary.text
    assert f"{OFFICER_EMAIL} · {PHONE}" in summary.text
    assert f"{RESOLUTION}, del {RESOLUTION_DATE}, emitida por Alcalde o alcaldesa" in summary.text
    assert "(PDF de 2 páginas)" in summary.text
    # Not of the justice system: every section but Información focalizada.
    assert summary.text.count(": tú") == len(TEXTS.sections) - 1 == 10

    registered, formato, menu = await officer.press("✅ Confirmar y enviar", n=3)
    print(f"\nofficer interactions from /start to the confirmation: {officer.interactions}")
    assert officer.interactions <= MAX_INTERACTIONS

    # The ticket, as the officer reads it.
    [(number, registered_at, due_on)] = query(
        settings, "SELECT number, registered_at, due_on FROM tickets"
    )
    today = lima_date(datetime.fromisoformat(registered_at))
    assert number == f"PTE-{today.year}-000001"
    due = date.fromisoformat(due_on)
    assert due == BusinessCalendar.from_data_dir(settings.data_dir).add_business_days(today, 5)
    assert f"Solicitud registrada: {number}" in registered.text
    assert re.search(
        r"a más tardar el (lunes|martes|miércoles|jueves|viernes) \d{1,2} de [a-z]+ de \d{4} "
        r"\(5 días hábiles\)",
        registered.text,
    ), registered.text
    assert f"a más tardar el {long_date(due)} (5 días hábiles)" in registered.text
    assert OFFICER_EMAIL in registered.text
    assert "Modo local" not in registered.text  # mail went to the SMTP server, not to files
    assert "¿Qué necesitas hacer?" in menu.text

    # The Formato, sent as a document.
    assert formato.kind == "document"
    assert formato.filename == f"Formato_Perfiles_{number}.xlsx"
    assert formato.document is not None
    assert formato.document.startswith(b"PK\x03\x04")
    cells = sheet_cells(formato.document)
    for section in TEXTS.sections:  # all but focalizada: not an entity of the justice system
        assert (section.name in cells) is not section.justice_only, section.name
    assert cells.count("45678912") == 1 + 10  # the responsible, and the 10 sections that apply
    assert ENTITY in cells
    assert RUC in cells

    # The mail to the help desk, as the SMTP server received it.
    subject = f"Solicitud de accesos al PTE – {ENTITY} [{number}]"
    [request] = await smtp.inbox.wait_for("Solicitud de accesos al PTE")
    mail = request.message
    assert mail["Subject"] == subject
    assert mail["To"] == HELP_DESK
    assert mail["Cc"] == OFFICER_EMAIL
    assert mail["From"] == MAIL_FROM
    assert request.mail_from == MAIL_FROM
    assert request.rcpt_tos == [HELP_DESK, OFFICER_EMAIL]
    body = mail.get_body(("plain",))
    assert body is not None
    assert f"{ENTITY} – RUC {RUC}" in body.get_content()
    files = attachments(mail)
    assert set(files) == {f"Resolucion_{number}.pdf", f"Formato_Perfiles_{number}.xlsx"}
    pdf_type, pdf_bytes = files[f"Resolucion_{number}.pdf"]
    assert pdf_type == "application/pdf"
    assert pdf_bytes == PDF  # byte for byte what the officer uploaded
    xlsx_type, xlsx_bytes = files[f"Formato_Perfiles_{number}.xlsx"]
    assert xlsx_type == XLSX
    assert xlsx_bytes == formato.document
    for section in TEXTS.sections:
        assert (section.name in sheet_cells(xlsx_bytes)) is not section.justice_only

    # Exactly two mails: the code to the officer, the request to the help desk.
    assert len(smtp.inbox.received) == 2
    assert rejected(api) == []


# --- 2. refusals ------------------------------------------------------------------------------


async def test_refused_files_are_explained_and_the_question_asked_again(
    api: FakeBotAPI, officer: Officer
) -> None:
    await walk(officer, until="res_pdf")
    question = "Envíame la resolución en PDF"

    # An executable dressed up as a PDF.
    # The refusal and the question again: one message (issue 18).
    [again] = await officer.send_document(EXECUTABLE, "resolucion.pdf")
    assert again.text.startswith(text("errors.file_type_not_allowed") + "\n\n")
    assert question in again.text
    assert "Paso 13 de 16" in again.text

    # 25 MB declared: refused on the declared size, never downloaded.
    big_size = 25 * 1024 * 1024
    update = await officer.user.send_document(PDF, "resolucion_escaneada.pdf", file_size=big_size)
    [again] = await officer.user.expect(1)
    assert again.text.startswith(text("errors.file_too_big") + "\n\n")
    assert question in again.text
    big_id = update["message"]["document"]["file_id"]
    fetched = [c.params.get("file_id") for c in api.calls_to("getFile")]
    assert big_id not in fetched
    assert len(fetched) == 1  # only the executable was downloaded (and refused)

    # A photo of the resolution: a page of a PDF to be built, unless a PDF comes after all.
    await officer.user.send_photo(make_png())
    [page] = await officer.user.expect(1)
    assert "Recibí la página 1" in page.text
    assert page.button_labels == ["Listo, armar el PDF"]

    # A real PDF is then accepted.
    [profiles] = await officer.send_document(PDF, "resolucion.pdf")
    assert "Paso 14 de 16" in profiles.text
    assert profiles.button_labels == ["Sí", "No"]  # the justice question opens the profiles
    assert rejected(api) == []


async def test_invalid_ruc_and_personal_email_are_refused_and_asked_again(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, officer: Officer
) -> None:
    await walk(officer, until="ruc")
    [again] = await officer.say("20131312956")  # wrong check digit
    assert again.text.startswith(text("errors.ruc_check_digit") + "\n\n")
    assert text("solicitud.ruc") in again.text
    assert "Paso 1 de 16" in again.text
    [again] = await officer.say("10456789124")  # a natural person's RUC
    assert again.text.startswith(text("errors.ruc_not_entity") + "\n\n")
    assert "Paso 1 de 16" in again.text

    await walk(officer, after="menu", until="correo")
    [again] = await officer.say("ana.perez@gmail.com")
    assert again.text.startswith(text("errors.email_webmail") + "\n\n")
    assert text("solicitud.correo") in again.text
    assert "Paso 7 de 16" in again.text
    # No code for the personal address: nothing queued, nothing at the SMTP server.
    assert query(settings, "SELECT count(*) FROM mail_outbox") == [(0,)]
    assert smtp.inbox.received == []

    [code_question] = await officer.say(OFFICER_EMAIL)
    assert "Paso 8 de 16" in code_question.text
    assert OFFICER_EMAIL in code_question.text
    assert len(await officer.smtp.inbox.code(OFFICER_EMAIL)) == 6
    assert rejected(api) == []


# --- 3. double confirmation -------------------------------------------------------------------


async def test_confirming_twice_quickly_opens_one_ticket_and_sends_one_mail(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, officer: Officer
) -> None:
    await walk(officer)
    summary, button = officer.user.find_button("✅ Confirmar y enviar")
    data = str(button["callback_data"])
    await officer.user.tap_data(data, message_id=summary.message_id)
    await officer.user.tap_data(data, message_id=summary.message_id)
    outputs = await officer.user.settle(quiet=0.5)

    assert query(settings, "SELECT count(*) FROM tickets") == [(1,)]
    [(number,)] = query(settings, "SELECT number FROM tickets")
    assert sum(f"Solicitud registrada: {number}" in m.text for m in outputs) == 1
    assert sum(m.kind == "document" for m in outputs) == 1
    assert sum("Solicitud registrada" in m.text for m in officer.user.messages) == 1
    # The second tap is on a question already answered: told so, not a second ticket.
    assert any(text("common.stale_button") in m.text for m in outputs)
    assert len(api.calls_to("answerCallbackQuery")) >= 2

    prefix = "Solicitud de accesos al PTE"
    assert query(settings, "SELECT count(*) FROM mail_outbox WHERE kind = 'request'") == [(1,)]
    await smtp.inbox.wait_for(prefix)
    # Every mail the bot committed has left (an event, not a pause): a second one would be
    # in the SMTP server's inbox by now.
    for _ in range(500):
        if query(settings, "SELECT count(*) FROM mail_outbox WHERE state = 'pending'") == [(0,)]:
            break
        await asyncio.sleep(0.02)
    assert query(settings, "SELECT count(*) FROM mail_outbox WHERE state = 'pending'") == [(0,)]
    assert len(smtp.inbox.matching(prefix)) == 1
    assert rejected(api) == []


# --- 4. restart mid-request -------------------------------------------------------------------


async def test_restart_mid_request_resumes_at_the_open_question(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, start_bot: Starter
) -> None:
    stop = await start_bot()
    officer = Officer(api.user(7002, first_name="Ana"), smtp)
    await walk(officer, until="cargo")  # the DNI was the last answer; the cargo is asked
    assert "¿Cuál es tu cargo?" in officer.user.last.text
    await stop()

    await start_bot()  # same data directory, same SQLite file
    [email_question] = await officer.say("Jefa de Tecnologías de la Información")
    assert "Paso 7 de 16" in email_question.text
    assert text("solicitud.correo") in email_question.text
    await walk(officer, after="cargo", until="res_numero")  # code mailed by the new process
    await walk(officer, after="celular")
    registered, _formato, _menu = await officer.press("✅ Confirmar y enviar", n=3)
    assert "Solicitud registrada: PTE-" in registered.text
    [request] = await smtp.inbox.wait_for("Solicitud de accesos al PTE")
    assert request.rcpt_tos == [HELP_DESK, OFFICER_EMAIL]
    body = request.message.get_body(("plain",))
    assert body is not None
    assert "Ana María Pérez Ruiz – DNI 45678912" in body.get_content()
    assert rejected(api) == []
