"""The global commands every flow answers: ``start``, ``menu``, ``cancelar`` (asked first,
then answered here), ``atras``, and each flow's own commands (``/solicitar``, a step opened
directly). Typed words reach these as commands too (``Engine.command_of``).

Mixed into ``conversations.engine._Turn`` (see ``conversations.turn_base``).
"""

from __future__ import annotations

from conversations.events import Choice, Kind, Outbound, rows
from conversations.names import FlowName
from conversations.state import Frame
from conversations.status import find_number
from conversations.turn_base import TurnBase
from conversations.undo import restore

CHOICE_CANCEL_YES = "cancel_yes"
CHOICE_CANCEL_NO = "cancel_no"


class CommandsMixin(TurnBase):
    """A command, whatever question is open; and the answer to "¿Cancelar?"."""

    async def run_command(self, command: str) -> None:
        state = self.state
        if command == "start" and self.person.consent is True:
            number = find_number(self.event.args)  # a deep link to a ticket's card
            if number is not None and self.person.is_staff:
                await self.open_ticket(number)
                return
        if command == "start":
            # A greeting mid-flow resumes it: the open question is asked again.
            self.say("common.welcome_back")
            if state.frame is not None:
                if not (self.event.reopens and self.put_aside(typed=False)):
                    await self.ask_current()
            elif state.drafts:
                self.offer_draft(next(iter(state.drafts)))
            else:
                await self.to_menu()
        elif command == "menu":
            await self.to_menu()
        elif command == "cancelar":
            if state.frame is None and state.drafts:
                # A kept draft is what /cancelar would discard: confirm as for an open flow.
                state.frame = state.drafts.pop(next(iter(state.drafts)))
            if state.frame is None or state.frame.flow == FlowName.CONSENT:
                self.say("common.nothing_to_cancel")
                await self.to_menu()
                return
            state.suspended = state.frame
            self.put_question(
                Outbound(
                    "common.cancel_confirm",
                    {},
                    rows(
                        Choice(CHOICE_CANCEL_YES, "btn.cancel_yes"),
                        Choice(CHOICE_CANCEL_NO, "btn.cancel_no"),
                        per_row=2,
                    ),
                )
            )
        elif command == "atras":
            await self.go_back()
        else:
            target = self.engine.flow_for_command(command)
            if target is None or (
                self.engine.flows[target[0]].staff_only and not self.person.is_staff
            ):
                # A staff command from anyone else is as unknown as a typo.
                self.say("common.unknown_command", command=command)
                await self.to_menu()
            elif target[1]:
                flow = self.engine.flows[target[0]]
                if not self.allowed(flow):
                    await self.start(flow.name)
                    return
                self.keep_draft()
                state.frame = Frame(flow.name, target[1], {"args": self.event.args})
                await self.ask_current()
            else:
                await self.start(target[0])

    async def go_back(self, edit: bool = False) -> None:
        frame = self.state.frame
        if frame is None:
            await self.to_menu()
            return
        if not frame.history:
            self.say("common.at_first_step")
            await self.ask_current()
            return
        frame.step, snapshot = frame.pop()
        restore(frame.data, snapshot, self.engine.flows[frame.flow].undo_keys)
        await self.ask_current(edit=edit)

    async def answer_cancel(self, command: str | None) -> None:
        suspended = self.state.suspended
        assert suspended is not None
        choice = self.open_choice(self.event.text) if self.event.kind is Kind.BUTTON else None
        if self.event.kind is Kind.TEXT:
            choice = self.typed_choice(self.event.text)
        self.state.suspended = None
        if choice == CHOICE_CANCEL_YES or command == "cancelar":
            self.state.frame = None
            self.say("common.cancelled")
            await self.to_menu()
            return
        self.state.frame = suspended
        if command is not None and command != "cancelar":
            await self.run_command(command)
            return
        if choice != CHOICE_CANCEL_NO:
            self.say("common.cancel_kept")
        await self.ask_current()
