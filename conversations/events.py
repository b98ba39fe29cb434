"""Neutral messages between channels and flows.

A channel adapter turns a platform update into an :class:`Inbound`; a flow answers with
:class:`Outbound` messages that name a template and its data. Nothing here knows any
channel's format: rendering and escaping happen in the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    TEXT = "text"
    BUTTON = "button"
    FILE = "file"
    CONTACT = "contact"
    COMMAND = "command"
    UNSUPPORTED = "unsupported"  # sticker, location, voice, edited message...


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file as the channel announced it; its bytes are fetched only when a step wants them."""

    file_id: str
    name: str | None = None
    mime: str | None = None
    size: int | None = None
    is_photo: bool = False
    group: str | None = None  # album id (Telegram media_group_id)
    # Filled by the application once the bytes are stored (files first, then the row):
    sha256: str | None = None
    kind: str | None = None  # what the content is ("pdf", "png"...), whatever its name
    refusal: str | None = None  # why the content cannot be used (a code), if so
    pages: int | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    channel: str
    chat_id: str
    event_id: str
    kind: Kind
    # TEXT: the text; COMMAND: the command name without "/"; BUTTON: the raw callback data.
    text: str = ""
    args: str = ""
    file: FileInfo | None = None
    phone: str | None = None
    # The channel's id of the message a button was on (for editing it in place), or of the
    # user's own message (for deleting it).
    message_ref: str | None = None
    user_name: str = ""
    # The channel's id of one of the bot's messages this one answers (a swipe reply).
    reply_to: str | None = None
    # The first message after the channel had closed the conversation (WhatsApp's 24-hour
    # window), or an answer to the channel's call-back template: typed text is then not an
    # answer to the question left open.
    reopens: bool = False
    # Written at the machine the assistant runs on (the terminal chat): its file paths mean
    # something to the person.
    local: bool = False


@dataclass(frozen=True, slots=True)
class Choice:
    """A button: ``id`` travels in callback data, ``label`` is a template key."""

    id: str
    label: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Document:
    """A file to send: stored content (sha256) under a display name."""

    sha256: str
    filename: str
    mime: str


@dataclass(frozen=True, slots=True)
class Outbound:
    key: str
    data: dict[str, Any] = field(default_factory=dict)
    choices: tuple[tuple[Choice, ...], ...] = ()
    progress: tuple[int, int] | None = None
    # Replace the message the user's button was on instead of sending a new one.
    edit: bool = False
    document: Document | None = None
    request_contact: bool = False
    # Take away the "share my number" keyboard a previous question showed.
    remove_keyboard: bool = False
    # Not a message: delete the user's message this event came from (a pasted password).
    delete_user_message: bool = False
    # Bulk messages (reminders, digests) yield to interactive replies.
    bulk: bool = False
    # A button that opens a private chat with the bot at a start parameter (Telegram deep
    # link), for posts in a group: (label key, start parameter).
    link: tuple[str, str] | None = None
    # The answer already given to this question (shown under it, kept with "Mantener").
    current: str | None = None

    def all_choices(self) -> list[Choice]:
        return [choice for row in self.choices for choice in row]


def rows(*choices: Choice, per_row: int = 1) -> tuple[tuple[Choice, ...], ...]:
    """Lay out choices ``per_row`` to a row."""
    return tuple(tuple(choices[i : i + per_row]) for i in range(0, len(choices), per_row))
