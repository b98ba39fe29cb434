"""The inbound mail channel: read one IMAP folder, turn each mail into ticket events.

Exactly once, nothing lost:

1. ``UID SEARCH`` for UIDs above the highest one recorded for (folder, UIDVALIDITY);
   fetched in batches with ``BODY.PEEK[]`` (nothing changes on the server by reading).
2. Attachments are checked and stored under their hash first (files first, then the row).
3. ONE transaction records (folder, UIDVALIDITY, UID) in ``mail_inbox`` and applies the
   mail's effect (:func:`bot.desk.mail_rules.handle`): ticket events, outbox rows, mails. A UID
   already recorded changes nothing; a Message-ID already applied is a ``duplicate``.
4. Only after the commit is the server told: ``\\Seen`` for what was applied, a move to the
   review folder for what is never relayed; then ``done_at``. A crash before that is
   finished at the next start (rows whose ``done_at`` is NULL), without applying twice.

A new UIDVALIDITY (the folder was rebuilt) starts from UID 1 again: Message-IDs keep the
mails already applied from being applied twice.

IDLE when the server offers it, else a look every ``PTEBOT_IMAP_POLL_SECONDS``. A lost
connection is opened again after 1, 2, 4... seconds (up to 5 minutes, with jitter). A login
refused waits at least a minute between tries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.desk import mail_rules
from bot.desk.mail_rules import CheckedFile
from bot.domain import files as file_checks
from bot.mail.imap import Fetched, ImapAuthError, ImapError, ImapSession
from bot.mail.parse import MAX_ATTACHMENTS, ParsedMail, parse
from bot.store.database import OutboxRow, iso

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
BATCH = 50
BACKOFF_MAX = 300.0

UNREADABLE = ParsedMail(None, "", frozenset(), "", (), "")
Deliver = Callable[[list[OutboxRow]], None]
AfterFetch = Callable[[Fetched], Awaitable[None]]


class MailReader:
    def __init__(
        self,
        app: App,
        deliver: Deliver,
        *,
        session_factory: Callable[[], ImapSession] | None = None,
        after_fetch: AfterFetch | None = None,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.app = app
        self.deliver = deliver
        self.session_factory = session_factory or (lambda: session_for(app))
        self.after_fetch = after_fetch  # tests: the moment between fetch and commit
        self.backoff_max = backoff_max
        self.folder = app.settings.imap_folder
        self.counts: Counter[str] = Counter()  # outcomes (review: "review:<reason>") this run
        self.connections = 0
        self.idle_cycles = 0
        self.ready = asyncio.Event()  # set once the backlog of a connection was worked
        self._task: asyncio.Task[None] | None = None
        self._session: ImapSession | None = None
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ life
    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="mail-reader")

    async def stop(self) -> None:
        if self._session is not None:
            self._session.abort_idle()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        """Look at the folder now (when polling)."""
        self._wake.set()

    async def run(self) -> None:
        delay = 1.0
        while True:
            session = self.session_factory()
            self._session = session
            try:
                await session.open()
                self.connections += 1
                await session.ensure_folder(self.app.settings.imap_review_folder)
                uidvalidity = await session.select(self.folder)
                delay = 1.0
                log.info("mailbox open (IDLE %s)", "yes" if session.has_idle else "no: polling")
                await self._serve(session, uidvalidity)
            except ImapAuthError:
                log.error("the mail server refused the login (PTEBOT_IMAP_USERNAME/PASSWORD)")
                delay = max(delay, 60.0)
            except ImapError as error:
                log.warning("mailbox connection lost (%s); again in %.0f s", error, delay)
            except Exception as error:  # a defect: logged, and the reader goes on
                log.error("mail reader failed (%s); again in %.0f s", type(error).__name__, delay)
                log.debug("mail reader failure", exc_info=True)
            finally:
                self._session = None
                await session.close()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max)

    async def _serve(self, session: ImapSession, uidvalidity: int) -> None:
        poll = self.app.settings.imap_poll_seconds
        while True:
            await self.work(session, uidvalidity)
            self.ready.set()
            if session.has_idle:
                self.idle_cycles += 1
                await session.idle()
            else:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=poll)

    # ------------------------------------------------------------------ work
    async def work(self, session: ImapSession, uidvalidity: int) -> int:
        """Apply every mail not applied yet; returns how many were new."""
        await self.tell_server(session, uidvalidity)  # what a crash left untold
        async with self.app.store.reading() as conn:
            rows = await conn.execute_fetchall(
                "SELECT max(uid) FROM mail_inbox WHERE folder = ? AND uidvalidity = ?",
                (self.folder, uidvalidity),
            )
        last = int(next(iter(rows))[0] or 0)
        uids = await session.uids_after(last)
        for start in range(0, len(uids), BATCH):
            for fetched in await session.fetch(uids[start : start + BATCH]):
                if self.after_fetch is not None:
                    await self.after_fetch(fetched)
                await self.apply(uidvalidity, fetched)
            await self.tell_server(session, uidvalidity)
        return len(uids)

    async def apply(self, uidvalidity: int, fetched: Fetched) -> None:
        now = self.app.clock.now()
        mail = UNREADABLE
        try:
            mail, checked = await asyncio.to_thread(self._read, fetched.raw)
            outcome, reason, rows = await self._apply(uidvalidity, fetched, mail, checked)
        except Exception as error:
            # A defect, not the mail's fault: the mail goes to people, the next one goes on.
            log.error("mail %d could not be applied (%s)", fetched.uid, type(error).__name__)
            log.debug("mail %d failed", fetched.uid, exc_info=True)
            async with self.app.store.transaction(now) as tx:
                await tx.execute(
                    "INSERT INTO mail_inbox (folder, uidvalidity, uid, message_id, sender,"
                    " arrived_at, outcome, reason, processed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, 'review', 'error', ?) ON CONFLICT DO NOTHING",
                    (self.folder, uidvalidity, fetched.uid, mail.message_id, mail.sender,
                     iso(fetched.arrived), tx.stamp),
                )  # fmt: skip
            outcome, reason, rows = "review", "error", []
        if outcome is None:
            return  # this UID was applied before (a restart between commit and mark)
        self.counts[outcome if outcome != "review" else f"review:{reason}"] += 1
        if outcome == "review":
            log.info("mail %d left for review: %s", fetched.uid, reason)
        else:
            log.info("mail %d applied: %s", fetched.uid, outcome)
        if rows:
            self.deliver(rows)

    async def _apply(
        self, uidvalidity: int, fetched: Fetched, mail: ParsedMail, checked: list[CheckedFile]
    ) -> tuple[str | None, str | None, list[OutboxRow]]:
        async with self.app.store.transaction(self.app.clock.now()) as tx:
            claimed = await tx.fetchone(
                "INSERT INTO mail_inbox (folder, uidvalidity, uid, message_id, sender,"
                " arrived_at, outcome, processed_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)"
                " ON CONFLICT DO NOTHING RETURNING id",
                (self.folder, uidvalidity, fetched.uid, mail.message_id, mail.sender,
                 iso(fetched.arrived), tx.stamp),
            )  # fmt: skip
            if claimed is None:
                return None, None, []
            handled = await mail_rules.handle(self.app, tx, mail, checked, fetched.arrived)
            await tx.execute(
                "UPDATE mail_inbox SET outcome = ?, reason = ?, ticket_id = ? WHERE id = ?",
                (handled.outcome, handled.reason, handled.ticket_id, claimed[0]),
            )
            return handled.outcome, handled.reason, list(tx.enqueued)

    def _read(self, raw: bytes) -> tuple[ParsedMail, list[CheckedFile]]:
        """Parse, and check and store the attachments (in a worker thread)."""
        mail = parse(raw)
        if mail.automatic is not None or not mail.files:
            return mail, []
        checked: list[CheckedFile] = []
        for index, part in enumerate(mail.files):
            name = part.filename or "adjunto"
            if index >= MAX_ATTACHMENTS:
                checked.append(CheckedFile(name, refusal="too_many"))
                continue
            verdict = file_checks.inspect(part.content, part.filename)
            refusal = file_checks.refusal_for("attachment", verdict)
            if refusal is not None or verdict.kind is None:
                checked.append(CheckedFile(name, refusal=refusal or "file_type_not_allowed"))
                continue
            stored = self.app.files.put(part.content)
            checked.append(
                CheckedFile(
                    verdict.display_name or name,
                    sha256=stored.sha256,
                    size=stored.size,
                    mime=verdict.mime,
                    kind=verdict.kind,
                )
            )
        return replace(mail, files=[]), checked

    async def tell_server(self, session: ImapSession, uidvalidity: int) -> None:
        """Mark on the server what is committed: seen, or moved to the review folder."""
        async with self.app.store.reading() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT uid, outcome FROM mail_inbox WHERE folder = ? AND uidvalidity = ?"
                    " AND done_at IS NULL ORDER BY uid",
                    (self.folder, uidvalidity),
                )
            )
        if not rows:
            return
        held = [int(uid) for uid, outcome in rows if outcome == "review"]
        applied = [int(uid) for uid, outcome in rows if outcome != "review"]
        await session.mark_seen(applied)
        await session.move(held, self.app.settings.imap_review_folder)
        stamp = iso(self.app.clock.now())
        async with self.app.store.transaction(self.app.clock.now()) as tx:
            for start in range(0, len(rows), 500):
                chunk = [int(uid) for uid, _ in rows[start : start + 500]]
                marks = ", ".join("?" for _ in chunk)
                await tx.execute(
                    f"UPDATE mail_inbox SET done_at = ? WHERE folder = ? AND uidvalidity = ?"
                    f" AND uid IN ({marks})",
                    (stamp, self.folder, uidvalidity, *chunk),
                )


def session_for(app: App) -> ImapSession:
    settings = app.settings
    assert settings.imap_host
    assert settings.imap_username
    assert settings.imap_password
    return ImapSession(
        settings.imap_host,
        settings.imap_port,
        settings.imap_security,
        settings.imap_username,
        settings.imap_password.get_secret_value(),
    )


def start_mail_reader(app: App, deliver: Deliver) -> MailReader | None:
    """The reader, started, when ``PTEBOT_IMAP_HOST`` is set; None otherwise."""
    if not app.settings.imap_host:
        return None
    app.settings.require("PTEBOT_IMAP_USERNAME", "PTEBOT_IMAP_PASSWORD")
    reader = MailReader(app, deliver)
    reader.start()
    return reader
