"""Telegram: python-telegram-bot's ``Application`` for the Bot API, our engine for the rest.

Every update goes through one handler that turns it into a neutral event, runs
``App.process`` (state committed before any reply) and hands the committed replies to the
outbox worker, which renders and sends them (:mod:`bot.channels.telegram_transport`).
A callback query is answered as soon as its turn has committed (or failed), a millisecond
after it came, in a task of its own: the chat's next update does not wait for the answer's
round trip, and no task is ready while the turn starts, so the store can run it at once
in this task instead of handing it to its batch leader (:mod:`bot.store.group_commit`).

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
import logging
import os
from typing import Any

import httpx
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    Message,
    Update,
)
from telegram.constants import ChatType, MessageEntityType
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, Job, TypeHandler
from telegram.request import BaseRequest, HTTPXRequest

from bot.app import App
from bot.channels.telegram_transport import TelegramApp, TelegramTransport
from bot.channels.telegram_updates import ChatUpdateProcessor
from bot.delivery.outbox import OutboxWorker
from bot.delivery.pacer import Pacer
from conversations.events import FileInfo, Inbound, Kind

# Time periods as timedelta (PTB 22 warns on every int access otherwise).
os.environ.setdefault("PTB_TIMEDELTA", "true")

log = logging.getLogger(__name__)
CHANNEL = "telegram"
MAX_ATTEMPTS = 10  # 5xx/time-outs in a row (~14 min of backoff) before a row is left to staff


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
        try:
            if event is not None:
                self.app.deliver(await self.app.process(event, self._fetch))
        finally:
            if update.callback_query is not None:
                self._spawn(self._answer_query(update.callback_query.id))

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
