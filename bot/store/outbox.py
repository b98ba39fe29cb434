"""The outbox's rows in the store: those pending delivery, marking delivered rows sent,
counting a failed attempt, and a failed delivery's apology.

**Delivery marks ride along.** Marking a delivered message sent is a transaction too. When
turns are running or queued, the mark waits in ``Store._marks`` and the batch runs it, in a
savepoint of its own, just before its COMMIT (:meth:`OutboxQueries.mark_sent`). A mark
nothing waits behind (:meth:`OutboxQueries.mark_sent_later`, the last message of a chat's
reply) does not wait at all: the next batch of turns, most often the next update's, carries
it; if none comes within :data:`MARK_DELAY` it is committed alone. A batch that rolls back
hands its marks back to be committed after it; a mark that fails is undone alone.

Mixed into ``bot.store.database.Store`` (see :mod:`bot.store.store_base`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

from bot.store.marks import Mark, forget_delivered, mark_work, no_work
from bot.store.rows import OutboxRow, iso
from bot.store.store_base import StoreBase

# How long a delivery mark made with Store.mark_sent_later waits for a batch of turns to
# carry it before it is committed alone: a crash meanwhile sends its message again.
MARK_DELAY = 0.05


class OutboxQueries(StoreBase):
    """What delivery asks of the store about outbox rows."""

    async def pending_outbox(self, channel: str, limit: int = 10_000) -> list[OutboxRow]:
        async with self.reading() as conn:
            found = await conn.execute_fetchall(
                "SELECT id, channel, chat_id, payload, bulk, attempts FROM outbox"
                " WHERE state = 'pending' AND channel = ? ORDER BY id LIMIT ?",
                (channel, limit),
            )
        return [OutboxRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in found]

    async def mark_sent(self, done: Iterable[tuple[int, str | None]], now: datetime) -> None:
        """Mark delivered rows sent (``(row id, message ref)``); returns once committed.

        With turns running or queued the mark rides in their batch's transaction, just
        before its COMMIT (or, if that batch had already committed, right after it, alone);
        otherwise it is a transaction of its own, now."""
        work = mark_work(done, now)
        if work is None:
            return
        if self._leader is None:
            async with self._lock:
                await self._write(work)
            return
        mark = Mark(work, asyncio.get_running_loop().create_future())
        self._marks.append(mark)
        await mark.done

    def mark_sent_later(
        self, done: Iterable[tuple[int, str | None]], now: datetime
    ) -> asyncio.Future[None]:
        """Like :meth:`mark_sent`, without waiting: the mark rides in the next batch of
        turns (most often the very next update's), or is committed alone after
        :data:`MARK_DELAY` if no turn comes first. The future says when it committed."""
        loop = asyncio.get_running_loop()
        mark = Mark(mark_work(done, now) or no_work, loop.create_future())
        self._marks.append(mark)
        if self._leader is None and self._mark_timer is None:
            self._mark_timer = loop.call_later(MARK_DELAY, self.hurry_marks)
        return mark.done

    def hurry_marks(self) -> None:
        """Commit the waiting delivery marks now (alone if no turn is running)."""
        if self._mark_timer is not None:
            self._mark_timer.cancel()
            self._mark_timer = None
        if self._marks:
            self._ensure_leader()

    async def mark_attempt(
        self, row_ids: Sequence[int], error: str, *, failed: bool, next_attempt: datetime | None
    ) -> None:
        """Count a failed attempt on rows (a message and the rows joined into it)."""
        state = "failed" if failed else "pending"
        retry = iso(next_attempt) if next_attempt else None
        ids = list(row_ids)
        marks = ", ".join("?" for _ in ids)

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, state = ?,"
                f" next_attempt_at = ? WHERE id IN ({marks})",
                [error[:500], state, retry, *ids],
            )
            if failed:
                forget_delivered(db, ids)

        async with self._lock:
            await self._write(work)

    async def fail_delivery(
        self, row_id: int, error: str, now: datetime, apology: str | None
    ) -> list[OutboxRow]:
        """Mark a row failed and, in the same transaction, queue ``apology`` for its chat
        unless the chat already has that apology pending; returns the rows added."""
        async with self.transaction(now) as tx:
            found = await tx.fetchone(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, state = 'failed',"
                " next_attempt_at = NULL WHERE id = ? RETURNING channel, chat_id, forget",
                (error[:500], row_id),
            )
            if found is None:
                return []
            channel, chat_id, forget = found
            if forget:  # a chat that erased its data: nothing keeps its id, no apology
                await tx.run(lambda db: forget_delivered(db, [row_id]))
                return []
            if apology is None:
                return []
            waiting = await tx.fetchone(
                "SELECT 1 FROM outbox WHERE channel = ? AND chat_id = ? AND state = 'pending'"
                " AND payload = ? LIMIT 1",
                (channel, chat_id, apology),
            )
            if waiting is not None:
                return []
            return await tx.enqueue(channel, chat_id, [(apology, False)])
