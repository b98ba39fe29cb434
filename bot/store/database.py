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

**Statements on the event loop.** A turn's batch and a delivery mark first try ``BEGIN
IMMEDIATE`` on the event loop's thread with no busy timeout (:func:`_begin_here`); when
the write lock was free, every statement of that transaction runs there (with WAL nothing
after BEGIN IMMEDIATE waits for another connection) and the "trips" above cost no
hand-off. When another connection holds the lock, the trip goes to aiosqlite's thread,
which waits for it. Everything else runs on that thread. SQLite's automatic checkpoint is
off (it would run inside a COMMIT made on the loop); the store checkpoints every
:data:`CHECKPOINT_EVERY` commits on a connection of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

import aiosqlite

from bot.errors import StoreError
from bot.modes import FILE_MODE, create_private, private_dir

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH_TURNS = 64  # turns committed together at most
MAX_BATCH_SECONDS = 0.002  # no turn joins a batch that began (BEGIN) longer ago than this
# How long a delivery mark made with Store.mark_sent_later waits for a batch of turns to
# carry it before it is committed alone: a crash meanwhile sends its message again.
MARK_DELAY = 0.05
# Commits between two checkpoints, which run on a thread of their own (SQLite's, every 1,000
# pages, would run inside a COMMIT made on the event loop and block it for the fsync).
CHECKPOINT_EVERY = 256


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _migrations() -> list[tuple[int, str]]:
    found = []
    for entry in resources.files("bot.store").joinpath("migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


@dataclass(frozen=True, slots=True)
class ChatRecord:
    identity_id: int
    person_id: int
    state: str | None
    version: int
    consent: bool | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    channel: str
    chat_id: str
    payload: str
    bulk: bool
    attempts: int = 0
    # A message joined at delivery (bot.delivery.outbox): the ids of the rows put in front
    # of this one, which share its fate (sent, failed or held together).
    joined: tuple[int, ...] = ()

    @property
    def ids(self) -> tuple[int, ...]:
        """Every row this message carries, in order (its own id last)."""
        return (*self.joined, self.id)


class Tx:
    """Statements inside one transaction, each call ONE trip to the database thread.

    aiosqlite runs every statement on its connection's thread; the trip there and back, not
    SQLite, is what a turn mostly pays for (measured with the benchmark). So ``BEGIN`` rides
    along with the first statement, and a turn's reads and writes are grouped
    (:meth:`claim_and_load`, :meth:`save_and_enqueue`).
    """

    def __init__(self, conn: Connection, now: datetime, batch: Batch | None = None) -> None:
        self.conn = conn
        self.now = now
        self.stamp = iso(now)
        self.batch = batch or Batch(conn)
        self.committed = False
        # Rows added with enqueue (notifications to other chats): delivered with the turn's.
        self.enqueued: list[OutboxRow] = []
        # (channel, chat id) erasing its data: its rows are deleted once delivered.
        self.forgetting: tuple[str, str] | None = None

    @property
    def begun(self) -> bool:
        return self.batch.begun

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the connection's thread, after the control statements waiting
        for the next trip (``BEGIN IMMEDIATE`` first of all)."""
        batch = self.batch
        prefix = batch.take_prefix()

        def call(db: sqlite3.Connection) -> T:
            try:
                for statement in prefix:
                    db.execute(statement)
                return work(db)
            finally:
                batch.begun = db.in_transaction

        db = raw(self.conn)
        if batch.inline and (batch.begun or _begin_here(self.conn, prefix)):
            return call(db)  # this transaction holds the write lock: nothing below waits
        result: T = await on_thread(self.conn, call)
        return result

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return await self.run(lambda db: db.execute(sql, params))

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self.run(lambda db: db.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self.run(lambda db: db.execute(sql, params).fetchone())

    async def claim_event(self, channel: str, event_id: str) -> bool:
        """Record an update id; False when it was processed before."""
        return await self.run(lambda db: self._claim(db, channel, event_id))

    def _claim(self, db: sqlite3.Connection, channel: str, event_id: str) -> bool:
        cursor = db.execute(
            "INSERT OR IGNORE INTO processed_events (channel, event_id, at) VALUES (?, ?, ?)",
            (channel, event_id, self.stamp),
        )
        return cursor.rowcount == 1

    async def load_chat(self, channel: str, external_id: str, notice_version: str) -> ChatRecord:
        return await self.run(lambda db: self._load(db, channel, external_id, notice_version))

    async def claim_and_load(
        self, channel: str, event_id: str, external_id: str, notice_version: str
    ) -> ChatRecord | None:
        """Record the update id and load the chat in one trip; None for an update seen before."""

        return await self.run(
            lambda db: self._claim_and_load(db, channel, event_id, external_id, notice_version)
        )

    def _claim_and_load(
        self,
        db: sqlite3.Connection,
        channel: str,
        event_id: str,
        external_id: str,
        notice_version: str,
    ) -> ChatRecord | None:
        if not self._claim(db, channel, event_id):
            return None
        return self._load(db, channel, external_id, notice_version)

    def _load(
        self, db: sqlite3.Connection, channel: str, external_id: str, notice_version: str
    ) -> ChatRecord:
        row = db.execute(
            """
            SELECT ci.id, ci.person_id, c.state, c.version,
                   (SELECT accepted FROM consents k
                     WHERE k.person_id = ci.person_id AND k.notice_version = ?
                     ORDER BY k.id DESC LIMIT 1)
              FROM chat_identities ci
              LEFT JOIN conversations c ON c.identity_id = ci.id
             WHERE ci.channel = ? AND ci.external_id = ?
            """,
            (notice_version, channel, external_id),
        ).fetchone()
        if row is not None:
            consent = None if row[4] is None else bool(row[4])
            return ChatRecord(row[0], row[1], row[2], row[3] or 0, consent)
        person = db.execute("INSERT INTO people (created_at) VALUES (?)", (self.stamp,))
        identity = db.execute(
            "INSERT INTO chat_identities (channel, external_id, person_id, created_at)"
            " VALUES (?, ?, ?, ?)",
            (channel, external_id, person.lastrowid, self.stamp),
        )
        assert identity.lastrowid is not None
        assert person.lastrowid is not None
        return ChatRecord(identity.lastrowid, person.lastrowid, None, 0, None)

    def _save(self, db: sqlite3.Connection, identity_id: int, state: str, version: int) -> None:
        db.execute(
            "INSERT INTO conversations (identity_id, state, version, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (identity_id) DO UPDATE"
            " SET state = excluded.state, version = excluded.version,"
            " updated_at = excluded.updated_at, reminded_at = NULL",
            (identity_id, state, version, self.stamp),
        )

    async def save_state(self, identity_id: int, state: str, version: int) -> None:
        await self.run(lambda db: self._save(db, identity_id, state, version))

    async def record_consent(
        self, person_id: int, notice_version: str, accepted: bool, channel: str
    ) -> None:
        await self.execute(
            "INSERT INTO consents (person_id, notice_version, accepted, at, channel)"
            " VALUES (?, ?, ?, ?, ?)",
            (person_id, notice_version, int(accepted), self.stamp, channel),
        )

    def _enqueue(
        self,
        db: sqlite3.Connection,
        channel: str,
        chat_id: str,
        payloads: Sequence[tuple[str, bool]],
        ticket_id: int | None = None,
    ) -> list[OutboxRow]:
        if not payloads:
            return []
        values = ", ".join("(?, ?, ?, ?, ?, ?, ?)" for _ in payloads)
        forget = int(self.forgetting == (channel, chat_id))
        params: list[Any] = []
        for payload, bulk in payloads:
            params += [channel, chat_id, payload, int(bulk), self.stamp, ticket_id, forget]
        ids = db.execute(
            "INSERT INTO outbox (channel, chat_id, payload, bulk, created_at, ticket_id, forget)"
            f" VALUES {values} RETURNING id",
            params,
        ).fetchall()
        return [
            OutboxRow(row[0], channel, chat_id, payload, bulk)
            for row, (payload, bulk) in zip(ids, payloads, strict=True)
        ]

    async def enqueue(
        self,
        channel: str,
        chat_id: str,
        payloads: Sequence[tuple[str, bool]],
        ticket_id: int | None = None,
    ) -> list[OutboxRow]:
        """Add messages for a chat (about a ticket, if given); returns them, in order."""
        added = await self.run(lambda db: self._enqueue(db, channel, chat_id, payloads, ticket_id))
        self.enqueued += added
        return added

    async def save_and_enqueue(
        self,
        identity_id: int,
        state: str,
        version: int,
        channel: str,
        chat_id: str,
        payloads: Sequence[tuple[str, bool]],
    ) -> list[OutboxRow]:
        """A turn's last writes and the COMMIT, in one trip.

        Inside a batch of turns the COMMIT waits for the batch's end: this trip releases the
        turn's savepoint and, when the batch goes on, claims and loads its next turn."""
        batch = self.batch
        following = batch.take_next() if batch.in_turn else None
        carried = batch.take_marks() if batch.in_turn and following is None else []

        def work(db: sqlite3.Connection) -> list[OutboxRow]:
            try:
                self._save(db, identity_id, state, version)
                rows = self._enqueue(db, channel, chat_id, payloads)
            except BaseException:
                if batch.in_turn and db.in_transaction:
                    db.execute(f"ROLLBACK TO {TURN}")  # this turn only; the batch goes on
                raise
            if not batch.in_turn:
                db.execute("COMMIT")
                return rows
            db.execute(f"RELEASE {TURN}")
            batch.released = True
            if following is None:
                _run_marks(db, carried)
                db.execute("COMMIT")
                batch.committed = True
            else:
                following.preload(db)
            return rows

        try:
            rows = await self.run(work)
        except BaseException:
            batch.put_back(following)
            batch.put_back_marks(carried)
            raise
        self.committed = True
        return rows


TURN = "turn"  # the savepoint of the turn running in a batch (turns never nest)
MARK = "mark"  # the savepoint of a delivery mark carried by a batch
Claim = tuple[str, str, str, str]  # channel, event id, external chat id, notice version


class Batch:
    """The transaction a batch of turns (or one :meth:`Store.transaction`) shares."""

    def __init__(
        self,
        conn: Connection | None = None,
        queue: deque[Turn[Any]] | None = None,
        *,
        inline: bool = False,
        marks: list[Mark] | None = None,
    ) -> None:
        self.conn = conn
        # Run the transaction's statements on the event loop's thread once BEGIN IMMEDIATE
        # got the write lock without waiting (see :func:`_begin_here`).
        self.inline = inline
        self.begun = False
        self.in_turn = False  # a turn of the batch is running inside SAVEPOINT TURN
        self.released = False  # the running turn's savepoint was released (turn done)
        self.committed = False
        self.prefix: list[str] = []
        self.queue = queue  # where further turns of the batch come from (None: no batch)
        self.started = 0.0
        self.taken = 0
        self.next: Turn[Any] | None = None
        self.marks = marks  # delivery marks waiting for the next COMMIT (None: no batch)
        self.carried: list[Mark] = []  # the marks this batch's COMMIT carries

    def take_marks(self) -> list[Mark]:
        """The delivery marks waiting now, to run just before this batch's COMMIT."""
        if not self.marks:
            return []
        taken = self.marks[:]
        self.marks.clear()
        self.carried += taken
        return taken

    def take_prefix(self) -> list[str]:
        prefix = self.prefix if self.begun else ["BEGIN IMMEDIATE", *self.prefix]
        if not self.begun:
            self.started = time.perf_counter()
        self.prefix = []
        self.committed = False
        return prefix

    def take_next(self) -> Turn[Any] | None:
        """The next queued turn if the batch may grow, taken out of the queue."""
        queue = self.queue
        if queue is None or not queue or self.conn is None:
            return None
        if self.taken >= MAX_BATCH_TURNS:
            return None
        if self.begun and time.perf_counter() - self.started > MAX_BATCH_SECONDS:
            return None
        turn = queue.popleft()
        turn.tx = Tx(self.conn, turn.now, self)
        self.taken += 1
        self.next = turn
        return turn

    def put_back_marks(self, marks: list[Mark]) -> None:
        """Marks taken for a trip that failed: the batch's final COMMIT takes them again."""
        if marks and self.marks is not None:
            self.carried = [mark for mark in self.carried if mark not in marks]
            for mark in marks:
                mark.error = None
            self.marks[:0] = marks

    def put_back(self, turn: Turn[Any] | None) -> None:
        """A turn taken for a trip that failed: it runs next, loading its chat itself."""
        if turn is not None:
            turn.loaded = False
            turn.chat = None


class Mark:
    """A delivery mark waiting for the next batch's COMMIT (:meth:`Store.mark_sent`)."""

    __slots__ = ("done", "error", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], None], done: asyncio.Future[None]):
        self.work = work
        self.done = done
        self.error: Exception | None = None


