"""The mail outbox: messages written in the deciding transaction, sent after it commits.

Sending retries with backoff until the server takes the message (a 4xx reply or a network
failure is transient; a 5xx is permanent and marks the row failed). Anything else raised
while reading the stored message back or sending it (a bug, not the server's answer) is
tried ``MAX_ERRORS`` times in all (counted per run) with the same backoff, then the row is
marked failed with its error and one ERROR line names the row (id, kind, exception type);
the mails behind it go on. Once sent, the stored bytes are cleared: a verification code
lives in the database only until it is mailed.

Delivery is at-least-once: a crash after the server took a mail and before its row is marked
sent sends it again after the restart. Its Message-ID is fixed when the row is written (in
the message and in the row's ``message_id``), so the copy is the same message and the
receiving side can drop it.

One pass sends at a time: the loop and a caller of :meth:`MailOutbox.send_due` (the
terminal after each line, the soak bench, the test drivers) may overlap, and two passes
that both read a row as pending would both send it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Mapping
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from typing import TYPE_CHECKING

from bot.mail.smtp import Attachment, Mailer, PermanentMailError, TransientMailError, build_message
from bot.store.database import Store, Tx, iso

if TYPE_CHECKING:
    from bot.clock import Clock

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(minutes=30)
MAX_ERRORS = 3  # tries of a mail whose reading or sending raises something unexpected


class MailOutbox:
    def __init__(self, store: Store, mailer: Mailer, sender: str, clock: Clock) -> None:
        self.store = store
        self.mailer = mailer
        self.sender = sender
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Unexpected errors per row in this run (server answers are counted in ``attempts``).
        self._errors: dict[int, int] = {}
        # Held for a whole pass: a pass reads the pending rows, then marks each one only
        # after the server took it; a second pass in between would send it again.
        self._pass = asyncio.Lock()

    async def enqueue(
        self,
        tx: Tx,
        *,
        kind: str,
        to: list[str],
        cc: list[str],
        subject: str,
        body: str,
        attachments: list[Attachment],
        ticket_id: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Write the mail in ``tx``; returns its Message-ID. ``ticket_id`` names the ticket
        it is about, so that a reply to it (In-Reply-To/References) finds the ticket."""
        message = build_message(
            sender=self.sender,
            to=to,
            cc=cc,
            subject=subject,
            text_body=body,
            attachments=attachments,
            now=tx.now,
            headers=headers,
        )
        message_id = str(message["Message-ID"])
        from email import policy  # email.policy imported on first use, not at start-up

        await tx.execute(
            "INSERT INTO mail_outbox (kind, message, message_id, ticket_id, created_at,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                kind,
                message.as_bytes(policy=policy.SMTP),
                message_id,
                ticket_id,
                tx.stamp,
                tx.stamp,
            ),
        )
        self._wake.set()  # the worker reads under the store lock, so after this commits
        return message_id

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mail-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            # Cleared before looking, not after: a mail enqueued while we send is not missed.
            self._wake.clear()
            delay = await self.send_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def send_due(self) -> float:
        """Send every message that is due; returns seconds until the next retry is due.
        A call while another pass runs waits for it, then sends what is still pending."""
        async with self._pass:
            return await self._send_pass()

    async def _send_pass(self) -> float:
        now = self.clock.now()
        async with self.store.reading() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT id, kind, message, message_id, attempts, next_attempt_at"
                    " FROM mail_outbox WHERE state = 'pending' ORDER BY id"
                )
            )
        wait = 60.0
        for row_id, kind, raw, message_id, attempts, next_at in rows:
            due = datetime.fromisoformat(next_at)
            if due > now:
                wait = min(wait, (due - now).total_seconds())
                continue
            backoff = min(MAX_BACKOFF, timedelta(seconds=5 * 2 ** min(attempts, 12)))
            try:
                reference = await self.mailer.send(_stored(raw, message_id))
            except TransientMailError as error:
                log.warning("mail %d not sent (%s); retry in %s", row_id, error, backoff)
                await self._retry_later(row_id, str(error), now + backoff)
                wait = min(wait, backoff.total_seconds())
            except PermanentMailError as error:
                log.error("mail %d refused for good: %s", row_id, error)
                await self._fail(row_id, str(error))
            except Exception as error:  # neither the server's answer nor ours to wait out
                # The text may quote an address: it goes to the row, not to the log.
                described = f"{type(error).__name__}: {error}"
                errors = self._errors[row_id] = self._errors.get(row_id, 0) + 1
                if errors >= MAX_ERRORS:
                    log.error(
                        "mail %d (%s) failed for good after %d tries: %s",
                        row_id, kind, errors, type(error).__name__,
                    )  # fmt: skip
                    await self._fail(row_id, described)
                    del self._errors[row_id]
                else:
                    log.debug(
                        "mail %d raised %s; retry in %s at\n%s",
                        row_id, type(error).__name__, backoff,
                        "".join(traceback.format_tb(error.__traceback__)),
                    )  # fmt: skip
                    await self._retry_later(row_id, described, now + backoff)
                    wait = min(wait, backoff.total_seconds())
            else:
                # Marked before anything else: the window in which a crash resends it is
                # this one statement.
                self._errors.pop(row_id, None)
                await self._update(
                    "UPDATE mail_outbox SET state = 'sent', sent_at = ?, reference = ?,"
                    " message = NULL WHERE id = ?",
                    (iso(self.clock.now()), reference, row_id),
                )
                log.info("mail %d sent", row_id)
        return wait

    async def _retry_later(self, row_id: int, error: str, due: datetime) -> None:
        await self._update(
            "UPDATE mail_outbox SET attempts = attempts + 1, last_error = ?,"
            " next_attempt_at = ? WHERE id = ?",
            (error[:500], iso(due), row_id),
        )

    async def _fail(self, row_id: int, error: str) -> None:
        await self._update(
            "UPDATE mail_outbox SET attempts = attempts + 1, last_error = ?,"
            " state = 'failed' WHERE id = ?",
            (error[:500], row_id),
        )

    async def _update(self, sql: str, params: tuple[object, ...]) -> None:
        async with self.store.reading() as conn:
            await conn.execute(sql, params)


def _stored(raw: bytes, message_id: str | None) -> EmailMessage:
    """The message as written, under the Message-ID fixed with its row."""
    from email import policy

    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    if message_id and message["Message-ID"] != message_id:
        del message["Message-ID"]
        message["Message-ID"] = message_id
    return message
