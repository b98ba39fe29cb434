"""Issue 14, point 3: a delivery is of the platform's shape before it is stored, and a stored
one that fails is set aside (kept, counted, logged once) without blocking start-up or the
deliveries behind it."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.server import Server, build_server
from bot.channels.whatsapp import WhatsAppChannel
from bot.settings import Settings
from tests.bot.serve_harness import SECRET
from tests.bot.serve_harness import api as api  # a fixture
from tests.bot.serve_harness import server as server  # a fixture
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import query, whatsapp_settings
from tests.conftest import AppFactory
from tests.driver import FakeClock
from tests.fakes.graph_api import FakeGraphAPI
from tests.fakes.telegram_api import FakeBotAPI

ANA = "51987654321"


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI, api: FakeBotAPI) -> Settings:
    """Both channels on."""
    return whatsapp_settings(
        tmp_path,
        graph,
        telegram_bot_token=api.token,
        telegram_base_url=api.base_url,
        telegram_base_file_url=api.base_file_url,
        telegram_webhook_secret=SECRET,
    )


def deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def text_message(graph: FakeGraphAPI, wamid: str, text: str) -> dict[str, Any]:
    return {
        "from": ANA,
        "id": wamid,
        "timestamp": str(int(graph.clock())),
        "type": "text",
        "text": {"body": text},
    }


def value(**fields: Any) -> bytes:
    return json.dumps({"entry": [{"changes": [{"field": "messages", "value": fields}]}]}).encode()


NOT_DELIVERIES = {
    "entry is a string": b'{"entry": "abc"}',
    "entries are numbers": b'{"entry": [1, 2]}',
    "changes is a string": b'{"entry": [{"changes": "x"}]}',
    "messages are strings": value(messages=["hola", "chau"]),
    "a message without sender": value(messages=[{"id": "wamid.1", "type": "text"}]),
    "text is a string": value(messages=[{"from": ANA, "id": "w", "text": "hola"}]),
    "statuses are numbers": value(statuses=[3]),
    "contacts are strings": value(contacts=["Ana"]),
    "metadata is a list": value(metadata=[]),
    "no entry": b'{"object": "whatsapp_business_account"}',
    "a list": b"[]",
    "a string": b'"hola"',
    "not JSON": b"{hola",
    "100,000 levels deep": deep(100_000),
    "40 levels deep": deep(40),
}


@pytest.mark.parametrize("body", NOT_DELIVERIES.values(), ids=NOT_DELIVERIES.keys())
async def test_a_signed_body_that_is_not_a_delivery_gets_400_and_is_not_stored(
    graph: FakeGraphAPI, settings: Settings, server: tuple[Server, str], body: bytes
) -> None:
    assert await graph.deliver({}, raw=body) == (400, "")
    assert query(settings, "SELECT count(*) FROM webhook_inbox") == [(0,)]
    ana = graph.user(ANA)
    greeting, _notice = await ana.say("hola", n=2)  # the server goes on
    assert "Asistente PTE" in greeting.text


async def test_other_webhook_fields_are_acknowledged_and_skipped(
    graph: FakeGraphAPI, settings: Settings, server: tuple[Server, str]
) -> None:
    other = {
        "entry": [
            {
                "id": "WABA",
                "changes": [{"field": "account_update", "value": {"event": "VERIFIED"}}],
            }
        ]
    }
    assert await graph.deliver(other) == (200, "")
    assert graph.sent == []


TELEGRAM_NOT_UPDATES = {
    "a list": b"[]",
    "a number": b"7",
    "100,000 levels deep": deep(100_000),
    "no update_id": b'{"message": {}}',
    "message is a string": b'{"update_id": 5, "message": "hola"}',
    "a broken message": b'{"update_id": 5, "message": {"chat": 3}}',
    "not JSON": b"{update",
}


@pytest.mark.parametrize("body", TELEGRAM_NOT_UPDATES.values(), ids=TELEGRAM_NOT_UPDATES.keys())
async def test_a_telegram_body_that_is_not_an_update_gets_400(
    settings: Settings, server: tuple[Server, str], body: bytes
) -> None:
    _running, address = server
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{address}/webhooks/telegram", data=body, headers=headers) as response,
    ):
        assert response.status == 400
    assert query(settings, "SELECT count(*) FROM webhook_inbox") == [(0,)]


def signed(graph: FakeGraphAPI, body: bytes) -> str:
    return "sha256=" + hmac.new(graph.app_secret.encode(), body, hashlib.sha256).hexdigest()


async def test_stored_deliveries_that_fail_are_set_aside_and_start_up_goes_on(
    make_app: AppFactory,
    graph: FakeGraphAPI,
    api: FakeBotAPI,
    settings: Settings,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rows an older release stored (before shapes were checked), and a good one behind them:
    the server starts, answers the good one, and sets the others aside, logged once."""
    caplog.set_level(logging.INFO, logger="bot.channels.server")
    graph.clock = lambda: clock.now().timestamp()
    app = await make_app()
    ana = graph.user(ANA)
    good = graph.envelope(messages=[text_message(graph, "wamid.GOOD", "hola")], user=ana)
    for channel, body in [
        ("whatsapp", b'{"entry": "abc"}'),
        ("whatsapp", b'{"entry": [1, 2]}'),
        ("telegram", b"[]"),
        ("whatsapp", json.dumps(good).encode()),
    ]:
        await app.store.inbox_add(channel, body, clock.now())
    server = await build_server(app)
    [address, *_] = await server.start()
    graph.webhook_url = f"{address}/webhooks/whatsapp"
    try:
        greeting, _notice = await ana.expect(2)
        assert "Asistente PTE" in greeting.text
        await server.whatsapp.dispatcher.join()  # type: ignore[union-attr]
        for task in list(server._tasks):
            await task
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{address}/healthz?detail=1") as response,
        ):
            detail = await response.json()
        assert detail["inbox"] == {"pending": 0, "set_aside": 3}
    finally:
        await server.stop()
    logged = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert len(logged) == 3
    assert all("abc" not in line for line in logged)  # the reason, not the content

    caplog.clear()
    again = await build_server(await make_app())  # the next start replays nothing
    await again.start()
    await again.stop()
    assert [r for r in caplog.records if "set aside" in r.getMessage()] == []
    rows = query(settings, "SELECT channel, failed_at IS NOT NULL, error FROM webhook_inbox")
    assert [(channel, aside) for channel, aside, _error in rows] == [
        ("whatsapp", 1),
        ("whatsapp", 1),
        ("telegram", 1),
    ]


