"""Telegram's side of delivery: :class:`TelegramTransport` renders an outbox row and sends
it through python-telegram-bot (a text, an edit of a card, a document, a deletion), with its
keyboard as the Bot API reads it (:func:`_markup`); what the channel can do
(:data:`CAPABILITIES`) and Telegram's limits on a message. :mod:`bot.channels.telegram`
builds the ``Application`` and the outbox worker around it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import orjson
from telegram import InputFile
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application

from bot.app import App
from bot.delivery.payload import Rendered, Renders
from bot.errors import PermanentDelivery, TransientDelivery
from bot.store.database import OutboxRow
from bot.texts import Capabilities

log = logging.getLogger(__name__)
# A bot deletes what the person sent in a private chat, edits its own cards, offers "share my
# number" on a reply keyboard, and the person can answer one message (reply).
CAPABILITIES = Capabilities(
    deletes_messages=True,
    shares_contact=True,
    edits_messages=True,
    quotes=True,
    carrier="Telegram",
)
MESSAGE_LIMIT = 4096  # a message's text after its HTML is parsed, in UTF-16 code units
NOT_MODIFIED = "message is not modified"
CANNOT_EDIT = ("message to edit not found", "message can't be edited")

TelegramApp = Application[Any, Any, Any, Any, Any, Any]


Markup = dict[str, Any]  # a reply_markup as the Bot API reads it (JSON)


def _markup_json(markup: dict[str, Any]) -> str:
    """A keyboard as JSON text: PTB passes a string on as it is, and would encode a dict
    with the standard library (5-8 us a keyboard, once per message). orjson refuses a lone
    surrogate in a label; the standard library's ASCII escapes then send it as PTB would."""
    try:
        return orjson.dumps(markup).decode()
    except orjson.JSONEncodeError:
        return json.dumps(markup)


def _markup(
    rendered: Rendered, share_label: str, bot_username: str | None = None
) -> Markup | None:
    if rendered.link is not None and bot_username:
        label, start = rendered.link  # a deep link into a private chat with the bot
        url = f"https://t.me/{bot_username}?start={start}"
        return {"inline_keyboard": [[{"text": label, "url": url}]]}
    if rendered.request_contact:
        # A keyboard can't be both: other choices ("Mantener") become typed-label keys.
        keys = [[{"text": b.label}] for row in rendered.buttons for b in row]
        return {
            "keyboard": [[{"text": share_label, "request_contact": True}], *keys],
            "resize_keyboard": True,
            "one_time_keyboard": True,
        }
    if not rendered.buttons:
        return None
    return {
        "inline_keyboard": [
            [{"text": b.label, "callback_data": b.data} for b in row] for row in rendered.buttons
        ]
    }


def _fits(rendered: Rendered) -> bool:
    return len(rendered.plain.encode("utf-16-le")) // 2 <= MESSAGE_LIMIT


class TelegramTransport:
    def __init__(self, app: App, application: TelegramApp) -> None:
        self.app = app
        self.application = application
        self.renders = Renders(CAPABILITIES)

    def joins(self, row: OutboxRow) -> bool:
        """A reply's acknowledgement and its question go as one message while the text
        fits one (see :mod:`bot.delivery.outbox`): fewer messages against the flood limit."""
        return self.renders.measured(self.app.texts, row, _fits)

    async def _call(self, method: str, parameters: dict[str, Any]) -> Any:
        """A text message or an edit, with its markup as JSON, the answer left as JSON.

        ``Bot.send_message`` builds PTB objects for the markup, turns them back into JSON
        and parses the answer into a ``Message``: per message more work than the rest of
        a turn (measured with ``pte-bot bench``), while the outbox needs one field of the
        answer, the message id. ``Bot._post`` is the step every named method ends in (the
        defaults, the request, PTB's errors: BadRequest, Forbidden, RetryAfter...);
        ``do_api_request``, its public wrapper, warns on every call for a method PTB names.
        The channel's tests run this path through the real PTB against the fake Bot API."""
        return await self.application.bot._post(method, parameters)

    async def deliver(self, row: OutboxRow) -> str | None:
        rendered = self.renders.delivered(self.app.texts, row)
        bot = self.application.bot
        if rendered.delete_ref is not None:
            try:
                await bot.delete_message(row.chat_id, int(rendered.delete_ref))
            except BadRequest as error:  # already gone, or too old to delete: nothing to do
                log.info("user message not deleted: %s", error)
            except TelegramError as error:
                raise TransientDelivery(str(error)) from error
            return None
        username = bot.username if bot._bot_user is not None else None
        markup = _markup(rendered, self.app.texts.label("btn.share_phone", {}), username)
        if rendered.remove_keyboard and markup is None:
            markup = {"remove_keyboard": True}
        try:
            if rendered.document:
                doc = rendered.document
                content = await asyncio.to_thread(self.app.files.read, doc["sha256"])
                sent = await bot.send_document(
                    row.chat_id,
                    InputFile(content, filename=doc["filename"]),
                    caption=rendered.html,
                    parse_mode=ParseMode.HTML,
                    api_kwargs={"reply_markup": _markup_json(markup)} if markup else None,
                )
                return str(sent.message_id)
            message: dict[str, Any] = {
                "chat_id": row.chat_id,
                "text": rendered.html,
                "parse_mode": "HTML",
                "reply_markup": _markup_json(markup) if markup is not None else None,
            }
            if rendered.edit_ref and (markup is None or "inline_keyboard" in markup):
                try:
                    await self._call(
                        "editMessageText",
                        {**message, "message_id": int(rendered.edit_ref)},
                    )
                    return rendered.edit_ref
                except BadRequest as error:
                    text = str(error).lower()
                    if NOT_MODIFIED in text:
                        return rendered.edit_ref  # the same card twice: nothing to change
                    if not any(reason in text for reason in CANNOT_EDIT):
                        raise
            sent_message = await self._call("sendMessage", message)
            return str(sent_message["message_id"])
        except RetryAfter as error:
            retry = error.retry_after
            seconds = retry.total_seconds() if isinstance(retry, timedelta) else float(retry)
            raise TransientDelivery("flood control", retry_after=seconds) from error
        except Forbidden as error:
            raise PermanentDelivery(f"blocked: {error}") from error
        except BadRequest as error:
            raise PermanentDelivery(f"refused: {error}") from error
        except (NetworkError, TelegramError) as error:
            raise TransientDelivery(str(error)) from error
