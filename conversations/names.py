"""Names one module uses for another's flows: flow names, the steps opened from outside
their flow, and the prefixes of choice ids that work from any message.

A flow names itself with :class:`FlowName`; a module that opens another flow, or one of its
steps, uses the names here, so a typo is an import or type error. The engine checks at
construction that every :class:`StepRef` in :data:`OPENED_FROM_OUTSIDE` (and in
``conversations.notices.FORM_PART_START``) is a step of its flow, when that flow is offered.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class FlowName(StrEnum):
    """Every flow, by the name stored in conversation states (do not rename a value)."""

    REQUIREMENTS = "requisitos"
    ACCESS_REQUEST = "solicitud"
    CORRECTION = "subsanar"  # Corregir an observed access request
    PROFILE_UPDATE = "perfiles"
    CONSULTATION = "consulta"
    STATUS = "estado"
    HELP = "ayuda"
    CONSENT = "consent"
    PRIVACY = "privacidad"
    MY_DATA = "mis_datos"
    ERASE = "borrar_mis_datos"
    REPLY = "respuesta"
    DESK = "mesa"


class StepRef(NamedTuple):
    """A step opened from outside its own flow."""

    flow: FlowName
    step: str


# A ticket number typed, or a notification's button: the desk's card (queue behind it) ...
DESK_QUEUE = StepRef(FlowName.DESK, "cola")
DESK_CARD = StepRef(FlowName.DESK, "ficha")
DESK_REPLY = StepRef(FlowName.DESK, "responder")
# ... or the officer's detail (list behind it).
STATUS_LIST = StepRef(FlowName.STATUS, "lista")
STATUS_DETAIL = StepRef(FlowName.STATUS, "detalle")
# "Responder" on a ticket: the message to the help desk.
REPLY_TEXT = StepRef(FlowName.REPLY, "texto")
# ("Corregir" an observation leads into the observed part of the correction flow: those
# steps are named by the form itself, see conversations.notices.FORM_PART_START.)

OPENED_FROM_OUTSIDE = (
    DESK_QUEUE,
    DESK_CARD,
    DESK_REPLY,
    STATUS_LIST,
    STATUS_DETAIL,
    REPLY_TEXT,
)

# Choice ids that work from any message, not only the open question's.
MENU_CHOICE = "menu"  # the main menu
MENU_PREFIX = "f:"  # a main-menu entry: "f:<flow>"
THEN = ">"  # "f:consent>consulta": the notice, then the flow asked for
TICKET_PREFIX = "t:"  # a ticket in a list: "t:<number>"
NOTICE_PREFIX = "n:"  # a notification's button: "n:<action>:<number>"
DRAFT_CONTINUE = "draft_go:"  # "Continuar" on a kept draft: "draft_go:<flow>"
DRAFT_RESTART = "draft_new:"  # "Empezar de nuevo": "draft_new:<flow>"
FAQ_PREFIX = "faq:"  # intents of common questions: "faq:<key>"


def menu_entry(flow: FlowName) -> str:
    """The choice id of a flow's main-menu entry ("f:solicitud")."""
    return MENU_PREFIX + flow
