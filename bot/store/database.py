"""SQLite storage: one file, WAL, foreign keys, numbered migrations, one writer at a time.

Every change that spans rows goes through :meth:`Store.transaction`, which holds the store's
lock for its whole life so that no other coroutine's statement lands inside it. SQL stays SQL.

This module owns the :class:`Store` itself: opening it (the connection, the migrations),
closing it, its lock, transactions of its own (:meth:`Store.transaction`,
:meth:`Store._write`) and checkpoints. SQLite's automatic checkpoint is off (it would run
inside a COMMIT made on the event loop, see :mod:`bot.store.connection`); the store
checkpoints every :data:`CHECKPOINT_EVERY` commits on a connection of its own. The rest of
the store is mixed in from its parts:

- :mod:`bot.store.group_commit`: a turn of an inbound update, run in a batch of turns that
  shares one COMMIT, and delivery marks riding in it;
- :mod:`bot.store.outbox`: the outbox's pending rows, delivery marks, failed attempts;
- :mod:`bot.store.inbox`: the webhook inbox.

Below them: :mod:`bot.store.turns` (a transaction's statements, :class:`Tx`; batches and
turns), :mod:`bot.store.marks`, :mod:`bot.store.connection` (statements on the event loop)
and :mod:`bot.store.rows` (:class:`ChatRecord`, :class:`OutboxRow`, :func:`iso`), whose
names are imported here too, so ``from bot.store.database import ...`` gives them. Their
tunable constants are not: a test patches one where it is read
(``bot.store.turns.MAX_BATCH_SECONDS``, ``bot.store.outbox.MARK_DELAY``,
``bot.store.connection.BUSY_TIMEOUT_MS``), and patching a copy here would change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.errors import StoreError
from bot.store.connection import Connection, begin_here, connect, on_thread, raw
from bot.store.group_commit import GroupCommit
from bot.store.inbox import InboxQueries
from bot.store.marks import Mark
from bot.store.outbox import OutboxQueries
from bot.store.rows import ChatRecord, OutboxRow, iso
from bot.store.turns import Turn, Tx

__all__ = [
    "CHECKPOINT_EVERY",
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


class Store(GroupCommit, OutboxQueries, InboxQueries):
    """The database: one connection, one writer at a time (its lock); the parts it mixes
    in are listed in the module docstring."""

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

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self.conn

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
        if begin_here(self.conn, prefix):
            result = whole(db, False)
        else:
            result = await on_thread(self.conn, lambda db: whole(db, True))
        self._committed()
        return result

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
