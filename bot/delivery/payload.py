"""Outbox payloads: a neutral message as stored, and its rendering for a channel.

A payload is the :class:`~conversations.events.Outbound` plus what the channel needs to
build buttons (the open question's id) and to edit in place (the message a button was on).
Rendering happens here, once, when the message is delivered.

**Joined messages.** A reply often says something and then asks something ("Gracias.
Guardé tu aceptación" and the menu; the greeting and the consent notice). A channel that
counts messages against a flood limit sends such a pair as ONE message: :func:`join` puts a
text-only payload in front of the next one of the same reply (as ``lead``), and
:func:`render` shows the lead's text first, a blank line, then the rest with its buttons.
Only the text before a question is joined: never a message with buttons, a document, a card
edited in place or a deletion, and never into a document or an edit (see :func:`join`).
Stored rows stay one per message; joining happens at delivery (:mod:`bot.outbox`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.store.database import OutboxRow
from bot.texts import NO_CAPABILITIES, Capabilities, Texts, to_plain
from conversations import json_text
from conversations.events import Outbound

CALLBACK_DATA_LIMIT = 64  # bytes, Telegram's limit
RENDERED_KEPT = 256  # joined messages rendered and waiting for their delivery, at most


def _default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a message")


def encode(message: Outbound, qid: int, edit_ref: str | None) -> str:
    if message.delete_user_message:
        return json_text.dumps({"delete_ref": edit_ref})
    body: dict[str, Any] = {"key": message.key, "data": message.data, "qid": qid}
    if message.choices:
        body["choices"] = [[[c.id, c.label, c.data] for c in row] for row in message.choices]
    if message.progress:
        body["progress"] = list(message.progress)
    if message.edit and edit_ref:
        body["edit_ref"] = edit_ref
    if message.document:
        doc = message.document
        body["document"] = {"sha256": doc.sha256, "filename": doc.filename, "mime": doc.mime}
    if message.request_contact:
        body["request_contact"] = True
    if message.remove_keyboard:
        body["remove_keyboard"] = True
    if message.link:
        body["link"] = list(message.link)
    if message.current:
        body["current"] = message.current
    return json_text.dumps(body, default=_default)


# What a payload may hold and still go in front of the next message: text, nothing else.
_TEXT_ONLY = frozenset({"key", "data", "qid", "progress", "current", "lead"})
# What the next message must not hold: its text is not a message's own (a caption has its
# own limit, an edit replaces a card's text and must not swallow an acknowledgement).
_NOT_AFTER = frozenset({"document", "edit_ref", "delete_ref"})
JOIN_SEPARATOR = "\n\n"


def join(first: str, then: str) -> str | None:
    """``then`` with ``first``'s text in front (one message), or None where they must stay
    two messages."""
    lead, body = json_text.loads(first), json_text.loads(then)
    if not isinstance(lead, dict) or not isinstance(body, dict):
        return None
    if not lead.keys() <= _TEXT_ONLY or "key" not in lead or "key" not in body:
        return None
    if body.keys() & _NOT_AFTER:
        return None
    body["lead"] = [*lead.pop("lead", []), lead, *body.get("lead", [])]
    return json_text.dumps(body)


def _text(texts: Texts, body: dict[str, Any], capabilities: Capabilities) -> str:
    text = texts.render(body["key"], {**body["data"], "canal": capabilities.as_data()})
    progress = body.get("progress")
    if progress:
        text = texts.render("common.paso", {"k": progress[0], "n": progress[1]}) + "\n" + text
    current = body.get("current")
    if current:
        text += "\n" + texts.render("common.current", {"value": current})
    return text


@dataclass(frozen=True)
class Button:
    label: str
    data: str  # callback data: "<question id>:<choice id>"
    short: str | None = None  # the label's short form, for narrow buttons (WhatsApp)
    # What the label was rendered from: its template key and data (tests find buttons by
    # these, so a wording change in locales/ does not break them).
    key: str = ""
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def choice(self) -> str:
        """The choice id, as the flow named it (the callback data after the question id)."""
        return self.data.partition(":")[2]


@dataclass(frozen=True)
class Rendered:
    html: str
    buttons: list[list[Button]]
    edit_ref: str | None
    document: dict[str, str] | None
    request_contact: bool
    remove_keyboard: bool = False
    delete_ref: str | None = None  # delete this message of the user's; nothing to show
    link: tuple[str, str] | None = None  # (label, start parameter) of a deep-link button
    # What the text was rendered from: the template key and its data, the step counter
    # (k, n) and the answer already given; tests assert on these rather than on wording.
    key: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    progress: tuple[int, int] | None = None
    current: str | None = None
    leads: tuple[str, ...] = ()  # the keys of the texts joined in front of this one, in order

    @property
    def plain(self) -> str:
        return to_plain(self.html)


def render(texts: Texts, payload: str, capabilities: Capabilities = NO_CAPABILITIES) -> Rendered:
    """The payload as the channel shows it; the texts say what ``capabilities`` allow
    ("Borré tu mensaje" only where the channel deletes it)."""
    body = json_text.loads(payload)
    if "delete_ref" in body:
        return Rendered("", [], None, None, False, delete_ref=body["delete_ref"])
    text = _text(texts, body, capabilities)
    leads = body.get("lead")
    if leads:
        text = JOIN_SEPARATOR.join([*(_text(texts, lead, capabilities) for lead in leads), text])
    qid = body["qid"]
    buttons = [
        [
            Button(
                texts.label(label, data),
                f"{qid}:{choice_id}",
                texts.short(label, data),
                key=label,
                args=data,
            )
            for choice_id, label, data in row
        ]
        for row in body.get("choices", [])
    ]
    for row in buttons:
        for button in row:
            if len(button.data.encode()) > CALLBACK_DATA_LIMIT:
                raise ValueError(f"callback data over {CALLBACK_DATA_LIMIT} bytes: {button.data}")
    link = body.get("link")
    return Rendered(
        text,
        buttons,
        body.get("edit_ref"),
        body.get("document"),
        body.get("request_contact", False),
        body.get("remove_keyboard", False),
        link=(texts.label(link[0], {}), link[1]) if link else None,
        key=body["key"],
        data=body["data"],
        progress=(body["progress"][0], body["progress"][1]) if body.get("progress") else None,
        current=body.get("current"),
        leads=tuple(lead["key"] for lead in leads or ()),
    )


class Renders:
    """One transport's renderings: a joined message is rendered once.

    The outbox asks the transport's ``joins`` whether a joined message still goes as one
    (:func:`measured`, which renders it); the one that does is delivered next, and
    :func:`delivered` hands its rendering back instead of rendering it again. At most
    ``kept`` wait; a row whose payload changed since is rendered afresh."""

    def __init__(self, capabilities: Capabilities, kept: int = RENDERED_KEPT) -> None:
        self.capabilities = capabilities
        self.kept = kept
        self._rendered: dict[int, tuple[str, Rendered]] = {}  # row id -> (payload, rendered)

    def measured(self, texts: Texts, row: OutboxRow, fits: Callable[[Rendered], bool]) -> bool:
        """Whether ``row`` rendered ``fits``; if it does, its rendering is kept for delivery."""
        rendered = render(texts, row.payload, self.capabilities)
        if not fits(rendered):
            return False
        if len(self._rendered) >= self.kept:
            self._rendered.clear()
        self._rendered[row.id] = (row.payload, rendered)
        return True

    def delivered(self, texts: Texts, row: OutboxRow) -> Rendered:
        """``row`` rendered: as :func:`measured` kept it, else now."""
        kept = self._rendered.pop(row.id, None)
        if kept is not None and kept[0] == row.payload:
            return kept[1]
        return render(texts, row.payload, self.capabilities)
