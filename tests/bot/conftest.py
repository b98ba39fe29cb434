"""The Telegram harness shared by the tests of this folder: the fake Bot API on loopback
and `pte-bot run`'s polling loop started in-process on the test's ``settings``."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.app import create_app
from bot.channels.telegram import TelegramChannel, run_polling
from bot.settings import Settings
from bot.store import events
from tests.conftest import close_all
from tests.fakes.telegram_api import FakeBotAPI

Stopper = Callable[[], Awaitable[None]]
Starter = Callable[[], Awaitable[Stopper]]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


def drained_probe(
    settings: Settings, channel: str = "telegram"
) -> Callable[[int, int | None], bool]:
    """For the fake's settle(): has the bot processed this update, and sent everything it
    committed for this chat? Read from its SQLite file, read-only (WAL lets us read while it
    writes)."""

    def drained(chat_id: Any, update_id: Any | None) -> bool:
        path = settings.database_path
        if not path.exists():
            return False
        uri = f"file:{path}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1)) as conn:
                if update_id is not None and not events.seen(conn, channel, str(update_id)):
                    return False
                waiting = conn.execute(
                    "SELECT 1 FROM outbox WHERE channel = ? AND chat_id = ? AND state = 'pending'"
                    " LIMIT 1",
                    (channel, str(chat_id)),
                ).fetchone()
        except sqlite3.OperationalError:  # the schema is being created: not yet
            return False
        return waiting is None

    return drained


@pytest.fixture
async def start_bot(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Starter]:
    """Start the polling loop; returns a stopper. Call again to restart on the same data.
    The app mails with the test's ``mailer`` when the test asks for one (else as without an
    SMTP server: .eml files under the data folder)."""
    stoppers: list[Stopper] = []
    if "api" in request.fixturenames:
        request.getfixturevalue("api").drained = drained_probe(settings)
    mailer = request.getfixturevalue("mailer") if "mailer" in request.fixturenames else None

    async def start() -> Stopper:
        app = await create_app(settings, mailer=mailer)
        stop = asyncio.Event()
        ready = asyncio.Event()
        task = asyncio.create_task(run_polling(TelegramChannel(app), stop, ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            waiter.cancel()
            try:
                await task  # it failed to start: show why
            finally:
                await app.close()  # its store's thread would keep pytest from exiting
        stopped = False

        async def stopper() -> None:
            nonlocal stopped
            if stopped:
                return
            stopped = True
            stop.set()
            try:
                await task
            finally:
                await app.close()

        stoppers.append(stopper)
        return stopper

    yield start
    await close_all(reversed(stoppers))
