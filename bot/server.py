"""``pte-bot serve``: one aiohttp server for the Telegram and WhatsApp webhooks and /healthz.

* ``POST /webhooks/telegram``: the ``X-Telegram-Bot-Api-Secret-Token`` header is compared in
  constant time with ``TELEGRAM_WEBHOOK_SECRET``; the update is queued for its chat.
* ``GET /webhooks/whatsapp``: Meta's verification handshake (``hub.verify_token`` compared
  in constant time, ``hub.challenge`` echoed).
* ``POST /webhooks/whatsapp``: accepted only with a valid ``X-Hub-Signature-256`` (HMAC-SHA256
  of the raw body with ``WHATSAPP_APP_SECRET``): none is 401, a wrong one 403, with no body.
* ``GET /healthz``: 200 while the SQLite store answers, 503 otherwise.

Webhooks are answered as soon as the delivery is checked and written to the store's
``webhook_inbox`` (one small insert); the work runs after, in order per chat
(:class:`~bot.dispatch.ChatDispatcher`), different chats concurrently, and the inbox row is
deleted once it ran. A process that dies with deliveries queued processes them at the next
start (Telegram and Meta do not redeliver what was answered 200); one that dies after
processing but before the delete processes it again, and the update id makes that a no-op.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.app import App
from bot.errors import ConfigError
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.channels.telegram import TelegramChannel
    from bot.channels.whatsapp import WhatsAppChannel

log = logging.getLogger(__name__)
TELEGRAM_PATH = "/webhooks/telegram"
WHATSAPP_PATH = "/webhooks/whatsapp"
HEALTH_TIMEOUT = 3.0
WHATSAPP_SETTINGS = (
    "WHATSAPP_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
)


def channels_of(settings: Settings) -> tuple[bool, bool]:
    """(Telegram on, WhatsApp on), checking each configured channel has its secrets."""
    telegram = settings.telegram_bot_token is not None
    whatsapp = any(
        value is not None
        for value in (
            settings.whatsapp_token,
            settings.whatsapp_phone_number_id,
            settings.whatsapp_app_secret,
            settings.whatsapp_verify_token,
        )
    )
    if not (telegram or whatsapp):
        raise ConfigError(
            "missing setting TELEGRAM_BOT_TOKEN or WHATSAPP_TOKEN: serve needs a channel"
            " (see README, Configure)"
        )
    if telegram:
        settings.require("TELEGRAM_WEBHOOK_SECRET")
    if whatsapp:
        settings.require(*WHATSAPP_SETTINGS)
    return telegram, whatsapp


def signature_ok(secret: bytes, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


@dataclass
class Server:
    app: App
    telegram: TelegramChannel | None = None
    whatsapp: WhatsAppChannel | None = None
    _runner: web.AppRunner | None = field(default=None, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _tasks_flood: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        from bot.dispatch import ChatDispatcher

        # Telegram's updates, per chat; a flooding chat is told once to slow down.
        self.dispatcher = ChatDispatcher(on_flood=self._telegram_flood)

    # ---------------------------------------------------------------- life
    async def start(self) -> list[str]:
        """Start the channels, listen, register the Telegram webhook; returns the addresses."""
        settings = self.app.settings
        if self.telegram is not None:
            await self.telegram.start()
        if self.whatsapp is not None:
            if self.telegram is not None:
                self.whatsapp.peers.append(self.telegram.worker)
            await self.whatsapp.start()
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.http_host, settings.http_port)
        await site.start()
        addresses = [f"http://{host}:{port}" for host, port, *_ in self._runner.addresses]
        if self.telegram is not None and settings.public_url:
            await self.register_telegram_webhook(settings.public_url)
        await self.replay_inbox()
        return addresses

    async def replay_inbox(self) -> None:
        """Process what a previous run acknowledged but did not get to."""
        pending = await self.app.store.inbox_pending()
        if pending:
            log.info("processing %d webhook deliveries left by the last run", len(pending))
        for inbox_id, channel, body in pending:
            if channel == "telegram" and self.telegram is not None:
                self._telegram(inbox_id, json.loads(body))
            elif channel == "whatsapp" and self.whatsapp is not None:
                self._whatsapp(inbox_id, json.loads(body))

    def _forget_when_done(self, inbox_id: int, ran: list[asyncio.Future[None]]) -> None:
        async def forget() -> None:
            results = await asyncio.gather(*ran, return_exceptions=True)
            if not any(isinstance(r, asyncio.CancelledError) for r in results):
                await self.app.store.inbox_done(inbox_id)

        task = asyncio.create_task(forget())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _telegram_flood(self, key: str) -> None:
        chat_id = key.removeprefix("tg:")
        telegram = self.telegram
        if telegram is None or chat_id == key:
            return

        async def warn() -> None:
            telegram.worker.submit(await self.app.slow_down("telegram", chat_id))

        task = asyncio.create_task(warn())
        self._tasks_flood.add(task)
        task.add_done_callback(self._tasks_flood.discard)

    def _telegram(self, inbox_id: int, body: Any) -> None:
        from telegram import Update

        assert self.telegram is not None
        update = Update.de_json(body, self.telegram.application.bot)
        chat = update.effective_chat
        key = f"tg:{chat.id}" if chat is not None else f"tg-update:{update.update_id}"
        channel = self.telegram
        ran = self.dispatcher.submit(key, lambda: channel.process(update))
        self._forget_when_done(inbox_id, [ran])

    def _whatsapp(self, inbox_id: int, delivery: Any) -> None:
        assert self.whatsapp is not None
        ran: list[asyncio.Future[None]] = []
        if isinstance(delivery, dict):
            self.whatsapp.accept(delivery, ran)
        self._forget_when_done(inbox_id, ran)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # no new deliveries
        await self.dispatcher.join()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.whatsapp is not None:
            await self.whatsapp.stop()
        if self.telegram is not None:
            await self.telegram.stop()

    async def register_telegram_webhook(self, public_url: str) -> None:
        assert self.telegram is not None
        secret = self.app.settings.telegram_webhook_secret
        assert secret is not None
        url = public_url.rstrip("/") + TELEGRAM_PATH
        await self.telegram.application.bot.set_webhook(
            url,
            secret_token=secret.get_secret_value(),
            allowed_updates=["message", "edited_message", "callback_query"],
        )
        log.info("Telegram webhook registered at %s", url)

    def web_app(self) -> web.Application:
        web_app = web.Application()
        web_app.router.add_get("/healthz", self.health)
        if self.telegram is not None:
            web_app.router.add_post(TELEGRAM_PATH, self.telegram_update)
        if self.whatsapp is not None:
            web_app.router.add_get(WHATSAPP_PATH, self.whatsapp_handshake)
            web_app.router.add_post(WHATSAPP_PATH, self.whatsapp_delivery)
        return web_app

    # ------------------------------------------------------------ handlers
    async def health(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT), self.app.store.reading() as conn:
                await conn.execute_fetchall("SELECT 1")
        except Exception as error:
            log.warning("health check failed: %s", error)
            return web.Response(status=503, text="store unreachable\n")
        return web.Response(text="ok\n")

    async def telegram_update(self, request: web.Request) -> web.Response:
        from telegram import Update

        assert self.telegram is not None
        secret = self.app.settings.telegram_webhook_secret
        assert secret is not None
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            return web.Response(status=401)
        raw = await request.read()
        try:
            body = json.loads(raw)
            Update.de_json(body, self.telegram.application.bot)
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400)
        inbox_id = await self.app.store.inbox_add("telegram", raw, self.app.clock.now())
        self._telegram(inbox_id, body)
        return web.Response()

    async def whatsapp_handshake(self, request: web.Request) -> web.Response:
        token = self.app.settings.whatsapp_verify_token
        assert token is not None
        query = request.query
        given = query.get("hub.verify_token", "")
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(
            given.encode(), token.get_secret_value().encode()
        ):
            return web.Response(text=query.get("hub.challenge", ""))
        return web.Response(status=403)

    async def whatsapp_delivery(self, request: web.Request) -> web.Response:
        assert self.whatsapp is not None
        secret = self.app.settings.whatsapp_app_secret
        assert secret is not None
        header = request.headers.get("X-Hub-Signature-256")
        if not header:
            return web.Response(status=401)
        body = await request.read()
        if not signature_ok(secret.get_secret_value().encode(), body, header):
            log.warning("WhatsApp delivery with a wrong signature refused")
            return web.Response(status=403)
        try:
            delivery: Any = json.loads(body)
        except ValueError:
            return web.Response(status=400)
        inbox_id = await self.app.store.inbox_add("whatsapp", body, self.app.clock.now())
        self._whatsapp(inbox_id, delivery)
        return web.Response()


async def build_server(app: App) -> Server:
    """The channels the settings configure, around ``app`` (not started)."""
    telegram_on, whatsapp_on = channels_of(app.settings)
    telegram = whatsapp = None
    if telegram_on:
        from bot.channels.telegram import TelegramChannel

        telegram = TelegramChannel(app)
    if whatsapp_on:
        from bot.channels.whatsapp import WhatsAppChannel

        # Without Telegram, the scheduled jobs and the mail loop run with WhatsApp.
        whatsapp = WhatsAppChannel(app, run_jobs=telegram is None)
    return Server(app, telegram, whatsapp)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    from bot.app import create_app

    channels_of(settings)  # a missing setting stops here, before anything opens
    app = await create_app(settings)
    try:
        server = await build_server(app)
        addresses = await server.start()
        log.info("serving on %s", ", ".join(addresses))
        try:
            await stop.wait()
        finally:
            await server.stop()
    finally:
        await app.close()
