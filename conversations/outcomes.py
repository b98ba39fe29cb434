"""An answer to the open step, and where its outcome leads: the same question again, the
next step (the answers kept for going back), the flow's end, another flow, a jump; the
outcome's effects go into the reply for the application to apply.

Mixed into ``conversations.engine._Turn`` (see ``conversations.turn_base``).
"""

from __future__ import annotations

from typing import Any

from conversations.events import Inbound, Kind
from conversations.flow import (
    Again,
    Back,
    Done,
    Flow,
    Jump,
    Next,
    Outcome,
    Start,
    Stay,
    WithdrawConsent,
)
from conversations.names import MENU_CHOICE, MENU_PREFIX
from conversations.state import Frame
from conversations.turn_base import TurnBase
from conversations.undo import snapshot


class OutcomesMixin(TurnBase):
    """Runs the open step's answer and follows its outcome."""

    async def answer_step(self, event: Inbound) -> None:
        frame = self.state.frame
        assert frame is not None
        if event.kind is Kind.BUTTON and event.text == MENU_CHOICE:
            await self.to_menu()
            return
        if (
            event.kind is Kind.BUTTON
            and event.text.startswith(MENU_PREFIX)
            and await self.open_entry(event.text[len(MENU_PREFIX) :])
        ):
            return
        flow = self.engine.flows[frame.flow]
        step = flow.step(frame.step)
        if step.answer is None:  # an informative step left open by a restart mid-turn
            await self.to_menu()
            return
        before = snapshot(frame.data, flow.undo_keys)
        outcome: Outcome = await step.answer(self.ctx(frame), event)
        # Not an answer to this question: a common question or an entry typed here
        # means what it means everywhere.
        if (
            isinstance(outcome, Again)
            and event.kind is Kind.TEXT
            and await self.answer_aside(event.text, flow)
        ):
            return
        self.reply.effects.extend(outcome.effects)
        if any(isinstance(effect, WithdrawConsent) for effect in outcome.effects):
            self.state.drafts.clear()  # unsent answers were kept under that consent
        await self.follow(flow, frame, outcome, before)

    async def follow(
        self, flow: Flow, frame: Frame, outcome: Outcome, before: dict[str, Any] | None = None
    ) -> None:
        if isinstance(outcome, Again):
            self.say(outcome.key, **outcome.data)
            await self.ask_current()
        elif isinstance(outcome, Next):
            self.reply.messages.extend(outcome.messages)
            target = outcome.step or flow.after(frame.step)
            if target is None:
                await self.to_menu()
                return
            # A step that repeats (a section after another) is a step to go back to too.
            if target != frame.step or flow.step(frame.step).repeats:
                frame.push(frame.step, before)
            frame.step = target
            await self.ask_current(edit=True)
        elif isinstance(outcome, Done):
            self.state.frame = None
            self.reply.messages.extend(outcome.messages)
            if outcome.menu:
                await self.to_menu()
            else:
                self.state.choices = []
        elif isinstance(outcome, Start):
            await self.start(outcome.flow, outcome.messages)
        elif isinstance(outcome, Back):
            await self.go_back(edit=True)
        elif isinstance(outcome, Jump):
            await self.jump(outcome)
        elif isinstance(outcome, Stay):
            messages = list(outcome.messages)
            if messages and messages[-1].choices:
                self.reply.messages.extend(messages[:-1])
                self.put_question(messages[-1])
            else:
                self.reply.messages.extend(messages)
