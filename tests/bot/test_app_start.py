"""What the first channel's start does once per process."""

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


async def test_what_is_alive_when_the_first_channel_starts_is_frozen(settings: Settings) -> None:
    """The garbage collector's full passes stop walking the modules, templates and app
    (gc.freeze): they live as long as the process."""
    app = await create_app(settings)
    first, second = IdleWorker(), IdleWorker()
    try:
        await app.start(first)
        frozen = gc.get_freeze_count()
        assert frozen > 1000
        await app.start(second)  # a second channel, or a second app: not again
        assert gc.get_freeze_count() == frozen
    finally:
        await app.stop(second)
        await app.stop(first)
        await app.close()
