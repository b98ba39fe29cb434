"""The ports (:mod:`conversations.ports`) in memory: flows run against it without SQLite.

A small, honest model of the application: tickets in a dict, codes in a dict, the officer's
own tickets filtered by person, staff checks that raise. It has no mail, no files and no
state machine beyond what the flows can observe; the SQLite implementation
(``bot.services.TurnServices``) is what the behaviour tests drive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from conversations.events import Document
from conversations.ports import Ports

FINISHED = ("atendido", "cerrado", "anulado")
REPLY_STATES = ("registrado", "en_atencion", "observado", "atendido")


@dataclass(frozen=True)
class MemorySection:
    code: str
    name: str
    note: str = ""
    justice_only: bool = False


@dataclass(frozen=True)
class MemoryCodeSent:
    wait_seconds: int = 0


@dataclass(frozen=True)
class MemorySubmitted:
    number: str
    due: date
    business_days: int = 5
    formato: Document | None = None


@dataclass
class MemoryTicket:
    number: str
    type: str
    state: str
    person_id: int
    data: dict[str, Any]
    observed_part: str = "otro"
    messages: list[tuple[str, str]] = field(default_factory=list)  # (who, text)


@dataclass
class World:
    """What every person's ports share: the tickets and the entities."""

    today: date = date(2026, 12, 2)
    tickets: dict[str, MemoryTicket] = field(default_factory=dict)
    entities: dict[str, str] = field(default_factory=dict)  # ruc -> name
    codes: dict[tuple[int, str], str] = field(default_factory=dict)  # (person, email) -> code
    confirmed: set[tuple[int, str]] = field(default_factory=set)

    def open(self, person_id: int, kind: str, data: Mapping[str, Any]) -> MemoryTicket:
        number = f"PTE-{self.today.year}-{len(self.tickets) + 1:06d}"
        ticket = MemoryTicket(number, kind, "registrado", person_id, dict(data))
        self.tickets[number] = ticket
        if "ruc" in data and "entity_name" in data:
            self.entities[str(data["ruc"])] = str(data["entity_name"])
        return ticket

    def ports(self, person_id: int, is_staff: bool = False) -> MemoryPorts:
        return MemoryPorts(self, person_id, is_staff)


