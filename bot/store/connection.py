"""The connection to the database file: aiosqlite's :class:`Connection` with the busy
timeout switched off while the event loop uses it, the way into its sqlite3 connection
(:func:`raw`) and onto its thread (:func:`on_thread`), the pragmas it is opened with
(:func:`connect`), and taking the write lock on the event loop's thread (:func:`begin_here`).

**Statements on the event loop.** A turn's batch and a delivery mark first try ``BEGIN
IMMEDIATE`` on the event loop's thread with no busy timeout (:func:`begin_here`); when
the write lock was free, every statement of that transaction runs there (with WAL nothing
after BEGIN IMMEDIATE waits for another connection) and the "trips" of a transaction
(:class:`bot.store.turns.Tx`) cost no hand-off. When another connection holds the lock, the
trip goes to aiosqlite's thread, which waits for it. Everything else runs on that thread.
SQLite's automatic checkpoint is off (it would run inside a COMMIT made on the loop); the
store checkpoints itself (:data:`bot.store.database.CHECKPOINT_EVERY`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.modes import FILE_MODE, create_private, private_dir

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000


class Connection(aiosqlite.Connection):
    """aiosqlite's connection, whose busy timeout is off while the event loop uses it.

    Setting the timeout costs 10-20 us a statement; switching it at every transaction
    cost more than a turn's reads. So :func:`begin_here` turns it off once (``quick``)
    and the next trip to the thread, which may wait for the lock, turns it back on first.

    A caller cancelled during a trip gets its ``CancelledError`` once the thread has done
    the work, however often it is cancelled meanwhile (see ``_execute``).
    """

    quick = False

    async def _execute(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.quick:
            self.quick = False
            work = fn

            def waiting(*args: Any, **kwargs: Any) -> T:
                self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                return work(*args, **kwargs)

            fn = waiting
        try:
            result: T = await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        except asyncio.CancelledError:
            # The thread runs the work whatever the caller does, and runs trips in order:
            # one queued behind this trip ends once it is done. Waiting for it (however
            # often cancelled again) lets the caller's cleanup (a ROLLBACK) find the
            # connection as the work left it, not a BEGIN that lands after the caller
            # looked (a transaction left open under nobody's lock).
            behind = super()._execute(_nothing)  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):  # e.g. closed: nothing runs behind it
                await finish(asyncio.ensure_future(behind))
            raise
        return result


def _nothing() -> None:
    return None


async def finish(awaitable: asyncio.Future[T]) -> T:
    """Await ``awaitable`` to its end through any number of cancellations of the caller
    (which re-raises the one it is handling); its result, or its error raised."""
    while not awaitable.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([awaitable])
    return awaitable.result()


def raw(conn: aiosqlite.Connection) -> sqlite3.Connection:
    """The sqlite3 connection inside aiosqlite's (opened with check_same_thread=False)."""
    db: sqlite3.Connection = conn._conn
    return db


async def on_thread(conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` on aiosqlite's thread: aiosqlite's own entry point for a callable
    (its public methods take one statement at a time)."""
    result: T = await conn._execute(work, conn._conn)  # type: ignore[no-untyped-call]
    return result


def begin_here(conn: Connection, prefix: list[str]) -> bool:
    """Take the write lock on the event loop's thread if nobody holds it.

    ``prefix`` starts with ``BEGIN IMMEDIATE`` (a transaction not begun yet). With WAL,
    BEGIN IMMEDIATE is the one statement of a write transaction that can wait for another
    connection (another process: the staff shell, a second bot); everything after it runs
    without waiting, so once it succeeded the rest of the transaction can run here, a few
    microseconds a statement, instead of a trip to aiosqlite's thread (170-270 us each).
    It is tried with no busy timeout (:class:`Connection` sets it back for the thread's
    next trip): when the lock is held, False, and the caller sends the whole trip, BEGIN
    included, to the thread, which waits up to the busy timeout. On success the BEGIN is
    taken out of ``prefix``."""
    if not prefix or prefix[0] != "BEGIN IMMEDIATE":
        return False
    db = raw(conn)
    if not conn.quick:
        db.execute("PRAGMA busy_timeout = 0")
        conn.quick = True
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return False
        raise
    del prefix[0]
    return True


async def connect(path: Path) -> Connection:
    """Open the database file (created 0600, in a private directory) with the store's
    pragmas."""
    private_dir(path.parent)
    # SQLite gives the -wal and -shm files the database file's mode: create it 0600.
    create_private(path)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).chmod(FILE_MODE)
    # check_same_thread=False: the connection is also used from the event loop's thread
    # (turns, delivery marks), never at the same time as from aiosqlite's (the store's
    # lock is held around both).
    conn = Connection(
        lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False), 64
    )
    await conn  # starts its thread and connects there
    # WAL + synchronous=NORMAL: a commit survives a killed process (not a power cut
    # before the next checkpoint), and commits cost no fsync each. secure_delete: what
    # is deleted (a processed webhook body, a sent mail with its code, an erased
    # person's rows) is overwritten with zeros, not left readable in free pages;
    # :meth:`~bot.store.database.Store.checkpoint` then empties the WAL of its older copies.
    for pragma in (
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
        f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
        "PRAGMA secure_delete = ON",
        "PRAGMA wal_autocheckpoint = 0",  # the store checkpoints itself (CHECKPOINT_EVERY)
    ):
        await conn.execute(pragma)
    return conn
