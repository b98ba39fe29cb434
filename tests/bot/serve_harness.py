"""``pte-bot serve``'s server started in-process with both channels' fakes: the fake Bot API
(``api``), Telegram's webhook secret, and the server on the test's app (``server``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.channels.server import Server, build_server
from tests.conftest import AppFactory
from tests.driver import FakeClock
from tests.fakes.graph_api import FakeGraphAPI
from tests.fakes.telegram_api import FakeBotAPI

SECRET = "s3cret-Token_for-webhooks"


PUBLIC = "https://asistente.example.gob.pe/"


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def server(
    make_app: AppFactory, graph: FakeGraphAPI, clock: FakeClock
) -> AsyncIterator[tuple[Server, str]]:
    app = await make_app()
    graph.clock = lambda: clock.now().timestamp()
    server = await build_server(app)
    [address, *_] = await server.start()
    graph.webhook_url = f"{address}/webhooks/whatsapp"
    try:
        yield server, address
    finally:
        await server.stop()
