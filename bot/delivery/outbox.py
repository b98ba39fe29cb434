"""Delivery of committed outbox rows, in order per chat, retried until they go.

Each chat has its own queue drained by one task, so a slow or failing chat never blocks the
others and a chat's messages never overtake each other. A transient failure (429 with
``retry_after``, 5xx, time-out) waits and retries the same row; a permanent one (the user
blocked the bot) marks the row failed, visible to staff. Rows marked sent are written in
batches; a crash before the mark means the message goes out again after restart
(at-least-once delivery).

With a :class:`~bot.delivery.pacer.Pacer` (Telegram), every send waits for its turn there:
the pacer
keeps the bot under the platform's flood limits and puts replies before bulk notices. A 429
then holds the chat in the pacer (which pauses the whole bot when the bot, not one chat, is
over the limit) instead of sleeping here; 429s never count as failures. Other transient
failures back off here, and after ``max_attempts`` of them the row is marked failed: it
stays in the outbox, visible to staff on the ticket, and the chat's later messages go on.

**Poison rows.** Anything else a delivery raises (a template that does not render, a bug in
a transport) is neither the channel's nor the user's doing and would otherwise block the
chat forever: the row is tried ``max_errors`` times in all, backing off (``sleep``, injected
in tests) between tries, then marked failed with its error, in the same transaction as ONE
apology row for the chat (``common.undeliverable`` with a "Menú" button whose callback data,
``0:menu``, the engine answers with the main menu like any stale menu button). The apology is
a row like any other, so it is durable, ordered after what the chat already has queued, and
its template takes no data, so it cannot fail to render; if it fails anyway it is marked
failed without another apology (no loop), and no second apology is written while one is
still pending for the chat. One log line names the row: its id, template key and the
exception type, never its text.

**Joined messages.** A transport with a ``joins`` method (Telegram, WhatsApp) gets a
reply's text-only rows joined into the row after them (:func:`bot.delivery.payload.join`):
"Gracias. Guardé tu aceptación" and the menu go as one message, where ``joins`` says the
result still goes as one message (Telegram: 4096 characters; WhatsApp: 4096 for a text,
1024 for a body with buttons or a list). Only rows of the same reply (submitted together)
are joined. The joined message is delivered as the last of its rows (its id, its attempts);
every row in it is marked with the same outcome: sent together, failed together. The row
handed to the transport names the rows joined into it (``OutboxRow.joined``), so a transport
that keeps rows for later (WhatsApp's 24-hour window) keeps them all.

**Giving up.** A transport that keeps something about a row between its tries (WhatsApp: how
many messages of a row of several already went out) has a ``given_up`` method; it is called
once the row is marked failed (refused, out of attempts, or poison), so nothing is kept for
a row that will not be tried again.

**Marking sent.** A chat's next row waits until the previous one's mark as sent has
committed; the mark of a chat's last queued row rides in the store's next batch of turns
instead, and a new row of that chat waits for it first. The marks are
:mod:`bot.delivery.outbox_marks`'s (:class:`~bot.delivery.outbox_marks.SentMarks`, mixed
into :class:`OutboxWorker`); this module owns the queues, sending, retries and giving up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import traceback
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from bot.delivery.outbox_marks import SentMarks
from bot.delivery.payload import encode, join
from bot.errors import PermanentDelivery, TransientDelivery
from bot.store.database import OutboxRow, Store
from conversations.events import Choice, Outbound, rows
from conversations.names import MENU_CHOICE

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.delivery.pacer import Pacer

log = logging.getLogger(__name__)
MAX_RUN = 5  # messages of one reply a chat may send back to back before others' turn
MAX_ERRORS = 3  # tries of a row whose delivery raises something unexpected (poison)
ERROR_BACKOFF = 1.0  # seconds before the first retry of such a row; doubles each time
APOLOGY_KEY = "common.undeliverable"
# qid 0 is never an open question with a "menu" choice of its own, so the engine takes the
# button as a stale menu button and answers with the main menu.
APOLOGY = encode(Outbound(APOLOGY_KEY, {}, rows(Choice(MENU_CHOICE, "btn.menu"))), 0, None)


class Transport(Protocol):
    """A channel's way to deliver one rendered row; returns the channel's message id."""

    async def deliver(self, row: OutboxRow) -> str | None: ...


class Joining(Protocol):
    """A transport that sends text-only rows together with the next one (optional)."""

    def joins(self, row: OutboxRow) -> bool:
        """Whether ``row`` (a joined payload) still goes as ONE message."""
        ...


class GivingUp(Protocol):
    """A transport that keeps state for a row's retries and drops it when told (optional)."""

    def given_up(self, row: OutboxRow) -> None:
        """``row`` (a joined row included) is marked failed: it will not be tried again."""
        ...


