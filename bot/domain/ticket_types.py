"""The kinds of ticket and what sets each apart, in one table: a new type is one entry here
(plus its flow and its templates).

A ticket's type is stored as its :class:`TicketType` code. For each type :data:`KINDS` says
what a stored ticket may hold (the request, nothing of the screens that collected it), what an
observation may name, which block of the staff card shows its data, which mails it sends
(``mail.<mail>_subject`` and ``mail.<mail>_body``, and the mail outbox's ``kind``), whether a
Formato de Registro de Perfiles goes with it, and whether it closes with the desk's answer
(which the officer may then reply to).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from conversations.access_request import REQUEST_KEYS
from conversations.consultation import CONSULTATION_KEYS
from conversations.profile_update import CHANGE_KEYS

log = logging.getLogger(__name__)


class TicketType(StrEnum):
    ACCESS = "accesos"  # access to the PTE: resolution + Formato
    CONSULTATION = "consulta"  # a question to the desk, answered in words
    PROFILES = "perfiles"  # a change to the registered profiles: a new Formato


@dataclass(frozen=True)
class TicketKind:
    type: TicketType
    keys: frozenset[str]  # what the stored ticket holds: the request's keys only
    parts: tuple[str, ...]  # what an observation may name ("otro": answered in words)
    card_section: str  # the staff card's block that shows the request
    mail: str  # mail.<mail>_subject / mail.<mail>_body, and the mail outbox's kind
    answered: bool  # Atendido carries the desk's answer; the officer may reply to it

    def stored(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The request as the ticket keeps it: any other key (a screen's) is left out."""
        extra = sorted(set(data) - self.keys)
        if extra:  # a flow handed over a screen key: a defect, but the ticket stays clean
            log.warning("a %s ticket was handed keys it does not keep: %s", self.type, extra)
        return {key: value for key, value in data.items() if key in self.keys}


KINDS: dict[str, TicketKind] = {
    kind.type: kind
    for kind in (
        TicketKind(
            TicketType.ACCESS,
            keys=frozenset(REQUEST_KEYS),
            parts=("resolucion", "responsable", "perfiles", "otro"),
            card_section="profiles",
            mail="request",
            answered=False,
        ),
        TicketKind(
            TicketType.CONSULTATION,
            keys=frozenset(CONSULTATION_KEYS),
            parts=("otro",),
            card_section="consulta",
            mail="consulta",
            answered=True,
        ),
        TicketKind(
            TicketType.PROFILES,
            keys=frozenset(CHANGE_KEYS),
            parts=("otro",),
            card_section="update",
            mail="perfiles",
            answered=False,
        ),
    )
}


def kind_of(code: str) -> TicketKind:
    """The entry of a stored type code (KeyError for a code no entry knows)."""
    return KINDS[code]
