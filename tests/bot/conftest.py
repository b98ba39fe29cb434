"""The Telegram harness shared by the tests of this folder: the fake Bot API on loopback
and `pte-bot run`'s polling loop started in-process on the test's ``settings``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.app import create_app
from bot.channels.telegram import TelegramChannel, run_polling
from bot.settings import Settings
from tests.fakes.telegram_api import FakeBotAPI

Stopper = Callable[[], Awaitable[None]]
Starter = Callable[[], Awaitable[Stopper]]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def start_bot(settings: Settings) -> AsyncIterator[Starter]:
    """Start the polling loop; returns a stopper. Call again to restart on the same data."""
    stoppers: list[Stopper] = []

    async def start() -> Stopper:
        app = await create_app(settings)
        stop = asyncio.Event()
        ready = asyncio.Event()
        task = asyncio.create_task(run_polling(TelegramChannel(app), stop, ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            waiter.cancel()
            await task  # it failed to start: show why
        stopped = False

        async def stopper() -> None:
            nonlocal stopped
            if stopped:
                return
            stopped = True
            stop.set()
            await task
            await app.close()

        stoppers.append(stopper)
        return stopper

    yield start
    for stopper in stoppers:
        await stopper()
