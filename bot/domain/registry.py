"""Who holds each PTE section of an entity, as the help desk has registered it.

The registry is the first request (the attended access request a profile change names as
its ``base``) plus every attended profile change made on it, applied in the order they were
attended. A change applied to the registry gives the rows of its Formato: the people kept,
the people added (marked "dar de alta") and the people removed (marked "dar de baja", never
dropped silently), and, per section it touches, who leaves and who comes in.

People are the dicts the flows store (nombres, apellidos, dni, cargo, email, phone...); one
person is one DNI.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.domain.ticket_types import TicketType
from bot.domain.workflow import ATTENDED, CLOSED
from bot.store.database import Tx
from bot.texts import Section
from conversations.profiles import assignments

Person = dict[str, Any]
Registry = dict[str, list[Person]]  # section code → its holders, in the order they came

KEEP, ADD, REMOVE = "", "alta", "baja"  # a Formato row's mark
DONE = (ATTENDED, CLOSED)


@dataclass(frozen=True)
class Row:
    section: Section
    person: Person
    mark: str  # KEEP, ADD or REMOVE


@dataclass(frozen=True)
class Change:
    """What a change does to one section: who leaves and who comes in."""

    section: Section
    removed: list[Person] = field(default_factory=list)
    added: Person | None = None


@dataclass(frozen=True)
class Applied:
    registry: Registry  # the registry after the change
    rows: list[Row]  # every holder before and after, marked, in section order
    changes: list[Change]  # the sections the change names, in section order


def from_request(data: dict[str, Any], sections: Sequence[Section]) -> Registry:
    """The registry an access request sets up."""
    return {s.code: [person] for s, person in assignments(data, sections) if person is not None}


def apply(registry: Registry, change: dict[str, Any], sections: Sequence[Section]) -> Applied:
    """A profile change (``sections``, ``action``, ``person``) applied to ``registry``.

    reemplazar: the section's holders leave and the person comes in; agregar: the person
    joins them; baja: they all leave. Someone already holding the section stays as they are.
    """
    chosen = set(change.get("sections", []))
    action = change.get("action")
    newcomer: Person | None = change.get("person") or None
    after: Registry = {}
    rows: list[Row] = []
    changes: list[Change] = []
    for section in sections:
        holders = registry.get(section.code, [])
        if section.code not in chosen:
            if holders:
                after[section.code] = list(holders)
            rows += [Row(section, p, KEEP) for p in holders]
            continue
        joins = newcomer if action in ("reemplazar", "agregar") else None
        same = [p for p in holders if joins is not None and _dni(p) == _dni(joins)]
        leaving = [p for p in holders if action in ("reemplazar", "baja") and p not in same]
        staying = [p for p in holders if p not in leaving]
        added = joins if joins is not None and not same else None
        kept = [*staying, *([added] if added is not None else [])]
        if kept:
            after[section.code] = kept
        rows += [Row(section, p, REMOVE if p in leaving else KEEP) for p in holders]
        if added is not None:
            rows.append(Row(section, added, ADD))
        changes.append(Change(section, leaving, added))
    return Applied(after, rows, changes)


@dataclass(frozen=True)
class Recorded:
    """What the registry of an access request is made of, as the tickets hold it: the
    request's data, and the (ticket id, data) of its attended changes in the order they were
    attended."""

    request: dict[str, Any]
    changes: list[tuple[int, dict[str, Any]]]


async def recorded(tx: Tx, base: str, *, person_id: int | None = None) -> Recorded | None:
    """The access request ``base`` and every attended profile change made on it (None: no
    such request, or, with ``person_id``, not this person's)."""
    row = await tx.fetchone(
        "SELECT entity_id, data, person_id FROM tickets WHERE number = ? AND type = ?",
        (base, TicketType.ACCESS),
    )
    if row is None or (person_id is not None and row[2] != person_id):
        return None
    entity_id, raw, _ = row
    found = await tx.fetchall(
        "SELECT id, data FROM tickets WHERE entity_id = ? AND type = ?"
        " AND state IN (?, ?) ORDER BY attended_at, id",
        (entity_id, TicketType.PROFILES, *DONE),
    )
    changes = [(ticket_id, json.loads(data)) for ticket_id, data in found]
    return Recorded(json.loads(raw), [(i, c) for i, c in changes if c.get("base") == base])


async def current(
    tx: Tx, base: str, sections: Sequence[Section], *, but: int | None = None
) -> Registry:
    """The registry of the request ``base`` as it stands: the request plus every attended
    change on it, in the order they were attended (``but``: a ticket id left out)."""
    found = await recorded(tx, base)
    if found is None:
        return {}
    registry = from_request(found.request, sections)
    for ticket_id, change in found.changes:
        if ticket_id != but:
            registry = apply(registry, change, sections).registry
    return registry


def holders(registry: Registry, sections: Sequence[Section]) -> list[dict[str, Any]]:
    """Every section with its holders, for a card or a message."""
    return [
        {"section": s.name, "code": s.code, "people": registry.get(s.code, [])} for s in sections
    ]


def changes_view(applied: Applied) -> list[dict[str, Any]]:
    """The changes as templates read them."""
    return [
        {"section": c.section.name, "removed": c.removed, "added": c.added}
        for c in applied.changes
    ]


def _dni(person: Person) -> str:
    return str(person.get("dni", ""))
