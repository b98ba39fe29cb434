"""Delivery of committed outbox rows, in order per chat, retried until they go.

Each chat has its own queue drained by one task, so a slow or failing chat never blocks the
others and a chat's messages never overtake each other. A transient failure (429 with
``retry_after``, 5xx, time-out) waits and retries the same row; a permanent one (the user
blocked the bot) marks the row failed, visible to staff. Rows marked sent are written in
batches; a crash before the mark means the message goes out again after restart
(at-least-once delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from bot.errors import PermanentDelivery, TransientDelivery
from bot.store import OutboxRow, Store

if TYPE_CHECKING:
    from bot.app import Clock

log = logging.getLogger(__name__)


class Transport(Protocol):
    """A channel's way to deliver one rendered row; returns the channel's message id."""

    async def deliver(self, row: OutboxRow) -> str | None: ...


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        channel: str,
        transport: Transport,
        clock: Clock,
        *,
        concurrency: int = 16,
        max_backoff: float = 300.0,
        sleep: _Sleep | None = None,
        only_chat: str | None = None,
    ) -> None:
        self.store = store
        self.channel = channel
        # A terminal delivers its own user's messages only; other chats' rows wait for theirs.
        self.only_chat = only_chat
        self.transport = transport
        self.clock = clock
        self.max_backoff = max_backoff
        self._sleep = sleep or asyncio.sleep
        self._queues: dict[str, deque[OutboxRow]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._done: list[tuple[int, str | None]] = []
        self._flush_wanted = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._known: set[int] = set()  # ids submitted and not yet delivered
        self.sent = 0

    async def start(self) -> None:
        """Resume what a previous run left undelivered, then accept new rows."""
        self._flusher = asyncio.create_task(self._flush_loop(), name="outbox-flush")
        pending = await self.store.pending_outbox(self.channel)
        if pending:
            log.info("resuming %d undelivered messages", len(pending))
        current, superseded = _latest_edits(pending)
        # An older edit of a card that a later row edits again must not be replayed: it
        # would show the officer a card they already moved past.
        await self.store.mark_sent(((row.id, None) for row in superseded), self.clock.now())
        self.submit(current)

    async def pick_up(self) -> None:
        """Take rows another process committed (e.g. `pte-bot staff set-state`)."""
        marking = {row_id for row_id, _ref in self._done}
        pending = await self.store.pending_outbox(self.channel)
        self.submit(row for row in pending if row.id not in marking)

    def submit(self, rows: Iterable[OutboxRow]) -> None:
        for row in rows:
            if row.id in self._known or row.channel != self.channel:
                continue  # already queued, or another channel's worker delivers it
            if self.only_chat is not None and row.chat_id != self.only_chat:
                continue
            self._known.add(row.id)
            queue = self._queues.setdefault(row.chat_id, deque())
            queue.append(row)
            if row.chat_id not in self._tasks:
                self._idle.clear()
                self._tasks[row.chat_id] = asyncio.create_task(
                    self._drain_chat(row.chat_id), name=f"outbox-{row.chat_id}"
                )

    async def drain(self) -> None:
        """Wait until every submitted row is delivered (or failed) and marked."""
        await self._idle.wait()
        await self._flush()

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self._flush()

    # -------------------------------------------------------------- internals
    async def _drain_chat(self, chat_id: str) -> None:
        queue = self._queues[chat_id]
        try:
            while queue:
                row = queue[0]
                await self._deliver(row)
                queue.popleft()
                self._known.discard(row.id)
        finally:
            del self._tasks[chat_id]
            if not queue:
                del self._queues[chat_id]
            if not self._tasks:
                self._idle.set()

    async def _deliver(self, row: OutboxRow) -> None:
        attempt = row.attempts
        while True:
            try:
                async with self._slots:
                    ref = await self.transport.deliver(row)
            except TransientDelivery as error:
                attempt += 1
                delay = error.retry_after or min(self.max_backoff, 0.5 * 2 ** min(attempt, 12))
                log.warning(
                    "delivery of outbox row %d failed (%s); retry %d in %.1fs",
                    row.id, error, attempt, delay,
                )  # fmt: skip
                await self.store.mark_attempt(
                    row.id,
                    str(error),
                    failed=False,
                    next_attempt=self.clock.now() + timedelta(seconds=delay),
                )
                await self._sleep(delay)
            except PermanentDelivery as error:
                log.warning("outbox row %d undeliverable: %s", row.id, error)
                await self.store.mark_attempt(row.id, str(error), failed=True, next_attempt=None)
                return
            else:
                self.sent += 1
                self._done.append((row.id, ref))
                self._flush_wanted.set()
                return

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            await self._flush()

    async def _flush(self) -> None:
        done, self._done = self._done, []
        await self.store.mark_sent(done, self.clock.now())


class _Sleep(Protocol):
    async def __call__(self, delay: float, /) -> None: ...


def _latest_edits(rows: list[OutboxRow]) -> tuple[list[OutboxRow], list[OutboxRow]]:
    """Split pending rows into those to deliver and edits superseded by a later edit."""
    last_edit: dict[tuple[str, str], int] = {}
    refs: dict[int, tuple[str, str]] = {}
    for row in rows:
        ref = json.loads(row.payload).get("edit_ref")
        if ref is not None:
            refs[row.id] = (row.chat_id, ref)
            last_edit[(row.chat_id, ref)] = row.id
    keep = [r for r in rows if r.id not in refs or last_edit[refs[r.id]] == r.id]
    dropped = [r for r in rows if r.id in refs and last_edit[refs[r.id]] != r.id]
    return keep, dropped
