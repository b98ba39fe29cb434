"""Inbound mail against a real Dovecot: the desk works a ticket by mail, the officer sees it.

Mail is delivered with IMAP APPEND; the reader (:class:`bot.channels.mail.MailReader`) reads
it the way it does in production. What the officer sees is what the outbox rows render to
on the test channel; what the assistant mails back goes through the mail outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from bot.app import create_app
from bot.channels.mail import MailReader, session_for
from bot.mail.imap import ImapSession
from bot.mail.smtp import SmtpMailer
from bot.settings import Settings
from bot.staff_cli import export_rows
from bot.staff_cli import run as staff_run
from bot.store.database import OutboxRow
from tests.bot.imap_harness import (
    HOST,
    PASSWORD,
    Dovecot,
    dovecot_binary,
    mail,
    running_dovecot,
)
from tests.bot.smtp_harness import Collector
from tests.bot.smtp_harness import free_port as smtp_port
from tests.driver import Driver, FakeClock, MemoryMailer
from tests.walks import tiny_png, to_step

ASSISTANT = "asistente@pcm.gob.pe"
STAFF = "ana.torres@mesa.gob.pe"
COLLEAGUE = "luis.rojas@soporte.gob.pe"  # staff by domain
OFFICER = "ana.perez@munisjl.gob.pe"
NUMBER = "PTE-2026-000001"
ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    binary = dovecot_binary()
    if binary is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    with running_dovecot(binary) as server:
        yield server


@pytest.fixture
def mailbox(dovecot: Dovecot) -> str:
    return dovecot.new_user()


def imap_settings(data_dir: Path, port: int, mailbox: str, **extra: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=data_dir,
        imap_host=HOST,
        imap_port=port,
        imap_security="none",
        imap_username=mailbox,
        imap_password=PASSWORD,
        staff_emails=f"{STAFF}, @soporte.gob.pe",
        mail_from=f"Asistente PTE <{ASSISTANT}>",
        _env_file=None,
        **extra,
    )


@pytest.fixture
def settings(tmp_path: Path, dovecot: Dovecot, mailbox: str) -> Settings:
    return imap_settings(tmp_path / "data", dovecot.port, mailbox)


class Desk:
    """The mailbox seen from both sides: mail comes in, the officer's chat shows it."""

    def __init__(self, dovecot: Dovecot, mailbox: str, user: Driver, mailer: MemoryMailer):
        self.dovecot = dovecot
        self.mailbox = mailbox
        self.user = user
        self.mailer = mailer
        self.rows: list[OutboxRow] = []
        self.reader = MailReader(user.app, self.rows.extend)

    def deliver(self, *messages: bytes) -> None:
        self.dovecot.append(self.mailbox, *messages)

    async def read(self) -> list[Any]:
        """One look at the folder; returns what the officer was shown meanwhile."""
        before = len(self.user.screen.messages)
        session = session_for(self.user.app)
        await session.open()
        try:
            await session.ensure_folder(self.user.app.settings.imap_review_folder)
            await self.reader.work(session, await session.select("INBOX"))
        finally:
            await session.close()
        rows, self.rows[:] = list(self.rows), []
        await self.user.deliver(rows)
        await self.user.app.mail.send_due()
        return self.user.screen.messages[before:]

    def request_id(self) -> str:
        """The Message-ID of the request mail the assistant sent for the ticket."""
        for sent in self.mailer.sent:
            if NUMBER in str(sent["Subject"]):
                return str(sent["Message-ID"])
        raise AssertionError("no request mail")

    def mails_to(self, address: str) -> list[Any]:
        return [m for m in self.mailer.sent if address in str(m["To"])]

    async def ticket(self) -> dict[str, Any]:
        async with self.user.app.store.reading() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT state, assignee_chat, desk_number, observed_part FROM tickets"
                    " WHERE number = ?",
                    (NUMBER,),
                )
            )
        state, assignee, desk_number, part = rows[0]
        return {"state": state, "assignee": assignee, "desk": desk_number, "part": part}

    async def events(self) -> list[tuple[str, str, str | None]]:
        async with self.user.app.store.reading() as conn:
            rows = await conn.execute_fetchall(
                "SELECT kind, actor, message FROM ticket_events ORDER BY id"
            )
        return [(k, a, m) for k, a, m in rows]


