"""A transaction's statements and the batches of turns they run in: :class:`Tx` (the
statements of one transaction, each call one trip to the database thread), :class:`Batch`
(the transaction a batch of turns, or one :meth:`~bot.store.database.Store.transaction`,
shares: its control statements waiting for the next trip, the next turn it takes, the
delivery marks its COMMIT carries) and :class:`Turn` (one inbound update's work, queued).

A batch is bounded (:data:`MAX_BATCH_TURNS`, :data:`MAX_BATCH_SECONDS` since its BEGIN); the
batches themselves are run by :mod:`bot.store.group_commit`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from bot.store import events
from bot.store.connection import Connection, begin_here, on_thread, raw
from bot.store.marks import Mark, run_marks
from bot.store.rows import ChatRecord, OutboxRow, iso

T = TypeVar("T")

MAX_BATCH_TURNS = 64  # turns committed together at most
MAX_BATCH_SECONDS = 0.002  # no turn joins a batch that began (BEGIN) longer ago than this


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
        if batch.inline and (batch.begun or begin_here(self.conn, prefix)):
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
        return events.claim(db, channel, event_id, self.stamp)

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
        insert = (
            "INSERT INTO outbox (channel, chat_id, payload, bulk, created_at, ticket_id, forget)"
            f" VALUES {values}"
        )
        ids: list[int]
        if len(payloads) == 1:  # the new row's id without RETURNING (about 6 us less)
            row_id = db.execute(insert, params).lastrowid
            assert row_id is not None
            ids = [row_id]
        else:
            ids = [row[0] for row in db.execute(f"{insert} RETURNING id", params).fetchall()]
        return [
            OutboxRow(row_id, channel, chat_id, payload, bulk)
            for row_id, (payload, bulk) in zip(ids, payloads, strict=True)
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
                    # This turn only; the batch goes on (a batch of one: nothing else).
                    db.execute("ROLLBACK" if batch.alone else f"ROLLBACK TO {TURN}")
                raise
            if not batch.in_turn:
                db.execute("COMMIT")
                return rows
            if not batch.alone:
                db.execute(f"RELEASE {TURN}")
            batch.released = True
            if following is None:
                run_marks(db, carried)
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
        alone: bool = False,
    ) -> None:
        self.conn = conn
        # Run the transaction's statements on the event loop's thread once BEGIN IMMEDIATE
        # got the write lock without waiting (see :func:`begin_here`).
        self.inline = inline
        # A batch of one turn that nothing can join (GroupCommit._run_alone): the turn needs
        # no savepoint, since undoing it is rolling the transaction back.
        self.alone = alone
        self.begun = False
        self.in_turn = False  # a turn of the batch is running (in SAVEPOINT TURN unless alone)
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
