"""How a flow is declared: a table of steps, each a prompt and an answer handler.

A step's ``ask`` returns the messages that put its question; ``answer`` looks at the user's
event and returns an outcome. The engine owns everything else: storing the state, "Paso k de
N" (from the table's counted steps), going back, cancelling, refusing stale buttons.

Outcomes::

    Next(step=None)     go to the named step (default: the next row of the table) and ask it
    Again(key, data)    say what was wrong, ask the same question again
    Done(messages)      the flow ends; the main menu follows unless ``menu=False``
    Start(flow)         hand over to another flow
    Back()              return to the previous step
    Stay(messages)      remain on this step without asking again
    Jump(flow, step)    open another flow at a given step with answers already there

A step without ``answer`` only informs: once asked, the flow ends and the menu follows.

Building a :class:`Flow` checks what its declaration says (:class:`FlowError` otherwise): no
two steps share a name, and the steps its ``commands`` open exist. Where a step's outcome
leads is decided when it runs; ``tests/conversations/test_flow_checks.py`` reads every
``Next("...")`` and ``go("...")`` of the flow modules and checks the step exists, and every
template key written in them against ``locales/es``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from conversations.events import Choice, Inbound, Outbound
from conversations.names import FlowName
from conversations.ports import Ports
from conversations.state import State


class Effect:
    """A decision about the person's relation with the conversation (consent, erasure) that
    the engine and the application act on after the step, in the same transaction. Ticket
    work goes through the ports instead: see :mod:`conversations.ports` for the rule."""


@dataclass(frozen=True)
class RecordConsent(Effect):
    notice_version: str
    accepted: bool


@dataclass(frozen=True)
class WithdrawConsent(RecordConsent):
    """The person takes their consent back: recorded as declined (the engine discards the
    drafts, kept under that consent)."""


@dataclass(frozen=True)
class ForgetMe(Effect):
    """Erase what is stored about the person (tickets stay, as administrative records)."""


@dataclass
class Reply:
    """What one event produced: the new state, the messages to send, the effects to apply."""

    state: State
    messages: list[Outbound] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)


@dataclass(frozen=True)
class Next:
    step: str | None = None
    messages: Sequence[Outbound] = ()
    effects: Sequence[Effect] = ()


@dataclass(frozen=True)
class Again:
    key: str
    data: Mapping[str, Any] = field(default_factory=dict)
    effects: Sequence[Effect] = ()


@dataclass(frozen=True)
class Done:
    messages: Sequence[Outbound] = ()
    effects: Sequence[Effect] = ()
    menu: bool = True


@dataclass(frozen=True)
class Start:
    flow: str
    messages: Sequence[Outbound] = ()
    effects: Sequence[Effect] = ()


@dataclass(frozen=True)
class Back:
    """Return to the previous step (as "Anterior" on a card does)."""

    effects: Sequence[Effect] = ()


@dataclass(frozen=True)
class Stay:
    """Remain on this step without asking again (e.g. the 2nd file of an album): the
    messages, if any, are sent and the last one's buttons become the open choices."""

    messages: Sequence[Outbound] = ()
    effects: Sequence[Effect] = ()


@dataclass(frozen=True)
class Jump:
    """Open ``flow`` at ``step`` with ``data`` already answered (a notification's button
    that leads straight into a part of a form)."""

    flow: FlowName
    step: str
    data: Mapping[str, Any] = field(default_factory=dict)
    messages: Sequence[Outbound] = ()
    effects: Sequence[Effect] = ()


Outcome = Next | Again | Done | Start | Back | Stay | Jump


class Labels(Protocol):
    """Plain text of a button label, to accept a label typed instead of tapped."""

    def label(self, key: str, data: Mapping[str, Any]) -> str: ...

    def short(self, key: str, data: Mapping[str, Any]) -> str | None:
        """The label's short form, for channels with narrow buttons (None: it has none)."""
        ...

    def synonyms(self, key: str) -> list[str]:
        """Other ways people type the label ("alcaldesa" for "Alcalde o alcaldesa")."""
        ...


