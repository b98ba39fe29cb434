"""Officer against officer (issue 6, item 6): officer A cannot read, act on, or learn that
officer B's tickets exist: not by typing the number, not with ``/estado N``, not by replaying
B's buttons, not with forged callback data naming B's ticket, not with a swipe reply.

The proof is a comparison: whatever A does with B's real number, A gets exactly what A gets
with a number that does not exist (the number itself aside), and B's ticket, B's chat and
B's data are untouched. Checked through the user driver and through Telegram with the fake
Bot API. (Staff are out of scope here: their desk is being built and tested with it.)
"""

from __future__ import annotations

import asyncio
import re
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from bot.delivery.payload import Rendered
from bot.settings import Settings
from tests.bot.conftest import Starter
from tests.bot.harness import TeeMailer
from tests.driver import Driver, MemoryMailer
from tests.fakes.telegram_api import BotMessage, FakeBotAPI, FakeUser
from tests.walks import to_step

B_TICKET = "PTE-2026-000001"
MISSING = "PTE-2026-000999"
# What only B's ticket holds: A must never read any of it.
B_SECRETS = (
    "20131312955",
    "Pérez",
    "45678912",
    "ana.perez@munisjl.gob.pe",
    "987654321",
    "Resolución de Alcaldía",
    "Registrado",
    "Observado",
    "Accesos",
)


def shown(messages: list[Rendered], number: str) -> list[tuple[str, list[list[str]]]]:
    """What A saw, with the number asked about blanked out (it is A's own words)."""
    return [
        (m.plain.replace(number, "<n>"), [[b.label for b in row] for row in m.buttons])
        for m in messages
    ]


def leaks(messages: list[Rendered]) -> list[str]:
    return [s for m in messages for s in B_SECRETS if s in m.plain]


async def ticket_row(user: Driver, number: str) -> tuple[Any, ...]:
    async with user.app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall(
                "SELECT state, (SELECT count(*) FROM ticket_events e WHERE e.ticket_id = t.id),"
                " data FROM tickets t WHERE number = ?",
                (number,),
            )
        )
    return tuple(rows[0])


async def outbox_for(user: Driver, chat_id: str) -> int:
    async with user.app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall(
                "SELECT count(*) FROM outbox WHERE chat_id = ?", (chat_id,)
            )
        )
    return int(rows[0][0])


async def a_state(user: Driver) -> str:
    async with user.app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall(
                "SELECT c.state FROM conversations c JOIN chat_identities ci"
                " ON ci.id = c.identity_id WHERE ci.external_id = ?",
                (user.chat_id,),
            )
        )
    return str(rows[0][0])


@pytest.fixture
async def officers(user: Driver, mailer: MemoryMailer) -> tuple[Driver, Driver]:
    """B ("user") has a registered access request and has looked at it; A has only consented."""
    officer_b = user
    await to_step(officer_b, mailer, "resumen")
    replies = await officer_b.tap("btn.confirm_send")
    assert (replies[0].key, replies[0].data["number"]) == ("solicitud.registrada", B_TICKET)
    await officer_b.send("/estado")
    await officer_b.tap(choice=f"t:{B_TICKET}")
    assert "btn.cancel_ticket" in [b.key for b in officer_b.screen.last.buttons[1]]
    officer_a = await officer_b.peer("2002")
    await officer_a.send("/start")
    await officer_a.tap("btn.accept")
    return officer_a, officer_b


async def both(officer_a: Driver, make: Any) -> tuple[list[Rendered], list[Rendered]]:
    """A's answers for B's real number and for a missing one, from the same starting point."""
    await officer_a.send("/menu")
    real = await make(B_TICKET)
    await officer_a.send("/menu")
    missing = await make(MISSING)
    return real, missing


