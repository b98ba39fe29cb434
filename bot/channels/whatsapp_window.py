"""WhatsApp's 24-hour customer-service window, held notices and delivery statuses, in SQLite.

Free-form messages may reach an officer only within 24 hours of their last message. A row
that finds the window closed (by our clock, or because Meta answered error 131047) is held:
``wa_held`` keeps it, the outbox marks it sent without a message id, and the re-engagement
template (if configured) is sent once per closure. When the officer writes again, the held
rows go back to ``pending`` and are resubmitted in their order, before the reply to what
the officer wrote. A message joined at delivery (an acknowledgement in front of the question
after it, :mod:`bot.delivery.outbox`) is held as a whole: every row it carries is kept, and
released together they join again. Everything here is one transaction per call, so a row
is either held or delivered, never lost between the two (see :meth:`Window.hold_if_closed`).

The message that reopens a closed window (24 hours or more after the officer's previous
one, after Meta said the window was closed, or after the template) is marked as reopening:
it answers the call-back or greets, and the engine does not take it as the answer to the
question left open (see ``Inbound.reopens``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.store.database import OutboxRow, Store, Tx, iso

CHANNEL = "whatsapp"
WINDOW = timedelta(hours=24)
# Our clock and Meta's differ by the webhook's delay: treat the last minutes as closed.
MARGIN = timedelta(minutes=10)
REENGAGEMENT = 131047


@dataclass
class Touched:
    """What an officer's message did to their window: the held rows it released, and
    whether it reopened a window that had closed."""

    released: list[OutboxRow] = field(default_factory=list)
    reopened: bool = False


class Window:
    def __init__(self, store: Store, template: bool) -> None:
        self.store = store
        self.template = template  # a template is configured

    async def _is_open(self, tx: Tx, wa_id: str, now: datetime) -> bool:
        row = await tx.fetchone(
            "SELECT last_inbound_at, closed_at FROM wa_chats WHERE wa_id = ?", (wa_id,)
        )
        if row is None or row[0] is None:
            return False
        last, closed = datetime.fromisoformat(row[0]), row[1]
        if closed is not None and datetime.fromisoformat(closed) >= last:
            return False
        return now < last + WINDOW - MARGIN

    async def touch(self, wa_id: str, sent_at: datetime, now: datetime) -> Touched:
        """The officer wrote at ``sent_at``: reopen the window, release what was held."""
        async with self.store.transaction(now) as tx:
            before = await tx.fetchone(
                "SELECT last_inbound_at, closed_at, template_sent_at FROM wa_chats"
                " WHERE wa_id = ?",
                (wa_id,),
            )
            reopened = _reopens(before, sent_at)
            await tx.execute(
                "INSERT INTO wa_chats (wa_id, last_inbound_at) VALUES (?, ?)"
                " ON CONFLICT (wa_id) DO UPDATE SET"
                "   last_inbound_at ="
                "     max(coalesce(last_inbound_at, ''), excluded.last_inbound_at),"
                "   template_sent_at = CASE WHEN coalesce(last_inbound_at, '')"
                "     < excluded.last_inbound_at THEN NULL ELSE template_sent_at END",
                (wa_id, iso(sent_at)),
            )
            if sent_at > now - WINDOW + MARGIN:
                # A message this recent means Meta's window is open, whatever it said
                # before (its clock and ours may disagree by seconds).
                await tx.execute("UPDATE wa_chats SET closed_at = NULL WHERE wa_id = ?", (wa_id,))
            if not await self._is_open(tx, wa_id, now):
                return Touched()  # a late redelivery of an old message does not reopen it
            found = await tx.fetchall(
                "SELECT o.id, o.payload, o.bulk FROM wa_held h JOIN outbox o ON o.id = h.outbox_id"
                " WHERE h.wa_id = ? ORDER BY o.id",
                (wa_id,),
            )
            if not found:
                return Touched(reopened=reopened)
            ids = [row[0] for row in found]
            marks = ", ".join("?" for _ in ids)
            await tx.execute(
                "UPDATE outbox SET state = 'pending', sent_at = NULL, external_ref = NULL"
                f" WHERE id IN ({marks})",
                ids,
            )
            await tx.execute(f"DELETE FROM wa_held WHERE outbox_id IN ({marks})", ids)
        released = [OutboxRow(r[0], CHANNEL, wa_id, r[1], bool(r[2])) for r in found]
        return Touched(released, reopened)

    async def hold_if_closed(self, row: OutboxRow, now: datetime) -> tuple[bool, bool]:
        """(held, send the template now) for a row about to be delivered."""
        async with self.store.transaction(now) as tx:
            if await self._is_open(tx, row.chat_id, now):
                return False, False
            return True, await self._hold(tx, row.ids, row.chat_id)

    async def closed_by_meta(self, row: OutboxRow, now: datetime) -> bool:
        """Meta refused ``row`` with 131047: hold it (and the rows joined into it); True to
        send the template now."""
        async with self.store.transaction(now) as tx:
            await self._close(tx, row.chat_id)
            return await self._hold(tx, row.ids, row.chat_id)

    async def template_failed(self, wa_id: str, now: datetime) -> None:
        """The template did not go out (transiently): the next held row tries again."""
        async with self.store.transaction(now) as tx:
            await tx.execute(
                "UPDATE wa_chats SET template_sent_at = NULL WHERE wa_id = ?", (wa_id,)
            )

    async def record_status(
        self, wamid: str, status: str, error: tuple[int | None, str] | None, now: datetime
    ) -> bool:
        """Keep a status callback; False when it was reported before (a redelivery)."""
        code, title = error if error else (None, "")
        async with self.store.transaction(now) as tx:
            cursor = await tx.execute(
                "INSERT OR IGNORE INTO wa_statuses (wamid, status, at, error_code, error_title)"
                " VALUES (?, ?, ?, ?, ?)",
                (wamid, status, iso(now), code, title[:300] or None),
            )
            return cursor.rowcount == 1

    async def apply_failure(
        self,
        wamid: str,
        wa_id: str,
        error: tuple[int | None, str],
        now: datetime,
        rows: Sequence[int] | None = None,
    ) -> bool | None:
        """A sent message failed: hold its rows (131047) or mark them failed (a joined
        message carries several rows, all with its wamid; ``rows``: those of a row sent as
        several messages, of which ``wamid`` is one, the outbox naming only the last). None
        while no row is marked sent with it yet (the outbox records that just after the
        send); else whether to send the re-engagement template now."""
        code, title = error
        async with self.store.transaction(now) as tx:
            if rows:
                marks = ", ".join("?" for _ in rows)
                found = await tx.fetchall(
                    "SELECT id FROM outbox WHERE channel = ? AND chat_id = ? AND state = 'sent'"
                    f" AND id IN ({marks}) ORDER BY id",
                    (CHANNEL, wa_id, *rows),
                )
            else:
                found = await tx.fetchall(
                    "SELECT id FROM outbox WHERE channel = ? AND external_ref = ? ORDER BY id",
                    (CHANNEL, wamid),
                )
            if not found:
                return None
            ids = [row[0] for row in found]
            if code == REENGAGEMENT:
                await self._close(tx, wa_id)
                return await self._hold(tx, ids, wa_id)
            # Shown on the ticket's card like a blocked Telegram chat.
            marks = ", ".join("?" for _ in ids)
            await tx.execute(
                f"UPDATE outbox SET state = 'failed', last_error = ? WHERE id IN ({marks})",
                (f"whatsapp {code}: {title}"[:500], *ids),
            )
            return False

    async def _close(self, tx: Tx, wa_id: str) -> None:
        await tx.execute(
            "INSERT INTO wa_chats (wa_id, closed_at) VALUES (?, ?)"
            " ON CONFLICT (wa_id) DO UPDATE SET closed_at = excluded.closed_at",
            (wa_id, tx.stamp),
        )

    async def _hold(self, tx: Tx, row_ids: Sequence[int], wa_id: str) -> bool:
        for row_id in row_ids:
            await tx.execute(
                "INSERT OR IGNORE INTO wa_held (outbox_id, wa_id, held_at) VALUES (?, ?, ?)",
                (row_id, wa_id, tx.stamp),
            )
        if not self.template:
            return False
        cursor = await tx.execute(
            "INSERT INTO wa_chats (wa_id, template_sent_at) VALUES (?, ?)"
            " ON CONFLICT (wa_id) DO UPDATE SET template_sent_at = excluded.template_sent_at"
            " WHERE template_sent_at IS NULL",
            (wa_id, tx.stamp),
        )
        return cursor.rowcount == 1


def _reopens(before: tuple[str | None, ...] | None, sent_at: datetime) -> bool:
    """Whether a message written at ``sent_at`` comes after the window had closed: 24 hours
    or more after the officer's previous message, or after Meta closed it (131047) or we
    sent the template since then. A first message, or an older one redelivered, does not."""
    if before is None or before[0] is None:
        return False
    last = datetime.fromisoformat(before[0])
    if sent_at <= last:
        return False
    closed, template = before[1], before[2]
    if closed is not None and datetime.fromisoformat(closed) >= last:
        return True
    return template is not None or sent_at - last >= WINDOW
