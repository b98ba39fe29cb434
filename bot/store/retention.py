"""How long what is not a ticket is kept, and the purge that enforces it.

The database should grow with tickets, not with messages. Bookkeeping rows exist to
recognise a redelivery, to retry a delivery or to show staff what failed; once that can
no longer happen they go. Secrets go sooner: a verification code is useless once expired,
so neither a mail body nor an ``.eml`` file keeps one past that.

=============================  ==========================================================
what                            kept
=============================  ==========================================================
``telegram_updates``            2 days (Telegram keeps an undelivered update 24 hours)
``processed_events`` WhatsApp   8 days (Meta retries a webhook for up to 7 days)
``processed_events`` others     2 days (the terminal: no redelivery at all; a Telegram id
                                that is not a number, as tests make)
``outbox`` sent                 14 days (late status callbacks, "Más opciones" of a list)
``outbox`` failed               90 days (shown on the ticket's card to staff)
``wa_statuses``                 14 days (they only matter while the outbox row exists)
``webhook_inbox`` processed     deleted at once; set aside: 30 days (for inspection)
``mail_outbox`` code mails      body cleared once sent, refused or expired (10 minutes);
                                row deleted after 14 days
``mail_outbox`` other mails     body cleared once sent (:mod:`bot.delivery.mail_outbox`);
                                the row stays
                                (the Message-ID ties the desk's replies to the ticket)
``verification_codes``          confirmed: kept (they prove the institutional email);
                                unconfirmed: 14 days after they expired
``.eml`` with a code            removed once the code expired (10 minutes)
``.eml`` others                 7 days (a local stand-in for SMTP: the help desk's mailbox
                                has the real copy)
=============================  ==========================================================

Tickets, their events and files, people, consents and conversations are not purged here
(the draft job and ``/borrar_mis_datos`` handle conversations and personal data).

SQLite's ``secure_delete`` (see :class:`~bot.store.database.Store`) zeroes what is deleted in the
database file; the WAL still holds older copies of those pages until it is reset, so the
purge ends with a ``wal_checkpoint(TRUNCATE)``. It runs with the other scheduled jobs,
every 10 minutes.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any, Protocol

from bot.store.database import Store, Tx, iso

log = logging.getLogger(__name__)

CODE_LIFETIME = timedelta(minutes=10)  # a verification code is good this long
EVENTS_KEPT = {"telegram": timedelta(days=2), "whatsapp": timedelta(days=8)}
EVENTS_KEPT_OTHERS = timedelta(days=2)
SENT_KEPT = timedelta(days=14)
FAILED_KEPT = timedelta(days=90)
STATUSES_KEPT = timedelta(days=14)
SET_ASIDE_KEPT = timedelta(days=30)
CODE_MAILS_KEPT = timedelta(days=14)
UNCONFIRMED_CODES_KEPT = timedelta(days=14)
EML_KEPT = timedelta(days=7)
HEADER_BYTES = 16 * 1024  # an .eml's headers are read, never its body

# The channels that have processed events, each found by one search of the index
# processed_events_channel_at (SELECT DISTINCT would read every event): each is then purged
# by channel and age, which the same index serves.
CHANNELS_WITH_EVENTS = """
WITH RECURSIVE present(channel) AS (
    SELECT min(channel) FROM processed_events
    UNION ALL
    SELECT (SELECT min(channel) FROM processed_events WHERE channel > present.channel)
    FROM present WHERE present.channel IS NOT NULL
)
SELECT channel FROM present WHERE channel IS NOT NULL
"""


# Sent messages, found in id order, the order the rows were written in, up to the first row
# written within the period kept (?1: the cutoff, ?2: now): a message sent before the
# cutoff was written before it. So the purge reads the rows it deletes and the few old ones
# kept (failed, held, pending), never the last 14 days' messages, with no index on the
# time they were sent (which every delivery would write to). A row written out of order
# (another process's turn, a clock set back) is purged by a later run; one stamped in the
# future (a clock set ahead, then corrected) is not taken for the first recent row, or it
# would hold back the purge of every row after it until that moment.
SENT_MESSAGES = """
DELETE FROM outbox
 WHERE id < ifnull((SELECT id FROM outbox WHERE created_at >= ?1 AND created_at <= ?2
                    ORDER BY id LIMIT 1), 9223372036854775807)
   AND state = 'sent' AND sent_at < ?1
"""


# Telegram updates, found in the order of their numbers, the order Telegram hands them out
# in (?1: the cutoff, ?2: now). Below the first one received within the period kept, every
# update is older, so the purge reads what it deletes, with no index on their age, which
# every update would write to. Above the last one received within it, only strays: after a
# week without updates Telegram picks the next number at random, and a new bot counts
# anew. A row stamped in the future (a clock set ahead, then corrected) is not taken for
# the first recent one, or it would hold the purge back until that moment.
TELEGRAM_UPDATES = (
    """
DELETE FROM telegram_updates
 WHERE update_id < ifnull((SELECT update_id FROM telegram_updates WHERE at >= ?1 AND at <= ?2
                           ORDER BY update_id LIMIT 1), 9223372036854775807)
   AND at < ?1
