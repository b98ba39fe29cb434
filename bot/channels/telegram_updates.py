"""Polled Telegram updates: different chats at the same time, one chat in order.

PTB processes polled updates one at a time unless the ``Application`` is given an update
processor. :class:`ChatUpdateProcessor` is that processor: it queues each update behind the
earlier updates of its own chat in a :class:`~bot.channels.dispatch.ChatDispatcher` (as the webhook
server does), so an officer whose file is being checked delays nobody else.

Order per chat holds because PTB starts one task per update in ``update_id`` order and each
task queues its update before it first waits; PTB's own semaphore (which would otherwise
decide who queues first) is set far above the dispatcher's bound so it never makes a task
wait. After a restart Telegram hands back the unconfirmed updates in ``update_id`` order and
the same holds; those already committed are ignored by their event id. PTB's ``stop`` waits
until every fetched update has run (it joins its update queue), so a clean stop, whose last
``getUpdates`` confirms them, loses none.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.channels.dispatch import ChatDispatcher

NEVER_WAIT = 1 << 20  # PTB's semaphore: never the thing that makes an update wait


def chat_key(update: object) -> str:
    """The queue an update belongs to: its chat's, or its own when it has no chat."""
    if isinstance(update, Update):
        chat = update.effective_chat
        if chat is not None:
            return f"tg:{chat.id}"
        return f"tg-update:{update.update_id}"
    return f"tg-object:{id(update)}"


class ChatUpdateProcessor(BaseUpdateProcessor):
    def __init__(
        self, concurrency: int = 64, on_flood: Callable[[str], None] | None = None
    ) -> None:
        super().__init__(NEVER_WAIT)
        self.dispatcher = ChatDispatcher(concurrency, on_flood=on_flood)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        async def work() -> None:
            await coroutine

        ran = self.dispatcher.submit(chat_key(update), work)
        if ran.done():  # dropped: the chat is flooding (see ChatDispatcher)
            if inspect.iscoroutine(coroutine):
                coroutine.close()
            return
        await ran

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        await self.dispatcher.join()
