"""Ticket states and their transitions, validated in one place.

    Registrado → En atención → Observado ⇄ En atención → Atendido → Cerrado
    Registrado → Anulado (withdrawn by the officer before attention)

Every change is a ticket event (who, when, from, to, message) and a notification to the
officer, written in the same transaction. While a ticket is Observado its due-date clock is
paused; it resumes with the business days that were left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from bot import dates
from bot.errors import PteBotError
from bot.payload import encode
from bot.store import OutboxRow, Tx
from conversations.events import Outbound

if TYPE_CHECKING:
    from bot.app import App

REGISTERED, IN_PROGRESS, OBSERVED = "Registrado", "En atención", "Observado"
ATTENDED, CLOSED, CANCELLED = "Atendido", "Cerrado", "Anulado"
STATES = (REGISTERED, IN_PROGRESS, OBSERVED, ATTENDED, CLOSED, CANCELLED)
ALLOWED: dict[str, frozenset[str]] = {
    REGISTERED: frozenset({IN_PROGRESS, CANCELLED}),
    IN_PROGRESS: frozenset({OBSERVED, ATTENDED}),
    OBSERVED: frozenset({IN_PROGRESS}),
    ATTENDED: frozenset({CLOSED}),
    CLOSED: frozenset(),
    CANCELLED: frozenset(),
}


class TransitionError(PteBotError):
    """A state change the workflow does not allow, or a ticket that does not exist."""


@dataclass(frozen=True)
class Changed:
    number: str
    from_state: str
    to_state: str
    due: date
    notifications: list[OutboxRow]


async def change_state(
    app: App, tx: Tx, number: str, to_state: str, actor: str, message: str | None = None
) -> Changed:
    row = await tx.fetchone(
        "SELECT t.id, t.state, t.due_on, t.paused_days_left, ci.channel, ci.external_id"
        " FROM tickets t JOIN chat_identities ci ON ci.id = t.identity_id WHERE t.number = ?",
        (number,),
    )
    if row is None:
        raise TransitionError(f"no ticket {number}")
    ticket_id, state, due_on, paused, channel, chat_id = row
    if to_state not in ALLOWED.get(state, frozenset()):
        raise TransitionError(f"{number}: {state} cannot become {to_state}")
    today = dates.lima_date(tx.now)
    due = date.fromisoformat(due_on)
    if to_state == OBSERVED:  # the clock stops with what was left
        paused = max(0, app.calendar.business_days_between(today, due))
    elif state == OBSERVED:  # and resumes with it
        due = app.calendar.due_after_resume(today, paused or 0)
        paused = None
    await tx.execute(
        "UPDATE tickets SET state = ?, due_on = ?, paused_days_left = ?, updated_at = ?"
        " WHERE id = ?",
        (to_state, due.isoformat(), paused, tx.stamp, ticket_id),
    )
    await tx.execute(
        "INSERT INTO ticket_events (ticket_id, at, actor, from_state, to_state, message)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (ticket_id, tx.stamp, actor, state, to_state, message),
    )
    notifications: list[OutboxRow] = []
    if not chat_id.startswith("borrado:"):  # the officer erased their data: no chat to tell
        notice = Outbound(
            "aviso.estado", {"number": number, "state": to_state, "message": message}
        )
        notifications = await tx.enqueue(channel, chat_id, [(encode(notice, 0, None), False)])
    return Changed(number, state, to_state, due, notifications)
