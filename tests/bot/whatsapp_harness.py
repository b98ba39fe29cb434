"""The WhatsApp harness: the fake Graph API on loopback and ``pte-bot serve``'s server started
in-process on the test's settings, with Meta's webhooks pointed at it.

Test modules import the fixtures they use (``graph``, ``wa_settings``, ``wa_server``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.channels.server import Server, build_server
from bot.settings import Settings
from tests.bot.conftest import drained_probe
from tests.conftest import AppFactory
from tests.driver import FakeClock
from tests.fakes.graph_api import FakeGraphAPI

VERIFY_TOKEN = "verify-me-please"
HELP_DESK = "mesadeayuda@example.gob.pe"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI() as api:
        yield api


def whatsapp_settings(tmp_path: Path, graph: FakeGraphAPI, **extra: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        whatsapp_token=graph.token,
        whatsapp_phone_number_id=graph.phone_number_id,
        whatsapp_app_secret=graph.app_secret,
        whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_graph_url=graph.base_url,
        http_port=0,
        helpdesk_email=HELP_DESK,
        _env_file=None,
        **extra,
    )


@pytest.fixture
async def wa_server(
    make_app: AppFactory, graph: FakeGraphAPI, clock: FakeClock, settings: Settings
) -> AsyncIterator[Server]:
    """``pte-bot serve`` with WhatsApp on; the fake posts its webhooks to it."""
    graph.drained = drained_probe(settings, "whatsapp")  # type: ignore[assignment]
    app = await make_app()
    server = await build_server(app)
    [address, *_] = await server.start()
    graph.webhook_url = f"{address}/webhooks/whatsapp"
    graph.clock = lambda: clock.now().timestamp()  # Meta's timestamps on the test's clock
    try:
        yield server
    finally:
        await server.stop()


def query(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the bot's SQLite file directly, read-only."""
    uri = f"file:{settings.database_path}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        return list(conn.execute(sql, params).fetchall())


def refused(graph: FakeGraphAPI) -> list[str]:
    return [str(call) for call in graph.calls if call.status != 200]
