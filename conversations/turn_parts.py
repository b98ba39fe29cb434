"""Parts of a turn kept apart from the engine's main path: drafts, and tickets reached from
outside a question (a typed number, a notification's button, a swipe reply).

Mixed into ``conversations.engine._Turn``; what they use of the rest of the turn is declared
in ``conversations.turn_base``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conversations import notices
from conversations.events import Choice, Outbound, rows
from conversations.flow import Jump
from conversations.names import (
    DESK_CARD,
    DESK_QUEUE,
    DRAFT_CONTINUE,
    DRAFT_RESTART,
    STATUS_DETAIL,
    STATUS_LIST,
    FlowName,
)
from conversations.state import Frame
from conversations.turn_base import TurnBase

DRAFT_LIFETIME = timedelta(days=30)


class DraftsMixin(TurnBase):
    """Flows left for the menu keep their answers for 30 days, offered again on return."""

    def keep_draft(self) -> None:
        frame = self.state.frame
        self.state.frame = None
        # A draft needs an answer: a flow left at its first question (or refused there,
        # like Actualizar perfiles for someone not allowed) leaves nothing to continue.
        if frame is not None and frame.history and self.engine.flows[frame.flow].keeps_draft:
            self.state.drafts[frame.flow] = frame

    def draft_info(self, name: str) -> dict[str, Any]:
        frame = self.state.drafts[name]
        flow = self.engine.flows[name]
        k, n = flow.position_near(frame.step, frame.history) or (1, len(flow.steps))
        return {"flow": name, "label": flow.menu_label or "", "k": k, "n": n}

    def offer_draft(self, name: str, key: str = "common.draft_found", **extra: Any) -> None:
        self.put_question(
            Outbound(
                key,
                {**self.draft_info(name), **extra},
                rows(
                    Choice(DRAFT_CONTINUE + name, "btn.draft_continue"),
                    Choice(DRAFT_RESTART + name, "btn.draft_restart"),
                    per_row=2,
                ),
            )
        )

    def expire_drafts(self) -> None:
        limit = (self.now - DRAFT_LIFETIME).isoformat()
        frames = [*self.state.drafts.items()]
        if self.state.frame is not None:
            frames.append(("", self.state.frame))
        for name, frame in frames:
            if frame.updated and frame.updated < limit:
                if name:
                    del self.state.drafts[name]
                else:
                    self.state.frame = None
                self.say("common.draft_expired")

    async def answer_draft(self, choice: str) -> None:
        """ "Continuar" or "Empezar de nuevo" on a draft offered from the menu."""
        prefix, _, name = choice.partition(":")
        draft = self.state.drafts.pop(name, None)
        if draft is not None and prefix + ":" == DRAFT_CONTINUE:
            self.state.frame = draft
            await self.ask_current()
        elif name in self.engine.flows:
            await self.start(name)


class TicketsMixin(TurnBase):
    """A ticket reached from outside a question."""

    async def open_ticket(self, number: str) -> None:
        """A ticket number typed (or a deep link): the card for staff, the detail for its
        officer; anyone else gets the same answer as for a number that does not exist."""
        self.keep_draft()
        if self.person.is_staff and FlowName.DESK in self.engine.flows:
            card, queue = DESK_CARD, DESK_QUEUE
            self.state.frame = Frame(card.flow, card.step, {"number": number}, [queue.step])
        else:
            detail, tickets = STATUS_DETAIL, STATUS_LIST
            self.state.frame = Frame(detail.flow, detail.step, {"number": number}, [tickets.step])
        await self.ask_current()

    async def answer_notice(self, choice: str) -> None:
        """A button on a notification ("Corregir", "Responder", "Ver ficha"): checked on the
        server against who taps it, whatever question is open."""
        outcome = await notices.resolve(self.services, self.person, choice)
        if outcome is None:
            self.say("common.stale_button")
            await self.ask_again()
            return
        await self.jump(outcome)

    async def answer_reply_to(self, ref: str) -> bool:
        """A swipe reply to a ticket's notification goes onto that ticket."""
        outcome = await notices.reply_to(self.services, self.person, ref, self.event.text)
        if outcome is None:
            return False
        self.reply.messages.extend(outcome)
        await self.ask_again()
        return True

    async def jump(self, outcome: Jump) -> None:
        """Open a flow at a step with answers already there (a Jump outcome)."""
        self.reply.messages.extend(outcome.messages)
        self.reply.effects.extend(outcome.effects)
        self.keep_draft()
        self.state.drafts.pop(outcome.flow, None)
        self.state.frame = Frame(outcome.flow, outcome.step, dict(outcome.data))
        await self.ask_current()
