"""The registry of ticket types: every entry has what the rest of the product reads for it,
so a type added without its templates fails here, not in front of an officer."""

from __future__ import annotations

import pytest

from bot.domain.ticket_types import KINDS, TicketKind, TicketType
from bot.domain.workflow import PARTS, TicketState
from bot.texts import Texts

TEXTS = Texts()


@pytest.mark.parametrize("kind", KINDS.values(), ids=lambda kind: str(kind.type))
def test_each_type_has_its_names_and_its_mails(kind: TicketKind) -> None:
    for key in (
        f"estado.type_{kind.type}",
        f"estado.short_{kind.type}",
        f"mail.{kind.mail}_subject",
        f"mail.{kind.mail}_body",
    ):
        assert key in TEXTS.sources, key
    assert kind.type in TEXTS.data["tipos"]  # {{ type | tipo }} and its gender
    assert set(kind.parts) <= set(PARTS)
    assert "otro" in kind.parts  # anything can be observed in words


def test_every_type_and_every_state_has_an_entry() -> None:
    assert set(KINDS) == set(TicketType)
    for state in TicketState:
        assert f"estado.state_{state}" in TEXTS.sources
        assert f"estado.explain_{state}" in TEXTS.sources


def test_a_stored_ticket_keeps_only_the_request() -> None:
    request = {"ruc": "20131312955", "entity_name": "Muni", "resp": {}, "res": {}}
    screens = {"correcting": "resp", "known_name": "Muni", "section_index": 2, "mode": "x"}
    assert KINDS[TicketType.ACCESS].stored({**request, **screens}) == request