class OutboxWorker(SentMarks):
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
        pacer: Pacer | None = None,
        max_attempts: int | None = None,
        max_errors: int = MAX_ERRORS,
    ) -> None:
        self.store = store
        self.channel = channel
        # A terminal delivers its own user's messages only; other chats' rows wait for theirs.
        self.only_chat = only_chat
        self.transport = transport
        self.clock = clock
        self.max_backoff = max_backoff
        self.pacer = pacer
        self.max_attempts = max_attempts  # transient failures (not 429s) before giving up
        self.max_errors = max_errors  # unexpected exceptions (poison) before giving up
        self._sleep = sleep or asyncio.sleep
        self._queues: dict[str, deque[OutboxRow]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._done: list[tuple[int, str | None]] = []
        self._marking: set[int] = set()  # delivered, being marked sent right now
        # Per chat, its last delivered row's mark as sent when left to commit later.
        self._later: dict[str, asyncio.Future[None]] = {}
        self._watchers: list[set[int]] = []  # pick-ups in progress: rows finished meanwhile
        # Rows submitted together are one reply: with a pacer they go out back to back, so
        # an officer waits one round of the other chats for a reply, not one per message.
        self._batch_of: dict[int, int] = {}
        self._batches = itertools.count()
        self._flush_wanted = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        # Resolved when the flush that takes the rows now in ``_done`` has committed.
        self._next_flush: asyncio.Future[None] | None = None
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
        """Take rows another process committed (e.g. `pte-bot staff set-state`).

        A row this worker finishes while the read runs may still read as pending: it is
        skipped, as are rows whose mark as sent has not committed (else: a duplicate)."""
        skip = {row_id for row_id, _ref in self._done} | self._marking
        finished: set[int] = set()
        self._watchers.append(finished)
        try:
            pending = await self.store.pending_outbox(self.channel)
        finally:
            self._watchers.remove(finished)
        skip |= finished | self._marking | {row_id for row_id, _ref in self._done}
        self.submit(row for row in pending if row.id not in skip)

    def submit(self, rows: Iterable[OutboxRow]) -> None:
        batch = next(self._batches)
        for row in rows:
            if row.id in self._known or row.channel != self.channel:
                continue  # already queued, or another channel's worker delivers it
            if self.only_chat is not None and row.chat_id != self.only_chat:
                continue
            self._known.add(row.id)
            self._batch_of[row.id] = batch
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
        await self._marks_settled()

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
        await self._marks_settled()

    # -------------------------------------------------------------- internals
    async def _drain_chat(self, chat_id: str) -> None:
        queue = self._queues[chat_id]
        previous, run = -1, 0
        try:
            while queue:
                row = queue[0]
                batch = self._batch_of.get(row.id, -2)
                run = run + 1 if batch == previous else 0
                joined, rows = self._joined(queue)
                # The chat's previous mark as sent, if it was left to commit later.
                await self._marked(chat_id)
                await self._deliver(
                    joined,
                    continues=0 < run < MAX_RUN,
                    also=rows[:-1],
                    last=len(rows) == len(queue),
                )
                for done in rows:
                    queue.popleft()
                    for finished in self._watchers:
                        finished.add(done.id)
                    self._known.discard(done.id)
                    self._batch_of.pop(done.id, None)
                previous = batch
        finally:
            del self._tasks[chat_id]
            if not queue:
                del self._queues[chat_id]
            if not self._tasks:
                self._idle.set()

    def _joined(self, queue: deque[OutboxRow]) -> tuple[OutboxRow, list[OutboxRow]]:
        """The message to send from the head of ``queue``, and the rows it carries: the
        head alone, or the head's text joined into the next rows of the same reply."""
        head = queue[0]
        joins = getattr(self.transport, "joins", None)
        if joins is None:
            return head, [head]
        batch = self._batch_of.get(head.id, -2)
        joined, rows = head, [head]
        for following in itertools.islice(queue, 1, None):
            if self._batch_of.get(following.id, -3) != batch or following.bulk != head.bulk:
                break
            payload = join(joined.payload, following.payload)
            if payload is None:
                break
            candidate = dataclasses.replace(
                following, payload=payload, joined=tuple(r.id for r in rows)
            )
            try:
                fits = joins(candidate)
            except Exception:  # e.g. a template that does not render: each row on its own
                fits = False  # (a poison row is then given up alone, as always)
            if not fits:
                break
            joined, rows = candidate, [*rows, following]
        return joined, rows

    async def _send(self, row: OutboxRow, continues: bool) -> str | None:
        if self.pacer is None:
            async with self._slots:
                return await self.transport.deliver(row)
        turn = self.pacer.slot(row.chat_id, bulk=row.bulk, continues=continues)
        async with turn, self._slots:
            return await self.transport.deliver(row)

    async def _deliver(
        self,
        row: OutboxRow,
        continues: bool = False,
        also: Sequence[OutboxRow] = (),
        *,
        last: bool = False,
    ) -> None:
        """Deliver ``row``; the rows in ``also`` were joined into it and share its fate.
        ``last``: nothing else of the chat is queued behind it (its mark may commit later)."""
        attempt = row.attempts
        failures = 0
        errors = 0
        others = [other.id for other in also]

        async def mark_attempt(error: str, failed: bool, next_attempt: datetime | None) -> None:
            try:
                await self.store.mark_attempt(
                    (*others, row.id), error, failed=failed, next_attempt=next_attempt
                )
            finally:
                if failed:
                    self._given_up(row)

        while True:
            try:
                ref = await self._send(row, continues)
            except TransientDelivery as error:
                attempt += 1
                flood = error.retry_after is not None
                failures += 0 if flood else 1
                if self.max_attempts is not None and failures >= self.max_attempts:
                    log.warning("outbox row %d failed %d times; left for staff", row.id, failures)
                    await mark_attempt(str(error), True, None)
                    return
                delay = error.retry_after or min(self.max_backoff, 0.5 * 2 ** min(attempt, 12))
                log.warning(
                    "delivery of outbox row %d failed (%s); retry %d in %.1fs",
                    row.id, error, attempt, delay,
                )  # fmt: skip
                await mark_attempt(str(error), False, self.clock.now() + timedelta(seconds=delay))
                if flood and self.pacer is not None:
                    self.pacer.flooded(row.chat_id, delay)  # the next turn waits for it
                else:
                    await self._sleep(delay)
            except PermanentDelivery as error:
                log.warning("outbox row %d undeliverable: %s", row.id, error)
                await mark_attempt(str(error), True, None)
                return
            except Exception as error:  # poison: neither the channel's nor the user's doing
                errors += 1
                if errors >= self.max_errors:
                    if others:  # joined into the row given up: failed with it
                        await self.store.mark_attempt(
                            others, _describe(error), failed=True, next_attempt=None
                        )
                    try:
                        await self._give_up(row, error, errors)
                    finally:
                        self._given_up(row)
                    return
                delay = min(self.max_backoff, ERROR_BACKOFF * 2 ** (errors - 1))
                # DEBUG, and where it was raised only (its text may quote the message): the
                # one ERROR about this row is written when it is given up.
                log.debug(
                    "outbox row %d raised %s; retry in %.1fs at\n%s",
                    row.id, type(error).__name__, delay, _frames(error),
                )  # fmt: skip
                await mark_attempt(
                    _describe(error), False, self.clock.now() + timedelta(seconds=delay)
                )
                await self._sleep(delay)
            else:
                if last:
                    self._mark_later(row, ref, others)
                else:
                    await self._mark_sent(row.id, ref, others)
                return

    def _given_up(self, row: OutboxRow) -> None:
        given_up = getattr(self.transport, "given_up", None)
        if given_up is not None:
            given_up(row)

    async def _give_up(self, row: OutboxRow, error: Exception, tries: int) -> None:
        """Mark a poison row failed and, unless it was the apology, apologise to its chat."""
        key = _key_of(row.payload)
        apologise = row.payload != APOLOGY
        log.error(
            "outbox row %d (template %s) failed for good after %d tries: %s; %s",
            row.id, key, tries, type(error).__name__,
            "the chat gets an apology" if apologise else "it was the apology: none sent",
        )  # fmt: skip
        added = await self.store.fail_delivery(
            row.id, _describe(error), self.clock.now(), APOLOGY if apologise else None
        )
        self.submit(added)


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


def _key_of(payload: str) -> str:
    """The template key of a stored payload, for logs (a key names no one)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return "?"
    return str(body.get("key", "delete")) if isinstance(body, dict) else "?"


def _frames(error: Exception) -> str:
    """Where ``error`` was raised (files, lines, code), without its message."""
    return "".join(traceback.format_tb(error.__traceback__))


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
