"""Group commit: the turns of inbound updates, run in batches by one leader task
(:meth:`GroupCommit.turn`), and the delivery marks that ride in a batch's COMMIT or, with no
turn to carry them, are committed alone.

Turns queued at the same moment (different chats, processed concurrently) run one after
another inside ONE transaction: each turn in its own ``SAVEPOINT`` (a turn that fails is
rolled back to it, alone, and its apology written in its place), one ``COMMIT`` for the
batch, and every turn's replies handed back only after that COMMIT. The control statements
(``BEGIN``, ``SAVEPOINT``, ``RELEASE``) ride along with the next trip to the database
thread, and a turn's last trip (save state, enqueue replies) also claims and loads the next
turn of the batch, so a batch costs about one trip per turn plus one. A batch is bounded
(:data:`~bot.store.turns.MAX_BATCH_TURNS`, :data:`~bot.store.turns.MAX_BATCH_SECONDS` since
its BEGIN) and takes only what is already queued: a lone turn never waits for company.

**A lone turn runs in its caller.** When no leader runs, nothing is queued, the lock is
free and no other task is ready on the event loop (so none could join the batch before
it started), the caller runs its turn as a batch of one itself (:meth:`_run_alone`): no
leader task to start and no hand-back of the result, two passes of the event loop fewer
per update. Such a turn opens no savepoint: nothing else is in its transaction, so undoing
it is a ``ROLLBACK``, and its apology (or a delivery mark waiting for a COMMIT) goes in a
transaction begun afresh. A caller cancelled meanwhile rolls back only its own turn; a trip
to the database thread it was waiting for is finished first
(:class:`bot.store.connection.Connection`).

Mixed into ``bot.store.database.Store`` (see :mod:`bot.store.store_base`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from bot.errors import StoreError
from bot.store.connection import finish, raw
from bot.store.marks import run_marks, settle_marks
from bot.store.rows import ChatRecord
from bot.store.store_base import StoreBase
from bot.store.turns import TURN, Batch, Claim, Turn, Tx

log = logging.getLogger(__name__)
T = TypeVar("T")


def _stopped() -> StoreError:
    """What the callers of marks left uncommitted are told (their rows stay pending)."""
    return StoreError("the store stopped before the mark committed")


def _nothing_else_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether no other task is ready to run on ``loop``: then no other turn can be queued
    before this one's batch would start, and the caller may run it alone at once.

    The leader's first step would run after every callback ready now, so the turns that
    would join its batch are those of tasks ready now (a step, or a wake-up after a
    future). A ready callback that is not a task's (a done-callback, a timer's) cannot
    queue a turn before the leader's step: a task it wakes runs in the next pass. asyncio's
    own loop keeps those callbacks in ``_ready``; on a loop without it (uvloop) every turn
    goes to the leader, as it always did: this decides speed, never correctness."""
    ready = getattr(loop, "_ready", None)
    if ready is None:
        return False
    for handle in ready:
        if isinstance(getattr(getattr(handle, "_callback", None), "__self__", None), asyncio.Task):
            return False
    return True


