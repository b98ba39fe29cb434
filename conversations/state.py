"""A chat's conversation state: where it stands and what it has answered, stored as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conversations import json_text


@dataclass
class Frame:
    """A flow in progress."""

    flow: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    updated: str = ""  # ISO time of the last answer (drafts expire)
    # Beside each step in ``history``: the answers as they were when that step was asked
    # (only the flow's ``undo_keys``; None: nothing to restore). Going back puts them back,
    # so a step is always asked again from a state it was once asked from.
    undo: list[dict[str, Any] | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        missing = len(self.history) - len(self.undo)
        if missing > 0:  # frames opened at a step with a history, and older stored states
            self.undo[:0] = [None] * missing

    def push(self, step: str, snapshot: dict[str, Any] | None) -> None:
        self.history.append(step)
        self.undo.append(snapshot)
        if len(self.history) > HISTORY_LIMIT:
            del self.history[0], self.undo[0]

    def pop(self) -> tuple[str, dict[str, Any] | None]:
        return self.history.pop(), self.undo.pop()


HISTORY_LIMIT = 60  # steps a frame remembers for going back (a desk session loops)


@dataclass
class State:
    frame: Frame | None = None  # None: at the main menu (or never spoken)
    # The open question: its id (in every button's callback data) and its choices
    # as [id, label key, label data], so a tap or a typed label can be checked.
    qid: int = 0
    choices: list[list[Any]] = field(default_factory=list)
    # While "¿Seguro que quieres cancelar?" is open, the flow it would discard.
    suspended: Frame | None = None
    # Flows left for the menu with answers kept, by flow name.
    drafts: dict[str, Frame] = field(default_factory=dict)
    # A question showed the channel's "share my number" keyboard, still on screen.
    contact_keyboard: bool = False

    def to_json(self) -> str:
        # Encoding fails loudly on anything that cannot be stored: better here than later.
        # Built by hand: dataclasses.asdict deep-copies every answer and costs ~0.3 ms a turn.
        body = {
            "frame": _frame(self.frame),
            "qid": self.qid,
            "choices": self.choices,
            "suspended": _frame(self.suspended),
            "drafts": {name: _frame(frame) for name, frame in self.drafts.items()},
            "contact_keyboard": self.contact_keyboard,
        }
        return json_text.dumps(body)

    @classmethod
    def from_json(cls, text: str | None) -> State:
        if not text:
            return cls()
        raw = json_text.loads(text)
        frame = Frame(**raw["frame"]) if raw.get("frame") else None
        suspended = Frame(**raw["suspended"]) if raw.get("suspended") else None
        return cls(
            frame=frame,
            qid=raw.get("qid", 0),
            choices=raw.get("choices", []),
            suspended=suspended,
            drafts={name: Frame(**f) for name, f in raw.get("drafts", {}).items()},
            contact_keyboard=raw.get("contact_keyboard", False),
        )


def _frame(frame: Frame | None) -> dict[str, Any] | None:
    if frame is None:
        return None
    return {
        "flow": frame.flow,
        "step": frame.step,
        "data": frame.data,
        "history": frame.history,
        "updated": frame.updated,
        "undo": frame.undo,
    }
