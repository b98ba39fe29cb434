"""WhatsApp sends a reply's acknowledgement and the question after it as ONE message (issue 18),
within WhatsApp's limits, and a joined message keeps its rows' fate together: sent, retried,
held for the 24-hour window and released as a whole, across a restart.

At the adapter: the server as ``pte-bot serve`` runs it, the fake Graph API refusing what
Meta refuses (a text over 4096 characters, an interactive body over 1024).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.server import Server
from bot.channels.whatsapp_render import BODY_LIMIT, TEXT_LIMIT
from bot.delivery.payload import JOIN_SEPARATOR, encode
from bot.settings import Settings
from bot.store.database import OutboxRow
from conversations.events import Choice, Outbound, rows
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import query, refused, serving, whatsapp_settings
from tests.bot.whatsapp_harness import wa_server as wa_server  # a fixture
from tests.conftest import AppFactory
from tests.driver import FakeClock
from tests.fakes.graph_api import FakeGraphAPI, FakeWhatsAppUser

ANA = "51987654321"
CANCELLED = Outbound("common.cancelled", {})  # "Listo, cancelé el trámite. ..."
MENU_BUTTON = rows(Choice("menu", "btn.menu"))


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph)


def desk_message(text: str, choices: bool = False) -> Outbound:
    """The desk's message to Ana (``aviso.mensaje``), with ``text`` as the specialist wrote."""
    data = {"number": "PTE-2026-000001", "message": text}
    return Outbound("aviso.mensaje", data, MENU_BUTTON if choices else ())


async def notify(server: Server, *messages: Outbound) -> list[OutboxRow]:
    """Rows for Ana written together (one reply), then delivered."""
    app, channel = server.app, server.whatsapp
    assert channel is not None
    payloads = [(encode(message, 0, None), False) for message in messages]
    async with app.store.transaction(app.clock.now()) as tx:
        added = await tx.enqueue("whatsapp", ANA, payloads)
    channel.submit(added)
    return added


async def consented(graph: FakeGraphAPI) -> FakeWhatsAppUser:
    ana = graph.user(ANA)
    await ana.say("hola", n=2)  # the greeting, and a notice too long to join it
    await ana.tap("Acepto")  # the thanks in front of the menu
    return ana


def states(settings: Settings, added: list[OutboxRow]) -> list[tuple[str, str | None]]:
    marks = ", ".join("?" for _ in added)
    sql = f"SELECT state, external_ref FROM outbox WHERE id IN ({marks}) ORDER BY id"
    return [(state, ref) for state, ref in query(settings, sql, tuple(r.id for r in added))]


