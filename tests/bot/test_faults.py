"""The Bot API failing for a while: 429 with retry_after, 500, a dropped connection and a
time-out. Every reply arrives afterwards, once, in order per chat; other chats go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from telegram.request import HTTPXRequest

from bot.app import create_app
from bot.channels.telegram import TelegramChannel, run_polling
from bot.settings import Settings
from tests.fakes.telegram_api import HANG, RESET, FakeBotAPI


@pytest.fixture
def settings(tmp_path: object, api: FakeBotAPI) -> Settings:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    return Settings(
        data_dir=tmp_path / "data",
        telegram_bot_token=api.token,
        telegram_base_url=api.base_url,
        telegram_base_file_url=api.base_file_url,
        _env_file=None,
    )


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[None]:
    """`pte-bot run`'s loop, with short HTTP time-outs so a hung call fails fast."""
    app = await create_app(settings)
    request = HTTPXRequest(connect_timeout=1.0, read_timeout=0.5, write_timeout=1.0)
    channel = TelegramChannel(app, request=request)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_polling(channel, stop, ready))
    await asyncio.wait_for(ready.wait(), 30)
    yield
    stop.set()
    await task
    await app.close()


async def test_every_reply_arrives_in_order_through_a_storm(api: FakeBotAPI, bot: None) -> None:
    ana, luis = api.user(6001, "Ana"), api.user(6002, "Luis")
    # One kind of failure in front of each exchange (a failing row is retried with a
    # growing backoff; spreading them keeps the test short).
    api.fail("sendMessage", times=1, status=429, retry_after=1)
    [notice] = await ana.say("/start", timeout=60)  # the greeting and the notice: one message
    assert "Asistente PTE" in notice.text  # first things first, whatever failed
    assert "¿Aceptas?" in notice.text
    api.fail("sendMessage", times=1, status=500)
    await luis.say("/start", timeout=60)
    api.fail("sendMessage", times=1, status=RESET)
    [menu] = await ana.press("Acepto")
    assert "¿Qué necesitas hacer?" in menu.text
    api.fail("sendMessage", times=1, status=HANG, retry_after=2)
    await luis.press("Acepto")
    statuses = [c.status for c in api.calls_to("sendMessage")]
    for failure in (429, 500, RESET, HANG):
        assert failure in statuses
    for user in (ana, luis):
        sent = [m.text for m in user.messages]
        # Nothing twice, nothing lost: two messages (each acknowledgement joined the
        # question after it, issue 18).
        assert len(sent) == len(set(sent)) == 2
