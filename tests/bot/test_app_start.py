"""What the first channel's start and the last channel's stop do for the whole process."""

from __future__ import annotations

import gc
from collections.abc import Iterable

from bot.app import create_app
from bot.settings import Settings
from bot.store.database import OutboxRow


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
