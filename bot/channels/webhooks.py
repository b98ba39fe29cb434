"""What a webhook body must look like before it is stored: JSON, bounded, and of the
platform's shape.

A signed or secret-bearing delivery is still checked before it reaches the webhook inbox:
a body that is not a JSON object, is nested deeper than :data:`MAX_DEPTH`, or does not have
the shape the channel reads (pydantic models of Meta's and Telegram's payloads) is refused
with 400 and never stored, so no stored row can make processing fail on its shape.

The models list only what the channels read, with the types they read it as; every other
field is allowed and ignored (the platforms add fields). WhatsApp's ``changes`` of fields
other than ``messages`` (account updates, template reviews...) pass with any ``value``: they
are acknowledged and skipped, since a refusal would make Meta retry them for days.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_DEPTH = 32  # Meta's and Telegram's payloads nest fewer than 10 levels


class NotADelivery(ValueError):
    """The body is not what the platform sends; ``str()`` says why in a few words."""


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


# ------------------------------------------------------------------- WhatsApp (Meta)
class WaText(_Open):
    body: str = ""


class WaReply(_Open):
    id: str = ""
    title: str = ""


class WaInteractive(_Open):
    type: str = ""
    button_reply: WaReply | None = None
    list_reply: WaReply | None = None


class WaButton(_Open):
    text: str = ""
    payload: str = ""


class WaMedia(_Open):
    id: str = ""
    mime_type: str | None = None
    filename: str | None = None
    caption: str | None = None


class WaPhone(_Open):
    phone: str | None = None
    wa_id: str | None = None


class WaCard(_Open):
    phones: list[WaPhone] = []


class WaContext(_Open):
    id: str | None = None


class WaMessage(_Open):
    sender: str = Field(alias="from", min_length=1, max_length=32)
    id: str = Field(min_length=1, max_length=256)
    timestamp: str | int | None = None
    type: str = ""
    text: WaText | None = None
    interactive: WaInteractive | None = None
    button: WaButton | None = None
    contacts: list[WaCard] | None = None
    image: WaMedia | None = None
    document: WaMedia | None = None
    context: WaContext | None = None


class WaError(_Open):
    code: int | None = None
    title: str | None = None


class WaStatus(_Open):
    id: str = Field(min_length=1, max_length=256)
    status: str = ""
    recipient_id: str = ""
    timestamp: str | int | None = None
    errors: list[WaError] = []


class WaProfile(_Open):
    name: str = ""


class WaContact(_Open):
    wa_id: str = ""
    profile: WaProfile | None = None


class WaMetadata(_Open):
    phone_number_id: str = ""
    display_phone_number: str = ""


class WaValue(_Open):
    metadata: WaMetadata | None = None
    contacts: list[WaContact] = []
    messages: list[WaMessage] = []
    statuses: list[WaStatus] = []


class WaChange(_Open):
    field: str = ""
    value: dict[str, Any] = {}

    @field_validator("value")
    @classmethod
    def _messages_shape(cls, value: dict[str, Any]) -> dict[str, Any]:
        WaValue.model_validate(value)  # what accept() reads, in every change that has it
        return value


class WaEntry(_Open):
    id: str = ""
    changes: list[WaChange] = []


class WaDelivery(_Open):
    object: str = ""
    entry: list[WaEntry]


# ------------------------------------------------------------------------- Telegram
class TgUpdate(_Open):
    update_id: int
    message: dict[str, Any] | None = None
    edited_message: dict[str, Any] | None = None
    callback_query: dict[str, Any] | None = None


# --------------------------------------------------------------------------- parsing
def load_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``; :class:`NotADelivery` for anything else."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:  # json nests past the stack: RecursionError
        raise NotADelivery(f"not JSON ({type(error).__name__})") from None
    if not isinstance(body, dict):
        raise NotADelivery(f"not a JSON object ({type(body).__name__})")
    if depth(body) > MAX_DEPTH:
        raise NotADelivery(f"nested deeper than {MAX_DEPTH} levels")
    return body


def depth(value: object) -> int:
    """How deeply lists and objects nest in ``value`` (without recursion)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def whatsapp_delivery(raw: bytes) -> dict[str, Any]:
    """A WhatsApp webhook body of the shape the channel reads, as a dict."""
    body = load_object(raw)
    _check(WaDelivery, body)
    return body


def telegram_update(raw: bytes) -> dict[str, Any]:
    """A Telegram update body of the shape the channel reads, as a dict."""
    body = load_object(raw)
    _check(TgUpdate, body)
    return body


def _check(model: type[BaseModel], body: dict[str, Any]) -> None:
    try:
        model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise NotADelivery(f"{model.__name__}: {where}: {first['type']}") from None
