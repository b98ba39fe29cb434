"""The help desk on WhatsApp: a specialist listed by number works an officer's ticket;
the officer hears of it and answers with a swipe reply (WhatsApp's "context")."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.server import Server
from bot.settings import Settings
from tests.bot.whatsapp_harness import ANA, STEPS, query, refused, wa_server, whatsapp_settings
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.driver import MemoryMailer
from tests.fakes.graph_api import FakeGraphAPI

_ = wa_server  # a fixture
ROSA = "51911222333"


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph, staff_whatsapp_ids=frozenset({ROSA}))


async def test_a_specialist_on_whatsapp_takes_observes_and_hears_back(
    graph: FakeGraphAPI, settings: Settings, mailer: MemoryMailer, wa_server: Server
) -> None:
    ana = graph.user(ANA, "Ana")
    for _name, action, _follows in STEPS:
        await action(ana, mailer)
    await ana.tap("✅ Confirmar y enviar", n=3)
    [(number,)] = query(settings, "SELECT number FROM tickets")

    rosa = graph.user(ROSA, "Rosa")
    await rosa.say("hola", n=2)
    menu = (await rosa.tap("Acepto"))[-1]
    assert "Bandeja de la mesa" in menu.labels
    queue = (await rosa.say("/pendientes"))[-1]
    assert number in queue.text
    [row] = [label for label in queue.labels if number in label]
    card = (await rosa.tap(row))[-1]
    assert f"🗂 *{number}*" in card.text
    await rosa.tap("🙋 Tomar")
    await rosa.settle()  # the card may come as a text and a list (WhatsApp's body limit)
    [taken] = await ana.expect(1)
    assert "pasó a *En atención*" in taken.text

    await rosa.tap("⚠️ Observar")
    await rosa.tap("Otro")
    await rosa.say("¿La resolución ya se publicó?")
    await rosa.settle()
    [observed] = await ana.expect(1)
    assert "¿La resolución ya se publicó?" in observed.text
    assert "✏️ Corregir" in observed.labels
    # The officer answers by replying to the notification itself.
    await ana.send("text", {"body": "Sí, el 20 de octubre."}, context=observed.wamid)
    thanks = await ana.expect(1)
    assert "Envié tu respuesta" in thanks[0].text
    relayed = await rosa.expect(1)
    assert "Sí, el 20 de octubre." in relayed[0].text
    [(state,)] = query(settings, "SELECT state FROM tickets")
    assert state == "en_atencion"  # an answer to "otro" is the correction
    assert refused(graph) == []


async def test_an_officer_on_whatsapp_has_no_desk(graph: FakeGraphAPI, wa_server: Server) -> None:
    luis = graph.user("51900000001", "Luis")
    await luis.say("hola", n=2)
    await luis.tap("Acepto")
    replies = await luis.say("/pendientes")  # joined in front of the menu
    assert "No conozco el comando /pendientes" in replies[0].text
