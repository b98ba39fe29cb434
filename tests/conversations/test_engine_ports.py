"""The engine and the flows over in-memory ports: no SQLite, no channel, no locale.

These show that a flow needs nothing but the ports (``conversations.ports``) to run, and
that what crosses from one flow into another (a notification's button, "Corregir", the
desk's actions) holds together at the engine's level. Behaviour as a person sees it is
tested through ``tests/driver.py`` against the real application.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conversations.catalog import all_flows
from conversations.engine import Engine, Intents, Reply
from conversations.events import Inbound, Kind
from conversations.flow import Person, RecordConsent, WithdrawConsent
from conversations.names import NOTICE_PREFIX, TICKET_PREFIX, FlowName
from conversations.state import State
from conversations.text import IntentMatcher
from tests.memory_ports import KeyLabels, World

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


ENGINE = Engine(all_flows(), KeyLabels(), Intents({}, IntentMatcher({})))


class Chat:
    """One person's conversation with the engine over the shared world's ports."""

    def __init__(
        self, world: World, person_id: int, consent: bool | None = True, staff: bool = False
    ) -> None:
        self.world = world
        self.person = Person(person_id, consent, staff)
        self.state = State()
        self.turns = 0
        self.last = Reply(self.state)

    async def event(self, kind: Kind, text: str) -> Reply:
        self.turns += 1
        inbound = Inbound("memory", str(self.person.person_id), str(self.turns), kind, text)
        ports = self.world.ports(self.person.person_id, self.person.is_staff)
        self.last = await ENGINE.handle(self.state, inbound, self.person, NOW, ports)
        self.state = self.last.state
        return self.last

    async def command(self, name: str) -> Reply:
        return await self.event(Kind.COMMAND, name)

    async def tap(self, choice: str) -> Reply:
        """A button of the open question (checked against it by the engine)."""
        assert choice in self.choices(), (choice, self.choices())
        return await self.event(Kind.BUTTON, f"{self.state.qid}:{choice}")

    async def type(self, text: str) -> Reply:
        return await self.event(Kind.TEXT, text)

    def choices(self) -> list[str]:
        return [str(choice[0]) for choice in self.state.choices]

    def sent(self) -> list[str]:
        return [message.key for message in self.last.messages]

    def where(self) -> tuple[str, str] | None:
        frame = self.state.frame
        return None if frame is None else (frame.flow, frame.step)


@pytest.fixture
def world() -> World:
    return World()


async def test_the_status_lists_only_the_officers_own_tickets(world: World) -> None:
    mine = world.open(1, "accesos", {"ruc": "20131312955", "entity_name": "Municipalidad"})
    world.open(2, "consulta", {})
    chat = Chat(world, 1)
    await chat.command("estado")
    assert chat.sent() == ["estado.list"]
    assert [c for c in chat.choices() if c.startswith(TICKET_PREFIX)] == [
        TICKET_PREFIX + mine.number
    ]


async def test_an_officer_withdraws_a_request_nobody_started(world: World) -> None:
    ticket = world.open(1, "accesos", {})
    chat = Chat(world, 1)
    await chat.command("estado")
    await chat.tap(TICKET_PREFIX + ticket.number)
    await chat.tap("cancel")
    await chat.tap("yes")
    assert ticket.state == "anulado"
    assert "estado.anulado" in chat.sent()


async def test_the_desk_is_no_command_for_an_officer(world: World) -> None:
    chat = Chat(world, 1)
    await chat.command("pendientes")
    assert chat.sent()[0] == "common.unknown_command"
    assert chat.where() is None


async def test_an_observation_leads_the_officer_into_the_observed_part(world: World) -> None:
    """The desk observes the resolution; the officer's "Corregir" button on the notice
    opens the correction flow at the resolution's first question, the request as sent."""
    ticket = world.open(1, "accesos", {"ruc": "20131312955", "entity_name": "Muni"})
    desk = Chat(world, 9, consent=None, staff=True)
    await desk.command("pendientes")
    await desk.tap(TICKET_PREFIX + ticket.number)
    await desk.tap("take")
    await desk.tap("observe")
    await desk.tap("resolucion")
    await desk.type("La resolución no está firmada.")
    assert ticket.state == "observado"
    assert "mesa.hecho_observe" in desk.sent()

    officer = Chat(world, 1)
    await officer.event(Kind.BUTTON, f"0:{NOTICE_PREFIX}fix:{ticket.number}")
    assert officer.where() == (FlowName.CORRECTION, "res_numero")
    frame = officer.state.frame
    assert frame is not None
    assert frame.data["ruc"] == "20131312955"
    assert frame.data["ticket"] == ticket.number


async def test_a_notice_button_of_someone_elses_ticket_changes_nothing(world: World) -> None:
    ticket = world.open(1, "accesos", {})
    ticket.state = "observado"
    stranger = Chat(world, 2)
    await stranger.event(Kind.BUTTON, f"0:{NOTICE_PREFIX}fix:{ticket.number}")
    assert stranger.sent()[0] == "common.stale_button"
    assert stranger.where() is None


async def test_consent_is_an_effect_and_opens_what_was_asked(world: World) -> None:
    chat = Chat(world, 1, consent=None)
    await chat.command("estado")
    assert chat.where() == (FlowName.CONSENT, "notice")
    reply = await chat.tap("accept")
    assert reply.effects == [RecordConsent("2026-11", True)]
    assert chat.where() == (FlowName.STATUS, "lista")


async def test_withdrawing_consent_discards_the_drafts(world: World) -> None:
    chat = Chat(world, 1)
    await chat.command("solicitar")
    await chat.type("20131312955")  # the RUC: the form now has an answer to keep
    await chat.command("menu")
    assert FlowName.ACCESS_REQUEST in chat.state.drafts
    await chat.command("privacidad")
    await chat.tap("withdraw")
    reply = await chat.tap("yes")
    assert reply.effects == [WithdrawConsent("2026-11", accepted=False)]
    assert chat.state.drafts == {}


def test_the_memory_ports_implement_every_port() -> None:
    """mypy checks the application's ports; this checks the memory ones in every run."""
    import typing

    from conversations.ports import Ports

    members = typing._get_protocol_attrs(Ports)  # type: ignore[attr-defined]
    ports = World().ports(1)
    assert sorted(name for name in members if not hasattr(ports, name)) == []
    assert len(members) > 30
