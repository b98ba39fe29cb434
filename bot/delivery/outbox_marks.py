"""The outbox worker's marks of delivered rows as sent (:class:`SentMarks`, a mixin of
:class:`~bot.delivery.outbox.OutboxWorker`, which sets the attributes declared here).

**Marking sent.** A chat's next row waits until the previous one's mark as sent has
committed (marks of all chats are grouped into one transaction, itself carried by the
store's running batch of turns when there is one). The mark of a chat's last queued row is
not waited for: it rides in the store's next batch of turns (:meth:`Store.mark_sent_later`,
at most :data:`~bot.store.outbox.MARK_DELAY` later), and a new row of that chat waits for
it first. A crash can therefore repeat at most the one row per chat whose send had returned
(or was in flight) and whose mark had not committed yet.

Until a mark commits, its rows still read as pending in the store: ``_marking`` names them,
so that :meth:`~bot.delivery.outbox.OutboxWorker.pick_up` does not send them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.store.database import OutboxRow, Store

log = logging.getLogger(__name__)


class SentMarks:
    """Marking delivered rows sent: grouped into one transaction for all chats
    (``_flush_loop``), or left to ride in the store's next batch of turns (``_mark_later``)."""

    store: Store
    clock: Clock
    sent: int  # messages delivered (a joined message counts once)
    _done: list[tuple[int, str | None]]  # delivered, waiting for the next flush
    _marking: set[int]  # delivered, being marked sent right now
    _later: dict[str, asyncio.Future[None]]  # per chat, its mark left to commit later
    _flush_wanted: asyncio.Event
    _flusher: asyncio.Task[None] | None
    # Resolved when the flush that takes the rows now in ``_done`` has committed.
    _next_flush: asyncio.Future[None] | None

    async def _mark_sent(self, row_id: int, ref: str | None, others: Sequence[int] = ()) -> None:
        """Record a delivered row (and the rows joined into it); returns once the mark has
        committed (grouped with the marks of other chats), so the chat's next send never
        precedes it."""
        self.sent += 1
        self._done.extend((other, ref) for other in others)
        self._done.append((row_id, ref))
        if self._flusher is None or self._flusher.done():
            return  # not started (or stopping): drain() and stop() mark what is done
        if self._next_flush is None:
            self._next_flush = asyncio.get_running_loop().create_future()
        committed = self._next_flush
        self._flush_wanted.set()
        await asyncio.shield(committed)

    def _mark_later(self, row: OutboxRow, ref: str | None, others: Sequence[int]) -> None:
        """Record a delivered row that nothing of its chat waits behind: the mark rides in
        the store's next batch of turns, most often the next update's, instead of a
        transaction of its own (:meth:`Store.mark_sent_later`). Until it commits the row
        still reads as pending (``_marking``: pick_up skips it), and the chat's next row
        waits for it (:meth:`_marked`)."""
        self.sent += 1
        ids = [*others, row.id]
        self._marking.update(ids)
        committed = self.store.mark_sent_later([(row_id, ref) for row_id in ids], self.clock.now())
        self._later[row.chat_id] = committed

        def done(future: asyncio.Future[None]) -> None:
            self._marking.difference_update(ids)
            if self._later.get(row.chat_id) is future:
                del self._later[row.chat_id]
            if not future.cancelled() and future.exception() is not None:
                # The rows stay pending in the store: sent again after a restart.
                log.error(
                    "marking delivered outbox rows as sent failed", exc_info=future.exception()
                )

        committed.add_done_callback(done)

    async def _marked(self, chat_id: str) -> None:
        """Wait for the chat's last mark left to commit later (a crash may repeat at most
        one row per chat), hurrying it: a new row of the chat is queued."""
        committed = self._later.get(chat_id)
        if committed is None or committed.done():
            return
        self.store.hurry_marks()
        with contextlib.suppress(Exception):
            await asyncio.shield(committed)

    async def _marks_settled(self) -> None:
        """Every mark left to commit later has committed (or failed, and was logged)."""
        while self._later:
            self.store.hurry_marks()
            await asyncio.gather(*self._later.values(), return_exceptions=True)

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            committed, self._next_flush = self._next_flush, None
            try:
                await self._flush()
            except Exception:
                # The rows stay pending in the store: sent again after a restart.
                log.exception("marking delivered outbox rows as sent failed")
            finally:
                if committed is not None:
                    committed.set_result(None)

    async def _flush(self) -> None:
        done, self._done = self._done, []
        ids = {row_id for row_id, _ref in done}
        # Until the mark commits the rows still read as pending: pick_up must not resend them.
        self._marking |= ids
        try:
            await self.store.mark_sent(done, self.clock.now())
        finally:
            self._marking -= ids
