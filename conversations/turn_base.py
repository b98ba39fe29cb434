"""What every part of a turn shares: the turn's attributes, ``say``, and the methods one part
calls in another, declared here so each part type-checks on its own.

``conversations.engine._Turn`` mixes the parts together (``commands``, ``menu``, ``outcomes``,
``questions``, ``turn_parts``) and defines the rest; each method is defined once, and the
declarations below come last in the method order, so they are never what runs. The parts see
the engine through :class:`EngineView` and never import it (no import cycle).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from conversations.events import Inbound, Outbound
from conversations.flow import Ctx, Flow, Jump, Person, Reply
from conversations.ports import Ports
from conversations.state import Frame, State


class EngineView(Protocol):
    """What the parts of a turn use of the engine: its flows, commands, labels and intents."""

    flows: dict[str, Flow]

    def flow_for_command(self, command: str) -> tuple[str, str] | None: ...

    def label_matches(self, choice: list[Any], text: str) -> bool: ...

    def label_starts(self, choice: list[Any], prefix: str) -> bool: ...

    @property
    def faq_targets(self) -> Mapping[str, str]: ...

    def intent(self, text: str, allowed: Iterable[str]) -> str | None: ...


class TurnBase:
    """One event's handling: the attributes every part reads, and what the parts call in
    one another (defined in the part named beside each)."""

    engine: EngineView
    reply: Reply
    state: State
    person: Person
    now: datetime
    event: Inbound
    services: Ports

    def say(self, key: str, **data: Any) -> None:
        self.reply.messages.append(Outbound(key, data))

    # ------------------------------------------------------------ questions
    def ctx(self, frame: Frame | None) -> Ctx:
        raise NotImplementedError

    async def ask_current(self, edit: bool = False) -> None:
        raise NotImplementedError

    async def ask_again(self) -> None:
        raise NotImplementedError

    def put_question(self, message: Outbound) -> None:
        raise NotImplementedError

    def open_choice(self, data: str) -> str | None:
        raise NotImplementedError

    def typed_choice(self, text: str) -> str | None:
        raise NotImplementedError

    # ----------------------------------------------------------------- menu
    async def to_menu(self, hint: bool = False) -> None:
        raise NotImplementedError

    def allowed(self, flow: Flow) -> bool:
        raise NotImplementedError

    async def start(self, name: str, messages: Sequence[Outbound] = ()) -> None:
        raise NotImplementedError

    async def open_entry(self, name: str) -> bool:
        raise NotImplementedError

    async def answer_aside(self, text: str, current: Flow) -> bool:
        raise NotImplementedError

    def put_aside(self, typed: bool) -> bool:
        raise NotImplementedError

    # ------------------------------------------------------------- commands
    async def go_back(self, edit: bool = False) -> None:
        raise NotImplementedError

    # ----------------------------------------------------- turn_parts: drafts
    def keep_draft(self) -> None:
        raise NotImplementedError

    def draft_info(self, name: str) -> dict[str, Any]:
        raise NotImplementedError

    def offer_draft(self, name: str, key: str = "common.draft_found", **extra: Any) -> None:
        raise NotImplementedError

    async def answer_draft(self, choice: str) -> None:
        raise NotImplementedError

    # ---------------------------------------------------- turn_parts: tickets
    async def open_ticket(self, number: str) -> None:
        raise NotImplementedError

    async def jump(self, outcome: Jump) -> None:
        raise NotImplementedError
