"""The mail outbox: messages written in the deciding transaction, sent after it commits.

Sending retries with backoff until the server takes the message (a 4xx reply or a network
failure is transient; a 5xx is permanent and marks the row failed). Once sent, the stored
bytes are cleared: a verification code lives in the database only until it is mailed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import TYPE_CHECKING

from bot.mail import Attachment, Mailer, PermanentMailError, TransientMailError, build_message
from bot.store import Store, Tx, iso

if TYPE_CHECKING:
    from bot.app import Clock

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(minutes=30)


class MailOutbox:
    def __init__(self, store: Store, mailer: Mailer, sender: str, clock: Clock) -> None:
        self.store = store
        self.mailer = mailer
        self.sender = sender
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

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
    ) -> None:
        message = build_message(
            sender=self.sender,
            to=to,
            cc=cc,
            subject=subject,
            text_body=body,
            attachments=attachments,
            now=tx.now,
        )
        await tx.execute(
            "INSERT INTO mail_outbox (kind, message, created_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?)",
            (kind, message.as_bytes(policy=policy.SMTP), tx.stamp, tx.stamp),
        )
        self._wake.set()  # the worker reads under the store lock, so after this commits

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
        """Send every message that is due; returns seconds until the next retry is due."""
        now = self.clock.now()
        async with self.store.reading() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT id, message, attempts, next_attempt_at FROM mail_outbox"
                    " WHERE state = 'pending' ORDER BY id"
                )
            )
        wait = 60.0
        for row_id, raw, attempts, next_at in rows:
            due = datetime.fromisoformat(next_at)
            if due > now:
                wait = min(wait, (due - now).total_seconds())
                continue
            message = message_from_bytes(raw, policy=policy.default)
            assert isinstance(message, EmailMessage)
            try:
                reference = await self.mailer.send(message)
            except TransientMailError as error:
                backoff = min(MAX_BACKOFF, timedelta(seconds=5 * 2 ** min(attempts, 12)))
                log.warning("mail %d not sent (%s); retry in %s", row_id, error, backoff)
                await self._update(
                    "UPDATE mail_outbox SET attempts = attempts + 1, last_error = ?,"
                    " next_attempt_at = ? WHERE id = ?",
                    (str(error)[:500], iso(now + backoff), row_id),
                )
                wait = min(wait, backoff.total_seconds())
            except PermanentMailError as error:
                log.error("mail %d refused for good: %s", row_id, error)
                await self._update(
                    "UPDATE mail_outbox SET attempts = attempts + 1, last_error = ?,"
                    " state = 'failed' WHERE id = ?",
                    (str(error)[:500], row_id),
                )
            else:
                log.info("mail %d sent", row_id)
                await self._update(
                    "UPDATE mail_outbox SET state = 'sent', sent_at = ?, reference = ?,"
                    " message = NULL WHERE id = ?",
                    (iso(self.clock.now()), reference, row_id),
                )
        return wait

    async def _update(self, sql: str, params: tuple[object, ...]) -> None:
        async with self.store.reading() as conn:
            await conn.execute(sql, params)
