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

from conversations import access_request, profiles, validators
from conversations.events import Inbound, Kind, Outbound
from conversations.flow import Again, Jump, Person
from conversations.names import (
    DESK_CARD,
    DESK_QUEUE,
    DESK_REPLY,
    NOTICE_PREFIX,
    REPLY_TEXT,
    FlowName,
    StepRef,
)
from conversations.ports import Ports

MESSAGE_MAX = 3000  # characters of a message relayed between officer and help desk
# Where "Corregir" leads for each part of an access request.
# The form names its own steps: these follow when it changes.
FORM_PART_START = {
    "resolucion": StepRef(FlowName.CORRECTION, access_request.PART_START["resolucion"]),
    "responsable": StepRef(FlowName.CORRECTION, access_request.PART_START["responsable"]),
    "perfiles": StepRef(FlowName.CORRECTION, profiles.START),
}
# Staff buttons: where each leads in the desk.
DESK_ACTIONS = {"card": DESK_CARD, "sreply": DESK_REPLY, "queue": DESK_QUEUE}


async def resolve(services: Ports, person: Person, choice: str) -> Jump | None:
    """Where a notification's button leads, or None if it does not apply to this person."""
    action, _, number = choice[len(NOTICE_PREFIX) :].partition(":")
    if action in DESK_ACTIONS:
        if not person.is_staff:
            return None
        desk = DESK_ACTIONS[action]
        return Jump(desk.flow, desk.step, {"number": number} if number else {})
    if action == "fix":
        return await fix(services, number)
    if action == "reply":
        if not await services.can_reply(number):
            return None
        return Jump(*REPLY_TEXT, {"number": number})
    return None


async def fix(services: Ports, number: str) -> Jump | None:
    """Straight into the observed part of the form, with the rest as it was sent."""
    observed = await services.observation(number)
    if observed is None:
        return None
    start: StepRef | None = FORM_PART_START.get(observed["part"])
    if observed["type"] != "accesos" or start is None:
        return Jump(*REPLY_TEXT, {"number": number, "observed": True})
    data: dict[str, Any] = dict(observed["data"])
    data.update(ticket=number, correcting=True)
    return Jump(start.flow, start.step, data)


async def reply_to(services: Ports, person: Person, ref: str, text: str) -> list[Outbound] | None:
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
