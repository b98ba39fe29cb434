"""The help desk's scheduled work, idempotent across restarts.

- ``remind_observed``: an officer whose ticket has been Observado for 2 business days
  without answering gets one reminder, with the Corregir button.
- ``staff_digest``: once per business day, from 08:00 Lima time, every staff member gets the
  tickets that are overdue and those due on the next business day (a run is recorded in
  ``job_runs`` in the same transaction as its messages, so it happens once per day).
- ``auto_close``: an Atendido ticket the officer has not written about for 5 business days
  is closed (the officer is told).

Each job writes its marks and its outbox rows in one transaction: a crash before the
commit repeats nothing and loses nothing, the next run does the work.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING

from bot import dates
from bot.delivery.payload import encode
from bot.desk import card as desk
from bot.domain import workflow
from bot.domain.workflow import ATTENDED, CLOSED, IN_PROGRESS, OBSERVED, REGISTERED
from bot.store.database import OutboxRow
from conversations.events import Outbound, rows

if TYPE_CHECKING:
    from bot.domain.types import Context

REMIND_OBSERVED_AFTER = 2  # business days
AUTO_CLOSE_AFTER = 5  # business days
DIGEST_FROM = time(8, 0)  # Lima


def _business_days_since(app: Context, stamp: str, today: date) -> int:
    since = dates.lima_date(datetime.fromisoformat(stamp))
    return app.calendar.business_days_between(since, today)


async def remind_observed(app: Context, now: datetime) -> list[OutboxRow]:
    today = dates.lima_date(now)
    sent: list[OutboxRow] = []
    async with app.store.transaction(now) as tx:
        found = await tx.fetchall(
            "SELECT t.number, t.observed_at,"
            " (SELECT message FROM ticket_events e WHERE e.ticket_id = t.id"
            "  AND e.to_state = ? AND e.kind = 'estado' ORDER BY e.id DESC LIMIT 1)"
            " FROM tickets t WHERE t.state = ? AND t.observed_reminded_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id"
            "  AND e.kind = 'oficial' AND e.at >= t.observed_at)",
            (OBSERVED, OBSERVED),
        )
        for number, observed_at, message in found:
            if _business_days_since(app, observed_at, today) < REMIND_OBSERVED_AFTER:
                continue
            ticket = await workflow.load(tx, number)
            assert ticket is not None
            await tx.execute(
                "UPDATE tickets SET observed_reminded_at = ? WHERE id = ?", (tx.stamp, ticket.id)
            )
            reminder = Outbound(
                "aviso.recordatorio_observado",
                {"number": number, "since": observed_at, "message": message},
                rows(workflow.notice_choice("fix", number, "btn.notice_fix")),
                bulk=True,
            )
            sent += await workflow.tell_officer(tx, ticket, reminder, bulk=True)
    return sent


async def staff_digest(app: Context, now: datetime) -> list[OutboxRow]:
    staff = [(channel, chat) for channel, chats in app.staff.items() for chat in sorted(chats)]
    if not staff:  # nobody to tell: not even the calendar is needed (its holidays load late)
        return []
    local = now.astimezone(dates.LIMA)
    today = local.date()
    if local.time() < DIGEST_FROM or not app.calendar.is_business_day(today):
        return []
    sent: list[OutboxRow] = []
    async with app.store.transaction(now) as tx:
        claimed = await tx.fetchone(
            "INSERT INTO job_runs (job, run_key, at) VALUES ('digest', ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            (today.isoformat(), tx.stamp),
        )
        if claimed is None:
            return []  # already sent today
        tomorrow = app.calendar.add_business_days(today, 1).isoformat()
        found = await tx.fetchall(
            "SELECT t.number, t.type, t.state, t.due_on, t.paused_days_left, t.entity_name,"
            " t.assignee_chat FROM tickets t LEFT JOIN entities e ON e.id = t.entity_id"
            " WHERE t.state IN (?, ?) AND t.due_on <= ? ORDER BY t.due_on, t.id",
            (REGISTERED, IN_PROGRESS, tomorrow),
        )
        items = [desk.item(app, tx, row) for row in found]
        late = [t for t in items if t["overdue"]]
        due_next = [t for t in items if t["due"] == tomorrow]
        if not late and not due_next:
            return []
        digest = Outbound(
            "mesa.resumen",
            {"today": today, "late": late, "tomorrow": due_next},
            rows(workflow.notice_choice("queue", "", "btn.desk_queue")),
            bulk=True,
        )
        payload = encode(digest, 0, None)
        for channel, chat in staff:
            sent += await tx.enqueue(channel, chat, [(payload, True)])
    return sent


async def auto_close(app: Context, now: datetime) -> list[OutboxRow]:
    today = dates.lima_date(now)
    sent: list[OutboxRow] = []
    async with app.store.transaction(now) as tx:
        found = await tx.fetchall(
            "SELECT t.number, t.attended_at FROM tickets t WHERE t.state = ?"
            " AND NOT EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id"
            "  AND e.kind = 'oficial' AND e.at >= t.attended_at)",
            (ATTENDED,),
        )
        for number, attended_at in found:
            if _business_days_since(app, attended_at, today) < AUTO_CLOSE_AFTER:
                continue
            changed = await workflow.change_state(app.calendar, tx, number, CLOSED, "system")
            sent += changed.notifications
    return sent


async def run_desk_jobs(app: Context, now: datetime) -> list[OutboxRow]:
    return [
        *await remind_observed(app, now),
        *await auto_close(app, now),
        *await staff_digest(app, now),
    ]
