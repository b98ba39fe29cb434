"""The open question: asking a flow's current step, the choices its buttons offer, and
matching a tapped or typed answer to one of them.

Mixed into ``conversations.engine._Turn`` (see ``conversations.turn_base``).
"""

from __future__ import annotations

from conversations.events import Kind, Outbound
from conversations.flow import Ctx
from conversations.state import Frame
from conversations.text import normalize
from conversations.turn_base import TurnBase


class QuestionsMixin(TurnBase):
    """Asks the current step and keeps its buttons as the open question's choices."""

    def ctx(self, frame: Frame | None) -> Ctx:
        flow = self.engine.flows[frame.flow] if frame else None
        return Ctx(
            data=frame.data if frame else {},
            person=self.person,
            now=self.now,
            services=self.services,
            flows=self.engine.flows,
            progress=flow.position(frame.step) if flow and frame else None,
            event=self.event,
        )

    async def ask_current(self, edit: bool = False) -> None:
        frame = self.state.frame
        if frame is None:
            await self.to_menu()
            return
        step = self.engine.flows[frame.flow].step(frame.step)
        messages = await step.ask(self.ctx(frame))
        if edit and step.edits and messages and self.event.kind is Kind.BUTTON:
            first = messages[0]
            messages[0] = Outbound(
                first.key,
                first.data,
                first.choices,
                first.progress,
                True,
                first.document,
                first.request_contact,
            )
        if step.answer is None:
            self.reply.messages.extend(messages)
            await self.to_menu()
            return
        for message in messages[:-1]:
            self.reply.messages.append(message)
        if messages:
            self.put_question(messages[-1])

    async def ask_again(self) -> None:
        if self.state.frame is None:
            await self.to_menu()
        else:
            await self.ask_current()

    def put_question(self, message: Outbound) -> None:
        """Send a message and make its buttons the open question's choices."""
        self.state.qid += 1
        self.state.choices = [[c.id, c.label, c.data] for c in message.all_choices()]
        self.reply.messages.append(message)

    def open_choice(self, data: str) -> str | None:
        qid, _, choice_id = data.partition(":")
        if qid != str(self.state.qid):
            return None
        return choice_id if any(c[0] == choice_id for c in self.state.choices) else None

    def typed_choice(self, text: str) -> str | None:
        """The open question's choice whose label (or its short form) was typed; a label
        typed as a channel showed it cut ("Municipalidad Distrital…") when one alone starts
        that way."""
        for choice in self.state.choices:
            if self.engine.label_matches(choice, text):
                return str(choice[0])
        cut = _cut_label(text)
        if cut:
            found = [c for c in self.state.choices if self.engine.label_starts(c, cut)]
            if len(found) == 1:
                return str(found[0][0])
        return None


def _cut_label(text: str) -> str:
    """ "Municipalidad Distrital…" (a label as shown cut, typed back) → its normalized start;
    "" for anything else. Three characters at least, so "…" alone chooses nothing."""
    stripped = text.strip()
    if not stripped.endswith(("…", "...")):
        return ""
    start = normalize(stripped.rstrip(".…"))
    return start if len(start) >= 3 else ""