@pytest.fixture
async def desk(
    dovecot: Dovecot, mailbox: str, user: Driver, mailer: MemoryMailer
) -> AsyncIterator[Desk]:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    return Desk(dovecot, mailbox, user, mailer)


def reply(sender: str, body: str, desk: Desk, **extra: Any) -> bytes:
    subject = f"RE: Solicitud de accesos al PTE [{NUMBER}]"
    return mail(sender, subject, body, in_reply_to=desk.request_id(), **extra)


# ----------------------------------------------------------------- the desk writes
async def test_a_desk_reply_reaches_the_officer_without_history_or_signature(
    desk: Desk,
) -> None:
    body = (
        "Buenos días, Ana:\n\nRecibimos tu solicitud; la revisamos hoy.\n\n"
        "--\nAna Torres\nMesa de ayuda PTE\n\n"
        "El mié, 2 dic 2026 a las 10:00, Asistente PTE <asistente@pcm.gob.pe>\nescribió:\n"
        "> Solicitud de accesos al PTE\n> Trámite: PTE-2026-000001\n"
    )
    desk.deliver(reply(f"Ana Torres <{STAFF}>", body, desk))
    shown = await desk.read()
    assert len(shown) == 1
    message = shown[0]
    assert message.key == "aviso.mensaje"
    assert "Recibimos tu solicitud; la revisamos hoy." in message.data["message"]
    assert "Mesa de ayuda PTE" not in message.plain  # the signature stays out
    assert "escribió" not in message.plain
    assert "Trámite:" not in message.plain
    assert [b.label for row in message.buttons for b in row] == ["↩️ Responder"]
    assert ("staff", f"staff:email:{STAFF}", "Buenos días, Ana:\n\nRecibimos tu solicitud;"
            " la revisamos hoy.") in await desk.events()  # fmt: skip
    # Marked done on the server only now: seen, still in the folder people read.
    assert desk.dovecot.uids(desk.mailbox, "INBOX", "UNSEEN") == []
    assert desk.reader.counts == {"relayed": 1}


async def test_each_command_by_mail_moves_the_ticket_and_the_officer_sees_it(
    desk: Desk,
) -> None:
    desk.deliver(reply(STAFF, "#En atención\nLo reviso hoy.", desk))
    shown = await desk.read()
    assert "pasó a <b>En atención</b>" in shown[0].html
    assert shown[1].key == "aviso.mensaje"  # the rest of the mail, as the desk's message
    assert shown[1].data["message"] == "Lo reviso hoy."
    assert await desk.ticket() == {
        "state": "en_atencion", "assignee": STAFF, "desk": None, "part": None,
    }  # fmt: skip

    desk.deliver(reply(STAFF, "#OBSERVADO Otro: ¿cuál es el número de la resolución?", desk))
    shown = await desk.read()
    assert "pasó a <b>Observado</b>" in shown[0].html
    assert shown[0].key == "aviso.estado"
    assert shown[0].data["message"] == "¿cuál es el número de la resolución?"
    assert [b.label for row in shown[0].buttons for b in row] == ["✏️ Corregir"]
    assert (await desk.ticket())["part"] == "otro"

    # The officer answers by mail (an observation of kind "otro" is answered in words): the
    # ticket is back En atención and the specialist who has it hears it by mail.
    desk.deliver(reply(OFFICER, "Es la Resolución de Alcaldía N.° 045-2026-MDSJL.", desk))
    await desk.read()
    assert (await desk.ticket())["state"] == "en_atencion"
    told = desk.mails_to(STAFF)[-1].get_body().get_content()
    assert "Es la Resolución de Alcaldía N.° 045-2026-MDSJL." in told
    assert "volvió a «En atención»" in told

    desk.deliver(reply(STAFF, "#atendido\nTe enviamos los accesos a tu correo.", desk))
    shown = await desk.read()
    assert "pasó a <b>Atendido</b>" in shown[0].html
    assert shown[0].key == "aviso.estado"
    assert shown[0].data["message"] == "Te enviamos los accesos a tu correo."

    desk.deliver(reply(STAFF, "#cerrado", desk))
    shown = await desk.read()
    assert "pasó a <b>Cerrado</b>" in shown[0].html
    assert (await desk.ticket())["state"] == "cerrado"
    assert desk.reader.counts == {"command": 4, "officer": 1}


