"""The webhook inbox in the store: a delivery kept before it is acknowledged, done, replayed
at the next start, or set aside for inspection.

Mixed into ``bot.store.database.Store`` (see :mod:`bot.store.store_base`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.store.rows import iso
from bot.store.store_base import StoreBase


class InboxQueries(StoreBase):
    """What the webhook server asks of the store about the deliveries it received."""

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
