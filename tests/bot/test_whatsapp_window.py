"""WhatsApp's 24-hour window: a notice outside it waits for the officer (with one approved
template to bring them back); Meta's error 131047, at once or as a failed status callback,
holds the notice the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.server import Server
from bot.delivery.payload import encode
from bot.settings import Settings
from bot.store.database import OutboxRow
from conversations.events import Outbound
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import query, refused, whatsapp_settings
from tests.bot.whatsapp_harness import wa_server as wa_server  # a fixture
from tests.driver import FakeClock
from tests.fakes.graph_api import FakeGraphAPI, FakeWhatsAppUser

ANA = "51987654321"


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph)


async def notify(server: Server, *keys: str) -> list[OutboxRow]:
    """Notices for Ana written the way the desk writes them (outbox rows), then delivered."""
    app, channel = server.app, server.whatsapp
    assert channel is not None
    payloads = [(encode(Outbound(key, {"days": 5}), 0, None), False) for key in keys]
    async with app.store.transaction(app.clock.now()) as tx:
        rows = await tx.enqueue("whatsapp", ANA, payloads)
    channel.submit(rows)
    return rows


async def consented(graph: FakeGraphAPI) -> FakeWhatsAppUser:
    ana = graph.user(ANA)
    await ana.say("hola", n=2)
    await ana.tap("Acepto")  # the thanks in front of the menu: one message
    return ana


async def test_a_notice_outside_the_window_waits_and_one_template_calls_the_officer_back(
    graph: FakeGraphAPI, settings: Settings, clock: FakeClock, wa_server: Server
) -> None:
    ana = await consented(graph)
    clock.advance(hours=25)
    await notify(wa_server, "common.draft_expired", "common.cancelled")
    [template] = await ana.expect(1)
    assert (template.type, template.template) == ("template", "aviso_tramite")
    assert await ana.settle() == []  # one template for both notices, nothing free-form
    # Both rows held (the two notices, joined into one message, are held as a whole).
    assert len(query(settings, "SELECT outbox_id FROM wa_held")) == 2

    await ana.send("text", {"body": "hola"})
    first = await ana.expect(2)
    notices, *reply = first + await ana.settle()
    # The held notices first, in their order, released together and joined again.
    assert "venció" in notices.text.split("\n\n")[0]
    assert "cancelé" in notices.text.split("\n\n")[-1]
    assert reply
    assert query(settings, "SELECT DISTINCT state FROM outbox") == [("sent",)]
    assert query(settings, "SELECT count(*) FROM wa_held") == [(0,)]
    assert refused(graph) == []

    # A new closure gets a new template.
    clock.advance(hours=30)
    await notify(wa_server, "common.cancelled")
    [again] = await ana.expect(1)
    assert again.type == "template"


async def test_meta_refusing_with_131047_holds_the_notice_until_the_officer_writes(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    ana = await consented(graph)
    graph.close_window(ANA)  # our clock says open, Meta says closed
    await notify(wa_server, "common.cancelled")
    [template] = await ana.expect(1)
    assert template.type == "template"
    assert [c.error for c in graph.calls if c.status == 400] == ["(#131047) Re-engagement message"]
    assert len(query(settings, "SELECT outbox_id FROM wa_held")) == 1

    await ana.send("text", {"body": "hola"})
    cancelled, *_ = await ana.expect(2)
    assert "cancelé" in cancelled.text


async def test_a_131047_status_callback_holds_a_notice_already_accepted(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    ana = await consented(graph)
    graph.window_errors = "async"
    graph.close_window(ANA)
    [row] = await notify(wa_server, "common.cancelled")
    [template] = await ana.expect(1)  # sent after the failed status arrived
    assert template.type == "template"
    assert query(settings, "SELECT outbox_id FROM wa_held") == [(row.id,)]
    assert query(settings, "SELECT error_code FROM wa_statuses WHERE status = 'failed'") == [
        (131047,)
    ]

    await ana.send("text", {"body": "hola"})
    cancelled, *_ = await ana.expect(2)
    assert "cancelé" in cancelled.text
    await ana.settle()  # marked sent once our answer reached the bot: wait for that event
    [(state, ref)] = query(
        settings, "SELECT state, external_ref FROM outbox WHERE id = ?", (row.id,)
    )
    assert state == "sent"
    assert ref != template.wamid