""",
    """
DELETE FROM telegram_updates
 WHERE update_id > (SELECT update_id FROM telegram_updates WHERE at >= ?1 AND at <= ?2
                    ORDER BY update_id DESC LIMIT 1)
   AND at < ?1
""",
)


class _Texts(Protocol):
    def plain(self, key: str, data: Mapping[str, Any]) -> str: ...


class _Settings(Protocol):
    @property
    def data_dir(self) -> Path: ...


class Holder(Protocol):
    """What the purge reads of the application (the store sits below it)."""

    @property
    def store(self) -> Store: ...
    @property
    def settings(self) -> _Settings: ...
    @property
    def texts(self) -> _Texts: ...


@dataclass
class Purged:
    rows: dict[str, int] = field(default_factory=dict)
    eml_files: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values()) + self.eml_files


async def purge(app: Holder, now: datetime) -> Purged:
    """Delete what outlived its retention; clear expired codes; empty the WAL."""
    purged = Purged()
    async with app.store.transaction(now) as tx:
        await _purge_rows(tx, now, purged)
    code_subject = app.texts.plain("mail.code_subject", {})
    purged.eml_files = await asyncio.to_thread(
        purge_eml, app.settings.data_dir / "outbox", code_subject, now
    )
    await app.store.checkpoint()
    if purged.total:
        log.info(
            "retention purge: %s; %d .eml files",
            ", ".join(f"{n} {what}" for what, n in purged.rows.items() if n) or "no rows",
            purged.eml_files,
        )
    return purged


async def _purge_rows(tx: Tx, now: datetime, purged: Purged) -> None:
    async def run(what: str, sql: str, *params: object) -> None:
        cursor = await tx.execute(sql, params)
        purged.rows[what] = purged.rows.get(what, 0) + max(cursor.rowcount, 0)

    for (channel,) in await tx.fetchall(CHANNELS_WITH_EVENTS):
        await run(
            "processed events",
            "DELETE FROM processed_events WHERE channel = ? AND at < ?",
            channel,
            iso(now - EVENTS_KEPT.get(channel, EVENTS_KEPT_OTHERS)),
        )
    for sql in TELEGRAM_UPDATES:
        await run("processed events", sql, iso(now - EVENTS_KEPT["telegram"]), iso(now))
    held = "NOT EXISTS (SELECT 1 FROM wa_held h WHERE h.outbox_id = outbox.id)"
    await run("sent messages", SENT_MESSAGES + f" AND {held}", iso(now - SENT_KEPT), iso(now))
    await run(
        "failed messages",
        f"DELETE FROM outbox WHERE state = 'failed' AND created_at < ? AND {held}",
        iso(now - FAILED_KEPT),
    )
    await run(
        "delivery statuses", "DELETE FROM wa_statuses WHERE at < ?", iso(now - STATUSES_KEPT)
    )
    await run(
        "deliveries set aside",
        "DELETE FROM webhook_inbox WHERE failed_at IS NOT NULL AND failed_at < ?",
        iso(now - SET_ASIDE_KEPT),
    )
    # A code mail not sent by the time its code expired never will be: it would be useless.
    await run(
        "expired code mails",
        "UPDATE mail_outbox SET state = 'failed', message = NULL,"
        " last_error = 'code expired before it was sent'"
        " WHERE kind = 'code' AND state = 'pending' AND created_at <= ?",
        iso(now - CODE_LIFETIME),
    )
    await run(
        "code mail bodies",
        "UPDATE mail_outbox SET message = NULL"
        " WHERE kind = 'code' AND state != 'pending' AND message IS NOT NULL",
    )
    await run(
        "code mails",
        "DELETE FROM mail_outbox WHERE kind = 'code' AND state != 'pending' AND created_at < ?",
        iso(now - CODE_MAILS_KEPT),
    )
    await run(
        "unconfirmed codes",
        "DELETE FROM verification_codes WHERE confirmed_at IS NULL AND expires_at < ?",
        iso(now - UNCONFIRMED_CODES_KEPT),
    )


def purge_eml(outbox: Path, code_subject: str, now: datetime) -> int:
    """Remove the ``.eml`` files past their retention; returns how many.

    A mail's age is its ``Date`` header (the moment the mail was decided, on the app's
    clock), else the file's time. A code mail is told by its subject."""
    if not outbox.is_dir():
        return 0
    from email import policy  # email.policy imported on first use, not at start-up

    removed = 0
    parser = BytesHeaderParser(policy=policy.default)
    for path in outbox.glob("*.eml"):
        try:
            with path.open("rb") as handle:
                headers = parser.parsebytes(handle.read(HEADER_BYTES))
            sent = _date(str(headers.get("Date", ""))) or datetime.fromtimestamp(
                path.stat().st_mtime, now.tzinfo
            )
        except FileNotFoundError:
            continue
        is_code = " ".join(str(headers.get("Subject", "")).split()) == code_subject
        if now - sent >= (CODE_LIFETIME if is_code else EML_KEPT):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _date(value: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
