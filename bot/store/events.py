"""Updates already processed, so that a redelivered one changes nothing.

A Telegram update is kept as its ``update_id`` in ``telegram_updates`` (migration 0019):
a number Telegram hands out in increasing order, so rows are appended to a table keyed by
it, one page of the WAL per turn. Every other event (a WhatsApp message id, the terminal's
and the tests' ids) is kept as text in ``processed_events``, by channel.
"""

from __future__ import annotations

import sqlite3

# Every event processed and not purged yet, of every channel.
EVENTS_COUNT = (
    "SELECT (SELECT count(*) FROM processed_events) + (SELECT count(*) FROM telegram_updates)"
)
UPDATE_DIGITS = 18  # a Telegram update_id fits in SQLite's 64-bit integers with room to spare


def update_number(channel: str, event_id: str) -> int | None:
    """The Telegram update's number, or None where the id is kept as text."""
    if (
        channel == "telegram"
        and 0 < len(event_id) <= UPDATE_DIGITS
        and event_id.isascii()
        and event_id.isdigit()
    ):
        return int(event_id)
    return None


def claim(db: sqlite3.Connection, channel: str, event_id: str, stamp: str) -> bool:
    """Record an event as processed; False when it was before."""
    number = update_number(channel, event_id)
    if number is not None:
        cursor = db.execute(
            "INSERT OR IGNORE INTO telegram_updates (update_id, at) VALUES (?, ?)",
            (number, stamp),
        )
    else:
        cursor = db.execute(
            "INSERT OR IGNORE INTO processed_events (channel, event_id, at) VALUES (?, ?, ?)",
            (channel, event_id, stamp),
        )
    return cursor.rowcount == 1


def seen(db: sqlite3.Connection, channel: str, event_id: str) -> bool:
    """Whether an event was processed (and not purged yet)."""
    number = update_number(channel, event_id)
    if number is not None:
        row = db.execute("SELECT 1 FROM telegram_updates WHERE update_id = ?", (number,))
    else:
        row = db.execute(
            "SELECT 1 FROM processed_events WHERE channel = ? AND event_id = ?",
            (channel, event_id),
        )
    return row.fetchone() is not None