async def test_a_delivery_whose_processing_fails_is_set_aside_and_the_next_goes_on(
    graph: FakeGraphAPI,
    settings: Settings,
    server: tuple[Server, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    original = WhatsAppChannel.handle_message

    async def fragile(self: WhatsAppChannel, message: dict[str, Any], name: str) -> None:
        if message["text"]["body"] == "boom":
            raise RuntimeError("a bug met this delivery")
        await original(self, message, name)

    monkeypatch.setattr(WhatsAppChannel, "handle_message", fragile)
    running, _address = server
    ana = graph.user(ANA)
    bad = graph.envelope(messages=[text_message(graph, "wamid.BOOM", "boom")], user=ana)
    assert await graph.deliver(bad) == (200, "")
    greeting, _notice = await ana.say("hola", n=2)
    assert "Asistente PTE" in greeting.text
    assert running.whatsapp is not None
    await running.whatsapp.dispatcher.join()
    for task in list(running._tasks):
        await task
    assert query(settings, "SELECT error FROM webhook_inbox") == [("RuntimeError",)]
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in failures] == [
        f"webhook delivery {1} (whatsapp) set aside: RuntimeError"
    ]


async def test_a_delivery_replayed_by_three_starts_is_set_aside_unprocessed(
    make_app: AppFactory, graph: FakeGraphAPI, settings: Settings, clock: FakeClock
) -> None:
    """A delivery that kills the process while it runs would otherwise kill every start."""
    app = await make_app()
    ana = graph.user(ANA)
    body = graph.envelope(messages=[text_message(graph, "wamid.KILLER", "hola")], user=ana)
    inbox_id = await app.store.inbox_add("whatsapp", json.dumps(body).encode(), clock.now())
    async with app.store.reading() as conn:
        await conn.execute("UPDATE webhook_inbox SET attempts = 3 WHERE id = ?", (inbox_id,))
    server = await build_server(app)
    await server.start()
    await server.stop()
    assert graph.sent == []
    assert query(settings, "SELECT attempts, error FROM webhook_inbox") == [
        (3, "replayed by 3 starts")
    ]
