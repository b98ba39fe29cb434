"""Ticket states and their transitions, validated in one place.

    Registrado → En atención → Observado ⇄ En atención → Atendido → Cerrado
    Registrado → Anulado (withdrawn by the officer before attention)

Every change is a ticket event (who, when, from, to, message) and a notification to the
officer, written in the same transaction. While a ticket is Observado its due-date clock is
paused: on its way back the due date moves later by exactly the business days spent Observado
(:meth:`bot.domain.calendar.BusinessCalendar.due_after_pause`, the one place the rule lives).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bot import dates
from bot.delivery.payload import encode
from bot.domain.ticket_types import kind_of
from bot.errors import PteBotError
from bot.store.database import OutboxRow, Tx
from conversations.events import Choice, Outbound, rows
from conversations.names import NOTICE_PREFIX

if TYPE_CHECKING:
    from bot.domain.calendar import BusinessCalendar


class TicketState(StrEnum):
    """A ticket's state, stored as this stable code; people read it through the template
    ``estado.state_<code>`` (filter ``estado``), never the code itself."""

    REGISTERED = "registrado"
    IN_PROGRESS = "en_atencion"
    OBSERVED = "observado"
    ATTENDED = "atendido"
    CLOSED = "cerrado"
    CANCELLED = "anulado"


REGISTERED, IN_PROGRESS, OBSERVED = (
    TicketState.REGISTERED,
    TicketState.IN_PROGRESS,
    TicketState.OBSERVED,
)
ATTENDED, CLOSED, CANCELLED = TicketState.ATTENDED, TicketState.CLOSED, TicketState.CANCELLED
STATES = tuple(TicketState)
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


PARTS = ("resolucion", "responsable", "perfiles", "otro")  # what an observation names


@dataclass(frozen=True)
class Changed:
    number: str
    from_state: str
    to_state: str
    due: date
    notifications: list[OutboxRow]


@dataclass(frozen=True)
class Ticket:
    """What a change needs to know of a ticket."""

    id: int
    number: str
    type: str
    state: str
    person_id: int
    channel: str
    chat_id: str
    assignee: tuple[str, str] | None  # (channel, chat id) of the staff member who took it

    @property
    def reachable(self) -> bool:
        """The officer's chat still exists (not erased with /borrar_mis_datos)."""
        return not self.chat_id.startswith("borrado:")


async def load(tx: Tx, number: str) -> Ticket | None:
    row = await tx.fetchone(
        "SELECT t.id, t.number, t.type, t.state, t.person_id, ci.channel, ci.external_id,"
        " t.assignee_channel, t.assignee_chat"
        " FROM tickets t JOIN chat_identities ci ON ci.id = t.identity_id WHERE t.number = ?",
        (number,),
    )
    if row is None:
        return None
    assignee = (row[7], row[8]) if row[7] else None
    return Ticket(row[0], row[1], row[2], row[3], row[4], row[5], row[6], assignee)


def notice_choice(action: str, number: str, label: str) -> Choice:
    return Choice(f"{NOTICE_PREFIX}{action}:{number}", label)


async def tell_officer(
    tx: Tx, ticket: Ticket, message: Outbound, bulk: bool = False
) -> list[OutboxRow]:
    """A message to the ticket's officer, linked to the ticket (staff see if it failed)."""
    if not ticket.reachable:
        return []
    payload = encode(message, 0, None)
    return await tx.enqueue(ticket.channel, ticket.chat_id, [(payload, bulk)], ticket.id)


async def change_state(
    calendar: BusinessCalendar,
    tx: Tx,
    number: str,
    to_state: str,
    actor: str,
    message: str | None = None,
    *,
    part: str | None = None,
    assignee: tuple[str, str] | None = None,
    notify: bool = True,
    details: Mapping[str, Any] | None = None,
) -> Changed:
    """Move a ticket to ``to_state`` if the workflow allows it; record and notify in ``tx``.
    ``details`` go into the officer's notice (e.g. the profiles an attended change changed)."""
    ticket = await load(tx, number)
    if ticket is None:
        raise TransitionError(f"no ticket {number}")
    row = await tx.fetchone(
        "SELECT due_on, paused_days_left, observed_at FROM tickets WHERE id = ?", (ticket.id,)
    )
    due_on, paused, observed_at = row
    state = ticket.state
    if to_state not in ALLOWED.get(state, frozenset()):
        raise TransitionError(f"{number}: {state} cannot become {to_state}")
    today = dates.lima_date(tx.now)
    due = date.fromisoformat(due_on)
    if to_state == OBSERVED:  # the clock stops; what was left is shown while it waits
        paused = max(0, calendar.business_days_between(today, due))
        part = part if part in PARTS else "otro"
    elif state == OBSERVED:  # the business days spent Observado do not count
        observed_on = today
        if observed_at:
            observed_on = dates.lima_date(datetime.fromisoformat(observed_at))
        due = calendar.due_after_pause(due, observed_on, today)
        paused = None
    await tx.execute(
        "UPDATE tickets SET state = ?, due_on = ?, paused_days_left = ?, updated_at = ?,"
        " observed_part = CASE WHEN ? THEN ? ELSE observed_part END,"
        " observed_at = CASE WHEN ? THEN ? ELSE observed_at END,"
        " observed_reminded_at = CASE WHEN ? THEN NULL ELSE observed_reminded_at END,"
        " attended_at = CASE WHEN ? THEN ? ELSE attended_at END,"
        " assignee_channel = coalesce(?, assignee_channel),"
        " assignee_chat = coalesce(?, assignee_chat)"
        " WHERE id = ?",
        (
            to_state, due.isoformat(), paused, tx.stamp,
            to_state == OBSERVED, part,
            to_state == OBSERVED, tx.stamp,
            to_state == OBSERVED,
            to_state == ATTENDED, tx.stamp,
            assignee[0] if assignee else None, assignee[1] if assignee else None,
            ticket.id,
        ),
    )  # fmt: skip
    await record(tx, ticket.id, actor, state, to_state, message)
    notifications: list[OutboxRow] = []
    if notify:
        choices: tuple[tuple[Choice, ...], ...] = ()
        if to_state == OBSERVED:
            choices = rows(notice_choice("fix", number, "btn.notice_fix"))
        elif to_state == ATTENDED and kind_of(ticket.type).answered:  # a question after it
            choices = rows(notice_choice("reply", number, "btn.notice_reply"))
        notice = Outbound(
            "aviso.estado",
            {"number": number, "state": to_state, "message": message, "part": part,
             "type": ticket.type, "changes": [], **(details or {})},
            choices,
        )  # fmt: skip
        notifications = await tell_officer(tx, ticket, notice)
    return Changed(number, state, to_state, due, notifications)


async def record(
    tx: Tx,
    ticket_id: int,
    actor: str,
    from_state: str | None,
    to_state: str,
    message: str | None,
    kind: str = "estado",
) -> None:
    await tx.execute(
        "INSERT INTO ticket_events (ticket_id, at, actor, from_state, to_state, message, kind)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ticket_id, tx.stamp, actor, from_state, to_state, message, kind),
    )
