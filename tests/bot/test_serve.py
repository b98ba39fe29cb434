"""``pte-bot serve``: both webhooks and /healthz on one server; Telegram's secret header and
webhook registration; a missing setting stops it with one line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.channels.server import Server, build_server, channels_of
from bot.errors import ConfigError
from bot.settings import Settings
from tests.bot.serve_harness import PUBLIC, SECRET
from tests.bot.serve_harness import api as api  # a fixture
from tests.bot.serve_harness import server as server  # a fixture
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import whatsapp_settings
from tests.conftest import AppFactory
from tests.driver import FakeClock
from tests.fakes.graph_api import FakeGraphAPI
from tests.fakes.telegram_api import FakeBotAPI


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
        public_url=PUBLIC,
    )


async def test_both_webhooks_and_health_on_one_server(
    api: FakeBotAPI, graph: FakeGraphAPI, server: tuple[Server, str]
) -> None:
    running, address = server
    # Telegram's webhook was registered with the secret, at the public URL.
    assert api.webhook is not None
    assert api.webhook["url"] == "https://asistente.example.gob.pe/webhooks/telegram"
    assert api.webhook["secret_token"] == SECRET

    ana = api.user(7001, "Ana")
    update = await ana.send("/start")  # what Telegram would post to the webhook
    async with aiohttp.ClientSession() as session:
        url = f"{address}/webhooks/telegram"
        for wrong in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
            async with session.post(url, json=update, headers=wrong) as response:
                assert (response.status, await response.text()) == (401, "")
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with session.post(url, json=update, headers=headers) as response:
            assert response.status == 200
        [notice] = await ana.expect(1)  # the greeting and the notice: one message
        assert "Asistente PTE" in notice.text
        assert notice.button_labels == ["Acepto", "No acepto", "Aviso completo"]
        # The same update again (Telegram retrying) is answered once.
        async with session.post(url, json=update, headers=headers) as response:
            assert response.status == 200
        await running.dispatcher.join()
        assert running.telegram is not None
        await running.telegram.worker.drain()
        assert ana.pending == []

        async with session.get(f"{address}/healthz") as response:
            assert (response.status, await response.text()) == (200, "ok\n")

    # WhatsApp on the same server.
    wa = graph.user("51987654321")
    _greeting, wa_notice = await wa.say("hola", n=2)
    assert wa_notice.labels == ["Acepto", "No acepto", "Aviso completo"]


async def test_health_fails_when_the_store_is_unreachable(server: tuple[Server, str]) -> None:
    running, address = server
    await running.app.store.conn.close()
    async with aiohttp.ClientSession() as session, session.get(f"{address}/healthz") as response:
        assert response.status == 503


def test_a_configured_channel_without_its_secret_is_named(tmp_path: Path) -> None:
    def settings(**values: object) -> Settings:
        return Settings(data_dir=tmp_path, _env_file=None, **values)  # type: ignore[call-arg,arg-type]

    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN or WHATSAPP_TOKEN"):
        channels_of(settings())
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        channels_of(settings(telegram_bot_token="1:x"))
    with pytest.raises(ConfigError, match="WHATSAPP_APP_SECRET"):
        channels_of(
            settings(whatsapp_token="t", whatsapp_phone_number_id="1", whatsapp_verify_token="v")
        )
    assert channels_of(settings(telegram_bot_token="1:x", telegram_webhook_secret="s")) == (
        True,
        False,
    )


def test_serve_without_a_channel_stops_with_one_line(tmp_path: Path) -> None:
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PTEBOT_DATA_DIR"] = str(tmp_path / "data")
    env["WHATSAPP_TOKEN"] = "t"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "pte-bot: missing setting WHATSAPP_PHONE_NUMBER_ID (see README, Configure)"
    ]


async def test_acknowledged_deliveries_left_by_a_dead_process_are_processed_at_start(
    api: FakeBotAPI, make_app: AppFactory, clock: FakeClock
) -> None:
    import json

    app = await make_app()
    ana = api.user(7002, "Ana")
    update = await ana.send("/start")  # answered 200, then the process died
    await app.store.inbox_add("telegram", json.dumps(update).encode(), clock.now())
    server = await build_server(app)
    await server.start()
    try:
        [greeting] = await ana.expect(1)
        assert "Asistente PTE" in greeting.text
        await server.dispatcher.join()
        await asyncio.gather(*server._tasks)
        assert await app.store.inbox_pending() == []
    finally:
        await server.stop()


async def test_a_flooding_user_is_told_once_and_others_are_answered(
    api: FakeBotAPI, server: tuple[Server, str]
) -> None:
    running, address = server
    ana, luis = api.user(7101, "Ana"), api.user(7102, "Luis")
    flood = [await ana.send(f"hola {n}") for n in range(100)]  # 100 messages at once
    update = await luis.send("/start")
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    url = f"{address}/webhooks/telegram"
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:

        async def post(body: dict[str, object]) -> int:
            async with session.post(url, json=body, headers=headers) as response:
                return response.status

        statuses = await asyncio.gather(*(post(body) for body in [*flood, update]))
    assert set(statuses) == {200}
    [greeting] = await luis.expect(1)  # the other user is answered
    waited = time.monotonic() - started  # measured and reported, not asserted
    assert "Asistente PTE" in greeting.text
    await running.dispatcher.join()
    assert running.telegram is not None
    await asyncio.gather(*running._tasks_flood)
    await running.telegram.worker.drain()
    texts = [m.text for m in ana.messages]
    assert sum("Recibí muchos mensajes seguidos" in t for t in texts) == 1  # told once
    assert running.dispatcher.dropped > 0
    print(
        f"\nflood: {running.dispatcher.dropped} of 100 dropped, {len(texts)} replies to the"
        f" flooder; the other user's reply {waited * 1000:.0f} ms after the burst began"
    )
    assert running.dispatcher.dropped >= 70  # most of the flood was not answered one by one
