"""SQLite storage: one file, WAL, foreign keys, numbered migrations, one writer at a time.

Every change that spans rows goes through :meth:`Store.transaction`, which holds the store's
lock for its whole life so that no other coroutine's statement lands inside it. SQL stays SQL.

**Group commit.** An inbound update's turn goes through :meth:`Store.turn`. Turns queued at
the same moment (different chats, processed concurrently) run one after another inside ONE
transaction: each turn in its own ``SAVEPOINT`` (a turn that fails is rolled back to it,
alone, and its apology written in its place), one ``COMMIT`` for the batch, and every turn's
replies handed back only after that COMMIT. The control statements (``BEGIN``,
``SAVEPOINT``, ``RELEASE``) ride along with the next trip to the database thread, and a
turn's last trip (save state, enqueue replies) also claims and loads the next turn of the
batch, so a batch costs about one trip per turn plus one. A batch is bounded
(:data:`MAX_BATCH_TURNS`, :data:`MAX_BATCH_SECONDS` since its BEGIN) and takes only what is
already queued: a lone turn never waits for company.

**Delivery marks ride along.** Marking a delivered message sent is a transaction too. When
turns are running or queued, the mark waits in :attr:`Store._marks` and the batch runs it,
in a savepoint of its own, just before its COMMIT (:meth:`Store.mark_sent`). A mark nothing
waits behind (:meth:`Store.mark_sent_later`, the last message of a chat's reply) does not
wait at all: the next batch of turns, most often the next update's, carries it; if none
comes within :data:`MARK_DELAY` it is committed alone. A batch that rolls back hands its
marks back to be committed after it; a mark that fails is undone alone.

Below the store: :mod:`bot.store.turns` (a transaction's statements, :class:`Tx`; batches
and turns), :mod:`bot.store.marks`, :mod:`bot.store.connection` (statements on the event
loop, SQLite's checkpoint) and :mod:`bot.store.rows` (:class:`ChatRecord`,
:class:`OutboxRow`, :func:`iso`), whose names are imported here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.errors import StoreError
from bot.store.connection import BUSY_TIMEOUT_MS, Connection, _begin_here, connect, on_thread, raw
from bot.store.marks import Mark, _forget_delivered, _mark_work, _nothing, _run_marks, _settle
from bot.store.rows import ChatRecord, OutboxRow, iso
from bot.store.turns import MAX_BATCH_SECONDS, MAX_BATCH_TURNS, TURN, Batch, Claim, Turn, Tx

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CHECKPOINT_EVERY",
    "MARK_DELAY",
    "MAX_BATCH_SECONDS",
    "MAX_BATCH_TURNS",
    "ChatRecord",
    "Connection",
    "OutboxRow",
    "Store",
    "Tx",
    "iso",
    "on_thread",
    "raw",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a delivery mark made with Store.mark_sent_later waits for a batch of turns to
# carry it before it is committed alone: a crash meanwhile sends its message again.
MARK_DELAY = 0.05
# Commits between two checkpoints, which run on a thread of their own (SQLite's, every 1,000
# pages, would run inside a COMMIT made on the event loop and block it for the fsync).
CHECKPOINT_EVERY = 256


def _migrations() -> list[tuple[int, str]]:
    found = []
    for entry in resources.files("bot.store").joinpath("migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class Store:
    def __init__(self, conn: Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._commits = 0  # since the last checkpoint
        self._checkpointing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._turns: deque[Turn[Any]] = deque()
        self._marks: list[Mark] = []  # delivery marks waiting for the leader's next COMMIT
        self._mark_timer: asyncio.TimerHandle | None = None  # commits late marks alone
        self._leader: asyncio.Task[None] | None = None
        self.batches = 0  # batches of turns run, and the turns in them (for the benchmark)
        self.batched_turns = 0
        self.carried_marks = 0  # delivery marks committed with a batch of turns

    @classmethod
    async def open(cls, path: Path) -> Store:
        conn = await connect(path)
        store = cls(conn, path)
        try:
            await store._migrate()
        except BaseException:
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        if self._marks:  # marks made with mark_sent_later: committed before the end
            self.hurry_marks()
            await asyncio.gather(*(mark.done for mark in self._marks), return_exceptions=True)
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):
                await self._checkpointing
        await self.conn.close()  # the last connection to close checkpoints the WAL

    def _committed(self) -> None:
        """Count a commit; every :data:`CHECKPOINT_EVERY`, copy the WAL into the database
        on a worker thread (PASSIVE: never waits for readers or writers)."""
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY or self._checkpointing is not None:
            return
        self._commits = 0
        self._checkpointing = asyncio.create_task(self._checkpoint_passive(), name="checkpoint")

    async def _checkpoint_passive(self) -> None:
        # A connection of its own on a worker thread, without the store's lock: a PASSIVE
        # checkpoint copies what is already committed and never waits for the writer, so
        # turns go on meanwhile (the WAL's first frames are reused once it is all copied).
        def copy() -> None:
            with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as db:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

        try:
            await asyncio.to_thread(copy)
        except Exception:
            log.warning("checkpoint failed; the next one copies the rest", exc_info=True)
        finally:
            self._checkpointing = None

    async def _migrate(self) -> None:
        (current,) = next(iter(await self.conn.execute_fetchall("PRAGMA user_version")))
        known = _migrations()
        newest = known[-1][0] if known else 0
        if current > newest:
            raise StoreError(
                f"database schema {current} is newer than this release knows ({newest})"
            )
        for number, sql in known:
            if number <= current:
                continue
            log.info("applying migration %04d", number)
            script = f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;"
            await self.conn.executescript(script)

    @asynccontextmanager
    async def transaction(self, now: datetime) -> AsyncIterator[Tx]:
        async with self._lock:
            tx = Tx(self.conn, now)
            try:
                yield tx
            except BaseException:
                if self.conn.in_transaction:
                    await self.conn.execute("ROLLBACK")
                raise
            if tx.begun and not tx.committed:
                await self.conn.execute("COMMIT")
            if tx.begun or tx.committed:
                self._committed()

    async def turn(
        self,
        now: datetime,
        claim: Claim,
        body: Callable[[Tx, ChatRecord | None], Awaitable[T]],
        on_error: Callable[[Tx, BaseException], Awaitable[T]],
    ) -> T:
        """Run one inbound update's turn in the next batch and return what ``body`` returned,
        once the batch has committed.

        In the turn's savepoint, ``claim`` records the update id and loads the chat (None
        for an update seen before), then ``body(tx, chat)`` runs. If it raises, the turn is
        rolled back to its savepoint, alone, and ``on_error(tx, error)`` runs in a savepoint
        of its own (e.g. to claim the update and apologise)."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._turns.append(Turn(now, claim, body, on_error, done))
        if self._leader is None:
            self._leader = asyncio.create_task(self._lead(), name="store-batches")
        return await done

    async def _lead(self) -> None:
        try:
            while self._turns or self._marks:
                async with self._lock:
                    if self._turns:
                        await self._run_batch()
                    else:
                        await self._run_marks_alone()
        finally:
            self._leader = None
            if self._turns:  # stopped (cancelled) with turns queued: they will not run
                for turn in self._turns:
                    turn.done.cancel()
                self._turns.clear()
            if self._marks:  # their rows stay pending: sent again after a restart
                marks, self._marks = self._marks, []
                _settle(marks, StoreError("the store stopped before the mark committed"))

    async def _run_marks_alone(self) -> None:
        marks, self._marks = self._marks, []
        try:
            await self._write(lambda db: _run_marks(db, marks))
        except Exception as error:
            _settle(marks, error)
            return
        except BaseException:
            _settle(marks, StoreError("the store stopped before the mark committed"))
            raise
        _settle(marks)

    async def _run_batch(self) -> None:
        # A turn's statements run on the event loop when they can (module docstring).
        batch = Batch(self.conn, self._turns, inline=True, marks=self._marks)
        outcomes: list[tuple[Turn[Any], Any, BaseException | None]] = []
        turn = batch.take_next()
        try:
            while turn is not None:
                batch.next = None
                outcomes.append(await self._run_turn(batch, turn))
                turn = batch.next
                if turn is None and not batch.committed:
                    turn = batch.take_next()
                if not batch.begun and not batch.committed and turn is not None:
                    # The transaction ended without its COMMIT (SQLite rolled it back): what
                    # the turns before wrote is gone, so they failed too.
                    raise StoreError("the batch's transaction ended before its commit")
            if batch.begun:
                carried = batch.take_marks()

                def commit(db: sqlite3.Connection) -> None:
                    _run_marks(db, carried)
                    db.execute("COMMIT")

                try:
                    await Tx(self.conn, outcomes[-1][0].now, batch).run(commit)
                except BaseException:
                    batch.put_back_marks(carried)
                    raise
        except BaseException as error:
            if self.conn.in_transaction:
                await asyncio.shield(self.conn.execute("ROLLBACK"))
            # Marks carried by the batch were rolled back with it: the leader runs them next.
            self._marks[:0] = batch.carried
            for mark in batch.carried:
                mark.error = None
            for left in [*(done for done, _, _ in outcomes), turn, batch.next]:
                if left is None or left.done.done():
                    continue
                if isinstance(error, asyncio.CancelledError):
                    left.done.cancel()
                else:
                    left.done.set_exception(error)
            if not isinstance(error, Exception):
                raise
            log.error("a batch of %d turns was rolled back", len(outcomes), exc_info=error)
            return
        self.batches += 1
        self._committed()
        self.batched_turns += len(outcomes)
        self.carried_marks += len(batch.carried)
        _settle(batch.carried)
        for done, value, failure in outcomes:
            if done.done.done():
                continue
            if failure is None:
                done.done.set_result(value)
            else:
                done.done.set_exception(failure)

    async def _run_turn(
        self, batch: Batch, turn: Turn[T]
    ) -> tuple[Turn[T], T | None, BaseException | None]:
        tx = turn.tx or Tx(self.conn, turn.now, batch)
        batch.in_turn = True
        batch.released = False
        try:
            if not turn.loaded:
                batch.prefix.append(f"SAVEPOINT {TURN}")
                chat = await tx.claim_and_load(*turn.claim)
            elif turn.load_error is not None:
                raise turn.load_error
            else:
                chat = turn.chat
            value = await turn.body(tx, chat)
        except Exception as error:
            failure: BaseException = error
        else:
            if not batch.released:
                batch.prefix.append(f"RELEASE {TURN}")
            return turn, value, None
        finally:
            batch.in_turn = False
        # This turn alone goes back to its savepoint; then its apology, in one of its own.
        if batch.begun and not batch.released:
            batch.prefix += [f"ROLLBACK TO {TURN}", f"RELEASE {TURN}"]
        batch.prefix.append(f"SAVEPOINT {TURN}")
        try:
            value = await turn.on_error(Tx(self.conn, turn.now, batch), failure)
        except Exception as error:
            if batch.begun:
                batch.prefix += [f"ROLLBACK TO {TURN}", f"RELEASE {TURN}"]
            return turn, None, error
        batch.prefix.append(f"RELEASE {TURN}")
        return turn, value, None

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self.conn

    # ------------------------------------------------------------------ outbox
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
        work = _mark_work(done, now)
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
        mark = Mark(_mark_work(done, now) or _nothing, loop.create_future())
        self._marks.append(mark)
        if self._leader is None and self._mark_timer is None:
            self._mark_timer = loop.call_later(MARK_DELAY, self.hurry_marks)
        return mark.done

    def hurry_marks(self) -> None:
        """Commit the waiting delivery marks now (alone if no turn is running)."""
        if self._mark_timer is not None:
            self._mark_timer.cancel()
            self._mark_timer = None
        if self._marks and self._leader is None:
            self._leader = asyncio.create_task(self._lead(), name="store-batches")

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` in a transaction of its own; on the event loop when the write lock is
        free at once, else on aiosqlite's thread (which waits for it). Hold the lock."""
        db = raw(self.conn)

        def whole(db: sqlite3.Connection, begin: bool) -> T:
            if begin:
                db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return result

        prefix = ["BEGIN IMMEDIATE"]
        if _begin_here(self.conn, prefix):
            result = whole(db, False)
        else:
            result = await on_thread(self.conn, lambda db: whole(db, True))
        self._committed()
        return result

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
                _forget_delivered(db, ids)

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
                await tx.run(lambda db: _forget_delivered(db, [row_id]))
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

    # ------------------------------------------------------------ webhook inbox
    async def inbox_add(self, channel: str, body: bytes, now: datetime) -> int:
        """Keep a webhook delivery before acknowledging it; returns its id."""
        async with self._lock:
            cursor = await self.conn.execute(
                "INSERT INTO webhook_inbox (channel, body, received_at) VALUES (?, ?, ?)",
                (channel, body, iso(now)),
            )
            return int(cursor.lastrowid or 0)

    async def inbox_done(self, inbox_id: int) -> None:
        async with self._lock:
            await self.conn.execute("DELETE FROM webhook_inbox WHERE id = ?", (inbox_id,))

    async def inbox_pending(self) -> list[tuple[int, str, bytes, int]]:
        """Deliveries acknowledged but not processed when the last run stopped, in order,
        with how many starts already replayed each; those set aside are not among them."""
        async with self._lock:
            found = await self.conn.execute_fetchall(
                "SELECT id, channel, body, attempts FROM webhook_inbox"
                " WHERE failed_at IS NULL ORDER BY id"
            )
        return [(int(i), str(c), bytes(b), int(a)) for i, c, b, a in found]

    async def inbox_replaying(self, ids: Sequence[int]) -> None:
        """Count a replay of these rows before it runs: a row that kills the process is
        recognised at the next start (see ``bot.channels.server``)."""
        if not ids:
            return
        marks = ", ".join("?" for _ in ids)
        async with self._lock:
            await self.conn.execute(
                f"UPDATE webhook_inbox SET attempts = attempts + 1 WHERE id IN ({marks})",
                list(ids),
            )

    async def inbox_set_aside(self, inbox_id: int, error: str, now: datetime) -> None:
        """Keep a delivery that failed for inspection; it is never replayed."""
        async with self._lock:
            await self.conn.execute(
                "UPDATE webhook_inbox SET failed_at = ?, error = ? WHERE id = ?",
                (iso(now), error[:300], inbox_id),
            )

    async def inbox_counts(self) -> tuple[int, int]:
        """(waiting to be processed, set aside)."""
        async with self._lock:
            ((pending, aside),) = await self.conn.execute_fetchall(
                "SELECT count(*) FILTER (WHERE failed_at IS NULL),"
                " count(*) FILTER (WHERE failed_at IS NOT NULL) FROM webhook_inbox"
            )
        return int(pending), int(aside)

    # ---------------------------------------------------------------- at rest
    async def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it, so that the older page versions
        it holds (deleted rows, cleared mail bodies) leave the disk; False when a reader
        kept it from truncating (the next call does it)."""
        async with self._lock:
            ((busy, _log, _done),) = await self.conn.execute_fetchall(
                "PRAGMA wal_checkpoint(TRUNCATE)"
            )
        return not busy
