"""What the first channel's start and the last channel's stop do for the whole process."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterable
from datetime import datetime

import pytest

import bot.app
from bot.app import JOBS_EVERY, JOBS_FIRST_AFTER, create_app
from bot.settings import Settings
from bot.store.database import OutboxRow
from tests.conftest import AppFactory


class IdleWorker:
    def submit(self, rows: Iterable[OutboxRow]) -> None:
        pass

    async def pick_up(self) -> None:
        pass


async def test_what_is_alive_while_channels_run_is_frozen_until_the_last_stops(
    settings: Settings,
) -> None:
    """The garbage collector's full passes stop walking the modules, templates and app
    (gc.freeze) while channels run; the last channel's stop gives them back."""
    app = await create_app(settings)
    first, second = IdleWorker(), IdleWorker()
    try:
        await app.start(first)
        frozen = gc.get_freeze_count()  # frozen objects freed meanwhile leave the count
        assert frozen > 1000
        await app.start(second)  # a second channel: nothing more to freeze
        assert gc.get_freeze_count() <= frozen
        await app.stop(second)
        assert gc.get_freeze_count() > frozen // 2
    finally:
        await app.stop(second)
        await app.stop(first)
        await app.close()
    assert gc.get_freeze_count() == 0


async def test_the_jobs_first_run_waits_so_that_it_never_delays_the_first_poll(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduled jobs start with the first channel, but their first run (the holidays
    the staff digest reads, a purge) waits :data:`JOBS_FIRST_AFTER`: on the event loop it
    would hold up the channel's start. Whatever the time of day."""
    app = await make_app()
    runs: list[datetime] = []

    async def run_all(context: object, now: datetime) -> list[OutboxRow]:
        runs.append(now)
        return []

    waits: list[tuple[float, asyncio.Event]] = []  # each sleep, until the test releases it
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: object = None) -> object:
        if delay == 0:
            return await real_sleep(0, result)
        released = asyncio.Event()
        waits.append((delay, released))
        await released.wait()
        return result

    monkeypatch.setattr(bot.app, "run_all", run_all)
    monkeypatch.setattr(asyncio, "sleep", sleep)
    worker = IdleWorker()
    await app.start(worker)
    try:
        for _ in range(20):
            await real_sleep(0)
        assert runs == []
        first = [released for delay, released in waits if delay == JOBS_FIRST_AFTER]
        assert len(first) == 1
        first[0].set()
        for _ in range(20):
            await real_sleep(0)
        assert len(runs) == 1
        assert JOBS_EVERY in [delay for delay, _released in waits]  # then every 10 minutes
    finally:
        await app.stop(worker)