def _run_marks(db: sqlite3.Connection, marks: Sequence[Mark]) -> None:
    """Each mark in a savepoint of its own: one that fails is undone alone (and its caller
    told, once the transaction commits); the others and the batch's turns go on."""
    for mark in marks:
        db.execute(f"SAVEPOINT {MARK}")
        try:
            mark.work(db)
        except Exception as error:
            db.execute(f"ROLLBACK TO {MARK}")
            mark.error = error
        db.execute(f"RELEASE {MARK}")


def _mark_work(
    done: Iterable[tuple[int, str | None]], now: datetime
) -> Callable[[sqlite3.Connection], None] | None:
    """The statements that mark delivered rows sent; None when there are none."""
    by_ref: dict[str | None, list[int]] = {}  # a joined message's rows share its ref
    for row_id, ref in done:
        by_ref.setdefault(ref, []).append(row_id)
    if not by_ref:
        return None
    stamp = iso(now)

    def work(db: sqlite3.Connection) -> None:
        forget: list[int] = []
        for ref, ids in by_ref.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                marked = db.execute(
                    "UPDATE outbox SET state = 'sent', sent_at = ?, external_ref = ?"
                    f" WHERE id IN ({marks}) RETURNING id, forget",
                    [stamp, ref, *chunk],
                ).fetchall()
                forget += [row_id for row_id, gone in marked if gone]
        if forget:  # rows of a chat that erased its data
            _forget_delivered(db, forget)

    return work


