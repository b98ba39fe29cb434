"""A strict fake of the Telegram Bot API, served over HTTP on loopback, for end-to-end tests.

The real python-telegram-bot ``Application`` (or the real ``pte-bot run`` subprocess) is pointed
at it with ``base_url=api.base_url`` and ``base_file_url=api.base_file_url``. The fake answers the
methods the bot uses with the shapes Telegram uses, and rejects what Telegram rejects, with
Telegram's own ``description`` strings (``{"ok": false, "error_code": 400, "description":
"Bad Request: ..."}``).

Simulated people drive the conversation::

    async with FakeBotAPI() as api:
        ana = api.user(1001, "Ana")
        ...  # start the bot against api.base_url
        [welcome] = await ana.say("/start")
        assert "Hola" in welcome.text
        [question] = await ana.press("Sí")

Every injected update resets the chat's output cursor; ``expect(n)`` then waits for exactly the
next ``n`` bot outputs in that chat and consumes them; ``settle()`` waits for the update to be
confirmed and the bot to go quiet, and returns whatever is left. Outputs are sendMessage,
sendDocument, sendPhoto and every successful edit (editMessageText, editMessageCaption *and*
editMessageReplyMarkup), each as a snapshot ``BotMessage`` (``edited=True`` for edits). Deletes,
chat actions and callback answers are not outputs (see ``deleted``, ``chat_actions``,
``callback_answers``). A failed call is not an output either; the AssertionError of a timed-out
``expect`` lists the chat's recent calls with their error descriptions.

Behaviours worth knowing, as in Telegram: editing a message's text without ``reply_markup``
removes its inline keyboard; a callback from an unknown/deleted message carries an inaccessible
message (date 0; PTB gives a ``Message`` whose ``is_accessible`` is False); a second
getUpdates terminates a pending one with 409; getUpdates fails with 409 while a webhook is set;
a method Telegram has but the fake does not implement answers 400 "... not implemented by
FakeBotAPI" (an unknown method answers 404, which PTB reports as InvalidToken).

Deliberate strictness beyond Telegram (each description says so): an ``&`` that does not start
one of the recognised character references (or one missing its ``;``) is rejected in HTML, where
Telegram would print it literally; an inline button with more than one action field is rejected,
where Telegram would pick one. Pass ``strict_html=False`` to get Telegram's lenient behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import math
import re
import secrets
import time
import unicodedata
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import BodyPartReader, web
from telegram import Bot as _PTBBot

__all__ = [
    "ApiError",
    "BotMessage",
    "Call",
    "CallbackAnswer",
    "EntityParseError",
    "FakeBotAPI",
    "FakeChat",
    "FakeUser",
    "ParsedText",
    "StoredFile",
    "UploadedFile",
    "parse_html",
    "utf16_len",
]

JSONDict = dict[str, Any]

MAX_MESSAGE_LENGTH = 4096
PROBE_EVERY = 0.01  # seconds between looks at the bot's store while settling
DROPPED_QUIET = 2.0  # an update the bot never processes (flood): done after this much quiet
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_INLINE_BUTTONS = 100
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
MAX_UPLOAD_SIZE = 50 * 1024 * 1024

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)

# Update types delivered when allowed_updates was never set (or set to []).
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

INLINE_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "web_app",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


# Every Bot API method name PTB knows (its camelCase aliases), to tell "not implemented by the
# fake" (400 with a clear description) apart from "no such method" (404, which PTB reports as
# InvalidToken).
TELEGRAM_METHODS = frozenset(
    name.lower()
    for name in dir(_PTBBot)
    if re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)+", name) or name == "close"
)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts message lengths and offsets in."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """A Telegram-shaped error answer."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(message: str) -> ApiError:
    return ApiError(400, f"Bad Request: {message}")


# --------------------------------------------------------------------------------------------
# Telegram's HTML parse mode (a port of the algorithm of TDLib's parse_html)
# --------------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; str(exc) is what follows "can't parse entities: "."""


@dataclass(frozen=True)
class ParsedText:
    text: str
    entities: list[JSONDict]


_TD_SPACE = frozenset(b" \t\r\n\0\v")
_ATTR_NAME_END = _TD_SPACE | frozenset(b"=>/\"'")
_NAMED_REFS = {b"lt": ord("<"), b"gt": ord(">"), b"amp": ord("&"), b"quot": ord('"')}
_SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SIMPLE_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_STRICT_NOTE = "(strict fake; real Telegram would print it literally)"


@dataclass
class _OpenTag:
    name: str
    argument: str
    offset: int  # UTF-16 offset of the content in the output
    out_pos: int  # byte offset of the content in the output


def _decode_reference(data: bytes, pos: int) -> tuple[int, int, bool] | None:
    """TDLib's decode_html_entity: (code point, end position, had ';') or None if literal."""
    size = len(data)

    def at(i: int) -> int:
        return data[i] if i < size else 0

    end = pos + 1
    code = 0
    if at(pos + 1) == ord("#"):
        end += 1
        if at(pos + 2) == ord("x"):
            end += 1
            while chr(at(end)) in "0123456789abcdefABCDEF" and at(end):
                code = code * 16 + int(chr(at(end)), 16)
                end += 1
        else:
            while ord("0") <= at(end) <= ord("9"):
                code = code * 10 + at(end) - ord("0")
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
    else:
        while chr(at(end)).isascii() and chr(at(end)).isalpha():
            end += 1
        named = _NAMED_REFS.get(data[pos + 1 : end])
        if named is None:
            return None
        code = named
    if at(end) == ord(";"):
        return code, end + 1, True
    return code, end, False


def _reference_at(data: bytes, pos: int, strict: bool) -> tuple[int, int] | None:
    decoded = _decode_reference(data, pos)
    if decoded is None:
        if strict:
            raise EntityParseError(
                f'Unescaped "&" at byte offset {pos}: write it as "&amp;" {_STRICT_NOTE}'
            )
        return None
    code, end, had_semicolon = decoded
    if strict and not had_semicolon:
        raise EntityParseError(
            f'Character reference at byte offset {pos} is not terminated by ";" {_STRICT_NOTE}'
        )
    if 0xD800 <= code <= 0xDFFF:
        raise EntityParseError(
            "Text contains invalid Unicode characters after decoding HTML entities, check for "
            "unmatched surrogate code units"
        )
    return code, end


def _link_entity(url: str) -> JSONDict | None:
    user = re.fullmatch(r"tg://user\?id=(\d+)", url)
    if user:
        return {
            "type": "text_mention",
            "user": {"id": int(user.group(1)), "is_bot": False, "first_name": ""},
        }
    if re.match(r"(?i)^(https?|tg|ftp)://\S+$", url):
        return {"type": "text_link", "url": url}
    if re.fullmatch(r"[\w-]+(\.[\w-]+)+(/\S*)?", url):
        return {"type": "text_link", "url": f"http://{url}"}
    return None  # Telegram silently drops links it cannot make sense of


