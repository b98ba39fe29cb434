"""Mail against a real SMTP server on loopback (aiosmtpd), not a mock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from bot.delivery.mail_outbox import MailOutbox
from bot.mail.smtp import (
    Attachment,
    EmlMailer,
    Mailer,
    MailError,
    PermanentMailError,
    SmtpMailer,
    TransientMailError,
    build_message,
    envelope_recipients,
)
from bot.store.database import Store
from tests.bot.smtp_harness import HOST, PASSWORD, USER, Collector, Server, free_port
from tests.conftest import StoreOpener
from tests.driver import FakeClock

HELP_DESK = "mesadeayuda@gobiernodigital.gob.pe"
OFFICER = "Ana Pérez <aperez@munisjl.gob.pe>"
SENDER = "Asistente PTE <asistente@pte.gob.pe>"
SUBJECT = (
    "Solicitud de accesos al PTE \u2013 Municipalidad de San Juan de Lurigancho"
    " \u2013 PTE-2026-000001"
)
PDF_BYTES = b"%PDF-1.7\n" + bytes(range(256)) * 4 + b"\n%%EOF\r\n"
XLSX_BYTES = b"PK\x03\x04" + bytes(range(255, -1, -1)) * 3


@pytest.fixture
def smtp_server() -> Iterator[Server]:
    handler = Collector()
    controller = Controller(
        handler,
        hostname=HOST,  # never the default "::1"/getfqdn lookups
        port=free_port(),
        server_hostname="smtp.test",
        authenticator=handler.authenticate,
        auth_require_tls=False,  # loopback test server without TLS; AUTH stays optional
    )
    controller.start()
    try:
        yield Server(handler, controller.port)
    finally:
        controller.stop()


def mailer(server: Server, **kwargs: Any) -> SmtpMailer:
    options: dict[str, Any] = {
        "username": None,
        "password": None,
        "starttls": False,
        "timeout": 5,
    } | kwargs
    return SmtpMailer(HOST, server.port, local_hostname="bot.test", **options)


def sample_message(**kwargs: Any) -> EmailMessage:
    options: dict[str, Any] = {
        "sender": SENDER,
        "to": [HELP_DESK],
        "cc": [OFFICER],
        "subject": SUBJECT,
        "text_body": "Señores de la mesa de ayuda:\nAdjunto la resolución y el Formato.\n",
        "attachments": [
            Attachment("Resolución 012-2026.pdf", PDF_BYTES, "application/pdf"),
            Attachment(
                "Formato_Perfiles_PTE-2026-000001.xlsx",
                XLSX_BYTES,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
        ],
    } | kwargs
    return build_message(**options)


def attachments_of(raw: bytes) -> dict[str, bytes]:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    result: dict[str, bytes] = {}
    for part in parsed.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        result[str(part.get_filename())] = payload
    return result


# --- build_message --------------------------------------------------------------------------


def test_message_has_the_headers_the_help_desk_needs() -> None:
    msg = sample_message(now=datetime(2026, 3, 9, 15, 30, tzinfo=UTC))
    assert msg["From"] == SENDER
    assert msg["To"] == HELP_DESK
    assert msg["Cc"] == OFFICER
    assert msg["Subject"] == SUBJECT
    assert msg["Date"] == "Mon, 09 Mar 2026 15:30:00 +0000"
    assert str(msg["Message-ID"]).endswith("@pte.gob.pe>")
    body = msg.get_body(("plain",))
    assert body is not None
    assert body.get_content_charset() == "utf-8"
    assert "resolución" in body.get_content()


def test_subject_cannot_carry_extra_headers() -> None:
    msg = sample_message(subject="Hola\r\nBcc: intruso@example.com")
    assert msg["Subject"] == "Hola Bcc: intruso@example.com"
    assert msg["Bcc"] is None


def test_message_needs_a_recipient() -> None:
    with pytest.raises(ValueError, match="recipient"):
        sample_message(to=[])


def test_attachment_bytes_survive_serialisation() -> None:
    raw = sample_message().as_bytes(policy=policy.SMTP)
    assert attachments_of(raw) == {
        "Resolución 012-2026.pdf": PDF_BYTES,
        "Formato_Perfiles_PTE-2026-000001.xlsx": XLSX_BYTES,
    }


def test_attachment_names_lose_path_parts() -> None:
    msg = sample_message(attachments=[Attachment("../../x\r\n.pdf", b"%PDF", "application/pdf")])
    assert list(attachments_of(msg.as_bytes())) == ["_.._x__.pdf"]


def test_envelope_recipients_are_to_cc_and_bcc() -> None:
    msg = sample_message(cc=[OFFICER, "APEREZ@munisjl.gob.pe"])
    msg["Bcc"] = "archivo@pte.gob.pe"
    assert envelope_recipients(msg) == [HELP_DESK, "aperez@munisjl.gob.pe", "archivo@pte.gob.pe"]


# --- SMTP -----------------------------------------------------------------------------------


async def test_smtp_delivers_to_to_and_cc_with_subject_and_attachments(
    smtp_server: Server,
) -> None:
    msg = sample_message()
    reference = await mailer(smtp_server).send(msg)

    assert reference == msg["Message-ID"]
    [received] = smtp_server.handler.received
    assert received.mail_from == "asistente@pte.gob.pe"
    assert received.rcpt_tos == [HELP_DESK, "aperez@munisjl.gob.pe"]
    parsed = message_from_bytes(received.content, policy=policy.default)
    assert parsed["Subject"] == SUBJECT
    assert parsed["Cc"] == OFFICER
    assert attachments_of(received.content) == {
        "Resolución 012-2026.pdf": PDF_BYTES,
        "Formato_Perfiles_PTE-2026-000001.xlsx": XLSX_BYTES,
    }


async def test_bcc_gets_the_mail_but_is_not_shown(smtp_server: Server) -> None:
    msg = sample_message()
    msg["Bcc"] = "archivo@pte.gob.pe"
    await mailer(smtp_server).send(msg)
    [received] = smtp_server.handler.received
    assert "archivo@pte.gob.pe" in received.rcpt_tos
    assert b"archivo@pte.gob.pe" not in received.content


async def test_smtp_logs_in_when_given_credentials(smtp_server: Server) -> None:
    await mailer(smtp_server, username=USER, password=PASSWORD).send(sample_message())
    assert smtp_server.handler.logins == [USER]
    assert len(smtp_server.handler.received) == 1


async def test_wrong_password_is_permanent(smtp_server: Server) -> None:
    with pytest.raises(PermanentMailError) as info:
        await mailer(smtp_server, username=USER, password="wrong").send(sample_message())
    assert info.value.code == 535
    assert smtp_server.handler.received == []


@pytest.mark.parametrize(
    ("reply", "error_type", "code"),
    [
        ("451 4.3.0 Try again later", TransientMailError, 451),
        ("550 5.7.1 Rejected by policy", PermanentMailError, 550),
    ],
)
async def test_data_reply_maps_to_transient_or_permanent(
    smtp_server: Server, reply: str, error_type: type[MailError], code: int
) -> None:
    smtp_server.handler.data_reply = reply
    with pytest.raises(error_type) as info:
        await mailer(smtp_server).send(sample_message())
    assert info.value.code == code
    assert str(info.value) == f"smtp_{code}"
    assert info.value.transient is (code < 500)
    assert info.value.__cause__ is None  # the server's text stays out of tracebacks


@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        ("450 4.2.0 <aperez@munisjl.gob.pe>: mailbox busy", TransientMailError),
        ("550 5.1.1 <aperez@munisjl.gob.pe>: unknown user", PermanentMailError),
    ],
)
async def test_refused_recipients_map_to_transient_or_permanent(
    smtp_server: Server, reply: str, error_type: type[MailError]
) -> None:
    smtp_server.handler.rcpt_reply = reply
    with pytest.raises(error_type) as info:
        await mailer(smtp_server).send(sample_message())
    assert str(info.value) == "recipients_refused"
    assert "@" not in str(info.value)
    assert info.value.reply is not None
    assert "unknown user" in info.value.reply or "busy" in info.value.reply


async def test_connection_refused_is_transient() -> None:
    port = free_port()  # nothing listens there
    smtp = SmtpMailer(HOST, port, None, None, False, timeout=5, local_hostname="bot.test")
    with pytest.raises(TransientMailError, match="connection_failed"):
        await smtp.send(sample_message())


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word (no SMTP greeting)."""
    writers: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(on_connect, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_silent_server_times_out_as_transient(silent_server: int) -> None:
    smtp = SmtpMailer(HOST, silent_server, None, None, False, timeout=0.2, local_hostname="t")
    with pytest.raises(TransientMailError, match="timeout"):
        await smtp.send(sample_message())


async def test_starttls_is_required_when_asked(smtp_server: Server) -> None:
    # The test server offers no STARTTLS: refuse rather than send in clear text.
    with pytest.raises(PermanentMailError, match="not_supported"):
        await mailer(smtp_server, starttls=True).send(sample_message())
    assert smtp_server.handler.received == []


def test_password_is_not_in_repr() -> None:
    smtp = SmtpMailer("smtp.test", 587, USER, PASSWORD, True)
    assert PASSWORD not in repr(smtp)


def test_both_tls_modes_are_refused() -> None:
    with pytest.raises(ValueError, match="exclusive"):
        SmtpMailer("smtp.test", 465, None, None, True, use_tls=True)


# --- .eml files -----------------------------------------------------------------------------


def read_file(path: Path) -> bytes:
    return path.read_bytes()


async def test_eml_mailer_writes_a_parseable_file(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    eml: Mailer = EmlMailer(outbox)
    msg = sample_message()

    reference = await eml.send(msg)

    path = Path(reference)
    assert path.parent == outbox
    assert path.suffix == ".eml"
    assert os.listdir(outbox) == [path.name]  # no temporary file left behind
    raw = read_file(path)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == SUBJECT
    assert parsed["Message-ID"] == msg["Message-ID"]
    assert attachments_of(raw)["Resolución 012-2026.pdf"] == PDF_BYTES


async def test_eml_mailer_never_overwrites(tmp_path: Path) -> None:
    eml = EmlMailer(tmp_path)
    references = {await eml.send(sample_message()) for _ in range(5)}
    assert len(references) == 5
    assert len([name for name in os.listdir(tmp_path) if name.endswith(".eml")]) == 5


# --- the mail outbox ------------------------------------------------------------------------

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


async def enqueue(outbox: MailOutbox, subject: str) -> None:
    async with outbox.store.transaction(outbox.clock.now()) as tx:
        await outbox.enqueue(
            tx,
            kind="request",
            to=[HELP_DESK],
            cc=[OFFICER],
            subject=subject,
            body="Señores de la mesa de ayuda:\n",
            attachments=[],
        )


async def mail_rows(store: Store) -> list[tuple[Any, ...]]:
    async with store.reading() as conn:
        found = await conn.execute_fetchall(
            "SELECT id, state, attempts, last_error, message_id FROM mail_outbox ORDER BY id"
        )
    return [tuple(row) for row in found]


class BuggyMailer:
    """Raises a plain ``Exception`` (not a MailError) for subjects in ``poison``."""

    def __init__(self, poison: set[str]) -> None:
        self.poison = poison
        self.reason = "mailer bug"
        self.sent: list[EmailMessage] = []

    async def send(self, msg: EmailMessage) -> str:
        if str(msg["Subject"]) in self.poison:
            raise Exception(self.reason)  # what no SMTP answer maps to
        self.sent.append(msg)
        return str(msg["Message-ID"])


@pytest.mark.parametrize("where", ["sending", "reading the stored message"])
async def test_a_mail_that_raises_is_retried_then_failed_and_the_next_still_goes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    clock = FakeClock(NOW)
    mailer = BuggyMailer({"malo"} if where == "sending" else set())
    outbox = MailOutbox(store, mailer, SENDER, clock)
    caplog.set_level(logging.DEBUG, logger="bot.delivery.mail_outbox")
    await enqueue(outbox, "malo")
    await enqueue(outbox, "bueno")
    if where != "sending":  # a stored message that cannot be read back
        async with store.reading() as conn:
            await conn.execute("UPDATE mail_outbox SET message = NULL WHERE id = 1")
    waits = [await outbox.send_due()]
    assert [str(m["Subject"]) for m in mailer.sent] == ["bueno"]  # not held behind it
    for _ in range(2):
        clock.advance(seconds=waits[-1])  # the backoff, on the fake clock
        waits.append(await outbox.send_due())
    assert waits[:2] == [5.0, 10.0]
    [bad, good] = await mail_rows(store)
    assert bad[1:3] == ("failed", 3)
    stored_error = "Exception: mailer bug" if where == "sending" else "AttributeError: "
    assert bad[3].startswith(stored_error)
    assert good[1] == "sent"
    named = [
        r for r in caplog.records if r.levelno >= logging.WARNING and "mail 1 " in r.getMessage()
    ]
    assert len(named) == 1
    assert "request" in named[0].getMessage()
    assert "@" not in named[0].getMessage()
    assert not any("mailer bug" in r.getMessage() for r in caplog.records)
    await store.close()

    # A restart neither sends nor fails it again.
    store = await open_store(tmp_path / "db.sqlite3")
    fresh = BuggyMailer(set())
    clock.advance(hours=1)
    await MailOutbox(store, fresh, SENDER, clock).send_due()
    assert fresh.sent == []
    assert await mail_rows(store) == [bad, good]
    await store.close()


class CrashAfterSending:
    """Hands the mail to the SMTP server, then never returns: the process dies before the
    row is marked sent."""

    def __init__(self, smtp: SmtpMailer) -> None:
        self.smtp = smtp
        self.handed_over = asyncio.Event()

    async def send(self, msg: EmailMessage) -> str:
        await self.smtp.send(msg)
        self.handed_over.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_mail_sent_again_after_a_crash_has_the_same_message_id(
    tmp_path: Path, smtp_server: Server, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    crashing = CrashAfterSending(mailer(smtp_server))
    outbox = MailOutbox(store, crashing, SENDER, FakeClock(NOW))
    await enqueue(outbox, SUBJECT)
    [(_id, _state, _n, _error, message_id)] = await mail_rows(store)
    assert message_id.endswith("@pte.gob.pe>")  # the sender's domain
    sending = asyncio.create_task(outbox.send_due())
    await crashing.handed_over.wait()
    sending.cancel()  # killed between the server's 250 and the mark
    with contextlib.suppress(asyncio.CancelledError):
        await sending
    await store.close()

    store = await open_store(tmp_path / "db.sqlite3")
    assert [row[1] for row in await mail_rows(store)] == ["pending"]
    await MailOutbox(store, mailer(smtp_server), SENDER, FakeClock(NOW)).send_due()
    first, again = smtp_server.handler.received
    ids = [
        message_from_bytes(r.content, policy=policy.default)["Message-ID"] for r in (first, again)
    ]
    assert ids == [message_id, message_id]  # the same message: the receiver can drop the copy
    assert [row[1] for row in await mail_rows(store)] == ["sent"]
    await store.close()


class SlowToReturn:
    """Hands the first mail to the SMTP server, then returns only when released: a send
    still in flight (an .eml file being fsynced, a slow 250) while its row is pending."""

    def __init__(self, smtp: SmtpMailer) -> None:
        self.smtp = smtp
        self.handed_over = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, msg: EmailMessage) -> str:
        reference = await self.smtp.send(msg)
        if not self.handed_over.is_set():
            self.handed_over.set()
            await self.release.wait()
        return reference


async def test_a_mail_goes_once_when_the_loop_and_a_caller_send_at_the_same_time(
    tmp_path: Path, smtp_server: Server, open_store: StoreOpener
) -> None:
    """The loop is sending a mail when a caller (the terminal, a driver) asks for the due
    ones: the caller waits for the loop's pass instead of sending the pending row again."""
    store = await open_store(tmp_path / "db.sqlite3")
    slow = SlowToReturn(mailer(smtp_server))
    outbox = MailOutbox(store, slow, SENDER, FakeClock(NOW))
    await enqueue(outbox, SUBJECT)
    outbox.start()
    try:
        await slow.handed_over.wait()  # the server has it; its row is still pending
        caller = asyncio.create_task(outbox.send_due())
        slow.release.set()
        await caller
        await outbox.stop()
        assert len(smtp_server.handler.received) == 1
        assert [row[1] for row in await mail_rows(store)] == ["sent"]
    finally:
        await outbox.stop()
        await store.close()