def _nothing(db: sqlite3.Connection) -> None:
    return None


def _settle(marks: Iterable[Mark], error: Exception | None = None) -> None:
    for mark in marks:
        if mark.done.done():
            continue
        failure = error or mark.error
        if failure is None:
            mark.done.set_result(None)
        else:
            mark.done.set_exception(failure)


class Turn(Generic[T]):
    """One inbound update's work, waiting to run in a batch."""

    def __init__(
        self,
        now: datetime,
        claim: Claim,
        body: Callable[[Tx, ChatRecord | None], Awaitable[T]],
        on_error: Callable[[Tx, BaseException], Awaitable[T]],
        done: asyncio.Future[T],
    ) -> None:
        self.now = now
        self.claim = claim
        self.body = body
        self.on_error = on_error
        self.done = done
        self.tx: Tx | None = None
        self.loaded = False
        self.chat: ChatRecord | None = None
        self.load_error: BaseException | None = None

    def preload(self, db: sqlite3.Connection) -> None:
        """On the database thread, in the trip that ends the turn before: open this turn's
        savepoint, claim its update and load its chat."""
        assert self.tx is not None
        db.execute(f"SAVEPOINT {TURN}")
        try:
            self.chat = self.tx._claim_and_load(db, *self.claim)
        except Exception as error:
            db.execute(f"ROLLBACK TO {TURN}")
            self.load_error = error
        self.loaded = True


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
        # :meth:`checkpoint` then empties the WAL of its older copies.
        for pragma in (
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA foreign_keys = ON",
            f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
            "PRAGMA secure_delete = ON",
            "PRAGMA wal_autocheckpoint = 0",  # the store checkpoints itself (CHECKPOINT_EVERY)
        ):
            await conn.execute(pragma)
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


