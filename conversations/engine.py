"""The conversation engine: one function from (state, event) to (state, replies, effects).

It knows nothing of channels or storage. The application loads the state, calls
:meth:`Engine.handle`, and commits the new state, the effects and the replies together.

This module owns the engine (its flows, commands, labels and intents, checked when it is built)
and a turn's dispatch: what an event is (a password, a command, a ticket number, a
notification's button, a choice tapped or typed, an answer), whether the privacy notice comes
first, and which part of the turn answers it. The parts, mixed into ``_Turn``: ``commands``
(global commands in every flow: ``menu``, ``atras``, ``cancelar`` (asks first), ``ayuda``,
``start``; their typed words too), ``menu`` (the menu and the ways into a flow), ``questions``
(the open question), ``outcomes`` (a step's answer and where it leads), ``turn_parts`` (drafts;
tickets reached from outside a question); ``turn_base`` declares what they share.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conversations.commands import CommandsMixin
from conversations.events import Inbound, Kind, Outbound
from conversations.flow import Flow, FlowError, Labels, Person, Reply
from conversations.menu import MenuMixin
from conversations.names import (
    MENU_PREFIX,
    NOTICE_PREFIX,
    OPENED_FROM_OUTSIDE,
    THEN,
    TICKET_PREFIX,
    FlowName,
)
from conversations.notices import FORM_PART_START
from conversations.outcomes import OutcomesMixin
from conversations.password_guard import looks_like_credentials
from conversations.ports import Ports, Reference
from conversations.questions import QuestionsMixin
from conversations.state import State
from conversations.status import find_number
from conversations.text import IntentMatcher, normalize, normalize_label
from conversations.turn_parts import DRAFT_LIFETIME, DraftsMixin, TicketsMixin

__all__ = ["DRAFT_LIFETIME", "Engine", "Intents", "Reply"]


@dataclass(frozen=True)
class Intents:
    """Typed words for global commands and phrases that mean a flow (from the locale)."""

    commands: Mapping[str, str]  # normalized word -> command name
    flows: IntentMatcher  # intents are flow names, or "faq:<key>" for a common question
    # every common question's key -> the flow its answer offers ("" for none)
    faq_targets: Mapping[str, str] = dataclasses.field(default_factory=dict)


class Engine:
    def __init__(
        self,
        flows: Sequence[Flow],
        labels: Labels,
        intents: Intents,
        services: Reference | None = None,
    ) -> None:
        self.flows: dict[str, Flow] = {flow.name: flow for flow in flows}
        if len(self.flows) < len(flows):
            raise FlowError("two flows share a name")
        check_references(self.flows, intents)
        # command -> (flow, step to open; "" for the first)
        self._by_command: dict[str, tuple[str, str]] = {}
        for flow in flows:
            if flow.command:
                self._by_command[flow.command] = (flow.name, "")
            for command, step in flow.commands.items():
                self._by_command[command] = (flow.name, step)
        self._labels = labels
        self._intents = intents
        self.services = services

    # ------------------------------------------------------------------ public
    def commands(self) -> list[str]:
        """Slash commands that work now for everyone (for the channel's command menu)."""
        public = [c for c, (flow, _) in self._by_command.items() if not self._staff_only(flow)]
        return ["start", "menu", *public, "atras", "cancelar"]

    def staff_commands(self) -> list[str]:
        """Commands only help-desk staff have (shown in their command menu only)."""
        return [c for c, (flow, _) in self._by_command.items() if self._staff_only(flow)]

    def _staff_only(self, flow: str) -> bool:
        return self.flows[flow].staff_only

    async def handle(
        self,
        state: State,
        event: Inbound,
        person: Person,
        now: datetime,
        services: Ports,
    ) -> Reply:
        reply = Reply(state)
        turn = _Turn(self, reply, person, now, event, services)
        turn.expire_drafts()
        await turn.run()
        if state.frame is not None:
            state.frame.updated = now.isoformat()
        _track_contact_keyboard(state, reply.messages)
        return reply

    # ----------------------------------------------------------- for the turn
    def command_of(self, event: Inbound) -> str | None:
        if event.kind is Kind.COMMAND:
            return event.text
        if event.kind is Kind.TEXT:
            return self._intents.commands.get(normalize(event.text))
        return None

    def flow_for_command(self, command: str) -> tuple[str, str] | None:
        return self._by_command.get(command)

    def label_matches(self, choice: list[Any], text: str) -> bool:
        """Typed as shown, or as people write it: accents, case, "(sa)" and the label's
        synonyms ("alcaldesa" for "Alcalde o alcaldesa") do not matter."""
        wanted = normalize(text)
        if not wanted:
            return False
        forms = self._forms(choice)
        if any(normalize(form) == wanted for form in forms):
            return True
        bare = normalize_label(text)
        return bool(bare) and any(normalize_label(form) == bare for form in forms)

    def label_starts(self, choice: list[Any], prefix: str) -> bool:
        """A label (or its short form) starts with ``prefix`` (normalized)."""
        return any(normalize(form).startswith(prefix) for form in self._forms(choice))

    def _forms(self, choice: list[Any]) -> list[str]:
        """A choice's label as channels may show it: whole, and its short form if any."""
        key, data = choice[1], choice[2]
        short = self._labels.short(key, data)
        full = self._labels.label(key, data)
        forms = [full] if short is None else [full, short]
        return forms + self._labels.synonyms(key)

    @property
    def faq_targets(self) -> Mapping[str, str]:
        return self._intents.faq_targets

    def intent(self, text: str, allowed: Iterable[str]) -> str | None:
        return self._intents.flows.match(text, allowed)


class _Turn(CommandsMixin, MenuMixin, OutcomesMixin, QuestionsMixin, DraftsMixin, TicketsMixin):
    """One event's handling; collects messages and effects into the reply."""

    engine: Engine  # the whole engine; the parts see it as turn_base.EngineView

    def __init__(
        self,
        engine: Engine,
        reply: Reply,
        person: Person,
        now: datetime,
        event: Inbound,
        services: Ports,
    ) -> None:
        self.engine = engine
        self.services = services
        self.reply = reply
        self.state = reply.state
        self.person = person
        self.now = now
        self.event = event

    # ------------------------------------------------------------------ entry
    async def run(self) -> None:
        event, state = self.event, self.state
        if event.kind is Kind.TEXT and looks_like_credentials(event.text):
            # Nothing of it is kept: the message is deleted where the channel allows, the
            # state does not change, and the open question is asked again.
            self.reply.messages.append(Outbound("", delete_user_message=True))
            self.say("common.password_warning")
            await self.ask_again()
            return
        if event.kind is Kind.FILE and event.text and looks_like_credentials(event.text):
            # A caption is kept with its file, never one that looks like a password.
            self.say("common.password_caption")
            event = self.event = dataclasses.replace(event, text="")
        command = self.engine.command_of(event)
        in_consent = state.frame is not None and state.frame.flow == FlowName.CONSENT
        if (
            self.person.consent is None
            and not in_consent
            and command != "privacidad"
            and not self.desk_work(command)
        ):
            await self.start_consent(self.wanted_flow(command))
            return
        if state.frame is not None and not self.allowed(self.engine.flows[state.frame.flow]):
            state.frame = None  # no longer staff: the desk closes
        if state.suspended is not None:
            await self.answer_cancel(command)
            return
        if command is not None:
            await self.run_command(command)
            return
        if event.kind is Kind.TEXT and (self.person.consent is True or self.person.is_staff):
            if (
                event.reply_to
                and self.person.consent is True
                and await self.answer_reply_to(event.reply_to)
            ):
                return
            number = find_number(event.text)
            if number is not None and FlowName.STATUS in self.engine.flows:
                await self.open_ticket(number)
                return
        if event.kind is Kind.TEXT and event.reopens and await self.set_aside(event.text):
            return
        if event.kind is Kind.BUTTON and _choice_part(event.text).startswith(NOTICE_PREFIX):
            await self.answer_notice(_choice_part(event.text))
            return
        if event.kind is Kind.BUTTON:
            choice_id = self.open_choice(event.text)
            if choice_id is None:
                if not await self.answer_anywhere(_choice_part(event.text)):
                    # An answer to a question no longer open: said briefly, nothing changes
                    # and the open question stays where it is (the last one sent).
                    self.say("common.stale_button")
                return
            event = _as_button(event, choice_id)
        elif event.kind is Kind.TEXT:
            typed = self.typed_choice(event.text)
            if typed is not None:
                event = _as_button(event, typed)
        if state.frame is None:
            await self.answer_menu(event)
        else:
            await self.answer_step(event)

    # --------------------------------------------------------- consent first
    def desk_work(self, command: str | None) -> bool:
        """A specialist working the desk: a staff command, a ticket number, a notification's
        button, or an answer inside the desk. None of it needs the officers' notice."""
        if not self.person.is_staff:
            return False
        if command is not None:
            found = self.engine.flow_for_command(command)
            return found is not None and self.engine.flows[found[0]].staff_only
        frame = self.state.frame
        if frame is not None and self.engine.flows[frame.flow].staff_only:
            return True
        if self.event.kind is Kind.BUTTON:
            choice = _choice_part(self.event.text)
            if choice.startswith(NOTICE_PREFIX):
                return True
            # A choice that works from any message counts as what it says, open or not.
            opened = self.open_choice(self.event.text) or choice
            return opened == MENU_PREFIX + FlowName.DESK or opened.startswith(TICKET_PREFIX)
        return self.event.kind is Kind.TEXT and find_number(self.event.text) is not None

    def wanted_flow(self, command: str | None) -> str:
        """The flow an event asks for (a command, a menu entry tapped or typed), if any."""
        if command is not None:
            found = self.engine.flow_for_command(command)
            return found[0] if found else ""
        choice = None
        if self.event.kind is Kind.BUTTON:
            choice = self.open_choice(self.event.text)
        elif self.event.kind is Kind.TEXT:
            choice = self.typed_choice(self.event.text)
        if choice is None or not choice.startswith(MENU_PREFIX):
            return ""
        target, _, then = choice[len(MENU_PREFIX) :].partition(THEN)
        return then if target == FlowName.CONSENT else target


def check_references(flows: Mapping[str, Flow], intents: Intents) -> None:
    """What one flow names of another exists: the steps opened from outside their flow,
    and the flow each common question's answer offers (:class:`FlowError` otherwise)."""
    for ref in (*OPENED_FROM_OUTSIDE, *FORM_PART_START.values()):
        if ref.flow in flows:
            flows[ref.flow].require(ref.step)
    if FlowName.CONSENT not in flows:
        raise FlowError(f"the engine needs the {FlowName.CONSENT} flow")
    unknown = sorted(
        key for key, target in intents.faq_targets.items() if target and target not in flows
    )
    if unknown:
        raise FlowError(f"common questions offer flows that do not exist: {unknown}")


def _track_contact_keyboard(state: State, messages: list[Outbound]) -> None:
    """The keyboard a contact question shows stays until a message takes it away: the first
    plain message after it does (kept in the state, so a restart does not forget it)."""
    if any(m.request_contact for m in messages):
        state.contact_keyboard = True
        return
    if not state.contact_keyboard:
        return
    for index, message in enumerate(messages):
        if not message.choices and not message.edit and not message.document:
            messages[index] = dataclasses.replace(message, remove_keyboard=True)
            state.contact_keyboard = False
            return


def _choice_part(data: str) -> str:
    return data.partition(":")[2]


def _as_button(event: Inbound, choice_id: str) -> Inbound:
    return Inbound(
        channel=event.channel,
        chat_id=event.chat_id,
        event_id=event.event_id,
        kind=Kind.BUTTON,
        text=choice_id,
        message_ref=event.message_ref,
        user_name=event.user_name,
        reopens=event.reopens,
        local=event.local,
    )