CASES = {
    "typed": lambda a: lambda n: a.send(f"hola, ¿cómo va {n}?"),
    "typed-variant": lambda a: lambda n: a.send(f"estado pte {n[4:8]}-{int(n[-6:])}"),
    "estado-command": lambda a: lambda n: a.send(f"/estado {n}"),
    "start-deep-link": lambda a: lambda n: a.send(f"/start {n}"),
    "ticket-command": lambda a: lambda n: a.send(f"/ticket {n}"),
    "notice-fix": lambda a: lambda n: a.click_data(f"0:n:fix:{n}"),
    "notice-reply": lambda a: lambda n: a.click_data(f"0:n:reply:{n}"),
    "notice-card": lambda a: lambda n: a.click_data(f"0:n:card:{n}"),
    "notice-staff-reply": lambda a: lambda n: a.click_data(f"0:n:sreply:{n}"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_b_ticket_reads_as_a_missing_one(case: str, officers: tuple[Driver, Driver]) -> None:
    officer_a, officer_b = officers
    before = await ticket_row(officer_b, B_TICKET)
    b_rows = await outbox_for(officer_b, officer_b.chat_id)
    real, missing = await both(officer_a, CASES[case](officer_a))
    assert real, "A got no answer at all"
    assert shown(real, B_TICKET) == shown(missing, MISSING)
    assert leaks(real) == []
    assert await ticket_row(officer_b, B_TICKET) == before
    assert await outbox_for(officer_b, officer_b.chat_id) == b_rows


async def test_forged_buttons_at_a_status_list_name_no_one_elses_ticket(
    officers: tuple[Driver, Driver],
) -> None:
    """A at A's own (empty) status list or at a not-found detail: a button naming B's ticket,
    forged with A's open question id, is refused exactly as one naming a missing ticket."""
    officer_a, officer_b = officers
    before = await ticket_row(officer_b, B_TICKET)
    for setup in ("/estado", "¿cómo va PTE-2026-000555?"):
        for choice in ("t:{n}", "fix", "reply", "cancel", "yes"):

            async def forge(number: str, setup: str = setup, choice: str = choice) -> Any:
                await officer_a.send(setup)
                qid = officer_a.screen.last.buttons[0][0].data.partition(":")[0]
                return await officer_a.click_data(f"{qid}:{choice.format(n=number)}")

            real, missing = await both(officer_a, forge)
            assert shown(real, B_TICKET) == shown(missing, MISSING), (setup, choice)
            assert leaks(real) == []
    assert await ticket_row(officer_b, B_TICKET) == before


async def test_b_buttons_replayed_in_a_chat_change_and_reveal_nothing(
    officers: tuple[Driver, Driver],
) -> None:
    officer_a, officer_b = officers
    before = await ticket_row(officer_b, B_TICKET)
    b_rows = await outbox_for(officer_b, officer_b.chat_id)
    replayed = {b.data for m in officer_b.screen.messages for row in m.buttons for b in row}
    assert any(data.endswith(":cancel") for data in replayed)
    assert any(data.endswith(f":t:{B_TICKET}") for data in replayed)
    await officer_a.send("/estado")  # A stands where B's buttons were tapped
    for data in sorted(replayed):
        answers = await officer_a.click_data(data)
        assert leaks(answers) == [], data
        assert B_TICKET not in "".join(m.plain for m in answers), data
    assert await ticket_row(officer_b, B_TICKET) == before
    assert await outbox_for(officer_b, officer_b.chat_id) == b_rows
    assert B_TICKET not in await a_state(officer_a)


async def test_a_swipe_reply_cannot_reach_b_ticket(officers: tuple[Driver, Driver]) -> None:
    """B's messages are numbered 1..n in B's chat; A replying to the same numbers in A's chat
    writes nothing on B's ticket."""
    officer_a, officer_b = officers
    before = await ticket_row(officer_b, B_TICKET)
    for index in range(1, len(officer_b.screen.messages) + 1):
        await officer_a.send("/menu")
        message = officer_a.screen.messages[min(index, len(officer_a.screen.messages)) - 1]
        answers = await officer_a.reply(message, "Hola, ya subsané la resolución de mi entidad.")
        assert leaks(answers) == []
    assert await ticket_row(officer_b, B_TICKET) == before


async def test_an_observed_ticket_is_fixed_by_its_owner_only(
    officers: tuple[Driver, Driver],
) -> None:
    """The same forged "Corregir" opens the correction for B and nothing for A: the check is
    on the server, per tapper (and proves the forged button is a real one)."""
    officer_a, officer_b = officers
    async with officer_b.app.store.reading() as conn:
        await conn.execute(
            "UPDATE tickets SET state = 'observado', observed_part = 'resolucion'"
            " WHERE number = ?",
            (B_TICKET,),
        )
    before = await ticket_row(officer_b, B_TICKET)
    real, missing = await both(officer_a, lambda n: officer_a.click_data(f"0:n:fix:{n}"))
    assert shown(real, B_TICKET) == shown(missing, MISSING)
    assert leaks(real) == []
    real, missing = await both(officer_a, lambda n: officer_a.click_data(f"0:n:reply:{n}"))
    assert shown(real, B_TICKET) == shown(missing, MISSING)
    assert await ticket_row(officer_b, B_TICKET) == before

    owner = await officer_b.click_data(f"0:n:fix:{B_TICKET}")
    assert owner[-1].progress == (10, 16)  # B is taken to the resolution's number


# --- through Telegram -------------------------------------------------------------------------

NUMBER = re.compile(r"PTE-\d{4}-\d{6}")
DESCRIPTION = "No puedo publicar el presupuesto: el portal muestra un error 500 al guardar."
TG_SECRETS = ("20131312955", "Municipalidad de Prueba", DESCRIPTION, "Registrado", "Consulta")


def _code_in(outbox: Path) -> str | None:
    for path in sorted(outbox.glob("*.eml"), reverse=True):
        body = message_from_bytes(path.read_bytes(), policy=policy.default).get_body()
        found = re.search(r"\b(\d{6})\b", body.get_content() if body else "")
        if found:
            return found.group(1)
    return None


async def mailed_code(mailer: TeeMailer, timeout: float = 10.0) -> str:  # noqa: ASYNC109
    """The verification code in the newest .eml the mail outbox wrote (woken when it was)."""
    outbox = mailer.eml.outbox_dir
    assert await mailer.wait_for(timeout=timeout), f"no code mailed under {outbox}"
    code = await asyncio.to_thread(_code_in, outbox)
    assert code is not None, f"no code in the .eml files under {outbox}"
    return code


def telegram_shown(messages: list[BotMessage], number: str) -> list[tuple[str, list[str]]]:
    return [(m.text.replace(number, "<n>"), m.button_labels) for m in messages]


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

    @pytest.fixture
    def mailer(self, settings: Settings) -> TeeMailer:
        """As without an SMTP server (.eml files), and it says when it wrote one."""
        return TeeMailer(settings.data_dir / "outbox")

    @staticmethod
    async def consulta(user: FakeUser, mailer: TeeMailer) -> str:
        await user.say("/start")
        await user.press("Acepto")
        await user.press("Hacer una consulta")
        await user.say("20131312955")
        await user.say("Municipalidad de Prueba")
        await user.press("Presupuesto")
        await user.say(DESCRIPTION)
        await user.press("Listo")
        for answer in ("Beto", "Quispe", "Analista", "beto@munisjl.gob.pe"):
            await user.say(answer)
        await user.say(await mailed_code(mailer))  # no SMTP server: the code is an .eml
        await user.say("912345678")
        await user.tap("Confirmar y enviar")
        outputs = await user.settle(quiet=1.0)  # the ticket, its mail and files: not instant
        found = NUMBER.search(" ".join(m.text for m in outputs))
        assert found is not None, [str(m) for m in outputs]
        return found.group()

    async def test_a_cannot_reach_b_ticket_by_number_command_replay_or_forgery(
        self, api: FakeBotAPI, start_bot: Starter, mailer: TeeMailer
    ) -> None:
        await start_bot()  # mailing with ``mailer``
        beto = api.user(7402, first_name="Beto")
        number = await self.consulta(beto, mailer)
        missing = f"{number[:9]}999999"
        await beto.say("/estado")
        [detail] = await beto.press(number)
        assert "Anular trámite" in detail.button_labels
        b_data = {
            str(button["callback_data"])
            for message in beto.messages
            for row in message.inline_keyboard
            for button in row
            if "callback_data" in button
        }
        b_count = len(beto.messages)

        ana = api.user(7401, first_name="Ana")
        await ana.say("/start")
        await ana.press("Acepto")

        async def compare(send: Any) -> None:
            await ana.say("/menu")
            await send(number)
            real = await ana.settle(quiet=0.1)
            await ana.say("/menu")
            await send(missing)
            absent = await ana.settle(quiet=0.1)
            assert real
            assert telegram_shown(real, number) == telegram_shown(absent, missing)
            assert not [s for m in real for s in TG_SECRETS if s in m.text]

        await compare(lambda n: ana.send(f"hola, ¿cómo va {n}?"))
        await compare(lambda n: ana.send(f"/estado {n}"))
        await compare(lambda n: ana.send(f"/ticket {n}"))
        for action in ("fix", "reply", "card", "sreply"):
            await compare(lambda n, action=action: ana.tap_data(f"1:n:{action}:{n}"))
        await compare(lambda n: ana.tap_data(f"1:t:{n}"))

        # B's own buttons, tapped from A's chat (replayed callback data).
        await ana.say("/estado")
        for data in sorted(b_data):
            await ana.tap_data(data)
            for message in await ana.settle(quiet=0.1):
                assert number not in message.text, (data, str(message))
                assert not [s for s in TG_SECRETS if s in message.text], (data, str(message))

        # B saw nothing of all this, and B's ticket is as it was.
        await beto.say("/estado")
        [still] = await beto.press(number)
        assert "Registrado" in still.text
        assert "Anular trámite" in still.button_labels
        assert len(beto.messages) == b_count + 2
