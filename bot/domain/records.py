"""The rows that make a ticket: its number, its entity, its files, its first event.

Opening a request (the Formato, the mails, the staff's notice) is :mod:`bot.desk.intake`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from bot import dates
from bot.domain.ticket_types import kind_of
from bot.domain.workflow import REGISTERED
from bot.store.database import Tx

if TYPE_CHECKING:
    from bot.domain.calendar import BusinessCalendar
    from bot.domain.types import Who

TERM_DAYS = 5
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def next_number(tx: Tx, year: int) -> str:
    row = await tx.fetchone(
        "INSERT INTO ticket_counters (year, last) VALUES (?, 1)"
        " ON CONFLICT (year) DO UPDATE SET last = last + 1 RETURNING last",
        (year,),
    )
    return f"PTE-{year}-{row[0]:06d}"


async def upsert_entity(tx: Tx, ruc: str, name: str) -> int:
    """The RUC's row, its name now the last one typed: only a suggestion for the next request
    (each ticket keeps the name its officer sent in ``tickets.entity_name``)."""
    row = await tx.fetchone(
        "INSERT INTO entities (ruc, name, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (ruc) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at"
        " RETURNING id",
        (ruc, name, tx.stamp),
    )
    return int(row[0])


async def add_file(tx: Tx, sha256: str, size: int, mime: str, kind: str) -> None:
    await tx.execute(
        "INSERT OR IGNORE INTO files (sha256, size, mime, kind, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (sha256, size, mime, kind, tx.stamp),
    )


EXTENSIONS = {"pdf": "pdf", "png": "png", "jpeg": "jpg", "docx": "docx", "xlsx": "xlsx"}
MIMES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": XLSX,
}


async def create_ticket(
    calendar: BusinessCalendar,
    tx: Tx,
    who: Who,
    kind: str,
    data: dict[str, Any],
    flags: Sequence[str] = (),
) -> tuple[str, int, date]:
    """A new ticket in state Registrado, with its first event: (number, id, due date).
    ``flags``: what the desk's card warns of (an address to review...)."""
    today = dates.lima_date(tx.now)
    received = calendar.reception_day(today)
    due = calendar.add_business_days(today, TERM_DAYS)
    number = await next_number(tx, today.year)
    entity_id = await upsert_entity(tx, data["ruc"], data["entity_name"])
    row = await tx.fetchone(
        "INSERT INTO tickets (number, type, state, entity_id, entity_name, person_id,"
        " identity_id, registered_at, received_on, due_on, data, flags, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            number,
            kind,
            REGISTERED,
            entity_id,
            data["entity_name"],
            who.person_id,
            who.identity_id,
            tx.stamp,
            received.isoformat(),
            due.isoformat(),
            json.dumps(kind_of(kind).stored(data), ensure_ascii=False),
            json.dumps(list(flags)),
            tx.stamp,
        ),
    )
    ticket_id = int(row[0])
    await tx.execute(
        "INSERT INTO ticket_events (ticket_id, at, actor, from_state, to_state)"
        " VALUES (?, ?, 'officer', NULL, ?)",
        (ticket_id, tx.stamp, REGISTERED),
    )
    return number, ticket_id, due