async def test_a_refused_or_mistyped_command_changes_nothing_and_is_answered_by_mail(
    desk: Desk,
) -> None:
    desk.deliver(reply(STAFF, "#cerrado", desk))  # Registrado cannot be closed
    desk.deliver(reply(COLLEAGUE, "#atendi\nYa está.", desk))  # mistyped
    desk.deliver(reply(STAFF, "#en-atencion", desk))
    desk.deliver(reply(STAFF, "#observado firma falta la firma", desk))  # no such part
    shown = await desk.read()
    assert len(shown) == 1
    assert "pasó a <b>En atención</b>" in shown[0].html
    assert (await desk.ticket())["state"] == "en_atencion"
    answers = desk.mails_to(STAFF)
    assert len(answers) == 2
    first = answers[0].get_body().get_content()
    assert "está Registrado, y en ese estado no corresponde «#cerrado»" in first
    assert "#en-atencion — tomarlo" in first
    assert answers[0]["Auto-Submitted"] == "auto-replied"
    assert NUMBER in str(answers[0]["Subject"])
    assert answers[0]["In-Reply-To"]
    part = answers[1].get_body().get_content()
    assert "«firma» no es una parte que se pueda observar" in part
    assert "resolucion, responsable, perfiles, otro" in part
    assert "#atendido MENSAJE" in part  # what applies now, En atención
    mistyped = desk.mails_to(COLLEAGUE)[0].get_body().get_content()
    assert "No reconozco el comando «#atendi»" in mistyped
    assert "#en-atencion — tomarlo" in mistyped
    assert desk.reader.counts == {"refused": 3, "command": 1}


async def test_the_desk_acknowledgement_number_is_stored_and_shown(
    desk: Desk, tmp_path: Path
) -> None:
    ack = mail(
        "mesadeayuda@gobiernodigital.gob.pe",
        f"[#123456] Recibido: Solicitud de accesos al PTE [{NUMBER}]",
        "Su solicitud fue registrada con el Ticket#123456. No responda este correo.",
        headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
    )
    desk.deliver(ack, ack.replace(b"Message-ID: <", b"Message-ID: <otro"))
    shown = await desk.read()
    assert len(shown) == 1  # the second acknowledgement says nothing new
    assert shown[0].key == "correo.numero_mesa"
    assert shown[0].data["desk_number"] == "123456"
    assert (await desk.ticket())["desk"] == "123456"
    status = await desk.user.send(NUMBER)
    assert status[-1].key == "estado.detail"
    assert status[-1].data["desk_number"] == "123456"
    staff = await desk.user.peer("9001", staff=True)
    card = (await staff.send(f"/ticket {NUMBER}"))[-1]
    assert card.key == "mesa.ficha"
    assert card.data["desk_number"] == "123456"
    row = (await export_rows(desk.user.app))[0]
    assert row[-1] == "123456"