class MemoryPorts:
    """One person's ports over a shared :class:`World`."""

    notice_version = "2026-11"
    local_outbox: str | None = None

    def __init__(self, world: World, person_id: int, is_staff: bool = False) -> None:
        self.world = world
        self.person_id = person_id
        self.is_staff = is_staff
        self.sections: Sequence[MemorySection] = (
            MemorySection("datos", "Datos generales"),
            MemorySection("personal", "Personal"),
        )

    # ------------------------------------------------------------- reference
    def label(self, key: str) -> str:
        return key

    def today(self) -> date:
        return self.world.today

    # -------------------------------------------------------------- officer
    def _own(self, number: str) -> MemoryTicket | None:
        ticket = self.world.tickets.get(number)
        return ticket if ticket is not None and ticket.person_id == self.person_id else None

    def _submitted(self, ticket: MemoryTicket) -> MemorySubmitted:
        return MemorySubmitted(ticket.number, self.world.today + timedelta(days=7))

    async def pdf_from_photos(self, photos: list[str]) -> dict[str, Any] | str:
        return {"sha256": "0" * 64, "pages": len(photos), "name": "fotos.pdf", "size": 1}

    async def entity_name(self, ruc: str) -> str | None:
        return self.world.entities.get(ruc)

    async def send_code(self, email: str) -> MemoryCodeSent:
        self.world.codes[self.person_id, email] = "123456"
        return MemoryCodeSent()

    async def check_code(self, email: str, code: str) -> tuple[str, int]:
        if self.world.codes.get((self.person_id, email)) != code:
            return "wrong", 4
        self.world.confirmed.add((self.person_id, email))
        return "ok", 5

    async def email_proved(self, email: str) -> bool:
        return (self.person_id, email) in self.world.confirmed

    async def my_contact(self) -> dict[str, Any] | None:
        mine = [t for t in self.world.tickets.values() if t.person_id == self.person_id]
        wanted = ("nombres", "apellidos", "cargo", "email", "phone")
        for ticket in reversed(mine):
            resp = ticket.data.get("resp")
            if ticket.type not in ("accesos", "consulta") or not isinstance(resp, dict):
                continue
            if all(resp.get(key) for key in wanted):
                return dict(resp)
        return None

    async def registry_people(self, base: str) -> list[dict[str, str]]:
        request = self.world.tickets.get(base)
        if request is None or request.person_id != self.person_id:
            return []
        people = [request.data.get("resp") or {}, *request.data.get("people", [])]
        for change in self.world.tickets.values():
            attended = change.type == "perfiles" and change.state in FINISHED[:2]
            if attended and change.data.get("base") == base and change.data.get("person"):
                people.append(change.data["person"])
        fields = ("nombres", "apellidos", "dni", "phone")
        return [{f: str(p.get(f, "")) for f in fields} for p in people if p]

    async def my_tickets(self, limit: int = 10) -> list[dict[str, str]]:
        mine = [t for t in self.world.tickets.values() if t.person_id == self.person_id]
        return [{"number": t.number, "type": t.type, "state": t.state} for t in mine][::-1][:limit]

    async def ticket_detail(self, number: str) -> dict[str, Any] | None:
        ticket = self.world.tickets.get(number)
        if ticket is None or (ticket.person_id != self.person_id and not self.is_staff):
            return None
        return {
            "number": ticket.number,
            "type": ticket.type,
            "state": ticket.state,
            "open": ticket.state not in FINISHED,
            "formato": False,
        }

    async def my_entity(self) -> dict[str, str] | None:
        mine = [t for t in self.world.tickets.values() if t.person_id == self.person_id]
        for ticket in reversed(mine):
            if "ruc" in ticket.data:
                return {"ruc": ticket.data["ruc"], "name": ticket.data.get("entity_name", "")}
        return None

    async def my_data(self) -> dict[str, Any]:
        mine = [t for t in self.world.tickets.values() if t.person_id == self.person_id]
        return {
            "channel": "memory",
            "consents": [],
            "emails": sorted(e for p, e in self.world.confirmed if p == self.person_id),
            "tickets": [{"number": t.number, "type": t.type, "state": t.state} for t in mine],
            "open_tickets": [t.number for t in mine if t.state not in FINISHED],
            "has_draft": False,
        }

    async def managed_entities(self) -> list[dict[str, str]]:
        return [
            {"ruc": t.data["ruc"], "name": t.data.get("entity_name", ""), "ticket": t.number}
            for t in self.world.tickets.values()
            if t.person_id == self.person_id and t.type == "accesos" and t.state in FINISHED[:2]
        ]

    async def submit_access_request(self, data: Mapping[str, Any]) -> MemorySubmitted:
        return self._submitted(self.world.open(self.person_id, "accesos", data))

    async def resubmit_access_request(self, data: dict[str, Any]) -> MemorySubmitted | None:
        ticket = self._own(str(data.get("ticket", "")))
        if ticket is None or ticket.state != "observado" or ticket.type != "accesos":
            return None
        ticket.data = {k: v for k, v in data.items() if k != "ticket"}
        ticket.state = "en_atencion"
        return self._submitted(ticket)

    async def submit_consultation(self, data: Mapping[str, Any]) -> MemorySubmitted:
        return self._submitted(self.world.open(self.person_id, "consulta", data))

    async def submit_profile_update(self, data: Mapping[str, Any]) -> MemorySubmitted:
        return self._submitted(self.world.open(self.person_id, "perfiles", data))

    async def observation(self, number: str) -> dict[str, Any] | None:
        ticket = self._own(number)
        if ticket is None or ticket.state != "observado":
            return None
        return {"type": ticket.type, "part": ticket.observed_part, "data": dict(ticket.data)}

    async def ticket_formato(self, number: str) -> Document | None:
        return None

    async def can_reply(self, number: str) -> bool:
        ticket = self._own(number)
        return ticket is not None and ticket.state in REPLY_STATES

    async def officer_reply(
        self, number: str, text: str, files: list[dict[str, Any]] | None = None
    ) -> bool | None:
        ticket = self._own(number)
        if ticket is None or ticket.state not in REPLY_STATES:
            return None
        ticket.messages.append(("officer", text))
        resumed = ticket.state == "observado"
        if resumed:
            ticket.state = "en_atencion"
        return resumed

    async def ticket_for_message(self, ref: str) -> str | None:
        return None  # nothing is delivered in memory, so no message can be replied to

    async def cancel_ticket(self, number: str) -> bool:
        ticket = self._own(number)
        if ticket is None or ticket.state != "registrado":
            return False
        ticket.state = "anulado"
        return True

    # ----------------------------------------------------------------- desk
    def _staff(self) -> None:
        if not self.is_staff:
            raise PermissionError("staff only")

    def _desk_ticket(self, number: str, *states: str) -> MemoryTicket | str:
        """The ticket if it is in one of ``states``; else its state (refused)."""
        self._staff()
        ticket = self.world.tickets.get(number)
        if ticket is None:
            return "?"
        return ticket if ticket.state in states else ticket.state

    async def desk_queue(self) -> tuple[list[dict[str, Any]], int]:
        self._staff()
        items = [
            {"number": t.number, "type": t.type, "state": t.state}
            for t in self.world.tickets.values()
            if t.state not in FINISHED
        ]
        return items, len(items)

    async def desk_search(self, text: str) -> list[dict[str, Any]]:
        self._staff()
        return [
            {"number": t.number, "type": t.type, "state": t.state}
            for t in self.world.tickets.values()
            if text in (str(t.data.get("ruc", "")), str(t.data.get("entity_name", "")))
        ]

    async def desk_card(self, number: str) -> dict[str, Any] | None:
        self._staff()
        ticket = self.world.tickets.get(number)
        if ticket is None:
            return None
        actions = {
            "registrado": ["take"],
            "en_atencion": ["reply", "observe", "attend"],
            "observado": ["reply"],
            "atendido": ["close"],
        }.get(ticket.state, [])
        parts = ["responsable", "resolucion", "perfiles", "otro"]
        return {
            "number": number,
            "type": ticket.type,
            "state": ticket.state,
            "actions": actions,
            "parts": parts if ticket.type == "accesos" else ["otro"],
        }

    async def desk_files(self, number: str) -> list[Document]:
        self._staff()
        return []

    async def desk_take(self, number: str) -> str | None:
        ticket = self._desk_ticket(number, "registrado")
        if isinstance(ticket, str):
            return ticket
        ticket.state = "en_atencion"
        return None

    async def desk_close(self, number: str) -> str | None:
        ticket = self._desk_ticket(number, "atendido")
        if isinstance(ticket, str):
            return ticket
        ticket.state = "cerrado"
        return None

    async def desk_attend(self, number: str, message: str | None = None) -> str | None:
        ticket = self._desk_ticket(number, "en_atencion")
        if isinstance(ticket, str):
            return ticket
        ticket.state = "atendido"
        if message:
            ticket.messages.append(("mesa", message))
        return None

    async def desk_reply(self, number: str, text: str) -> str | None:
        ticket = self._desk_ticket(number, *REPLY_STATES)
        if isinstance(ticket, str):
            return ticket
        ticket.messages.append(("mesa", text))
        return None

    async def desk_observe(self, number: str, part: str, text: str) -> int | str:
        ticket = self._desk_ticket(number, "en_atencion")
        if isinstance(ticket, str):
            return ticket
        ticket.state = "observado"
        ticket.observed_part = part
        ticket.messages.append(("mesa", text))
        return 3


def _implements(ports: MemoryPorts) -> Ports:
    return ports  # mypy checks here that MemoryPorts implements every port


class KeyLabels:
    """Labels as their keys: enough for an engine that never renders."""

    def label(self, key: str, data: Mapping[str, Any]) -> str:
        return key

    def short(self, key: str, data: Mapping[str, Any]) -> str | None:
        return None

    def synonyms(self, key: str) -> list[str]:
        return []