async def test_an_acknowledgement_goes_in_front_of_the_next_message_as_one(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    ana = await consented(graph)
    added = await notify(wa_server, CANCELLED, desk_message("Ya quedó, prueba de nuevo."))
    [joined] = await ana.expect(1)
    assert joined.type == "text"
    cancelled, message = joined.text.split(JOIN_SEPARATOR, 1)
    assert cancelled == "Listo, cancelé el trámite. No se guardó nada de él."
    assert "Ya quedó, prueba de nuevo." in message
    assert await ana.settle() == []
    assert states(settings, added) == [("sent", joined.wamid)] * 2  # one message, both rows

    # In front of a question with buttons: one interactive message, the buttons after both.
    added = await notify(wa_server, CANCELLED, desk_message("¿Lo ves ahora?", choices=True))
    [joined] = await ana.expect(1)
    assert joined.type == "button"
    assert joined.text.startswith("Listo, cancelé el trámite.")
    assert "¿Lo ves ahora?" in joined.text
    assert joined.labels == ["Menú"]
    assert await ana.settle() == []
    assert states(settings, added) == [("sent", joined.wamid)] * 2
    assert refused(graph) == []


async def test_a_pair_over_whatsapps_limits_goes_as_two_messages(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    ana = await consented(graph)
    # An interactive body holds 1024 characters: the question alone fits, not with the lead.
    long_question = desk_message("x" * (BODY_LIMIT - 140), choices=True)
    await notify(wa_server, CANCELLED, long_question)
    cancelled, question = await ana.expect(2)
    assert (cancelled.type, question.type) == ("text", "button")
    assert cancelled.text.startswith("Listo, cancelé el trámite.")
    assert len(cancelled.text) + len(JOIN_SEPARATOR) + len(question.text) > BODY_LIMIT
    assert question.labels == ["Menú"]

    # A text holds 4096: two long texts go as two, a third short one joins the second.
    first, second = desk_message("a" * 2500), desk_message("b" * 2500)
    await notify(wa_server, first, second, CANCELLED)
    one, two = await ana.expect(2)
    assert await ana.settle() == []
    assert "a" * 2500 in one.text
    assert "b" * 10 not in one.text
    assert "b" * 2500 in two.text
    assert two.text.endswith(
        JOIN_SEPARATOR + "Listo, cancelé el trámite. No se guardó nada de él."
    )
    assert max(len(one.text), len(two.text)) <= TEXT_LIMIT
    assert refused(graph) == []  # nothing over Meta's limits was ever tried


async def test_a_joined_message_is_held_whole_and_released_whole_across_a_restart(
    graph: FakeGraphAPI,
    settings: Settings,
    clock: FakeClock,
    make_app: AppFactory,
) -> None:
    async with serving(make_app, graph, clock) as server:
        ana = await consented(graph)
        clock.advance(hours=25)  # the 24-hour window has closed
        added = await notify(server, CANCELLED, desk_message("Ya quedó, prueba de nuevo."))
        [template] = await ana.expect(1)
        assert template.type == "template"
        assert await ana.settle() == []
        held = query(settings, "SELECT outbox_id FROM wa_held ORDER BY outbox_id")
        assert held == [(row.id,) for row in added]  # both rows, not only the message's last

    async with serving(make_app, graph, clock):  # a restart while they wait
        await ana.send("text", {"body": "hola"})
        joined, *reply = await ana.expect(2)
        assert joined.text.startswith("Listo, cancelé el trámite.")
        assert "Ya quedó, prueba de nuevo." in joined.text
        assert reply
        assert query(settings, "SELECT count(*) FROM wa_held") == [(0,)]
        await ana.settle()
        assert states(settings, added) == [("sent", joined.wamid)] * 2
    assert refused(graph) == []


async def test_a_joined_message_failing_midway_is_resent_whole_after_a_restart(
    graph: FakeGraphAPI,
    settings: Settings,
    clock: FakeClock,
    make_app: AppFactory,
) -> None:
    async with serving(make_app, graph, clock) as server:
        ana = await consented(graph)
        graph.failures = [(503, 2, "Service temporarily unavailable")] * 50
        added = await notify(server, CANCELLED, desk_message("Ya quedó, prueba de nuevo."))
        # Refused twice: the first refusal's attempt is recorded (on both rows) before the
        # retry; the server stops while the message waits to be tried again.
        assert await graph.wait_for(lambda: len(refused(graph)) >= 2, timeout=10)
    assert states(settings, added) == [("pending", None)] * 2  # tried together, not sent
    attempts = query(settings, "SELECT attempts FROM outbox WHERE id >= ?", (added[0].id,))
    assert all(tries >= 1 for (tries,) in attempts)
    graph.failures = []

    async with serving(make_app, graph, clock):
        [joined] = await ana.expect(1)  # resumed after the restart: still one message
        assert joined.text.startswith("Listo, cancelé el trámite.")
        assert "Ya quedó, prueba de nuevo." in joined.text
        assert await ana.settle() == []
        assert states(settings, added) == [("sent", joined.wamid)] * 2


async def test_a_131047_status_on_a_joined_message_holds_all_of_its_rows(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    ana = await consented(graph)
    graph.window_errors = "async"  # accepted, then failed by a status callback
    graph.close_window(ANA)
    added = await notify(wa_server, CANCELLED, desk_message("Ya quedó, prueba de nuevo."))
    [template] = await ana.expect(1)  # the joined message was accepted, then failed
    assert template.type == "template"
    held = query(settings, "SELECT outbox_id FROM wa_held ORDER BY outbox_id")
    assert held == [(row.id,) for row in added]

    await ana.send("text", {"body": "hola"})
    joined, *_ = await ana.expect(2)
    assert joined.text.startswith("Listo, cancelé el trámite.")  # the same joined message
    assert "Ya quedó, prueba de nuevo." in joined.text
    await ana.settle()
    assert states(settings, added) == [("sent", joined.wamid)] * 2