async def test_attachments_are_checked_stored_and_forwarded(desk: Desk) -> None:
    png = tiny_png()
    raw = reply(
        STAFF,
        "Te adjunto la captura del error.",
        desk,
        attachments=[
            ("captura.png", png, "image/png"),
            ("programa.exe", b"MZ\x90\x00" + b"\x00" * 200, "application/octet-stream"),
        ],
    )
    desk.deliver(raw)
    shown = await desk.read()
    assert shown[0].key == "aviso.mensaje"
    assert shown[0].data["message"] == "Te adjunto la captura del error."
    assert shown[1].document is not None
    assert shown[1].document["filename"] == f"Mesa_01_{NUMBER}.png"
    async with desk.user.app.store.reading() as conn:
        files = list(await conn.execute_fetchall("SELECT role, filename FROM ticket_files"))
    assert ("mesa", f"Mesa_01_{NUMBER}.png") in files
    refused = desk.mails_to(STAFF)[0].get_body().get_content()
    assert "programa.exe: No puedo recibir ese tipo de archivo" in refused


async def test_an_officer_reply_is_appended_and_the_specialist_told_by_mail(
    desk: Desk,
) -> None:
    desk.deliver(reply(STAFF, "#en-atencion", desk))
    await desk.read()
    desk.deliver(
        reply(f"Ana Pérez <{OFFICER}>", "Adjunto la resolución firmada, gracias.\n\n> cita", desk)
    )
    assert await desk.read() == []  # nothing for the officer's own chat
    assert ("oficial", "officer", "Adjunto la resolución firmada, gracias.") in await desk.events()
    told = desk.mails_to(STAFF)
    assert len(told) == 1
    body = told[0].get_body().get_content()
    assert "el responsable respondió" in body
    assert "Adjunto la resolución firmada, gracias." in body
    assert "#observado PARTE OBSERVACIÓN" in body  # the commands, under every mail
    assert desk.reader.counts == {"command": 1, "officer": 1}


# ------------------------------------------------------------- never relayed
async def test_what_is_never_relayed_goes_to_the_review_folder_and_is_counted(
    desk: Desk,
) -> None:
    bounce = mail(
        "MAILER-DAEMON@pcm.gob.pe",
        "Undelivered Mail Returned to Sender",
        "This is the mail system. The mail could not be delivered.",
    )
    out_of_office = mail(
        STAFF,
        f"Respuesta automática: Solicitud de accesos al PTE [{NUMBER}]",
        "Estoy de vacaciones hasta el lunes.",
        headers={"Auto-Submitted": "auto-replied"},
    )
    stranger = reply("alguien@gmail.com", "Quiero los accesos de otra entidad", desk)
    no_ticket = mail(STAFF, "Reunión del lunes", "¿Nos vemos a las 10?")
    own = mail(ASSISTANT, f"Solicitud [{NUMBER}]", "un correo nuestro que volvió")
    desk.deliver(bounce, out_of_office, stranger, no_ticket, own)
    assert await desk.read() == []
    assert desk.mailer.sent[-1]["Subject"].startswith("Solicitud de accesos")  # no answers
    assert desk.reader.counts == {
        "review:bounce": 1, "review:automatic": 1, "review:sender": 1,
        "review:no_ticket": 1, "review:own": 1,
    }  # fmt: skip
    assert desk.dovecot.uids(desk.mailbox, "INBOX") == []
    assert len(desk.dovecot.uids(desk.mailbox, "Revisar", "UNSEEN")) == 5  # left for people
    assert await desk.ticket() == {
        "state": "registrado", "assignee": None, "desk": None, "part": None,
    }  # fmt: skip


async def test_a_sender_over_the_hourly_limit_is_held(
    dovecot: Dovecot, mailbox: str, tmp_path: Path, clock: FakeClock, mailer: MemoryMailer
) -> None:
    settings = imap_settings(tmp_path / "limit", dovecot.port, mailbox, imap_sender_limit=2)
    app = await create_app(settings, clock, mailer)
    user = Driver(app)
    await user.start()
    try:
        await to_step(user, mailer, "resumen")
        await user.tap("btn.confirm_send")
        desk = Desk(dovecot, mailbox, user, mailer)
        desk.deliver(*(reply(STAFF, f"Mensaje {n}", desk) for n in range(4)))
        shown = await desk.read()
        assert [m.plain.count("Mensaje") for m in shown] == [1, 1]
        assert desk.reader.counts == {"relayed": 2, "review:rate": 2}
    finally:
        await user.stop()
        await app.close()


# --------------------------------------------------------------- exactly once
async def test_the_same_mail_seen_twice_is_relayed_once(desk: Desk) -> None:
    raw = reply(STAFF, "Una sola vez, por favor.", desk)
    desk.deliver(raw, raw)  # two copies in the folder
    shown = await desk.read()
    assert len(shown) == 1
    # The server forgot it was read (a client marked it unread, a restart lost the mark):
    imap = desk.dovecot.client(desk.mailbox)
    imap.select("INBOX")
    imap.uid("STORE", "1:*", "-FLAGS", "(\\Seen)")
    imap.logout()
    async with desk.user.app.store.transaction(desk.user.app.clock.now()) as tx:
        await tx.execute("UPDATE mail_inbox SET done_at = NULL")
    assert await desk.read() == []
    assert desk.reader.counts == {"relayed": 1, "duplicate": 1}
    assert desk.dovecot.uids(desk.mailbox, "INBOX", "UNSEEN") == []


KILLED_CHILD = """
import asyncio, os, sys, time
from pathlib import Path
from bot.app import create_app
from bot.mail.imap import ImapSession
from bot.channels.mail import MailReader, session_for
from bot.settings import Settings

async def main(mode: str, marker: Path) -> None:
    app = await create_app(Settings())

    async def stall(fetched) -> None:
        if mode == "fetch":
            marker.write_text(str(fetched.uid))
            time.sleep(60)  # killed here: fetched, nothing committed

    class Stalling(MailReader):
        async def tell_server(self, session, uidvalidity) -> None:
            async with self.app.store.reading() as conn:
                rows = await conn.execute_fetchall("SELECT count(*) FROM mail_inbox")
            if mode == "commit" and next(iter(rows))[0]:
                marker.write_text("committed")
                time.sleep(60)  # killed here: committed, the server not told
            await super().tell_server(session, uidvalidity)

    reader = Stalling(app, lambda rows: None, after_fetch=stall)
    session = session_for(app)
    await session.open()
    await reader.work(session, await session.select("INBOX"))

asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
"""


@pytest.mark.parametrize("moment", ["fetch", "commit"])
async def test_kill_9_before_or_after_the_commit_relays_exactly_once(
    desk: Desk, settings: Settings, tmp_path: Path, moment: str
) -> None:
    desk.deliver(reply(STAFF, "Mensaje que sobrevive a un kill -9.", desk))
    marker = tmp_path / "marker"
    env = {
        **os.environ,
        "PTEBOT_DATA_DIR": str(settings.data_dir),
        "PTEBOT_IMAP_HOST": HOST,
        "PTEBOT_IMAP_PORT": str(settings.imap_port),
        "PTEBOT_IMAP_SECURITY": "none",
        "PTEBOT_IMAP_USERNAME": desk.mailbox,
        "PTEBOT_IMAP_PASSWORD": PASSWORD,
        "PTEBOT_STAFF_EMAILS": STAFF,
        "PTEBOT_MAIL_FROM": ASSISTANT,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_CHILD, moment, str(marker), env=env, cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert child.returncode is None, "the child ended before the moment to kill it"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        await child.wait()
    assert desk.dovecot.uids(desk.mailbox, "INBOX", "UNSEEN") != []  # not marked done
    shown = await desk.read()  # the next run
    await desk.user.worker.pick_up()  # what the killed run committed and did not deliver
    await desk.user.worker.drain()
    relayed = [m for m in desk.user.screen.messages if "sobrevive a un kill" in m.plain]
    assert len(relayed) == 1
    assert len(shown) == (1 if moment == "fetch" else 0)
    async with desk.user.app.store.reading() as conn:
        rows = list(await conn.execute_fetchall("SELECT outcome, done_at FROM mail_inbox"))
    assert len(rows) == 1
    assert rows[0][0] == "relayed"
    assert rows[0][1] is not None
    assert desk.dovecot.uids(desk.mailbox, "INBOX", "UNSEEN") == []
    if moment == "commit":  # the row written before the kill went out after the restart
        async with desk.user.app.store.reading() as conn:
            pending = list(
                await conn.execute_fetchall("SELECT state FROM outbox WHERE payload LIKE ?",
                                            ("%sobrevive%",))
            )  # fmt: skip
        assert len(pending) == 1


# ------------------------------------------------------------ the live reader
class Proxy:
    """A TCP relay to Dovecot that can drop every connection at once (a network cut)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, HOST, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(HOST, self.target)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def drop(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def stop(self) -> None:
        self.drop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def until(check: Any, within: float) -> float:
    """Wait until ``check()`` is true; returns the seconds it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < within, "timed out"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_idle_wakes_the_reader_and_a_dropped_connection_is_opened_again(
    desk: Desk,
) -> None:
    proxy = Proxy(desk.dovecot.port)
    await proxy.start()
    rows: list[OutboxRow] = []
    reader = MailReader(
        desk.user.app,
        rows.extend,
        session_factory=lambda: ImapSession(HOST, proxy.port, "none", desk.mailbox, PASSWORD),
    )
    reader.start()
    try:
        await until(lambda: reader.idle_cycles >= 1, within=5)
        await asyncio.sleep(0.2)  # IDLE under way
        desk.deliver(reply(STAFF, "Llega mientras el lector espera en IDLE.", desk))
        woke = await until(lambda: reader.counts["relayed"] == 1, within=5)
        assert woke < 2  # the server's word, not a 60-second poll

        proxy.drop()  # the connection dies during IDLE
        desk.deliver(reply(STAFF, "Llega durante el corte.", desk))
        await until(lambda: reader.counts["relayed"] == 2, within=10)
        assert reader.connections == 2
    finally:
        await reader.stop()
        await proxy.stop()
    await desk.user.deliver(rows)
    texts = [m.plain for m in desk.user.screen.messages]
    assert sum("mientras el lector espera" in t for t in texts) == 1
    assert sum("durante el corte" in t for t in texts) == 1


class NoIdle(ImapSession):
    @property
    def has_idle(self) -> bool:
        return False


async def test_without_idle_the_reader_polls(desk: Desk) -> None:
    app = desk.user.app
    app.settings = app.settings.model_copy(update={"imap_poll_seconds": 0.3})
    reader = MailReader(
        app,
        lambda rows: None,
        session_factory=lambda: NoIdle(HOST, desk.dovecot.port, "none", desk.mailbox, PASSWORD),
    )
    reader.start()
    try:
        await until(reader.ready.is_set, within=5)
        desk.deliver(reply(STAFF, "Leído en la siguiente vuelta.", desk))
        await until(lambda: reader.counts["relayed"] == 1, within=5)
        assert reader.idle_cycles == 0
    finally:
        await reader.stop()


async def test_a_backlog_of_500_mails_is_worked_through_in_under_30_seconds(
    desk: Desk,
) -> None:
    app = desk.user.app
    app.settings = app.settings.model_copy(update={"imap_sender_limit": 1000})
    senders = [STAFF, COLLEAGUE, "maria.diaz@soporte.gob.pe"]
    backlog = [
        reply(senders[n % 3], f"Avance número {n} del trámite.", desk) for n in range(450)
    ] + [mail(f"boletin{n}@ejemplo.com", "Oferta", "Compre ya") for n in range(50)]
    desk.deliver(*backlog)
    session = session_for(app)
    await session.open()
    try:
        await session.ensure_folder("Revisar")
        start = time.monotonic()
        worked = await desk.reader.work(session, await session.select("INBOX"))
        took = time.monotonic() - start
    finally:
        await session.close()
    print(f"500 waiting mails worked through in {took:.2f} s")
    assert worked == 500
    assert took < 30
    assert desk.reader.counts == {"relayed": 450, "review:no_ticket": 50}
    assert desk.dovecot.uids(desk.mailbox, "INBOX", "UNSEEN") == []
    assert len(desk.dovecot.uids(desk.mailbox, "Revisar")) == 50
    async with app.store.reading() as conn:
        rows = await conn.execute_fetchall("SELECT count(*) FROM outbox WHERE ticket_id = 1")
    assert next(iter(rows))[0] >= 450


async def test_staff_mail_counts_what_was_applied_and_what_awaits_review(desk: Desk) -> None:
    desk.deliver(
        reply(STAFF, "Lo vemos hoy.", desk),
        mail("boletin@ejemplo.com", "Oferta", "Compre ya"),
    )
    await desk.read()
    out = io.StringIO()
    await staff_run(desk.user.app, argparse.Namespace(action="mail", days=7), out)
    assert "1 · mensaje de la mesa de ayuda enviado al responsable" in out.getvalue()
    assert "1 · en la carpeta de revisión: sin trámite" in out.getvalue()


async def test_a_desk_address_that_fails_authentication_is_not_trusted(desk: Desk) -> None:
    forged = reply(
        STAFF,
        "#atendido",
        desk,
        headers={"Authentication-Results": "mx.pcm.gob.pe; spf=fail; dkim=none; dmarc=fail"},
    )
    desk.deliver(forged)
    assert await desk.read() == []
    assert (await desk.ticket())["state"] == "registrado"
    assert desk.reader.counts == {"review:unauthenticated": 1}


async def test_the_answer_to_a_refused_command_goes_out_over_smtp_threaded(
    dovecot: Dovecot, mailbox: str, tmp_path: Path, clock: FakeClock
) -> None:
    """The same refusal, through a real SMTP server (the SMTP tests' aiosmtpd collector)."""
    collector = Collector()
    controller = Controller(
        collector, hostname=HOST, port=smtp_port(), server_hostname="smtp.test"
    )
    controller.start()
    settings = imap_settings(tmp_path / "smtp", dovecot.port, mailbox)
    smtp = SmtpMailer(HOST, controller.port, None, None, starttls=False, timeout=5)

    class Both(MemoryMailer):  # over SMTP, and kept for the flow's verification code
        async def send(self, msg: EmailMessage) -> str:
            await smtp.send(msg)
            return await super().send(msg)

    both = Both()
    app = await create_app(settings, clock, both)
    user = Driver(app)
    await user.start()
    try:
        await to_step(user, both, "resumen")
        await user.tap("btn.confirm_send")
        await app.mail.send_due()
        request = next(r for r in collector.received if b"Solicitud de accesos" in r.content)
        request_id = str(message_from_bytes(request.content, policy=policy.default)["Message-ID"])
        dovecot.append(
            mailbox,
            mail(STAFF, f"RE: Solicitud [{NUMBER}]", "#cerrado", in_reply_to=request_id),
        )
        desk = Desk(dovecot, mailbox, user, MemoryMailer())
        await desk.read()
        answer = message_from_bytes(collector.received[-1].content, policy=policy.default)
        assert collector.received[-1].rcpt_tos == [STAFF]
        assert str(answer["Subject"]) == f"RE: Solicitud [{NUMBER}]"
        assert answer["Auto-Submitted"] == "auto-replied"
        assert answer["References"].endswith(str(answer["In-Reply-To"]))
        assert request_id in str(answer["References"])
        body = answer.get_body()
        assert body is not None
        assert "no corresponde «#cerrado»" in body.get_content()
    finally:
        await user.stop()
        await app.close()
        controller.stop()
