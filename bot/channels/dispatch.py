"""Run work for different chats at the same time and for the same chat one at a time.

Every channel feeds inbound updates through a :class:`ChatDispatcher`: an update waits only
for earlier updates of its own chat, never for other chats. A global limit bounds how many
run at once. The store's transaction lock still serialises the short database part; what
runs concurrently is everything around it (downloading a file, checking a PDF, delivery).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[None]]


MAX_QUEUED = 20  # per chat: more than a person types, as many as two albums of photos


class ChatDispatcher:
    """Per-chat queues; a chat with ``max_queued`` updates waiting is flooding: what it sends
    next is dropped (it costs nothing and delays no one) and ``on_flood(chat)`` is called
    once, until its queue has drained (e.g. to tell the person to slow down)."""

    def __init__(
        self,
        concurrency: int = 64,
        *,
        max_queued: int | None = MAX_QUEUED,
        on_flood: Callable[[str], None] | None = None,
    ) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._queues: dict[str, deque[Work]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self.max_queued = max_queued
        self.on_flood = on_flood
        self._flooding: set[str] = set()
        self.dropped = 0

    def submit(self, chat: str, work: Work, *, droppable: bool = True) -> asyncio.Future[None]:
        """Queue ``work`` behind what ``chat`` already has queued; return at once.

        The returned future is done once the work has run (whether it succeeded or not: a
        failure is logged here), e.g. to forget a durably received webhook delivery; it is
        cancelled if the dispatcher stops first. Work that is not ``droppable`` (what the
        platform says about our own messages) is queued even for a flooding chat."""
        ran: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(chat)
        limit = self.max_queued
        flooded = limit is not None and queue is not None and len(queue) >= limit
        if droppable and flooded:
            self.dropped += 1
            if chat not in self._flooding:
                self._flooding.add(chat)
                if self.on_flood is not None:
                    self.on_flood(chat)
            ran.set_result(None)  # nothing to do later: it was dropped
            return ran

        async def tracked() -> None:
            try:
                await work()
            except asyncio.CancelledError:
                ran.cancel()  # stopped before it ran to the end: not done
                raise
            finally:
                if not ran.done():
                    ran.set_result(None)

        self._queues.setdefault(chat, deque()).append(tracked)
        if chat not in self._tasks:
            self._idle.clear()
            self._tasks[chat] = asyncio.create_task(self._drain(chat), name=f"chat-{chat}")
        return ran

    async def run(self, chat: str, work: Work) -> None:
        """Like :meth:`submit`, and wait until this work has run."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def wrapped() -> None:
            try:
                await work()
            except BaseException as error:
                if not done.done():
                    done.set_exception(error)
                raise
            else:
                done.set_result(None)

        self.submit(chat, wrapped)
        await done

    @property
    def busy_chats(self) -> int:
        return len(self._tasks)

    async def join(self) -> None:
        """Wait until every queued piece of work has run."""
        await self._idle.wait()

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _drain(self, chat: str) -> None:
        queue = self._queues[chat]
        try:
            while queue:
                work = queue[0]
                try:
                    async with self._slots:
                        await work()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("work for a chat failed; its next messages go on")
                queue.popleft()
        finally:
            del self._tasks[chat]
            self._flooding.discard(chat)
            if not queue:
                del self._queues[chat]
            if not self._tasks:
                self._idle.set()