class Connection(aiosqlite.Connection):
    """aiosqlite's connection, whose busy timeout is off while the event loop uses it.

    Setting the timeout costs 10-20 us a statement; switching it at every transaction
    cost more than a turn's reads. So :func:`_begin_here` turns it off once (``quick``)
    and the next trip to the thread, which may wait for the lock, turns it back on first.
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
        result: T = await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        return result


def raw(conn: aiosqlite.Connection) -> sqlite3.Connection:
    """The sqlite3 connection inside aiosqlite's (opened with check_same_thread=False)."""
    db: sqlite3.Connection = conn._conn
    return db


async def on_thread(conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` on aiosqlite's thread: aiosqlite's own entry point for a callable
    (its public methods take one statement at a time)."""
    result: T = await conn._execute(work, conn._conn)  # type: ignore[no-untyped-call]
    return result


BUSY_TIMEOUT_MS = 5000


def _begin_here(conn: Connection, prefix: list[str]) -> bool:
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


def _forget_delivered(db: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Rows written for a chat that erased its data go once delivered (none is held), and
    with the last of them its WhatsApp window row (kept until then: the confirmation needs
    the window open)."""
    chats: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        gone = db.execute(
            f"DELETE FROM outbox WHERE id IN ({marks}) AND forget = 1"
            " AND NOT EXISTS (SELECT 1 FROM wa_held h WHERE h.outbox_id = outbox.id)"
            " RETURNING channel, chat_id",
            list(chunk),
        ).fetchall()
        chats |= {chat for channel, chat in gone if channel == "whatsapp"}
    for chat in chats:
        db.execute(
            "DELETE FROM wa_chats WHERE wa_id = ?1 AND NOT EXISTS"
            " (SELECT 1 FROM outbox WHERE channel = 'whatsapp' AND chat_id = ?1)",
            (chat,),
        )
