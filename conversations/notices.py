"""Buttons on notifications, and swipe replies to them.

A notification is sent outside any question ("your ticket is Observado"), so its buttons
cannot be tied to the open question. Their choice id names an action and a ticket,
``n:<action>:<number>``, and every tap is checked on the server: the ticket must be the
tapper's own (or the tapper must be staff, for staff actions) and in a state where the
action applies. Anything else is answered like a stale button, so a replayed or forged
button neither changes nor reveals anything.

Actions: ``fix`` (officer: Corregir an observation), ``reply`` (officer: answer the help
desk), ``card``, ``sreply`` and ``queue`` (staff: open the card, answer the officer,
open the queue).
"""

from __future__ import annotations

from typing import Any

from conversations import validators
from conversations.events import Inbound, Kind, Outbound
from conversations.flow import Again, Jump, Person

PREFIX = "n:"
MESSAGE_MAX = 3000  # characters of a message relayed between officer and help desk
# Where "Corregir" leads for each part of an access request.
FORM_PART_START = {
    "resolucion": "res_numero",
    "responsable": "nombres",
    "perfiles": "justicia",  # profiles.START: the justice question, then who holds what
}
CORRECTION_FLOW = "subsanar"
REPLY_FLOW = "respuesta"
DESK_FLOW = "mesa"


async def resolve(services: Any, person: Person, choice: str) -> Jump | None:
    """Where a notification's button leads, or None if it does not apply to this person."""
    action, _, number = choice[len(PREFIX) :].partition(":")
    if action in ("card", "sreply", "queue"):
        if not person.is_staff:
            return None
        step = {"card": "ficha", "sreply": "responder", "queue": "cola"}[action]
        return Jump(DESK_FLOW, step, {"number": number} if number else {})
    if action == "fix":
        return await fix(services, number)
    if action == "reply":
        if not await services.can_reply(number):
            return None
        return Jump(REPLY_FLOW, "texto", {"number": number})
    return None


async def fix(services: Any, number: str) -> Jump | None:
    """Straight into the observed part of the form, with the rest as it was sent."""
    observed = await services.observation(number)
    if observed is None:
        return None
    start = FORM_PART_START.get(observed["part"])
    if observed["type"] != "accesos" or start is None:
        return Jump(REPLY_FLOW, "texto", {"number": number, "observed": True})
    data: dict[str, Any] = dict(observed["data"])
    data.update(ticket=number, correcting=True)
    return Jump(CORRECTION_FLOW, start, data)


async def reply_to(services: Any, person: Person, ref: str, text: str) -> list[Outbound] | None:
    """A swipe reply to a ticket's notification: relayed onto the ticket. None when the
    message replied to is not about a ticket this person may write on."""
    number = await services.ticket_for_message(ref)
    if number is None:
        return None
    checked = message(text)
    if isinstance(checked, validators.Invalid):
        return [Outbound(f"errors.{checked.code}")]
    if person.is_staff:
        refused = await services.desk_reply(number, checked.value)
        if refused is not None:
            return [Outbound("mesa.no_aplica", {"number": number, "state": refused})]
        return [Outbound("mesa.respuesta_enviada", {"number": number})]
    resumed = await services.officer_reply(number, checked.value)
    if resumed is None:
        return None
    return [Outbound("respuesta.enviada", {"number": number, "resumed": resumed})]


def typed_message(event: Inbound) -> str | Again:
    """The message a step asks for, checked; or the Again that says what was wrong."""
    if event.kind is not Kind.TEXT:
        return Again("errors.expected_text")
    checked = message(event.text)
    if isinstance(checked, validators.Invalid):
        return Again(f"errors.{checked.code}")
    return checked.value


def message(text: str) -> validators.Valid[str] | validators.Invalid:
    """A message between officer and help desk: line breaks kept, up to 3,000 characters."""
    return validators.free_text(text, 2, MESSAGE_MAX, multiline=True)
