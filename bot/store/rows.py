"""The rows the store hands out (a chat's record, an outbox row) and the timestamp format
every table stores (:func:`iso`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class ChatRecord:
    identity_id: int
    person_id: int
    state: str | None
    version: int
    consent: bool | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    channel: str
    chat_id: str
    payload: str
    bulk: bool
    attempts: int = 0
    # A message joined at delivery (bot.delivery.outbox): the ids of the rows put in front
    # of this one, which share its fate (sent, failed or held together).
    joined: tuple[int, ...] = ()

    @property
    def ids(self) -> tuple[int, ...]:
        """Every row this message carries, in order (its own id last)."""
        return (*self.joined, self.id)
