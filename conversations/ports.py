"""What flows may ask of the application: the ports, as typed protocols.

A step reaches the application only through ``ctx.services`` (typed :class:`Ports`), so
``mypy --strict`` checks every call a flow makes. ``bot.services.TurnServices`` implements
them against the turn's SQLite transaction; ``tests/memory_ports.py`` implements them in
memory, for engine-level tests without a database.

- :class:`Reference`: what every turn reads the same (the notice's version, the PTE's
  sections, where mail is written when there is no SMTP server).
- :class:`OfficerPorts`: what the officer's flows ask (codes, tickets, their own tickets).
  Methods about a ticket answer None (or False) for a ticket that is not the writer's own,
  exactly as for one that does not exist.
- :class:`DeskPorts`: what the help-desk flow asks; every method checks on the server that
  the writer is staff, and raises otherwise (a flow reaching it for anyone else is a defect).

**The rule for side effects.** A step changes the world in one of two ways, and which one
follows from a single question: *is it about the conversation itself?*

- Everything about tickets, codes, files and mail is a **port call**, made where the step
  needs it; what it writes joins the turn's transaction (it commits with the new state and
  the replies, or not at all), and its answer decides the outcome (a refused action, a
  number, a wait).
- A decision about the person's relation with this conversation (their consent, its
  withdrawal, the erasure of what is stored about them) is an **Effect**
  (:class:`conversations.flow.RecordConsent`, ``WithdrawConsent``, ``ForgetMe``) returned in
  the outcome: the engine must see it too (a withdrawal discards the drafts; an erasure
  replaces the whole state) and the application applies it after the step, in the same
  transaction. No port writes consent or erases; no Effect touches a ticket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Protocol

from conversations.events import Document


class Section(Protocol):
    """A section of the PTE (from the locale's data file)."""

    @property
    def code(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def note(self) -> str: ...

    @property
    def justice_only(self) -> bool:
        """Only for entities of the justice system (Ley 30934): "No aplica" elsewhere."""
        ...


class CodeSent(Protocol):
    """A verification code mailed, or how long to wait before another one may be sent."""

    @property
    def wait_seconds(self) -> int: ...


class Submitted(Protocol):
    """A ticket opened (or a corrected request sent again onto its ticket)."""

    @property
    def number(self) -> str: ...

    @property
    def due(self) -> date: ...

    @property
    def business_days(self) -> int: ...

    @property
    def formato(self) -> Document | None: ...


class Reference(Protocol):
    """What every turn reads the same."""

    @property
    def notice_version(self) -> str: ...

    @property
    def sections(self) -> Sequence[Section]: ...

    @property
    def local_outbox(self) -> str | None:
        """Where mail is written when no SMTP server is configured; shown only to someone
        at the machine the assistant runs on (None for anyone else)."""
        ...


class OfficerPorts(Reference, Protocol):
    """What the officer's flows (and notifications' buttons) may ask."""

    def label(self, key: str) -> str:
        """A button's text, for flows that quote a choice back (the authority)."""
        ...

    def today(self) -> date:
        """Today in Lima."""
        ...

    async def pdf_from_photos(self, photos: list[str]) -> dict[str, Any] | str:
        """One PDF from photos already stored: {"sha256", "pages", "name", "size"}, or the
        refusal code."""
        ...

    async def entity_name(self, ruc: str) -> str | None: ...

    async def send_code(self, email: str) -> CodeSent: ...

    async def check_code(self, email: str, code: str) -> tuple[str, int]:
        """("ok" | "wrong" | "expired" | "locked", tries left)."""
        ...

    async def email_proved(self, email: str) -> bool:
        """Whether this person already confirmed a code sent to ``email``, in any flow."""
        ...

    async def my_contact(self) -> dict[str, Any] | None:
        """Who this person said they are in their latest ticket that says it (names,
        cargo, email, mobile), to ask "¿Sigues siendo …?"."""
        ...

    async def registry_people(self, base: str) -> list[dict[str, str]]:
        """Everyone in the registry of the entity of access request ``base`` (names, dni,
        phone): its responsible and colleagues, and those its attended changes added."""
        ...

    async def my_tickets(self, limit: int = 10) -> list[dict[str, str]]: ...

    async def ticket_detail(self, number: str) -> dict[str, Any] | None: ...

    async def my_entity(self) -> dict[str, str] | None: ...

    async def my_data(self) -> dict[str, Any]: ...

    async def managed_entities(self) -> list[dict[str, str]]: ...

    async def submit_access_request(self, data: Mapping[str, Any]) -> Submitted: ...

    async def resubmit_access_request(self, data: dict[str, Any]) -> Submitted | None: ...

    async def submit_consultation(self, data: Mapping[str, Any]) -> Submitted: ...

    async def submit_profile_update(self, data: Mapping[str, Any]) -> Submitted: ...

    async def observation(self, number: str) -> dict[str, Any] | None:
        """What "Corregir" needs: {"type", "part", "data"} of an observed ticket."""
        ...

    async def ticket_formato(self, number: str) -> Document | None: ...

    async def can_reply(self, number: str) -> bool: ...

    async def officer_reply(
        self, number: str, text: str, files: list[dict[str, Any]] | None = None
    ) -> bool | None:
        """True if the message answered an observation, None if not the writer's ticket."""
        ...

    async def ticket_for_message(self, ref: str) -> str | None:
        """The ticket a message in this chat was about (swipe replies), staff included."""
        ...

    async def cancel_ticket(self, number: str) -> bool: ...


class DeskPorts(Protocol):
    """What the help-desk flow may ask. Actions answer None when done, or the ticket's
    current state when it no longer allows them."""

    async def desk_queue(self) -> tuple[list[dict[str, Any]], int]: ...

    async def desk_search(self, text: str) -> list[dict[str, Any]]: ...

    async def desk_card(self, number: str) -> dict[str, Any] | None: ...

    async def desk_files(self, number: str) -> list[Document]: ...

    async def desk_take(self, number: str) -> str | None: ...

    async def desk_close(self, number: str) -> str | None: ...

    async def desk_attend(self, number: str, message: str | None = None) -> str | None: ...

    async def desk_reply(self, number: str, text: str) -> str | None: ...

    async def desk_observe(self, number: str, part: str, text: str) -> int | str:
        """Business days the due date pauses with, or the refusing state."""
        ...


class Ports(OfficerPorts, DeskPorts, Protocol):
    """Everything a turn may ask: what ``ctx.services`` is."""
