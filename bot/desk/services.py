"""What the help-desk and notification flows may ask of the application, per turn.

Mixed into :class:`bot.services.TurnServices`. Staff methods check on the server, on every
call, that the writer is staff (a flow reaching them for anyone else is a defect, so they
raise); officer methods check that the ticket is the writer's own, and answer None for
anyone else's ticket exactly as for a ticket that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from bot.desk import card as desk
from bot.desk.intake import resubmit_access_request
from bot.domain import workflow
from bot.domain.ticket_types import TicketType, kind_of
from bot.domain.workflow import (
    ATTENDED,
    CANCELLED,
    IN_PROGRESS,
    OBSERVED,
    REGISTERED,
    Ticket,
    TransitionError,
)
from conversations.events import Document

if TYPE_CHECKING:
    from bot.domain.types import Context, Submitted, Who
    from bot.store.database import Tx

REPLY_STATES = (REGISTERED, IN_PROGRESS, OBSERVED, ATTENDED)


class DeskServices:
    app: Context
    tx: Tx
    who: Who

    # ------------------------------------------------------------- staff side
    def _staff(self) -> desk.Actor:
        if not self.who.is_staff:
            raise PermissionError("staff only")
        return desk.Actor(self.who.channel, self.who.chat_id)

    async def desk_queue(self) -> tuple[list[dict[str, Any]], int]:
        self._staff()
        return await desk.queue(self.app, self.tx), await desk.count_open(self.tx)

    async def desk_search(self, text: str) -> list[dict[str, Any]]:
        self._staff()
        return await desk.search(self.app, self.tx, text)

    async def desk_card(self, number: str) -> dict[str, Any] | None:
        actor = self._staff()
        card = await desk.card(self.app, self.tx, number, actor)
        if card is not None:
            card["parts"] = list(kind_of(card["type"]).parts)
        return card

    async def desk_files(self, number: str) -> list[Document]:
        self._staff()
        return await desk.files_of(self.tx, number)

    async def _act(self, number: str, work: Awaitable[object]) -> str | None:
        """Run a desk action; the ticket's current state if the workflow refuses it."""
        try:
            await work
        except TransitionError:
            ticket = await workflow.load(self.tx, number)
            return ticket.state if ticket else "?"
        return None

    async def desk_take(self, number: str) -> str | None:
        return await self._act(number, desk.take(self.app, self.tx, number, self._staff()))

    async def desk_close(self, number: str) -> str | None:
        return await self._act(number, desk.close(self.app, self.tx, number, self._staff().tag))

    async def desk_attend(self, number: str, message: str | None = None) -> str | None:
        actor = self._staff().tag
        return await self._act(number, desk.attend(self.app, self.tx, number, actor, message))

    async def desk_reply(self, number: str, text: str) -> str | None:
        return await self._act(
            number, desk.staff_message(self.app, self.tx, number, text, self._staff())
        )

    async def desk_observe(self, number: str, part: str, text: str) -> int | str:
        actor = self._staff()
        try:
            return await desk.observe(self.app, self.tx, number, part, text, actor)
        except TransitionError:
            ticket = await workflow.load(self.tx, number)
            return ticket.state if ticket else "?"

    # ------------------------------------------------------------ officer side
    async def _own(self, number: str) -> Ticket | None:
        ticket = await workflow.load(self.tx, number)
        if ticket is None or ticket.person_id != self.who.person_id:
            return None
        return ticket

    async def observation(self, number: str) -> dict[str, Any] | None:
        """What "Corregir" needs: the observed part and the request as it was sent."""
        ticket = await self._own(number)
        if ticket is None or ticket.state != OBSERVED:
            return None
        part, raw = await self.tx.fetchone(
            "SELECT observed_part, data FROM tickets WHERE id = ?", (ticket.id,)
        )
        return {"type": ticket.type, "part": part or "otro", "data": json.loads(raw)}

    async def ticket_formato(self, number: str) -> Document | None:
        """The newest Formato of the writer's own ticket (any ticket, for staff)."""
        if not self.who.is_staff and await self._own(number) is None:
            return None
        return await desk.latest_formato(self.tx, number)

    async def can_reply(self, number: str) -> bool:
        ticket = await self._own(number)
        return ticket is not None and ticket.state in REPLY_STATES

    async def officer_reply(
        self, number: str, text: str, files: list[dict[str, Any]] | None = None
    ) -> bool | None:
        """The officer's words (and files) onto their ticket; True if that answered an
        observation (back to En atención), None if the ticket is not theirs or no longer
        open."""
        ticket = await self._own(number)
        if ticket is None or ticket.state not in REPLY_STATES:
            return None
        return await desk.officer_message(self.app, self.tx, ticket, text, files or [])

    async def ticket_for_message(self, ref: str) -> str | None:
        """The ticket a message in this chat was about (for swipe replies), if any."""
        row = await self.tx.fetchone(
            "SELECT t.number FROM outbox o JOIN tickets t ON t.id = o.ticket_id"
            " WHERE o.channel = ? AND o.chat_id = ? AND o.external_ref = ?",
            (self.who.channel, self.who.chat_id, ref),
        )
        if row is None:
            return None
        number = str(row[0])
        if self.who.is_staff:
            return number
        return number if await self._own(number) is not None else None

    async def cancel_ticket(self, number: str) -> bool:
        """The officer withdraws a request nobody has started on (Registrado → Anulado)."""
        ticket = await self._own(number)
        if ticket is None or ticket.state != REGISTERED:
            return False
        await workflow.change_state(
            self.app.calendar, self.tx, number, CANCELLED, "officer", notify=False
        )
        return True

    async def resubmit_access_request(self, data: dict[str, Any]) -> Submitted | None:
        """The corrected request onto the same ticket, checked again on the server."""
        ticket = await self._own(str(data.get("ticket", "")))
        if ticket is None or ticket.state != OBSERVED or ticket.type != TicketType.ACCESS:
            return None
        return await resubmit_access_request(self.app, self.tx, self.who, ticket, data)