def parse_html(source: str, *, strict: bool = True) -> ParsedText:
    """Parse Telegram's HTML subset exactly as TDLib does; raise EntityParseError if invalid.

    Entity offsets and lengths are in UTF-16 code units. With ``strict`` a stray ``&`` (or a
    character reference without its ``;``) is an error instead of literal text.
    """
    data = source.encode("utf-8", "surrogatepass")
    size = len(data)

    def at(i: int) -> int:
        return data[i] if i < size else 0

    out = bytearray()
    u16 = 0
    stack: list[_OpenTag] = []
    entities: list[JSONDict] = []
    code_languages: list[str] = []  # parallel to entities

    def add(entity: JSONDict, language: str = "") -> None:
        entities.append(entity)
        code_languages.append(language)

    i = 0
    while i < size:
        c = data[i]
        if c == ord("&"):
            ref = _reference_at(data, i, strict)
            if ref is not None:
                code, i = ref
                out += chr(code).encode("utf-8")
                u16 += 2 if code > 0xFFFF else 1
                continue
        if c != ord("<"):
            out.append(c)
            if c & 0xC0 != 0x80:
                u16 += 2 if c >= 0xF0 else 1
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != ord("/"):
            while at(i) not in _TD_SPACE and at(i) != ord(">"):
                i += 1
            if at(i) == 0:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
            tag = data[begin + 1 : i].lower().decode("utf-8", "replace")
            if tag not in _SUPPORTED_TAGS:
                raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument = ""
            while at(i) != ord(">"):
                while at(i) != 0 and at(i) in _TD_SPACE:
                    i += 1
                if at(i) == ord(">"):
                    break
                attr_begin = i
                while at(i) not in _ATTR_NAME_END:
                    i += 1
                attr_name = data[attr_begin:i].decode("utf-8", "replace")
                if not attr_name:
                    raise EntityParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
                    )
                while at(i) != 0 and at(i) in _TD_SPACE:
                    i += 1
                if at(i) != ord("="):
                    if at(i) == 0:
                        raise EntityParseError(
                            f'Unclosed start tag "{tag}" at byte offset {begin}'
                        )
                    if tag == "blockquote" and attr_name == "expandable":
                        argument = "1"
                    continue
                i += 1
                while at(i) != 0 and at(i) in _TD_SPACE:
                    i += 1
                if at(i) == 0:
                    raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                if at(i) not in (ord("'"), ord('"')):
                    token_begin = i
                    while chr(at(i)).isascii() and (chr(at(i)).isalnum() or chr(at(i)) in ".-"):
                        if at(i) == 0:
                            break
                        i += 1
                    value = data[token_begin:i].lower().decode("utf-8", "replace")
                    if at(i) not in _TD_SPACE and at(i) != ord(">"):
                        raise EntityParseError(
                            f"Unexpected end of name token at byte offset {token_begin}"
                        )
                else:
                    quote = at(i)
                    i += 1
                    raw = bytearray()
                    while at(i) != quote and at(i) != 0:
                        if at(i) == ord("&"):
                            ref = _reference_at(data, i, strict)
                            if ref is not None:
                                code, i = ref
                                raw += chr(code).encode("utf-8")
                                continue
                        raw.append(at(i))
                        i += 1
                    if at(i) == quote:
                        i += 1
                    value = raw.decode("utf-8", "replace")
                if at(i) == 0:
                    raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
                if tag == "a" and attr_name == "href":
                    argument = value
                elif tag == "code" and attr_name == "class" and value.startswith("language-"):
                    argument = value.removeprefix("language-")
                elif tag == "span" and attr_name == "class" and value.startswith("tg-"):
                    argument = value.removeprefix("tg-")
                elif tag == "tg-emoji" and attr_name == "emoji-id":
                    argument = value
                elif tag == "blockquote" and attr_name == "expandable":
                    argument = "1"
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {begin}'
                )
            stack.append(_OpenTag(tag, argument, u16, len(out)))
            i += 1  # skip '>'
            continue

        # An end tag.
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {begin}")
        while at(i) not in _TD_SPACE and at(i) != ord(">"):
            i += 1
        end_name = data[begin + 2 : i].lower().decode("utf-8", "replace")
        while at(i) != 0 and at(i) in _TD_SPACE:
            i += 1
        if at(i) != ord(">"):
            raise EntityParseError(f"Unclosed end tag at byte offset {begin}")
        open_tag = stack[-1]
        if end_name and end_name != open_tag.name:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {begin}, expected "</{open_tag.name}>", '
                f'found "</{end_name}>"'
            )
        length = u16 - open_tag.offset
        if length > 0:
            offset = open_tag.offset
            base: JSONDict = {"offset": offset, "length": length}
            previous = entities[-1] if entities else None
            same_span = (
                previous is not None
                and previous["offset"] == offset
                and previous["length"] == length
            )
            name = open_tag.name
            if name in _SIMPLE_TAG_TYPES:
                add({"type": _SIMPLE_TAG_TYPES[name], **base})
            elif name == "tg-emoji":
                if not open_tag.argument.isdigit():
                    raise EntityParseError("Invalid custom emoji identifier specified")
                add({"type": "custom_emoji", **base, "custom_emoji_id": open_tag.argument})
            elif name == "a":
                url = open_tag.argument or out[open_tag.out_pos :].decode("utf-8", "replace")
                link = _link_entity(url)
                if link is not None:
                    add({**link, **base})
            elif name == "pre":
                if (
                    same_span
                    and previous is not None
                    and previous["type"] == "code"
                    and code_languages[-1]
                ):
                    entities[-1] = {"type": "pre", **base, "language": code_languages[-1]}
                else:
                    add({"type": "pre", **base})
            elif name == "code":
                if (
                    same_span
                    and previous is not None
                    and previous["type"] == "pre"
                    and "language" not in previous
                    and open_tag.argument
                ):
                    entities[-1] = {"type": "pre", **base, "language": open_tag.argument}
                else:
                    add({"type": "code", **base}, open_tag.argument)
            elif name == "blockquote":
                kind = "expandable_blockquote" if open_tag.argument else "blockquote"
                add({"type": kind, **base})
        stack.pop()
        i += 1  # skip '>'

    if stack:
        raise EntityParseError(
            f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"'
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return ParsedText(out.decode("utf-8", "replace"), entities)


_TRIM = " \t\n\r"


def _trim(parsed: ParsedText) -> ParsedText:
    """Telegram trims leading and trailing whitespace off message texts and captions."""
    text = parsed.text
    lead = len(text) - len(text.lstrip(_TRIM))
    body = text.strip(_TRIM)
    if lead == 0 and len(body) == len(text):
        return parsed
    shift = utf16_len(text[:lead])
    body_len = utf16_len(body)
    entities = []
    for entity in parsed.entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, body_len)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return ParsedText(body, entities)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    field: str
    filename: str
    content_type: str
    content: bytes


@dataclass
class StoredFile:
    """A file the fake can serve through getFile and the file URL."""

    file_id: str
    file_unique_id: str
    content: bytes
    file_size: int
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None


@dataclass
class Call:
    """One request to the Bot API, as received and as answered."""

    method: str
    params: JSONDict
    time: float
    files: dict[str, UploadedFile] = field(default_factory=dict)
    status: int = 0  # 0 while in flight
    response: JSONDict | None = None
    chat_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def description(self) -> str | None:
        return None if self.response is None else self.response.get("description")

    def __str__(self) -> str:
        outcome = "in flight" if self.status == 0 else str(self.status)
        if self.description:
            outcome += f" {self.description}"
        shown = {k: v for k, v in self.params.items() if k != "chat_id"}
        shown_json = json.dumps(shown, ensure_ascii=False, default=str)
        return f"{self.method}({_short(shown_json, 160)}) -> {outcome}"


@dataclass
class CallbackAnswer:
    query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass
class BotMessage:
    """A message the bot sent to a chat, in its current (or, in outputs, then-current) state."""

    message_id: int
    chat_id: int
    kind: str  # "text", "document" or "photo"
    text: str  # plain text (HTML parsed, entities decoded); the caption for media
    html: str  # the raw text / caption exactly as the bot sent it
    parse_mode: str | None = None
    entities: list[JSONDict] = field(default_factory=list)
    reply_markup: JSONDict | None = None
    document: bytes | None = None
    filename: str | None = None
    mime_type: str | None = None
    photo: bytes | None = None
    file_id: str | None = None
    date: int = 0
    edit_date: int | None = None
    edited: bool = False  # this output is an edit (or, in messages, was ever edited)
    deleted: bool = False
    reply_to_message_id: int | None = None

    @property
    def inline_keyboard(self) -> list[list[JSONDict]]:
        if self.reply_markup is None:
            return []
        rows: list[list[JSONDict]] = self.reply_markup.get("inline_keyboard", [])
        return rows

    @property
    def buttons(self) -> list[list[str]]:
        """Inline keyboard labels, row by row."""
        return [[str(button["text"]) for button in row] for row in self.inline_keyboard]

    @property
    def button_labels(self) -> list[str]:
        return [label for row in self.buttons for label in row]

    @property
    def callback_data(self) -> dict[str, str]:
        """Label -> callback_data of the inline callback buttons."""
        return {
            str(b["text"]): str(b["callback_data"])
            for row in self.inline_keyboard
            for b in row
            if "callback_data" in b
        }

    @property
    def urls(self) -> dict[str, str]:
        """Label -> url of the inline URL buttons."""
        return {
            str(b["text"]): str(b["url"])
            for row in self.inline_keyboard
            for b in row
            if "url" in b
        }

    @property
    def reply_keyboard(self) -> list[list[str]] | None:
        """Labels of the reply keyboard this message carried, if any."""
        if self.reply_markup is None or "keyboard" not in self.reply_markup:
            return None
        return [
            [b if isinstance(b, str) else str(b["text"]) for b in row]
            for row in self.reply_markup["keyboard"]
        ]

    @property
    def reply_keyboard_buttons(self) -> list[list[JSONDict]]:
        if self.reply_markup is None or "keyboard" not in self.reply_markup:
            return []
        return [
            [{"text": b} if isinstance(b, str) else b for b in row]
            for row in self.reply_markup["keyboard"]
        ]

    @property
    def removes_keyboard(self) -> bool:
        return bool(self.reply_markup and self.reply_markup.get("remove_keyboard"))

    def __str__(self) -> str:
        flags = "".join(
            f" [{flag}]" for flag, on in (("edited", self.edited), ("deleted", self.deleted)) if on
        )
        parts = [f"#{self.message_id} {self.kind}{flags}: {_short(self.text, 300)!r}"]
        if self.filename:
            parts.append(f"file={self.filename!r}")
        if self.buttons:
            parts.append(f"buttons={self.buttons}")
        if self.reply_keyboard:
            parts.append(f"keyboard={self.reply_keyboard}")
        if self.removes_keyboard:
            parts.append("remove_keyboard")
        return " ".join(parts)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _Update:
    update_id: int
    payload: JSONDict
    chat_id: int | None

    @property
    def kind(self) -> str:
        return next(k for k in self.payload if k != "update_id")


