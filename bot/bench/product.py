"""The product as a ``pte-bot bench`` contender: our bot on a fresh SQLite file.

:class:`~bot.channels.telegram.TelegramChannel` on a fresh SQLite file in a temporary
directory: state, event id and replies committed per update, replies sent by the outbox
worker. No rate limiter (Telegram's 30 messages/s would be the only thing measured). After
the run, :meth:`Product.checks` reads back what the database holds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from telegram import Update

from bot.app import create_app
from bot.bench.fake_telegram import TOKEN, FakeBotApi, FakeTelegram
from bot.bench.officers import FIRST_CHAT
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_transport import TelegramApp
from bot.settings import Settings
from bot.store.events import EVENTS_COUNT


class Product:
    """Our bot: ``TelegramChannel`` + ``App`` on a fresh SQLite file."""

    name = "product"

    def __init__(
        self, settings: Settings, server: FakeTelegram, data_dir: Path, window: int = 1
    ) -> None:
        # window 1: each update runs to its end before the next is fed (like the peers);
        # more: fed as polling feeds them, through the channel's update processor (chats
        # at the same time, one chat in order), with at most ``window`` in flight.
        self.window = window
        self._slots: asyncio.Semaphore | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self.settings = settings.model_copy(
            update={
                "data_dir": data_dir,
                "telegram_bot_token": SecretStr(TOKEN),
                "staff_telegram_ids": frozenset(),
            }
        )
        self.server = server
        self.channel: TelegramChannel | None = None

    @property
    def application(self) -> TelegramApp:
        assert self.channel is not None
        return self.channel.application

    async def start(self) -> None:
        app = await create_app(self.settings)
        self.channel = TelegramChannel(
            app,
            request=FakeBotApi(self.server),
            get_updates_request=FakeBotApi(self.server),
            rate_limiter=False,
        )
        await self.channel.start()

    async def feed(self, update: Update) -> None:
        application = self.application
        if self.window <= 1:
            await application.process_update(update)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.window)
        slots = self._slots
        await slots.acquire()
        task = asyncio.create_task(
            application.update_processor.process_update(update, application.process_update(update))
        )
        self._in_flight.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._in_flight.discard(task)
            slots.release()

        task.add_done_callback(done)

    async def drain(self) -> None:
        assert self.channel is not None
        await asyncio.gather(*self._in_flight)
        await self.channel.worker.drain()

    async def checks(self, officers: int, updates: int) -> dict[str, Any]:
        """What the database holds: every update, state and reply committed."""
        assert self.channel is not None
        async with self.channel.app.store.reading() as conn:
            counts = {}
            for name, sql in (
                ("events", EVENTS_COUNT),
                ("conversations", "SELECT count(*) FROM conversations"),
                ("sent", "SELECT count(*) FROM outbox WHERE state = 'sent'"),
                ("outbox", "SELECT count(*) FROM outbox"),
            ):
                rows = list(await conn.execute_fetchall(sql))
                counts[name] = int(rows[0][0])
            first = await conn.execute_fetchall(
                "SELECT payload FROM outbox WHERE chat_id = ? ORDER BY id", (str(FIRST_CHAT),)
            )
        durable = (
            counts["events"] == updates
            and counts["conversations"] == officers
            and counts["sent"] == counts["outbox"]
        )
        store = self.channel.app.store
        return {
            "db": counts,
            "durable_ok": durable,
            "first_payloads": [r[0] for r in first],
            "turns_per_commit": round(store.batched_turns / max(1, store.batches), 2),
            # Delivery marks committed with a batch of turns, not in a transaction alone.
            "marks_carried": store.carried_marks,
        }

    async def stop(self) -> None:
        assert self.channel is not None
        await self.channel.stop()
        await self.channel.app.close()