@dataclass
class Person:
    """What the engine knows of who is writing, loaded with the conversation."""

    person_id: int
    consent: bool | None  # True accepted, False declined, None not asked yet (current notice)
    is_staff: bool = False


@dataclass
class Ctx:
    """What a step sees: its flow's answers so far (mutable), who writes, the time, services."""

    data: dict[str, Any]
    person: Person
    now: datetime
    services: Ports
    flows: Mapping[str, Flow]
    progress: tuple[int, int] | None = None
    event: Inbound | None = None


AskFn = Callable[[Ctx], Awaitable[list[Outbound]]]
AnswerFn = Callable[[Ctx, Inbound], Awaitable[Outcome]]


@dataclass(frozen=True)
class Step:
    name: str
    ask: AskFn
    answer: AnswerFn | None = None
    counted: bool = True  # shows "Paso k de N"
    # Buttons on a card are answered by editing the card in place.
    edits: bool = False
    # Asked again for another item (section after section): each time is a step of its own
    # for going back.
    repeats: bool = False


class FlowError(ValueError):
    """A flow declared wrong: caught when it is built (at import), not when someone reaches
    the mistake in a chat."""


@dataclass(frozen=True)
class Flow:
    name: FlowName
    steps: tuple[Step, ...]
    menu_label: str | None = None  # template key of its main-menu entry
    command: str | None = None  # slash command that starts it
    needs_consent: bool = True
    progress: bool = True  # number the steps ("Paso k de N")
    # Leaving for the menu keeps the answers as a draft, offered again on return.
    keeps_draft: bool = False
    # Only help-desk staff may open it; for anyone else its commands do not exist.
    staff_only: bool = False
    # More commands that open the flow at a given step: {"ticket": "ficha"}. The text after
    # the command is in the step's data as "args".
    commands: Mapping[str, str] = field(default_factory=dict)
    # What going back restores, as it was when the step was asked again: these keys of the
    # answers (the flow's own bookkeeping: which section, whose data is being typed...), or
    # every key when None. Plain answers outside them stay, shown with "Mantener".
    undo_keys: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise FlowError(f"flow {self.name} has no steps")
        names = [step.name for step in self.steps]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise FlowError(f"flow {self.name} declares steps twice: {', '.join(twice)}")
        unknown = sorted(step for step in self.commands.values() if step not in names)
        if unknown:
            raise FlowError(f"flow {self.name}: commands open unknown steps: {unknown}")
        if self.undo_keys is not None and not self.undo_keys:
            # An empty set restores nothing on going back; None restores every answer.
            raise FlowError(f"flow {self.name}: undo_keys is empty (None restores all)")

    def require(self, *steps: str) -> None:
        """Fail unless every one of ``steps`` is a step of this flow (for step names another
        table refers to, checked where that table is declared)."""
        names = {step.name for step in self.steps}
        unknown = sorted(step for step in steps if step not in names)
        if unknown:
            raise FlowError(f"flow {self.name} has no steps {unknown}")

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"{self.name} has no step {name!r}")

    def after(self, name: str) -> str | None:
        names = [step.name for step in self.steps]
        index = names.index(name)
        return names[index + 1] if index + 1 < len(names) else None

    def position(self, name: str) -> tuple[int, int] | None:
        if not self.progress:
            return None
        counted = [step.name for step in self.steps if step.counted]
        if name not in counted:
            return None
        return counted.index(name) + 1, len(counted)

    def position_near(self, name: str, history: Sequence[str]) -> tuple[int, int] | None:
        """Where a frame stands for a person: its step's number, or for a step that is not
        numbered (a colleague's data, Corregir) the last numbered step it came through."""
        for candidate in (name, *reversed(history)):
            found = self.position(candidate)
            if found is not None:
                return found
        return None


def question(
    key: str, *choices: Choice, per_row: int = 1, **data: Any
) -> Callable[[Ctx], Awaitable[list[Outbound]]]:
    """An ``ask`` that sends one templated message with buttons."""
    from conversations.events import rows

    async def ask(ctx: Ctx) -> list[Outbound]:
        return [Outbound(key, dict(data), rows(*choices, per_row=per_row), ctx.progress)]

    return ask