RESET = 0  # fail(status=RESET): the connection is dropped before any answer
HANG = -1  # fail(status=HANG, retry_after=seconds): no answer for that long (a time-out)


class _Broken(Exception):
    def __init__(self, hang: float = 0.0) -> None:
        super().__init__("broken connection")
        self.hang = hang


@dataclass
class _Fault:
    method: str | None
    remaining: int
    status: int
    retry_after: int | None
    description: str


@dataclass
class _CallbackQuery:
    query_id: str
    chat_id: int
    created: float
    answered: bool = False


@dataclass
class _Request:
    """What a method implementation gets."""

    call: Call
    files: dict[str, UploadedFile]

    @property
    def params(self) -> JSONDict:
        return self.call.params

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def string(self, name: str) -> str | None:
        value = self.params.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise _bad(f'field "{name}" must be of type String')
        return value

    def integer(self, name: str, missing: str | None = None) -> int | None:
        value = self.params.get(name)
        if value is None:
            if missing is not None:
                raise _bad(missing)
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(f"invalid {name} specified")
        return value

    def flag(self, name: str) -> bool:
        value = self.params.get(name)
        return value is True


# --------------------------------------------------------------------------------------------
# Request decoding
# --------------------------------------------------------------------------------------------

_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "commands",
        "scope",
        "allowed_updates",
        "link_preview_options",
        "reply_parameters",
        "media",
        "results",
        "menu_button",
        "message_ids",
    }
)
_CHAT_ID_PARAMS = frozenset({"chat_id", "from_chat_id"})
_NUMBER_PARAMS = frozenset(
    {
        "message_id",
        "offset",
        "limit",
        "timeout",
        "reply_to_message_id",
        "cache_time",
        "max_connections",
        "message_thread_id",
        "user_id",
        "duration",
        "width",
        "height",
        "latitude",
        "longitude",
        "direct_messages_topic_id",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "disable_content_type_detection",
        "has_spoiler",
        "show_caption_above_media",
        "allow_paid_broadcast",
    }
)


def _coerce(name: str, value: Any) -> Any:
    """Turn a form field (always a string on the wire) into the value Telegram reads from it."""
    if not isinstance(value, str):
        return value
    if name in _CHAT_ID_PARAMS:
        return int(value) if re.fullmatch(r"-?\d+", value.strip()) else value
    if name in _NUMBER_PARAMS:
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        with contextlib.suppress(ValueError):
            return float(text)
        return value
    if name in _BOOL_PARAMS:
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0", ""):
            return False
        return value
    if name in _JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError:
            if name == "reply_markup":
                raise _bad("can't parse reply keyboard markup JSON object") from None
            raise _bad(f"can't parse {name} JSON object") from None
    return value


async def _read_request(request: web.Request) -> tuple[JSONDict, dict[str, UploadedFile]]:
    raw: JSONDict = dict(request.query)
    files: dict[str, UploadedFile] = {}
    content_type = request.content_type
    if request.method == "POST" and request.can_read_body:
        if content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _bad("can't parse JSON object") from None
            if not isinstance(body, dict):
                raise _bad("JSON object expected")
            raw.update(body)
        elif content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                content = await part.read(decode=True)
                if part.filename:
                    files[part.name] = UploadedFile(
                        field=part.name,
                        filename=part.filename,
                        content_type=part.headers.get("Content-Type", "application/octet-stream"),
                        content=bytes(content),
                    )
                else:
                    raw[part.name] = bytes(content).decode(part.get_charset(default="utf-8"))
        elif content_type in ("application/x-www-form-urlencoded", ""):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    raw[key] = value
    params = {key: _coerce(key, value) for key, value in raw.items()}
    return params, files


# --------------------------------------------------------------------------------------------
# Reply markup validation
# --------------------------------------------------------------------------------------------


def _validate_url(url: Any, what: str) -> None:
    if not isinstance(url, str) or not re.match(r"(?i)^(https?|tg)://[^\s/$.?#][^\s]*$", url):
        raise _bad(f"{what} URL '{url}' is invalid: Wrong HTTP URL")