class GroupCommit(StoreBase):
    """The leader that runs queued turns in batches, and delivery marks with them."""

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
        of its own (e.g. to claim the update and apologise). A turn run alone has no
        savepoint: its transaction is rolled back, and ``on_error`` runs in a new one."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        turn = Turn(now, claim, body, on_error, done)
        if (
            self._leader is None
            and not self._turns
            and not self._lock.locked()
            and _nothing_else_ready(loop)
        ):
            return await self._run_alone(turn)
        self._turns.append(turn)
        self._ensure_leader()
        return await done

    async def _run_alone(self, turn: Turn[T]) -> T:
        """A turn nobody could join, run as a batch of one by its caller: no leader task
        to start and no wait for it to hand the result back (two passes of the event loop
        fewer). Turns queued meanwhile (the batch waited for the lock on the database
        thread) and marks handed back by a rollback go to the leader after it."""
        try:
            async with self._lock:
                await self._run_batch(deque([turn]), alone=True)
        finally:
            if self._turns or (self._marks and self._mark_timer is None):
                self._ensure_leader()
        return turn.done.result()

    def _ensure_leader(self) -> None:
        """Start the leader unless it runs: it takes the queued turns and marks."""
        if self._leader is None:
            self._leader = asyncio.create_task(self._lead(), name="store-batches")

    async def _lead(self) -> None:
        try:
            while self._turns or self._marks:
                async with self._lock:
                    if self._turns:
                        await self._run_batch()
                    elif self._marks:  # a lone turn's batch may have carried them meanwhile
                        await self._run_marks_alone()
        finally:
            self._leader = None
            if self._turns:  # stopped (cancelled) with turns queued: they will not run
                for turn in self._turns:
                    turn.done.cancel()
                self._turns.clear()
            if self._marks:  # their rows stay pending: sent again after a restart
                marks, self._marks = self._marks, []
                settle_marks(marks, _stopped())

    async def _run_marks_alone(self) -> None:
        marks, self._marks = self._marks, []
        try:
            await self._write(lambda db: run_marks(db, marks))
        except Exception as error:
            settle_marks(marks, error)
            return
        except BaseException:
            settle_marks(marks, _stopped())
            raise
        settle_marks(marks)

    async def _run_batch(self, turns: deque[Turn[Any]] | None = None, alone: bool = False) -> None:
        """Run queued turns (``turns``, else the store's queue) in one transaction; with
        ``alone``, the one turn in ``turns`` and nothing else, without its savepoint."""
        # A turn's statements run on the event loop when they can (bot.store.connection).
        queue = self._turns if turns is None else turns
        batch = Batch(self.conn, queue, inline=True, marks=self._marks, alone=alone)
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
                    run_marks(db, carried)
                    db.execute("COMMIT")

                try:
                    await Tx(self.conn, outcomes[-1][0].now, batch).run(commit)
                except BaseException:
                    batch.put_back_marks(carried)
                    raise
                batch.committed = True
        except BaseException as error:
            if self.conn.in_transaction:  # done even if the caller is cancelled again
                await finish(asyncio.ensure_future(self.conn.execute("ROLLBACK")))
            # Marks carried by the batch were rolled back with it: the leader runs them next.
            batch.put_back_marks(batch.carried)
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
        if batch.committed:  # not when a lone turn and its apology both failed
            self.batches += 1
            self._committed()
            self.batched_turns += len(outcomes)
        self.carried_marks += len(batch.carried)
        settle_marks(batch.carried)
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
                if not batch.alone:
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
            if not batch.released and not batch.alone:
                batch.prefix.append(f"RELEASE {TURN}")
            return turn, value, None
        finally:
            batch.in_turn = False
        # This turn alone goes back to its savepoint; then its apology, in one of its own.
        if batch.begun and not batch.released:
            self._undo_turn(batch)
        if not batch.alone:
            batch.prefix.append(f"SAVEPOINT {TURN}")
        try:
            value = await turn.on_error(Tx(self.conn, turn.now, batch), failure)
        except Exception as error:
            if batch.begun:
                self._undo_turn(batch)
            return turn, None, error
        if not batch.alone:
            batch.prefix.append(f"RELEASE {TURN}")
        return turn, value, None

    def _undo_turn(self, batch: Batch) -> None:
        """Undo the running turn: back to its savepoint, or, in a batch of one (no
        savepoint), the whole transaction, whose next statement begins another.

        That ROLLBACK runs here, on the event loop: the batch holds the store's lock, no trip
        of the turn is still on the database thread (its error came back from the last
        one), and with WAL a ROLLBACK waits for nobody. Not awaited, it gives a caller
        cancelled meanwhile no moment to be told at and lose it: the cancellation lands
        at the caller's next wait, as for any turn."""
        if not batch.alone:
            batch.prefix += [f"ROLLBACK TO {TURN}", f"RELEASE {TURN}"]
            return
        batch.prefix.clear()
        db = raw(self.conn)
        if db.in_transaction:
            db.execute("ROLLBACK")
        batch.begun = False
