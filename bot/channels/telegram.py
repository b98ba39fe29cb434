"""Telegram: python-telegram-bot's ``Application`` for the Bot API, our engine for the rest.

Every update goes through one handler that turns it into a neutral event, runs
``App.process`` (state committed before any reply) and hands the committed replies to the
outbox worker, which renders and sends them. Callback queries are answered at once.

Polled updates of different chats run concurrently, each chat's in order
(:mod:`bot.channels.telegram_updates`). Every message goes out through one
:class:`~bot.delivery.pacer.Pacer` (``PTEBOT_TELEGRAM_FLOOD_LIMIT`` per second for the bot, one per
second per chat for notices, 20 a minute per group; replies before bulk notices). Callback
answers do
not: they are not messages, Telegram's message limits do not count them, and an answer
queued behind a burst would leave the officer's button spinning until the query expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from datetime import timedelta
from typing import Any

import httpx
import orjson
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InputFile,
    Message,
    Update,
)
from telegram.constants import ChatType, MessageEntityType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ContextTypes, Job, TypeHandler
from telegram.request import BaseRequest, HTTPXRequest

from bot.app import App
from bot.channels.telegram_updates import ChatUpdateProcessor
from bot.delivery.outbox import OutboxWorker
from bot.delivery.pacer import Pacer
from bot.delivery.payload import Rendered, Renders
from bot.errors import PermanentDelivery, TransientDelivery
from bot.store.database import OutboxRow
from bot.texts import Capabilities
from conversations.events import FileInfo, Inbound, Kind

# Time periods as timedelta (PTB 22 warns on every int access otherwise).
os.environ.setdefault("PTB_TIMEDELTA", "true")

log = logging.getLogger(__name__)
CHANNEL = "telegram"
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
MAX_ATTEMPTS = 10  # 5xx/time-outs in a row (~14 min of backoff) before a row is left to staff
NOT_MODIFIED = "message is not modified"
CANNOT_EDIT = ("message to edit not found", "message can't be edited")

TelegramApp = Application[Any, Any, Any, Any, Any, Any]


class LeanApplication(TelegramApp):
    """PTB's ``Application`` without the per-chat bookkeeping of a persistence we do not use.

    After every update PTB adds its chat id and its user id to two sets that only
    ``update_persistence`` empties; without a persistence nothing ever does, so a running bot
    kept an entry (and the id's int) for every chat and every user it had ever seen, about
    160 bytes a chat. Our state lives in SQLite: the sets are only filled when there is a
    persistence to flush them."""

    __slots__ = ()

    def _mark_for_persistence_update(
        self, *, update: object | None = None, job: Job[Any] | None = None
    ) -> None:
        if self.persistence is not None:
            super()._mark_for_persistence_update(update=update, job=job)


def to_event(update: Update, bot_username: str | None = None) -> Inbound | None:
    """The neutral event for a Telegram update (None for what the assistant ignores)."""
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        return None
    base: dict[str, Any] = {
        "channel": CHANNEL,
        "chat_id": str(chat.id),
        "event_id": str(update.update_id),
        "user_name": update.effective_user.first_name if update.effective_user else "",
    }
    query = update.callback_query
    if query is not None:
        ref = str(query.message.message_id) if query.message else None
        return Inbound(kind=Kind.BUTTON, text=query.data or "", message_ref=ref, **base)
    message = update.message
    if message is None:  # edited messages, reactions...: not something a step can use
        return Inbound(kind=Kind.UNSUPPORTED, **base)
    if message.text is not None:
        command = _command(message, bot_username)
        if command is not None:
            name, args = command
            return Inbound(kind=Kind.COMMAND, text=name, args=args, **base)
        replied = message.reply_to_message
        return Inbound(
            kind=Kind.TEXT,
            text=message.text,
            message_ref=str(message.message_id),
            reply_to=str(replied.message_id) if replied is not None else None,
            **base,
        )
    if message.contact is not None:
        # Only the officer's own card proves their number; someone else's gets the question again.
        sender = update.effective_user.id if update.effective_user else None
        own = message.contact.user_id is not None and message.contact.user_id == sender
        phone = message.contact.phone_number if own else None
        return Inbound(kind=Kind.CONTACT, phone=phone, **base)
    if message.document is not None:
        doc = message.document
        info = FileInfo(
            file_id=doc.file_id,
            name=doc.file_name,
            mime=doc.mime_type,
            size=doc.file_size,
            group=message.media_group_id,
        )
        return Inbound(kind=Kind.FILE, file=info, text=message.caption or "", **base)
    if message.photo:
        photo = message.photo[-1]  # the largest size
        info = FileInfo(
            file_id=photo.file_id,
            size=photo.file_size,
            is_photo=True,
            group=message.media_group_id,
        )
        return Inbound(kind=Kind.FILE, file=info, text=message.caption or "", **base)
    return Inbound(kind=Kind.UNSUPPORTED, **base)


def _command(message: Message, bot_username: str | None) -> tuple[str, str] | None:
    entities = message.entities
    text = message.text or ""
    if not entities or entities[0].type != MessageEntityType.BOT_COMMAND:
        return None
    if entities[0].offset != 0:
        return None
    word = text[1 : entities[0].length]
    name, _, target = word.partition("@")
    if target and bot_username and target.lower() != bot_username.lower():
        return None
    return name.lower(), text[entities[0].length :].strip()


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


class TelegramChannel:
    """PTB ``Application`` wired to the app; start/stop around long polling or webhooks.

    ``rate_limiter=False`` sends unpaced (a benchmark's in-process fake has no limits)."""

    def __init__(
        self,
        app: App,
        *,
        request: BaseRequest | None = None,
        get_updates_request: BaseRequest | None = None,
        rate_limiter: bool = True,
    ) -> None:
        self.app = app
        settings = app.settings
        assert settings.telegram_bot_token is not None
        # The builder's type changes with each call (rate limiter, requests): keep it loose.
        builder: Any = (
            Application.builder()
            .application_class(LeanApplication)
            .token(settings.telegram_bot_token.get_secret_value())
            .base_url(settings.telegram_base_url)
            .base_file_url(settings.telegram_base_file_url)
        )
        self.updates = ChatUpdateProcessor(on_flood=self._flooding)
        builder = builder.concurrent_updates(self.updates)
        self.pacer: Pacer | None = None
        if rate_limiter:
            self.pacer = Pacer(
                settings.telegram_flood_limit, group_per_minute=settings.telegram_group_limit
            )
        if request is None or get_updates_request is None:
            # PTB's own defaults (256 connections; 1 for getUpdates), but with one TLS context
            # for both clients: each would otherwise load the CA bundle, ≈40 ms apiece at
            # start-up (issue 18). Settings such as SSL_CERT_FILE are read as httpx reads them.
            verify = httpx.create_ssl_context()
            if request is None:
                request = HTTPXRequest(connection_pool_size=256, httpx_kwargs={"verify": verify})
            if get_updates_request is None:
                get_updates_request = HTTPXRequest(
                    connection_pool_size=1, httpx_kwargs={"verify": verify}
                )
        builder = builder.request(request).get_updates_request(get_updates_request)
        self.application: TelegramApp = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)
        self.worker = OutboxWorker(
            app.store,
            CHANNEL,
            TelegramTransport(app, self.application),
            app.clock,
            pacer=self.pacer,
            max_attempts=MAX_ATTEMPTS,
        )
        self._background: set[asyncio.Task[Any]] = set()

    async def start(self, *, commands: bool = True) -> None:
        """``commands=False``: the caller sets the command menu itself (long polling sets it
        while deleteWebhook and the first getUpdates go, see :func:`run_polling`)."""
        await self.application.initialize()
        if commands:
            await self.register_commands()
        await self.worker.start()
        await self.app.start(self.worker)
        await self.application.start()

    async def stop(self) -> None:
        await self.application.stop()
        await self.app.stop(self.worker)
        await self.worker.stop()
        if self.pacer is not None:
            await self.pacer.close()
        for task in list(self._background):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.application.shutdown()

    async def register_commands(self) -> None:
        descriptions = self.app.texts.command_descriptions
        commands = [
            BotCommand(name, descriptions[name])
            for name in self.app.engine.commands()
            if name in descriptions
        ]
        await self.application.bot.set_my_commands(commands)
        staff = [
            BotCommand(name, descriptions[name])
            for name in self.app.engine.staff_commands()
            if name in descriptions
        ]
        for chat_id in sorted(self.app.staff.get(CHANNEL, frozenset())):
            # Staff see their commands too; a staff member who never wrote to the bot has
            # no chat yet, and gets them the first time the bot starts after they do.
            try:
                await self.application.bot.set_my_commands(
                    [*commands, *staff], scope=BotCommandScopeChat(int(chat_id))
                )
            except TelegramError as error:
                log.info("staff commands not set for one staff chat: %s", error)

    async def process(self, update: Update) -> None:
        """Handle one update (used by polling and by the webhook server alike)."""
        username = self.application.bot.username if self.application.bot._bot_user else None
        event = to_event(update, username)
        if update.callback_query is not None:
            self._spawn(self._answer_query(update.callback_query.id))
        if event is None:
            return
        self.app.deliver(await self.app.process(event, self._fetch))

    async def _fetch(self, file_id: str) -> bytes:
        file = await self.application.bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())

    async def _on_update(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, Update):
            await self.process(update)

    def _flooding(self, key: str) -> None:
        """A chat with a full queue of polled updates: tell it once to slow down."""
        chat_id = key.removeprefix("tg:")
        if chat_id == key:
            return

        async def warn() -> None:
            self.app.deliver(await self.app.slow_down(CHANNEL, chat_id))

        self._spawn(warn())

    async def _answer_query(self, query_id: str) -> None:
        try:
            await self.application.bot.answer_callback_query(query_id)
        except TelegramError as error:  # too old, already answered: harmless
            log.debug("callback query not answered: %s", error)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling an update", exc_info=context.error)


async def run_polling(
    channel: TelegramChannel, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    await channel.start(commands=False)
    updater = channel.application.updater
    assert updater is not None
    # The command menu goes while deleteWebhook and the first getUpdates do: one round trip
    # to the Bot API (and one per staff chat) fewer before the bot listens (issue 18). A
    # menu that cannot be set still stops the start, and ``ready`` waits for it.
    menu = asyncio.create_task(channel.register_commands(), name="set-my-commands")
    try:
        await updater.start_polling(poll_interval=0.0, timeout=30, drop_pending_updates=False)
    except BaseException:
        menu.cancel()
        await asyncio.gather(menu, return_exceptions=True)
        raise
    try:
        await menu
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await updater.stop()
        await channel.stop()