def _validate_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('can\'t parse inline keyboard markup: Field "inline_keyboard" must be an Array')
    total = 0
    for row in rows:
        for button in row:
            total += 1
            if not isinstance(button, dict):
                raise _bad(
                    "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            if "text" not in button:
                raise _bad("can't parse inline keyboard button: Can't find field \"text\"")
            if not isinstance(button["text"], str):
                raise _bad(
                    'can\'t parse inline keyboard button: Field "text" must be of type String'
                )
            if not button["text"].strip():
                raise _bad("BUTTON_TEXT_INVALID")
            actions = [name for name in INLINE_BUTTON_ACTIONS if name in button]
            if not actions:
                raise _bad(
                    "can't parse inline keyboard button: Text buttons are unallowed in the "
                    "inline keyboard"
                )
            if len(actions) > 1:
                raise _bad(
                    "can't parse inline keyboard button: exactly one of the optional fields "
                    f"must be used, got {', '.join(actions)} (strict fake; Telegram would "
                    "silently pick one)"
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str):
                    raise _bad(
                        'can\'t parse inline keyboard button: Field "callback_data" must be of '
                        "type String"
                    )
                if not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                    raise _bad("BUTTON_DATA_INVALID")
            if "url" in button:
                _validate_url(button["url"], "inline keyboard button")
    if total > MAX_INLINE_BUTTONS:
        raise _bad("reply markup is too long")


def _validate_reply_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('can\'t parse keyboard markup: Field "keyboard" must be an Array of Arrays')
    for row in rows:
        for button in row:
            if isinstance(button, str):
                text: Any = button
            elif isinstance(button, dict):
                if "text" not in button:
                    raise _bad("can't parse keyboard button: Can't find field \"text\"")
                text = button["text"]
            else:
                raise _bad(
                    "can't parse keyboard button: KeyboardButton must be a String or an Object"
                )
            if not isinstance(text, str):
                raise _bad('can\'t parse keyboard button: Field "text" must be of type String')
            if not text.strip():
                raise _bad("can't parse keyboard button: Text is empty")


def _validate_markup(markup: Any, *, inline_only: bool = False) -> JSONDict | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _validate_inline_keyboard(markup["inline_keyboard"])
        return markup
    if inline_only:
        raise _bad("inline keyboard expected")
    if "keyboard" in markup:
        _validate_reply_keyboard(markup["keyboard"])
        return markup
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return markup
    raise _bad("can't parse reply keyboard markup JSON object")


def _inline_only(markup: JSONDict | None) -> JSONDict | None:
    """What a sent message keeps of its markup (Telegram only echoes inline keyboards)."""
    if markup is not None and "inline_keyboard" in markup:
        return markup
    return None


_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def _looks_like_image(content: bytes) -> bool:
    if content.startswith(_IMAGE_MAGIC):
        return True
    return content[:4] == b"RIFF" and content[8:12] == b"WEBP"


def _normalize_label(label: str) -> str:
    kept = "".join(
        ch
        for ch in label
        if unicodedata.category(ch) not in ("So", "Sk", "Cf", "Cs", "Co")
        and ch not in "\ufe0f\u200d\u20e3"
    )
    return " ".join(kept.split()).casefold()


# --------------------------------------------------------------------------------------------
# Chats and simulated users
# --------------------------------------------------------------------------------------------


class FakeChat:
    """A chat known to the fake: what the bot sent there, and helpers to wait for it."""

    def __init__(
        self,
        api: FakeBotAPI,
        chat_id: int,
        chat_type: str,
        *,
        title: str | None = None,
        first_name: str | None = None,
        username: str | None = None,
    ) -> None:
        self.api = api
        self.id = chat_id
        self.type = chat_type
        self.title = title
        self.first_name = first_name
        self.username = username
        self.blocked = False
        self.outputs: list[BotMessage] = []  # every send/edit, as snapshots, in order
        self.callback_answers: list[CallbackAnswer] = []
        self.chat_actions: list[str] = []
        self._bot_messages: dict[int, BotMessage] = {}
        self._message_json: dict[int, JSONDict] = {}  # every live message, bot's and users'
        self._next_message_id = 1
        self._cursor = 0
        self._last_update_id: int | None = None
        self._last_activity = time.monotonic()
        self._inflight = 0
        self._active_keyboard: JSONDict | None = None

    # ---- JSON ----

    @property
    def json(self) -> JSONDict:
        data: JSONDict = {"id": self.id, "type": self.type}
        if self.title is not None:
            data["title"] = self.title
        if self.first_name is not None:
            data["first_name"] = self.first_name
        if self.username is not None:
            data["username"] = self.username
        return data

    def _allocate_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    # ---- reading what the bot did ----

    @property
    def messages(self) -> list[BotMessage]:
        """Current state of every bot message in this chat (deleted ones flagged), in order."""
        return [self._bot_messages[k] for k in sorted(self._bot_messages)]

    @property
    def visible_messages(self) -> list[BotMessage]:
        return [m for m in self.messages if not m.deleted]

    @property
    def last(self) -> BotMessage:
        """The most recent bot message that is still there."""
        visible = self.visible_messages
        if not visible:
            raise AssertionError(f"the bot has not sent anything to chat {self.id}")
        return visible[-1]

    @property
    def pending(self) -> list[BotMessage]:
        """Outputs since the last action not yet consumed by expect()/settle()."""
        return self.outputs[self._cursor :]

    @property
    def keyboard(self) -> list[list[str]] | None:
        """Labels of the reply keyboard currently shown in this chat (None if none)."""
        if self._active_keyboard is None:
            return None
        return [
            [b if isinstance(b, str) else str(b["text"]) for b in row]
            for row in self._active_keyboard["keyboard"]
        ]

    def message(self, message_id: int) -> BotMessage:
        try:
            return self._bot_messages[message_id]
        except KeyError:
            raise AssertionError(f"no bot message #{message_id} in chat {self.id}") from None

    def calls(self) -> list[Call]:
        return [c for c in self.api.calls if c.chat_id == self.id]

    async def expect(self, n: int = 1, timeout: float = 10.0) -> list[BotMessage]:  # noqa: ASYNC109
        """Wait for the next ``n`` bot outputs (sends or edits) in this chat and return them.

        Outputs are counted from the last injected update in this chat; each call consumes the
        outputs it returns, so consecutive calls see consecutive outputs.
        """
        start = self._cursor
        ok = await self.api._wait(lambda: len(self.outputs) - start >= n, timeout)
        if not ok:
            raise AssertionError(self._report(f"expected {n} new bot output(s)", timeout, start))
        self._cursor = start + n
        return self.outputs[start : start + n]

    async def settle(
        self,
        quiet: float = 0.2,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[BotMessage]:
        """Wait until the last injected update was confirmed by the bot's getUpdates and the
        bot is done with this chat; return (and consume) all pending outputs.

        "Done" is an event when the harness gave the fake a ``drained`` probe (the bot's store
        says the update was processed and nothing for this chat waits to be sent): no guess
        from timing, whatever the machine's load. Without a probe, or for an update the bot
        never processes (dropped in a flood), it is ``quiet`` seconds without a call."""
        deadline = time.monotonic() + timeout
        last = self._last_update_id
        if last is not None:
            confirmed = await self.api._wait(lambda: self.api._is_confirmed(last), timeout)
            if not confirmed:
                raise AssertionError(
                    self._report(
                        f"update {last} was never confirmed by getUpdates (is the bot polling?)",
                        timeout,
                        self._cursor,
                    )
                )
        probe = self.api.drained
        while True:
            now = time.monotonic()
            idle = now - self._last_activity
            if self._inflight == 0 and probe is not None and probe(self.id, last):
                break
            # Without a probe: quiet. With one: an update it never sees processed (dropped
            # by flood control) ends after a long quiet instead.
            wanted = quiet if probe is None else max(quiet, DROPPED_QUIET)
            if self._inflight == 0 and idle >= wanted:
                break
            if now >= deadline:
                raise AssertionError(
                    self._report("the bot never went quiet", timeout, self._cursor)
                )
            step = quiet - idle if self._inflight == 0 else quiet
            if probe is not None:
                step = PROBE_EVERY
            await self.api._wait_change(max(0.001, min(step, deadline - now)))
        outputs = self.outputs[self._cursor :]
        self._cursor = len(self.outputs)
        return outputs

    def _report(self, what: str, timeout: float, start: int) -> str:
        lines = [f"{what} in chat {self.id} within {timeout}s; got {len(self.outputs) - start}:"]
        lines += [f"  - {m}" for m in self.outputs[start:]] or ["  (nothing)"]
        recent = self.calls()[-12:]
        if recent:
            lines.append("Recent API calls for this chat:")
            lines += [f"  {c}" for c in recent]
        failing = [c for c in self.api.calls if c.status not in (0, 200) and c.chat_id is None]
        if failing:
            lines.append("Recent failed API calls not tied to a chat:")
            lines += [f"  {c}" for c in failing[-5:]]
        return "\n".join(lines)

    def _mark_action(self, update_id: int) -> None:
        self._cursor = len(self.outputs)
        self._last_update_id = update_id
        self._touch()


class FakeUser(FakeChat):
    """A person in a private chat with the bot (chat id == user id)."""

    def __init__(
        self,
        api: FakeBotAPI,
        user_id: int,
        first_name: str,
        username: str | None,
        language_code: str | None,
        last_name: str | None = None,
    ) -> None:
        super().__init__(api, user_id, "private", first_name=first_name, username=username)
        self.language_code = language_code
        self.last_name = last_name
        self._last_text_message: JSONDict | None = None

    @property
    def user_json(self) -> JSONDict:
        data: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name is not None:
            data["last_name"] = self.last_name
        if self.username is not None:
            data["username"] = self.username
        if self.language_code is not None:
            data["language_code"] = self.language_code
        return data

    # ---- injecting updates ----

    def _new_message(self, chat: FakeChat | None, **content: Any) -> tuple[FakeChat, JSONDict]:
        target = chat or self
        message: JSONDict = {
            "message_id": target._allocate_message_id(),
            "from": self.user_json,
            "chat": target.json,
            "date": int(time.time()),
            **{k: v for k, v in content.items() if v is not None},
        }
        target._message_json[message["message_id"]] = message
        return target, message

    def _inject_message(self, chat: FakeChat | None, **content: Any) -> JSONDict:
        target, message = self._new_message(chat, **content)
        return self.api._inject({"message": message}, target)

    async def send(
        self, text: str, *, chat: FakeChat | None = None, reply_to: int | None = None
    ) -> JSONDict:
        """Send a text message; /commands get their bot_command entities."""
        entities = [
            {
                "type": "bot_command",
                "offset": utf16_len(text[: m.start()]),
                "length": utf16_len(m.group()),
            }
            for m in re.finditer(r"(?<![^\s])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?", text)
        ]
        reply = None
        if reply_to is not None:
            reply = (chat or self)._message_json.get(reply_to)
        target, message = self._new_message(
            chat, text=text, entities=entities or None, reply_to_message=reply
        )
        self._last_text_message = message
        if target._active_keyboard is not None and target._active_keyboard.get(
            "one_time_keyboard"
        ):
            target._active_keyboard = None
        return self.api._inject({"message": message}, target)

    async def say(
        self,
        text: str,
        n: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        chat: FakeChat | None = None,
    ) -> list[BotMessage]:
        """send(text) then expect(n)."""
        await self.send(text, chat=chat)
        return await (chat or self).expect(n, timeout)

    def find_button(
        self, label: str, *, chat: FakeChat | None = None
    ) -> tuple[BotMessage, JSONDict]:
        """The inline button ``label`` refers to, in the newest message that has a match: a button
        whose text equals ``label``, else equals it ignoring emoji, spacing and case, else the one
        button containing it that way (several such buttons is an error)."""
        target = chat or self
        candidates = [m for m in reversed(target.messages) if not m.deleted and m.inline_keyboard]
        wanted = _normalize_label(label)
        for message in candidates:
            buttons = [b for row in message.inline_keyboard for b in row]
            for button in buttons:
                if button["text"] == label:
                    return message, button
            for button in buttons:
                if wanted and _normalize_label(button["text"]) == wanted:
                    return message, button
            hits = [b for b in buttons if wanted and wanted in _normalize_label(b["text"])]
            if len(hits) == 1:
                return message, hits[0]
            if len(hits) > 1:
                raise AssertionError(
                    f"button {label!r} is ambiguous in message #{message.message_id}: "
                    f"{[b['text'] for b in hits]}"
                )
        available = [f"#{m.message_id}: {m.buttons}" for m in candidates] or ["(none)"]
        raise AssertionError(
            f"no inline button {label!r} in chat {target.id}; inline keyboards, newest first:\n  "
            + "\n  ".join(available)
        )

    async def tap(self, label: str, *, chat: FakeChat | None = None) -> JSONDict:
        """Press an inline button by its label (newest message first); falls back to a button of
        the reply keyboard currently shown, which sends its text."""
        target = chat or self
        try:
            message, button = self.find_button(label, chat=target)
        except AssertionError as inline_error:
            keyboard_button = self._reply_keyboard_button(target, label)
            if keyboard_button is None:
                raise
            if keyboard_button.get("request_contact"):
                raise AssertionError(
                    f"{label!r} is a request_contact button: use share_contact()"
                ) from inline_error
            return await self.send(str(keyboard_button["text"]), chat=chat)
        if "callback_data" not in button:
            raise AssertionError(f"button {button['text']!r} is not a callback button: {button}")
        return await self.tap_data(
            str(button["callback_data"]), message_id=message.message_id, chat=chat
        )

    def _reply_keyboard_button(self, target: FakeChat, label: str) -> JSONDict | None:
        if target._active_keyboard is None:
            return None
        buttons = [
            {"text": b} if isinstance(b, str) else b
            for row in target._active_keyboard["keyboard"]
            for b in row
        ]
        for button in buttons:
            if button["text"] == label:
                return button
        wanted = _normalize_label(label)
        for button in buttons:
            if _normalize_label(button["text"]) == wanted:
                return button
        return None

    async def press(
        self,
        label: str,
        n: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        chat: FakeChat | None = None,
    ) -> list[BotMessage]:
        """tap(label) then expect(n)."""
        await self.tap(label, chat=chat)
        return await (chat or self).expect(n, timeout)

    async def tap_data(
        self, data: str, message_id: int | None = None, *, chat: FakeChat | None = None
    ) -> JSONDict:
        """Inject a callback_query with arbitrary data, from ``message_id`` (default: the
        newest bot message). An unknown or deleted message arrives as inaccessible (date 0)."""
        target = chat or self
        if message_id is None:
            visible = target.visible_messages
            message_id = visible[-1].message_id if visible else 1
        message = target._message_json.get(message_id)
        if message is None:
            message = {"chat": target.json, "message_id": message_id, "date": 0}
        query_id = self.api._new_callback_query(target.id)
        query = {
            "id": query_id,
            "from": self.user_json,
            "message": copy.deepcopy(message),
            "chat_instance": str(-(abs(target.id) * 1_000_003 % 10**18) - 1),
            "data": data,
        }
        return self.api._inject({"callback_query": query}, target)

    async def send_document(
        self,
        content: bytes,
        file_name: str,
        mime_type: str = "application/pdf",
        file_size: int | None = None,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        chat: FakeChat | None = None,
    ) -> JSONDict:
        """Send a document; ``file_size`` may declare more bytes than ``content`` has."""
        stored = self.api.register_file(
            content,
            kind="document",
            file_name=file_name,
            mime_type=mime_type,
            file_size=file_size,
        )
        document = {
            "file_name": file_name,
            "mime_type": mime_type,
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
        }
        return self._inject_message(
            chat, document=document, caption=caption, media_group_id=media_group_id
        )

    async def send_photo(
        self,
        content: bytes,
        caption: str | None = None,
        media_group_id: str | None = None,
        *,
        chat: FakeChat | None = None,
    ) -> JSONDict:
        """Send a photo (a thumbnail size and the full size, both serving ``content``)."""
        thumb = self.api.register_file(content, kind="photo")
        full = self.api.register_file(content, kind="photo")
        photo = [
            {
                "file_id": thumb.file_id,
                "file_unique_id": thumb.file_unique_id,
                "width": 90,
                "height": 67,
                "file_size": thumb.file_size,
            },
            {
                "file_id": full.file_id,
                "file_unique_id": full.file_unique_id,
                "width": 1280,
                "height": 960,
                "file_size": full.file_size,
            },
        ]
        return self._inject_message(
            chat, photo=photo, caption=caption, media_group_id=media_group_id
        )

    async def share_contact(
        self,
        phone_number: str,
        *,
        user_id: int | None = None,
        first_name: str | None = None,
        chat: FakeChat | None = None,
    ) -> JSONDict:
        """Share a contact: the user's own by default (contact.user_id == their id); another
        user's with ``user_id=N``; one without a Telegram account with ``user_id=0``."""
        contact: JSONDict = {
            "phone_number": phone_number,
            "first_name": first_name or self.first_name,
        }
        if user_id != 0:
            contact["user_id"] = self.id if user_id is None else user_id
        target = chat or self
        if target._active_keyboard is not None and target._active_keyboard.get(
            "one_time_keyboard"
        ):
            target._active_keyboard = None
        return self._inject_message(chat, contact=contact)

    async def send_sticker(self, *, chat: FakeChat | None = None) -> JSONDict:
        sticker = {
            "file_id": "CAACAgIAAxkBAAEFAKESTICKER",
            "file_unique_id": "AgADFAKESTICKER",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return self._inject_message(chat, sticker=sticker)

    async def send_location(
        self,
        latitude: float = 40.4168,
        longitude: float = -3.7038,
        *,
        chat: FakeChat | None = None,
    ) -> JSONDict:
        return self._inject_message(chat, location={"latitude": latitude, "longitude": longitude})

    async def edit_last(self, text: str) -> JSONDict:
        """Edit the user's last text message (an edited_message update)."""
        if self._last_text_message is None:
            raise AssertionError("the user has not sent a text message to edit")
        edited = copy.deepcopy(self._last_text_message)
        edited["text"] = text
        edited.pop("entities", None)
        edited["edit_date"] = int(time.time())
        self._last_text_message = edited
        chat_id = edited["chat"]["id"]
        target = self.api._chats[chat_id]
        target._message_json[edited["message_id"]] = edited
        return self.api._inject({"edited_message": edited}, target)

    def block(self) -> None:
        """The user blocks the bot: sends to them fail with 403 from now on."""
        self.blocked = True

    def unblock(self) -> None:
        self.blocked = False


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------

_Handler = Callable[[_Request], Awaitable[Any]]


class FakeBotAPI:
    """A strict, in-process fake of the Telegram Bot API on loopback (see module docstring)."""

    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "pte_test_bot",
        *,
        bot_first_name: str = "Asistente PTE",
        strict_html: bool = True,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.strict_html = strict_html
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.calls: list[Call] = []
        self.internal_errors: list[Exception] = []  # exceptions raised inside the fake itself
        self.webhook: JSONDict | None = None  # {"url", "secret_token", ...} while set
        self.bot_settings: dict[str, JSONDict] = {}  # setMyDescription etc.: last params
        self.callback_query_ttl: float | None = None  # seconds; None = never expires
        # The harness's probe of the bot's own store: (chat id, last update id) -> True once
        # that update is processed and nothing for the chat waits to be sent. settle() waits
        # for it instead of for quiet.
        self.drained: Callable[[int, int | None], bool] | None = None
        self.files: dict[str, StoredFile] = {}
        self._chats: dict[int, FakeChat] = {}
        self._updates: list[_Update] = []
        self._next_update_id = 100_000_001
        self._confirmed_below = 0  # every update_id < this one was confirmed
        self._dropped: set[int] = set()  # filtered out by allowed_updates
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._poll_generation = 0
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._callback_queries: dict[str, _CallbackQuery] = {}
        self._faults: list[_Fault] = []
        self._holds: dict[int, asyncio.Event] = {}
        self._dropped_holds: dict[int, bool] = {}
        self.held_calls = 0
        self._flood_per_second: float | None = None
        self._flood_window: deque[float] = deque()
        self._file_counter = itertools.count(1)
        self._query_counter = itertools.count(1)
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"
        self._methods: dict[str, tuple[str, _Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "logOut": self._true,
                "close": self._true,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "getChat": self._get_chat,
                "setMyDescription": self._set_bot_setting,
                "setMyShortDescription": self._set_bot_setting,
                "setMyName": self._set_bot_setting,
                "setChatMenuButton": self._set_bot_setting,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageCaption": self._edit_message_caption,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "sendDocument": self._send_document,
                "sendPhoto": self._send_photo,
                "sendChatAction": self._send_chat_action,
                "getFile": self._get_file,
            }.items()
        }

    # ---- lifecycle ----

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD_SIZE + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._host = host
        self._port = int(self._runner.addresses[0][1])
        self._closing = False

    async def stop(self) -> None:
        """Answer pending long polls with [] and shut the server down."""
        self._closing = True
        self._bump()
        polling = [c for c in self.calls if c.method == "getUpdates" and c.status == 0]
        if polling:
            await self._wait(lambda: all(c.status for c in polling), 1.0)
            await asyncio.sleep(0.01)  # let aiohttp write those answers out
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeBotAPI is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self._host}:{self.port}/file/bot"

    # ---- people and chats ----

    def user(
        self,
        user_id: int,
        first_name: str = "Ana",
        username: str | None = None,
        *,
        language_code: str | None = "es",
        last_name: str | None = None,
    ) -> FakeUser:
        """The simulated person ``user_id`` (created on first use), with their private chat."""
        existing = self._chats.get(user_id)
        if isinstance(existing, FakeUser):
            return existing
        if existing is not None:
            raise ValueError(f"chat {user_id} already exists and is not a private chat")
        user = FakeUser(self, user_id, first_name, username, language_code, last_name)
        self._chats[user_id] = user
        return user

    def group(self, chat_id: int, title: str = "Grupo", chat_type: str = "supergroup") -> FakeChat:
        """A group chat the bot is a member of (so it can send there)."""
        existing = self._chats.get(chat_id)
        if existing is not None:
            return existing
        chat = FakeChat(self, chat_id, chat_type, title=title)
        self._chats[chat_id] = chat
        return chat

    def chat(self, chat_id: int) -> FakeChat:
        try:
            return self._chats[chat_id]
        except KeyError:
            raise AssertionError(f"no chat {chat_id} registered in the fake") from None

    # ---- fault injection ----

    def fail(
        self,
        method: str | None,
        times: int = 1,
        status: int = 500,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (any method but getUpdates if None) fail
        with ``status``, before any side effect."""
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = {
                400: "Bad Request: injected failure",
                401: "Unauthorized",
                403: "Forbidden: bot was blocked by the user",
                404: "Not Found",
                409: CONFLICT_OTHER_POLL,
                429: f"Too Many Requests: retry after {retry_after}",
                500: "Internal Server Error",
                502: "Bad Gateway",
            }.get(status, f"Error {status}")
        self._faults.append(_Fault(method, times, status, retry_after, description))

    def flood_limit(self, per_second: float | None) -> None:
        """Answer 429 to send*/edit* calls beyond ``per_second`` in any 1 s window (None: off)."""
        self._flood_per_second = per_second
        self._flood_window.clear()

    # ---- inspection ----

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    @property
    def pending_updates(self) -> list[JSONDict]:
        return [u.payload for u in self._updates]

    # ---- files ----

    def register_file(
        self,
        content: bytes,
        *,
        kind: str = "document",
        file_name: str | None = None,
        mime_type: str | None = None,
        file_size: int | None = None,
    ) -> StoredFile:
        """Make bytes available through getFile (as a user upload would)."""
        number = next(self._file_counter)
        prefix = {"document": "BQACAgQAAxkBAA", "photo": "AgACAgQAAxkBAA"}.get(kind, "CQACAgQAA")
        file_id = f"{prefix}{number:06d}{secrets.token_urlsafe(12)}"
        unique = f"AgAD{number:06d}{secrets.token_hex(3)}"
        extension = ""
        if file_name and "." in file_name:
            extension = "." + file_name.rsplit(".", 1)[1]
        elif kind == "photo":
            extension = ".jpg"
        folder = {"document": "documents", "photo": "photos"}.get(kind, kind + "s")
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=unique,
            content=content,
            file_size=len(content) if file_size is None else file_size,
            file_path=f"{folder}/file_{number}{extension}",
            file_name=file_name,
            mime_type=mime_type,
        )
        self.files[file_id] = stored
        return stored

    # ---- updates ----

    def inject_update(self, payload: JSONDict, chat_id: int | None = None) -> JSONDict:
        """Queue a raw update (update_id is assigned); returns it."""
        chat = self._chats.get(chat_id) if chat_id is not None else None
        return self._inject(payload, chat)

    def _inject(self, payload: JSONDict, chat: FakeChat | None) -> JSONDict:
        update_id = self._next_update_id
        self._next_update_id += 1
        full = {"update_id": update_id, **payload}
        self._updates.append(_Update(update_id, full, chat.id if chat else None))
        if chat is not None:
            chat._mark_action(update_id)
        self._bump()
        return full

    def redeliver(self, update: JSONDict) -> None:
        """Deliver an update again with its own ``update_id``, as Telegram does when the bot
        did not confirm it (a crash before the next getUpdates)."""
        update_id = int(update["update_id"])
        self._confirmed_below = min(self._confirmed_below, update_id)
        self._dropped.discard(update_id)
        chat_id = self._update_chat_id(update)
        self._updates.insert(0, _Update(update_id, dict(update), chat_id))
        self._updates.sort(key=lambda u: u.update_id)
        if chat_id is not None and chat_id in self._chats:
            self._chats[chat_id]._mark_action(update_id)
        self._bump()

    @staticmethod
    def _update_chat_id(update: JSONDict) -> int | None:
        for key, value in update.items():
            if key == "update_id" or not isinstance(value, dict):
                continue
            message = value.get("message", value)
            chat = message.get("chat") if isinstance(message, dict) else None
            if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                return int(chat["id"])
        return None

    def hold(self, chat_id: int) -> None:
        """Keep every send*/edit* call for ``chat_id`` waiting (in flight, before any side
        effect) until :meth:`release`; ``held_calls`` counts the calls that started waiting."""
        self._holds[chat_id] = asyncio.Event()
        self._dropped_holds.pop(chat_id, None)

    def release(self, chat_id: int, deliver: bool = True) -> None:
        """Let held calls go on; with ``deliver=False`` they fail with 502 and do nothing (the
        caller was killed: nobody would read the answer)."""
        event = self._holds.pop(chat_id, None)
        if event is not None:
            self._dropped_holds[chat_id] = not deliver
            event.set()

    async def _wait_if_held(self, call: Call, chat: FakeChat | None) -> None:
        if chat is None or chat.id not in self._holds:
            return
        if not call.method.startswith(("send", "edit")):
            return
        self.held_calls += 1
        self._bump()
        await self._holds[chat.id].wait()
        if self._dropped_holds.get(chat.id):
            raise ApiError(502, "Bad Gateway")

    def _is_confirmed(self, update_id: int) -> bool:
        return update_id < self._confirmed_below or update_id in self._dropped

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._confirmed_below = max(self._confirmed_below, offset)
            self._updates = [u for u in self._updates if u.update_id >= offset]
        elif offset < 0:
            keep = self._updates[offset:]
            dropped = self._updates[: len(self._updates) - len(keep)]
            if dropped:
                self._confirmed_below = max(self._confirmed_below, dropped[-1].update_id + 1)
            self._updates = keep

    def _new_callback_query(self, chat_id: int) -> str:
        query_id = str(4_611_686_018_427_387_904 + next(self._query_counter) * 7919)
        self._callback_queries[query_id] = _CallbackQuery(query_id, chat_id, time.monotonic())
        return query_id

    # ---- waiting ----

    def _bump(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _wait_change(self, seconds: float) -> None:
        event = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    async def _wait(self, predicate: Callable[[], bool], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return predicate()
            await self._wait_change(remaining)
        return True

    # ---- HTTP ----

    def _respond(self, call: Call, body: JSONDict, status: int) -> web.Response:
        call.status = status
        call.response = body
        return web.json_response(body, status=status)

    async def _handle_api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        name = request.match_info["method"]
        known = self._methods.get(name.lower())
        call = Call(method=known[0] if known else name, params={}, time=time.monotonic())
        self.calls.append(call)
        chat: FakeChat | None = None
        try:
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            if known is None and name.lower() in TELEGRAM_METHODS:
                raise _bad(f"method {name} is not implemented by FakeBotAPI")
            if known is None:
                raise ApiError(404, "Not Found")
            call.params, files = await _read_request(request)
            chat = self._chat_of(call)
            if chat is not None:
                call.chat_id = chat.id
                chat._inflight += 1
                chat._touch()
            try:
                self._check_faults(call.method)
            except _Broken as broken:  # the connection, not the API, fails
                return await self._break(request, call, broken)
            self._check_flood(call.method)
            await self._wait_if_held(call, chat)
            result = await known[1](_Request(call, files))
        except ApiError as error:
            response = self._respond(call, error.body(), error.status)
        except Exception as error:  # a bug in the fake: answer 500 and keep it for the test
            self.internal_errors.append(error)
            body = {
                "ok": False,
                "error_code": 500,
                "description": f"Internal Server Error: FakeBotAPI crashed: {error!r}",
            }
            response = self._respond(call, body, 500)
        else:
            response = self._respond(call, {"ok": True, "result": result}, 200)
        finally:
            if chat is not None:
                chat._inflight -= 1
                chat._touch()
            self._bump()
        return response

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.file_path == path:
                return web.Response(body=stored.content, content_type="application/octet-stream")
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    def _chat_of(self, call: Call) -> FakeChat | None:
        chat_id = call.params.get("chat_id")
        if isinstance(chat_id, int) and not isinstance(chat_id, bool):
            return self._chats.get(chat_id)
        query_id = call.params.get("callback_query_id")
        if isinstance(query_id, str) and query_id in self._callback_queries:
            return self._chats.get(self._callback_queries[query_id].chat_id)
        return None

    async def _break(self, request: web.Request, call: Call, broken: _Broken) -> web.Response:
        if broken.hang:
            call.status = HANG
            await asyncio.sleep(broken.hang)  # longer than the client waits: it times out
        else:
            call.status = RESET
            if request.transport is not None:
                request.transport.abort()  # the TCP connection drops mid-request
        return web.Response(status=504)

    def _check_faults(self, method: str) -> None:
        for fault in self._faults:
            if fault.remaining <= 0:
                continue
            if fault.method is None:
                matches = method != "getUpdates"
            else:
                matches = fault.method.lower() == method.lower()
            if matches:
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
                if fault.status == RESET:
                    raise _Broken()
                if fault.status == HANG:
                    raise _Broken(hang=float(fault.retry_after or 5))
                raise ApiError(fault.status, fault.description, fault.retry_after)

    def _check_flood(self, method: str) -> None:
        limit = self._flood_per_second
        if limit is None or not (method.startswith(("send", "edit", "copy", "forward"))):
            return
        if method == "sendChatAction":
            return
        now = time.monotonic()
        window = self._flood_window
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= limit:
            retry_after = max(1, math.ceil(1.0 - (now - window[0])))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        window.append(now)

    # ---- shared validation ----

    def _require_chat(self, req: _Request) -> FakeChat:
        chat_id = req.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise _bad("chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _parse_text(
        self, text: str, parse_mode: Any, entities: Any, *, caption: bool
    ) -> ParsedText:
        if parse_mode is None or parse_mode == "":
            parsed = ParsedText(text, entities if isinstance(entities, list) else [])
        elif not isinstance(parse_mode, str):
            raise _bad("unsupported parse_mode")
        elif parse_mode.lower() == "html":
            try:
                parsed = parse_html(text, strict=self.strict_html)
            except EntityParseError as error:
                raise _bad(f"can't parse entities: {error}") from None
        elif parse_mode.lower() in ("markdown", "markdownv2"):
            raise _bad(
                f"unsupported parse_mode {parse_mode!r} in FakeBotAPI (only HTML is emulated)"
            )
        else:
            raise _bad("unsupported parse_mode")
        parsed = _trim(parsed)
        limit = MAX_CAPTION_LENGTH if caption else MAX_MESSAGE_LENGTH
        if utf16_len(parsed.text) > limit:
            raise _bad("message caption is too long" if caption else "message is too long")
        return parsed

    def _message_text(self, req: _Request) -> tuple[str, ParsedText]:
        text = req.get("text")
        if text is None or (isinstance(text, str) and not text.strip()):
            raise _bad("message text is empty")
        if not isinstance(text, str):
            text = str(text)
        parsed = self._parse_text(text, req.get("parse_mode"), req.get("entities"), caption=False)
        if not parsed.text:
            raise _bad("message text is empty")
        return text, parsed

    def _caption(self, req: _Request) -> tuple[str | None, ParsedText | None]:
        caption = req.get("caption")
        if caption is None or caption == "":
            return None, None
        caption = str(caption)
        parsed = self._parse_text(
            caption, req.get("parse_mode"), req.get("caption_entities"), caption=True
        )
        return caption, parsed

    def _reply_to(self, req: _Request, chat: FakeChat) -> int | None:
        reply_to = req.get("reply_to_message_id")
        allow_missing = req.flag("allow_sending_without_reply")
        parameters = req.get("reply_parameters")
        if isinstance(parameters, dict):
            reply_to = parameters.get("message_id")
            allow_missing = parameters.get("allow_sending_without_reply") is True
        if reply_to is None:
            return None
        if not isinstance(reply_to, int) or reply_to not in chat._message_json:
            if allow_missing:
                return None
            raise _bad("message to be replied not found")
        return reply_to

    def _record_bot_message(
        self,
        chat: FakeChat,
        *,
        kind: str,
        raw: str | None,
        parsed: ParsedText | None,
        parse_mode: Any,
        markup: JSONDict | None,
        reply_to: int | None,
        stored: StoredFile | None = None,
    ) -> BotMessage:
        message = BotMessage(
            message_id=chat._allocate_message_id(),
            chat_id=chat.id,
            kind=kind,
            text=parsed.text if parsed else "",
            html=raw or "",
            parse_mode=parse_mode if isinstance(parse_mode, str) else None,
            entities=parsed.entities if parsed else [],
            reply_markup=copy.deepcopy(markup),
            document=stored.content if stored and kind == "document" else None,
            filename=stored.file_name if stored else None,
            mime_type=stored.mime_type if stored else None,
            photo=stored.content if stored and kind == "photo" else None,
            file_id=stored.file_id if stored else None,
            date=int(time.time()),
            reply_to_message_id=reply_to,
        )
        chat._bot_messages[message.message_id] = message
        if markup is not None and "keyboard" in markup:
            chat._active_keyboard = copy.deepcopy(markup)
        elif markup is not None and markup.get("remove_keyboard"):
            chat._active_keyboard = None
        chat._message_json[message.message_id] = self._message_json(chat, message)
        chat.outputs.append(copy.deepcopy(message))
        return message

    def _message_json(self, chat: FakeChat, message: BotMessage) -> JSONDict:
        data: JSONDict = {
            "message_id": message.message_id,
            "from": self._bot_user(),
            "chat": chat.json,
            "date": message.date,
        }
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if message.reply_to_message_id is not None:
            replied = chat._message_json.get(message.reply_to_message_id)
            if replied is not None:
                data["reply_to_message"] = {
                    k: v for k, v in replied.items() if k != "reply_to_message"
                }
        entities_key = "entities" if message.kind == "text" else "caption_entities"
        if message.kind == "text":
            data["text"] = message.text
        elif message.text:
            data["caption"] = message.text
        if message.entities:
            data[entities_key] = message.entities
        if message.file_id is not None:
            stored = self.files[message.file_id]
            if message.kind == "document":
                document: JSONDict = {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": stored.file_size,
                }
                if stored.file_name:
                    document["file_name"] = stored.file_name
                if stored.mime_type:
                    document["mime_type"] = stored.mime_type
                data["document"] = document
            else:
                data["photo"] = [
                    {
                        "file_id": stored.file_id,
                        "file_unique_id": stored.file_unique_id,
                        "file_size": stored.file_size,
                        "width": 800,
                        "height": 600,
                    }
                ]
        inline = _inline_only(message.reply_markup)
        if inline is not None:
            data["reply_markup"] = inline
        return data

    def _bot_user(self) -> JSONDict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _input_file(self, req: _Request, name: str, kind: str) -> StoredFile:
        upload = req.files.get(name)
        value = req.get(name)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = req.files.get(value.removeprefix("attach://"))
            if upload is None:
                raise _bad(f"file {value} not found in the request")
        if upload is not None:
            if not upload.content:
                raise _bad("file must be non-empty")
            mime = upload.content_type.split(";")[0].strip() or "application/octet-stream"
            return self.register_file(
                upload.content,
                kind=kind,
                file_name=upload.filename if kind == "document" else None,
                mime_type=mime if kind == "document" else None,
            )
        if value is None or value == "":
            raise _bad(f"there is no {name} in the request")
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        raise _bad("wrong file identifier/HTTP URL specified")

    def _edit_target(self, req: _Request) -> tuple[FakeChat, BotMessage]:
        if req.get("inline_message_id") is not None:
            raise _bad("MESSAGE_ID_INVALID")
        chat = self._require_chat(req)
        message_id = req.integer("message_id", missing="message identifier is not specified")
        assert message_id is not None
        message = chat._bot_messages.get(message_id)
        if message is None or message.deleted:
            if message_id in chat._message_json:
                raise _bad("message can't be edited")
            raise _bad("message to edit not found")
        return chat, message

    def _apply_edit(self, chat: FakeChat, message: BotMessage) -> JSONDict:
        message.edited = True
        message.edit_date = int(time.time())
        chat._message_json[message.message_id] = self._message_json(chat, message)
        snapshot = copy.deepcopy(message)
        chat.outputs.append(snapshot)
        return chat._message_json[message.message_id]

    # ---- methods ----

    async def _true(self, req: _Request) -> bool:
        return True

    async def _get_me(self, req: _Request) -> JSONDict:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, req: _Request) -> list[JSONDict]:
        if self.webhook is not None:
            raise ApiError(409, CONFLICT_WEBHOOK)
        offset = req.integer("offset") or 0
        limit = req.integer("limit") or 100
        limit = min(max(limit, 1), 100)
        timeout_value = req.get("timeout") or 0
        if not isinstance(timeout_value, int | float) or isinstance(timeout_value, bool):
            raise _bad("invalid timeout specified")
        timeout = max(0.0, float(timeout_value))
        allowed = req.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = (
                frozenset(str(a) for a in allowed) if allowed else DEFAULT_UPDATE_TYPES
            )
        self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._bump()

        def available() -> list[_Update]:
            wanted = [u for u in self._updates if u.kind in self._allowed_updates]
            if len(wanted) != len(self._updates):  # Telegram never queues what was not asked for
                self._dropped.update(
                    u.update_id for u in self._updates if u.kind not in self._allowed_updates
                )
                self._updates = wanted
            return wanted[:limit]

        def done() -> bool:
            return bool(available()) or self._closing or generation != self._poll_generation

        await self._wait(done, timeout)
        if generation != self._poll_generation:
            raise ApiError(409, CONFLICT_OTHER_POLL)
        if self._closing:
            return []
        return [copy.deepcopy(u.payload) for u in available()]

    async def _set_webhook(self, req: _Request) -> bool:
        url = req.string("url") or ""
        if not url:
            self.webhook = None
            return True
        if not url.lower().startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = req.string("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise _bad("secret token contains unallowed characters")
        if req.flag("drop_pending_updates"):
            self._drop_pending()
        allowed = req.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = (
                frozenset(str(a) for a in allowed) if allowed else DEFAULT_UPDATE_TYPES
            )
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": req.get("max_connections", 40),
        }
        self._bump()  # a waiting getUpdates would now conflict
        return True

    def _drop_pending(self) -> None:
        if self._updates:
            self._confirmed_below = max(self._confirmed_below, self._updates[-1].update_id + 1)
        self._updates = []

    async def _delete_webhook(self, req: _Request) -> bool:
        self.webhook = None
        if req.flag("drop_pending_updates"):
            self._drop_pending()
        return True

    async def _get_webhook_info(self, req: _Request) -> JSONDict:
        info: JSONDict = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
        return info

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope_key = json.dumps(scope or {"type": "default"}, sort_keys=True)
        return scope_key, str(language_code or "")

    def _commands_request_key(self, req: _Request) -> tuple[str, str]:
        scope = req.get("scope")
        if scope is not None and (not isinstance(scope, dict) or "type" not in scope):
            raise _bad("can't parse BotCommandScope JSON object")
        language = req.get("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", str(language)):
            raise _bad("invalid language code specified")
        return self._commands_key(scope, language)

    async def _set_my_commands(self, req: _Request) -> bool:
        commands = req.get("commands")
        if commands is None:
            commands = []
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        key = self._commands_request_key(req)
        cleaned: list[JSONDict] = []
        for item in commands:
            if not isinstance(item, dict):
                raise _bad("can't parse BotCommand: BotCommand must be an Object")
            for name in ("command", "description"):
                if name not in item:
                    raise _bad(f"can't parse BotCommand: Can't find field \"{name}\"")
                if not isinstance(item[name], str):
                    raise _bad(f'can\'t parse BotCommand: Field "{name}" must be of type String')
            command = item["command"].strip().removeprefix("/")
            if not command:
                raise _bad("command must be non-empty")
            if len(command) > 32:
                raise _bad("command length must not exceed 32")
            description = item["description"].strip()
            if not description:
                raise _bad("command description must be non-empty")
            if len(description) > 256:
                raise _bad("command description length must not exceed 256")
            if not re.fullmatch(r"[a-z0-9_]+", command):
                raise _bad("BOT_COMMAND_INVALID")
            cleaned.append({"command": command, "description": description})
        if len(cleaned) > 100:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        self._commands[key] = cleaned
        return True

    async def _get_my_commands(self, req: _Request) -> list[JSONDict]:
        return list(self._commands.get(self._commands_request_key(req), []))

    async def _delete_my_commands(self, req: _Request) -> bool:
        self._commands.pop(self._commands_request_key(req), None)
        return True

    async def _set_bot_setting(self, req: _Request) -> bool:
        limits = {"description": 512, "short_description": 120, "name": 64}
        for name, limit in limits.items():
            value = req.get(name)
            if isinstance(value, str) and len(value) > limit:
                raise _bad(f"{name.upper()}_INVALID")
        self.bot_settings[req.call.method] = dict(req.params)
        return True

    async def _get_chat(self, req: _Request) -> JSONDict:
        chat = self._require_chat(req)
        return {**chat.json, "accent_color_id": 0, "max_reaction_count": 11}

    async def _send_message(self, req: _Request) -> JSONDict:
        chat = self._require_chat(req)
        raw, parsed = self._message_text(req)
        markup = _validate_markup(req.get("reply_markup"))
        reply_to = self._reply_to(req, chat)
        message = self._record_bot_message(
            chat,
            kind="text",
            raw=raw,
            parsed=parsed,
            parse_mode=req.get("parse_mode"),
            markup=markup,
            reply_to=reply_to,
        )
        return chat._message_json[message.message_id]

    async def _send_document(self, req: _Request) -> JSONDict:
        return await self._send_media(req, "document")

    async def _send_photo(self, req: _Request) -> JSONDict:
        return await self._send_media(req, "photo")

    async def _send_media(self, req: _Request, kind: str) -> JSONDict:
        chat = self._require_chat(req)
        stored = self._input_file(req, kind, kind)
        if kind == "photo" and not _looks_like_image(stored.content):
            raise _bad("IMAGE_PROCESS_FAILED")
        raw, parsed = self._caption(req)
        markup = _validate_markup(req.get("reply_markup"))
        reply_to = self._reply_to(req, chat)
        message = self._record_bot_message(
            chat,
            kind=kind,
            raw=raw,
            parsed=parsed,
            parse_mode=req.get("parse_mode"),
            markup=markup,
            reply_to=reply_to,
            stored=stored,
        )
        return chat._message_json[message.message_id]

    async def _edit_message_text(self, req: _Request) -> JSONDict:
        chat, message = self._edit_target(req)
        raw, parsed = self._message_text(req)
        markup = _validate_markup(req.get("reply_markup"), inline_only=True)
        if message.kind != "text":
            raise _bad("there is no text in the message to edit")
        if (
            parsed.text == message.text
            and parsed.entities == message.entities
            and markup == _inline_only(message.reply_markup)
        ):
            raise _bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        message.text, message.html, message.entities = parsed.text, raw, parsed.entities
        message.parse_mode = req.get("parse_mode")
        message.reply_markup = copy.deepcopy(markup)  # omitting reply_markup removes it
        return self._apply_edit(chat, message)

    async def _edit_message_caption(self, req: _Request) -> JSONDict:
        chat, message = self._edit_target(req)
        if message.kind == "text":
            raise _bad("there is no caption in the message to edit")
        raw, parsed = self._caption(req)
        markup = _validate_markup(req.get("reply_markup"), inline_only=True)
        text = parsed.text if parsed else ""
        entities = parsed.entities if parsed else []
        if (
            text == message.text
            and entities == message.entities
            and markup == _inline_only(message.reply_markup)
        ):
            raise _bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        message.text, message.html, message.entities = text, raw or "", entities
        message.reply_markup = copy.deepcopy(markup)
        return self._apply_edit(chat, message)

    async def _edit_message_reply_markup(self, req: _Request) -> JSONDict:
        chat, message = self._edit_target(req)
        markup = _validate_markup(req.get("reply_markup"), inline_only=True)
        if markup == _inline_only(message.reply_markup):
            raise _bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        message.reply_markup = copy.deepcopy(markup)
        return self._apply_edit(chat, message)

    async def _delete_message(self, req: _Request) -> bool:
        chat = self._require_chat(req)
        message_id = req.integer("message_id", missing="message identifier is not specified")
        assert message_id is not None
        if message_id not in chat._message_json:
            raise _bad("message to delete not found")
        del chat._message_json[message_id]
        if message_id in chat._bot_messages:
            chat._bot_messages[message_id].deleted = True
        return True

    async def _answer_callback_query(self, req: _Request) -> bool:
        query_id = req.string("callback_query_id")
        query = self._callback_queries.get(query_id or "")
        expired = (
            query is not None
            and self.callback_query_ttl is not None
            and time.monotonic() - query.created > self.callback_query_ttl
        )
        if query is None or query.answered or expired:
            raise _bad(QUERY_TOO_OLD.removeprefix("Bad Request: "))
        text = req.string("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad("MESSAGE_TOO_LONG")
        url = req.string("url")
        query.answered = True
        cache_time = req.get("cache_time")
        self._chats[query.chat_id].callback_answers.append(
            CallbackAnswer(
                query_id=query.query_id,
                text=text,
                show_alert=req.flag("show_alert"),
                url=url,
                cache_time=cache_time if isinstance(cache_time, int) else None,
            )
        )
        return True

    async def _send_chat_action(self, req: _Request) -> bool:
        chat = self._require_chat(req)
        action = req.string("action")
        if action not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        chat.chat_actions.append(action)
        return True

    async def _get_file(self, req: _Request) -> JSONDict:
        file_id = req.string("file_id")
        if not file_id:
            raise _bad("file_id is empty")
        stored = self.files.get(file_id)
        if stored is None:
            raise _bad("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_SIZE:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }
