"""Crash safety: the real `pte-bot run` process, `kill -9` at a different step for each of
eight officers, restarted on the same data each time.

Kill points: between answers at six steps of the access request, while the outbox is
sending a reply (the Bot API call in flight), and between the ticket's commit and its
confirmation message. After the restarts every officer resumes at the open question, every
answer they had been acknowledged is in their ticket, and each has exactly one ticket.

Mail is at-least-once: a kill after the SMTP server took a mail and before its row was
marked sent sends it again after the restart, under the same Message-ID (fixed when the row
was written). So mails are counted by distinct Message-ID: exactly one request per officer,
copies tolerated.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from tests.bot.conftest import drained_probe
from tests.bot.telegram_harness import (
    HELP_DESK,
    HOST,
    MAIL_FROM,
    RESOLUTION,
    RESOLUTION_DATE,
    STEPS,
    Officer,
    Received,
    SmtpServer,
    query,
    text,
)
from tests.bot.telegram_harness import smtp as smtp  # a fixture
from tests.fakes.telegram_api import BotMessage, FakeBotAPI


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]


class Bot:
    """`pte-bot run` as a child process, killed with SIGKILL and started again."""

    def __init__(self, api: FakeBotAPI, smtp: SmtpServer, data_dir: Path) -> None:
        self.env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_BASE_URL": api.base_url,
            "TELEGRAM_BASE_FILE_URL": api.base_file_url,
            "PTEBOT_DATA_DIR": str(data_dir),
            "PTEBOT_SMTP_HOST": HOST,
            "PTEBOT_SMTP_PORT": str(smtp.port),
            "PTEBOT_SMTP_STARTTLS": "false",
            "PTEBOT_HELPDESK_EMAIL": HELP_DESK,
            "PTEBOT_MAIL_FROM": MAIL_FROM,
            "PTEBOT_LOG_LEVEL": "WARNING",
            "PTB_TIMEDELTA": "true",
        }
        self.process: asyncio.subprocess.Process | None = None
        self.kills = 0

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=self.env, stdin=asyncio.subprocess.DEVNULL
        )

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown, no offset confirmation, no flush
        await self.process.wait()
        self.kills += 1

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


@pytest.fixture
async def bot(api: FakeBotAPI, smtp: SmtpServer, settings: Settings) -> AsyncIterator[Bot]:
    api.drained = drained_probe(settings)  # settle() waits for the store, not for quiet
    running = Bot(api, smtp, settings.data_dir)
    await running.start()
    yield running
    await running.stop()


def email_of(officer: Officer) -> str:
    return f"oficial{officer.user.id}@munisjl.gob.pe"


def action(officer: Officer, name: str) -> Callable[[], Awaitable[list[BotMessage]]]:
    """The step's answer, with an address of the officer's own (codes are per address)."""
    if name == "correo":
        return lambda: officer.say(email_of(officer))
    if name == "codigo":
        return lambda: officer.say_code()  # type: ignore[attr-defined,no-any-return]
    found = next(act for step, act, _ in STEPS if step == name)
    return lambda: found(officer)


class CrashOfficer(Officer):
    async def say_code(self) -> list[BotMessage]:
        inbox, address = self.smtp.inbox, email_of(self)
        subject = text("mail.code_subject")
        await until(lambda: any(address in r.rcpt_tos for r in inbox.matching(subject)))
        return await self.say(await inbox.code(address))


async def answer(officer: Officer, name: str, first: bool = False) -> None:
    """Answer step ``name`` and check that the next question follows."""
    follows = next(f for step, _, f in STEPS if step == name)
    timeout = 30 if first else 10
    if first:
        replies = await officer.user.say("/start", timeout=timeout)
    else:
        replies = await action(officer, name)()
    assert follows in replies[-1].text, f"after {name}: {[str(m) for m in replies]}"


def ticket_count(settings: Settings, user_id: int) -> int:
    rows = query(
        settings,
        "SELECT count(*) FROM tickets t JOIN chat_identities ci ON ci.id = t.identity_id"
        f" WHERE ci.channel = 'telegram' AND ci.external_id = '{user_id}'",
    )
    return int(rows[0][0])


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def distinct(mails: list[Received]) -> dict[str, list[Received]]:
    """Mails by Message-ID: a resend after a crash is another copy of the same message."""
    found: dict[str, list[Received]] = {}
    for mail in mails:
        found.setdefault(str(mail.message["Message-ID"]), []).append(mail)
    return found


NAMES = [name for name, _, _ in STEPS]
# (officer id, the last step answered before the kill, how the kill happens)
PLAN: list[tuple[int, str, str]] = [
    (8101, "ruc", "between answers"),
    (8102, "dni", "between answers"),
    (8103, "correo", "between answers"),  # the code mail may go out after the restart
    (8104, "celular", "between answers"),
    (8105, "res_fecha", "while sending"),  # the reply's sendMessage is in flight
    (8106, "res_pdf", "between answers"),  # the file is stored, the answer committed
    (8107, "perfiles_modo", "between answers"),  # at the summary
    (8108, "resumen", "after commit"),  # the ticket committed, confirmation not yet sent
]


async def test_kill_nine_at_eight_steps_loses_and_duplicates_nothing(
    api: FakeBotAPI, smtp: SmtpServer, settings: Settings, bot: Bot
) -> None:
    officers = {
        uid: CrashOfficer(api.user(uid, first_name=f"Oficial {uid}"), smtp) for uid, _, _ in PLAN
    }
    for uid, last, how in PLAN:
        officer = officers[uid]
        steps = [*NAMES, "resumen"]
        for name in steps[: steps.index(last)]:
            await answer(officer, name, first=name == "start")
        if how == "between answers":
            await answer(officer, last)
            await officer.user.settle()  # delivered; the kill comes between two answers
        elif how == "while sending":
            api.hold(uid)
            held = api.held_calls
            await officer.user.send(RESOLUTION_DATE)
            await until(lambda: api.held_calls > held)  # noqa: B023  committed, being sent
        else:  # after commit
            api.hold(uid)
            await officer.user.tap("✅ Confirmar y enviar")
            await until(lambda: ticket_count(settings, uid) == 1)  # noqa: B023
        await bot.kill()
        api.release(uid, deliver=False)  # the killed process never reads the answer
        await bot.start()
        if how == "while sending":
            [question] = await officer.user.expect(1, timeout=30)
            assert "Paso 12 de 16" in question.text  # the reply went out after the restart
        elif how == "after commit":
            registered, formato, _menu = await officer.user.expect(3, timeout=30)
            assert "Solicitud registrada" in registered.text
            assert formato.document is not None
        else:
            assert not await officer.user.settle(timeout=30)  # nothing repeated
            follows = next(f for step, _, f in STEPS if step == last) if last in NAMES else ""
            assert follows in officer.user.last.text  # the open question, still there

    # Everyone finishes (each resumes where they were), and nothing was lost or doubled.
    for uid, last, how in PLAN:
        officer = officers[uid]
        if how == "after commit":
            continue
        steps = [*NAMES]
        for name in steps[steps.index(last) + 1 :]:
            await answer(officer, name)
        await officer.press("✅ Confirmar y enviar", n=3)
    assert bot.kills == len(PLAN) == 8
    for uid, _last, _how in PLAN:
        assert ticket_count(settings, uid) == 1, uid
    stored: list[tuple[Any, ...]] = query(
        settings,
        "SELECT ci.external_id, json_extract(t.data, '$.resp.email'),"
        " json_extract(t.data, '$.resp.dni'), json_extract(t.data, '$.res.numero')"
        " FROM tickets t JOIN chat_identities ci ON ci.id = t.identity_id",
    )
    for external_id, email, dni, resolution in stored:
        assert email == f"oficial{external_id}@munisjl.gob.pe"
        assert dni == "45678912"
        assert resolution == RESOLUTION
    subject = "Solicitud de accesos al PTE"
    await until(lambda: len(distinct(smtp.inbox.matching(subject))) >= 8, timeout=30)
    requests = distinct(smtp.inbox.matching(subject))
    assert len(requests) == 8  # one request mail per ticket, whatever the copies
    numbers = {number for (number,) in query(settings, "SELECT number FROM tickets")}
    assert {
        str(copies[0].message["Subject"]).rsplit(" ", 1)[-1].strip("[]")
        for copies in requests.values()
    } == numbers
    for copies in requests.values():  # a copy is the same message, byte for byte
        assert len({bytes(c.message) for c in copies}) == 1
    stored = query(settings, "SELECT message_id FROM mail_outbox WHERE kind = 'request'")
    assert {message_id for (message_id,) in stored} == set(requests)


async def test_redelivered_updates_and_double_taps_have_one_effect(
    api: FakeBotAPI, smtp: SmtpServer, settings: Settings, bot: Bot
) -> None:
    officer = CrashOfficer(api.user(8201), smtp)
    for name in NAMES[: NAMES.index("dni")]:
        await answer(officer, name, first=name == "start")
    dni = await officer.user.send("45678912")
    await officer.user.expect(1, timeout=30)
    api.redeliver(dni)  # Telegram sends the same update_id again
    assert not await officer.user.settle()  # ...and nothing happens
    assert "Paso 6 de 16" in officer.user.last.text
    for name in NAMES[NAMES.index("dni") + 1 :]:
        await answer(officer, name)
    # A double tap: two callback queries for the same button, then a redelivery of the first.
    first = await officer.user.tap("✅ Confirmar y enviar")
    await officer.user.tap("✅ Confirmar y enviar")
    replies = await officer.user.settle()
    api.redeliver(first)
    replies += await officer.user.settle()
    assert sum("Solicitud registrada" in m.text for m in replies) == 1
    assert ticket_count(settings, 8201) == 1
    await smtp.inbox.wait_for("Solicitud de accesos al PTE")
    assert len(smtp.inbox.matching("Solicitud de accesos al PTE")) == 1
