"""The main menu and the ways into a flow: the menu itself, starting a flow (the privacy
notice first where it needs consent), menu entries and common questions answered from any
question, and a conversation set aside (kept as a draft) when its channel reopens it.

Mixed into ``conversations.engine._Turn`` (see ``conversations.turn_base``).
"""

from __future__ import annotations

from collections.abc import Sequence

from conversations.events import Choice, Inbound, Kind, Outbound, rows
from conversations.flow import Flow
from conversations.names import (
    DRAFT_CONTINUE,
    DRAFT_RESTART,
    FAQ_PREFIX,
    MENU_CHOICE,
    MENU_PREFIX,
    THEN,
    TICKET_PREFIX,
    FlowName,
)
from conversations.state import Frame
from conversations.status import find_number
from conversations.turn_base import TurnBase


class MenuMixin(TurnBase):
    """The menu, and what opens a flow from it or from any question."""

    async def to_menu(self, hint: bool = False) -> None:
        self.keep_draft()
        entries = [
            Choice(MENU_PREFIX + flow.name, flow.menu_label)
            for flow in self.engine.flows.values()
            if flow.menu_label and self.allowed(flow)
        ]
        if self.person.consent is not True:
            entries.append(Choice(MENU_PREFIX + FlowName.CONSENT, "btn.read_notice"))
        key = "menu.hint" if hint else "menu.main"
        drafts = [self.draft_info(name) for name in self.state.drafts]
        data = {"consented": self.person.consent is True, "drafts": drafts}
        self.put_question(Outbound(key, data, rows(*entries)))

    def allowed(self, flow: Flow) -> bool:
        if flow.staff_only and not self.person.is_staff:
            return False
        return not flow.needs_consent or self.person.consent is True

    async def start(self, name: str, messages: Sequence[Outbound] = ()) -> None:
        flow = self.engine.flows[name]
        self.reply.messages.extend(messages)
        if flow.staff_only and not self.person.is_staff:
            await self.to_menu()  # a forged menu button: as if nothing was asked
            return
        self.keep_draft()
        if name in self.state.drafts and self.allowed(flow):
            self.offer_draft(name)
            return
        if not self.allowed(flow):
            self.state.frame = None
            self.put_question(
                Outbound(
                    "consent.required",
                    {},
                    rows(
                        # Accepting opens what was asked for.
                        Choice(MENU_PREFIX + FlowName.CONSENT + THEN + name, "btn.read_notice"),
                        Choice(MENU_CHOICE, "btn.menu"),
                    ),
                )
            )
            return
        self.state.frame = Frame(flow=name, step=flow.steps[0].name)
        await self.ask_current()

    async def start_consent(self, then: str = "") -> None:
        """The privacy notice; once accepted, ``then`` (the flow the person asked for)."""
        self.keep_draft()
        wanted = self.engine.flows.get(then)
        keep = wanted is not None and wanted.needs_consent and not wanted.staff_only
        data = {"then": then} if keep else {}
        self.state.frame = Frame(
            FlowName.CONSENT, self.engine.flows[FlowName.CONSENT].steps[0].name, data
        )
        await self.ask_current()

    async def open_entry(self, name: str) -> bool:
        """A main-menu entry tapped or typed from any question ("f:<flow>")."""
        target, _, then = name.partition(THEN)
        if target == FlowName.CONSENT:
            await self.start_consent(then)
            return True
        if target in self.engine.flows:
            await self.start(target)
            return True
        return False

    async def answer_anywhere(self, choice: str) -> bool:
        """A choice that does not depend on the question it came with works from any earlier
        message, as its typed label does: the menu, a main-menu entry, a ticket, "Continuar"
        on a draft still kept. False for an answer to a question that is no longer open."""
        if choice == MENU_CHOICE:
            await self.to_menu()
            return True
        if choice.startswith(MENU_PREFIX):
            return await self.open_entry(choice[len(MENU_PREFIX) :])
        if choice.startswith(TICKET_PREFIX) and FlowName.STATUS in self.engine.flows:
            number = find_number(choice[len(TICKET_PREFIX) :])
            if number is None or (self.person.consent is not True and not self.person.is_staff):
                return False
            # One's own ticket only (any, for staff): a button replayed from someone else's
            # chat reads like any old answer and names nothing.
            if await self.services.ticket_detail(number) is None:
                return False
            await self.open_ticket(number)
            return True
        if (
            choice.startswith(DRAFT_CONTINUE)
            and choice[len(DRAFT_CONTINUE) :] in self.state.drafts
        ):
            await self.answer_draft(choice)
            return True
        return False

    async def set_aside(self, text: str) -> bool:
        """Text that reopens a conversation the channel had closed answers the call-back or
        greets; it is not an answer to the question left open. A flow with answers is kept
        and offered again, showing where it stood; text that names an entry opens it; any
        other open question (the menu too) gives way to the menu. A label of the open
        question typed back is still an answer (False: handled as usual)."""
        frame = self.state.frame
        if frame is not None and frame.flow == FlowName.CONSENT:
            return False
        if self.typed_choice(text) is not None:
            return False
        names = [*self.engine.flows, *(FAQ_PREFIX + key for key in self.engine.faq_targets)]
        if self.engine.intent(text, names) is not None:
            self.keep_draft()
            await self.answer_menu(self.event)
        elif not self.put_aside(typed=True):
            await self.to_menu()  # the menu itself, not "No entendí": it names kept drafts
        return True

    def put_aside(self, typed: bool) -> bool:
        """Keep the open flow as a draft and ask whether to continue it (where it stood);
        False when it has no answers to keep."""
        frame = self.state.frame
        if frame is None or not frame.history or not self.engine.flows[frame.flow].keeps_draft:
            return False
        self.keep_draft()
        self.offer_draft(frame.flow, "common.draft_paused", typed=typed)
        return True

    async def answer_menu(self, event: Inbound) -> None:
        if event.kind is Kind.BUTTON and event.text.startswith((DRAFT_CONTINUE, DRAFT_RESTART)):
            await self.answer_draft(event.text)
            return
        if event.kind is Kind.BUTTON:
            if event.text.startswith(MENU_PREFIX) and await self.open_entry(
                event.text[len(MENU_PREFIX) :]
            ):
                return
            await self.to_menu()
            return
        if event.kind is Kind.TEXT:
            names = [*self.engine.flows, *(FAQ_PREFIX + key for key in self.engine.faq_targets)]
            intent = self.engine.intent(event.text, names)
            if intent is not None and intent.startswith(FAQ_PREFIX):
                self.answer_faq(intent[len(FAQ_PREFIX) :])
                return
            if intent is not None:
                await self.start(intent)
                return
        if event.kind is Kind.UNSUPPORTED or event.kind is Kind.FILE:
            self.say("common.unsupported_here")
        await self.to_menu(hint=event.kind is Kind.TEXT)

    def faq_button(self, key: str) -> list[Choice]:
        """The button to the flow a common question's answer points to (none when that flow
        is not open to this person)."""
        target = self.engine.faq_targets.get(key)
        if target and target in self.engine.flows and self.allowed(self.engine.flows[target]):
            label = self.engine.flows[target].menu_label or "btn.menu"
            return [Choice(MENU_PREFIX + target, label)]
        return []

    def answer_faq(self, key: str) -> None:
        """A common question answered from the locale, with a button to act on it."""
        buttons = [*self.faq_button(key), Choice(MENU_CHOICE, "btn.menu")]
        self.put_question(Outbound(f"faq.{key}", {}, rows(*buttons)))

    async def answer_aside(self, text: str, current: Flow) -> bool:
        """Text a question refused that names a common question (answered, then the
        question again) or another entry (opened; a flow with answers stays a draft)."""
        names = [
            *(name for name in self.engine.flows if name != current.name),
            *(FAQ_PREFIX + key for key in self.engine.faq_targets),
        ]
        intent = self.engine.intent(text, names)
        if intent is None:
            return False
        if intent.startswith(FAQ_PREFIX):
            # The answer keeps its button (it works from any message), then the question.
            key = intent[len(FAQ_PREFIX) :]
            self.reply.messages.append(Outbound(f"faq.{key}", {}, rows(*self.faq_button(key))))
            await self.ask_current()
            return True
        flow = self.engine.flows[intent]
        if flow.staff_only and not self.person.is_staff:
            return False
        await self.start(intent)
        return True
