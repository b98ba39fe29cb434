"""``pte-bot serve``: one aiohttp server for the Telegram and WhatsApp webhooks and /healthz.

* ``POST /webhooks/telegram``: the ``X-Telegram-Bot-Api-Secret-Token`` header is compared in
  constant time with ``TELEGRAM_WEBHOOK_SECRET`` before the body is read; the update is
  queued for its chat.
* ``GET /webhooks/whatsapp``: Meta's verification handshake (``hub.verify_token`` compared
  in constant time, ``hub.challenge`` echoed).
* ``POST /webhooks/whatsapp``: accepted only with a valid ``X-Hub-Signature-256`` (HMAC-SHA256
  of the raw body with ``WHATSAPP_APP_SECRET``, computed as the body streams in): none is
  401, a wrong one 403, with no body. What the edge allows before that (connections, time,
  bytes, bodies read at once) is in :mod:`bot.channels.edge`.
* ``GET /healthz``: 200 while the SQLite store answers, 503 otherwise; ``?detail=1`` adds
  counts as JSON (inbox, deliveries set aside, connections, what the edge refused).

A delivery must be of the platform's shape (:mod:`bot.channels.webhooks`) before it is stored:
what is not gets 400 and is not kept. Webhooks are answered as soon as the delivery is checked
and written to the store's ``webhook_inbox`` (one small insert); the work runs after, in order
per chat (:class:`~bot.channels.dispatch.ChatDispatcher`), different chats concurrently, and
the inbox row is deleted once it ran. A process that dies with deliveries queued processes them
at the next start (Telegram and Meta do not redeliver what was answered 200); one that dies
after processing but before the delete processes it again, and the update id makes that a
no-op. A delivery whose processing fails, or that was replayed by :data:`MAX_REPLAYS` starts
without finishing (it may be what killed them), is set aside: kept for inspection, logged once,
counted on ``/healthz?detail=1``, never replayed; the ones behind it go on."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.app import App
from bot.channels import edge, webhooks
from bot.errors import ConfigError
from bot.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from bot.channels.telegram import TelegramChannel
    from bot.channels.whatsapp import WhatsAppChannel

log = logging.getLogger(__name__)
TELEGRAM_PATH = "/webhooks/telegram"
WHATSAPP_PATH = "/webhooks/whatsapp"
HEALTH_TIMEOUT = 3.0
# Meta documents webhook payloads of up to 3 MB; a real one is 1-5 KB (one message, or a
# few statuses), but a limit below Meta's own would refuse a genuine delivery for 7 days.
WHATSAPP_BODY_LIMIT = 3 * 1024 * 1024
# A Telegram update is one message (4,096 characters, entities, one quoted message): tens
# of KB at most. Read only once the secret header matched.
TELEGRAM_BODY_LIMIT = 1024 * 1024
MAX_REPLAYS = 3  # starts that may replay a delivery before it is set aside
Work = Callable[[], Awaitable[None]]
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


def _guarded(work: Work, failures: list[BaseException]) -> Work:
    """``work`` that records its failure instead of raising it (logged once, set aside)."""

    async def run() -> None:
        try:
            await work()
        except Exception as error:
            failures.append(error)

    return run


@dataclass
class Server:
    app: App
    telegram: TelegramChannel | None = None
    whatsapp: WhatsAppChannel | None = None
    _runner: web.AppRunner | None = field(default=None, init=False)
    _listener: asyncio.Server | None = field(default=None, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _tasks_flood: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _edge_tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        from bot.channels.dispatch import ChatDispatcher

        # Telegram's updates, per chat; a flooding chat is told once to slow down.
        self.dispatcher = ChatDispatcher(on_flood=self._telegram_flood)
        settings = self.app.settings
        self.stats = edge.EdgeStats()
        self.guard = edge.ConnectionGuard(settings.http_max_connections, self.stats)
        self.unverified = edge.UnverifiedBodies(settings.http_max_unverified)

    # ---------------------------------------------------------------- life
    async def start(self) -> list[str]:
        """Start the channels, listen, register the Telegram webhook; returns the addresses."""
        settings = self.app.settings
        if self.telegram is not None:
            await self.telegram.start()
        if self.whatsapp is not None:
            await self.whatsapp.start()
        # Headers within HEADER_TIMEOUT: aiohttp's keep-alive timer closes a connection
        # still waiting for (the rest of) its request then. No lingering: a refused body
        # is not read to its end, the connection is closed.
        self._runner = web.AppRunner(
            self.web_app(),
            access_log=None,
            keepalive_timeout=edge.HEADER_TIMEOUT,
            lingering_time=0,
            read_bufsize=edge.READ_BUFSIZE,
        )
        await self._runner.setup()
        loop = asyncio.get_running_loop()
        edge.count_accept_errors(loop, self.stats)
        cap = edge.connection_cap(settings.http_max_connections, edge.raise_fd_limit())
        if cap < settings.http_max_connections:
            log.warning("at most %d connections: the open files limit allows no more", cap)
        self.guard.cap = cap
        self.guard.make = self._runner.server
        self._listener = await edge.listen(
            loop, self.guard, settings.http_host, settings.http_port
        )
        addresses = [
            f"http://{host}:{port}"
            for host, port, *_ in (sock.getsockname() for sock in self._listener.sockets)
        ]
        self._edge_tasks = [
            asyncio.create_task(edge.report_every_minute(self.stats)),
            asyncio.create_task(edge.give_back_memory(self.stats)),
            asyncio.create_task(self.guard.sweep_every_second()),
        ]
        if self.telegram is not None and settings.public_url:
            await self.register_telegram_webhook(settings.public_url)
        await self.replay_inbox()
        return addresses

    async def replay_inbox(self) -> None:
        """Process what a previous run acknowledged but did not get to."""
        pending = await self.app.store.inbox_pending()
        if pending:
            log.info("processing %d webhook deliveries left by the last run", len(pending))
        live = []
        for inbox_id, channel, body, replays in pending:
            if replays >= MAX_REPLAYS:
                await self._set_aside(inbox_id, channel, f"replayed by {replays} starts")
            else:
                live.append((inbox_id, channel, body))
        await self.app.store.inbox_replaying([inbox_id for inbox_id, _c, _b in live])
        for inbox_id, channel, body in live:
            try:
                if channel == "telegram" and self.telegram is not None:
                    self._telegram(inbox_id, webhooks.telegram_update(body))
                elif channel == "whatsapp" and self.whatsapp is not None:
                    self._whatsapp(inbox_id, webhooks.whatsapp_delivery(body))
            except Exception as error:
                await self._set_aside(inbox_id, channel, _reason(error))

    async def _set_aside(self, inbox_id: int, channel: str, reason: str) -> None:
        # The reason names the error, never the delivery's content (names, codes...).
        log.error("webhook delivery %d (%s) set aside: %s", inbox_id, channel, reason)
        await self.app.store.inbox_set_aside(inbox_id, reason, self.app.clock.now())

    def _forget_when_done(
        self,
        inbox_id: int,
        channel: str,
        ran: list[asyncio.Future[None]],
        failures: list[BaseException],
    ) -> None:
        async def forget() -> None:
            results = await asyncio.gather(*ran, return_exceptions=True)
            if any(isinstance(r, asyncio.CancelledError) for r in results):
                return  # stopped before it ran: processed at the next start
            if failures:
                # The traceback's message may quote the delivery: at DEBUG only.
                log.debug("delivery %d failed", inbox_id, exc_info=failures[0])
                await self._set_aside(inbox_id, channel, _reason(failures[0]))
            else:
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

    def _telegram(self, inbox_id: int, body: dict[str, Any]) -> None:
        from telegram import Update

        assert self.telegram is not None
        update = Update.de_json(body, self.telegram.application.bot)
        chat = update.effective_chat
        key = f"tg:{chat.id}" if chat is not None else f"tg-update:{update.update_id}"
        channel = self.telegram
        failures: list[BaseException] = []
        ran = self.dispatcher.submit(key, _guarded(lambda: channel.process(update), failures))
        self._forget_when_done(inbox_id, "telegram", [ran], failures)

    def _whatsapp(self, inbox_id: int, delivery: dict[str, Any]) -> None:
        assert self.whatsapp is not None
        ran: list[asyncio.Future[None]] = []
        failures: list[BaseException] = []
        self.whatsapp.accept(delivery, ran, lambda work: _guarded(work, failures))
        self._forget_when_done(inbox_id, "whatsapp", ran, failures)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()  # no new connections
        if self._runner is not None:
            await self._runner.cleanup()  # no new deliveries
        self.guard.close_all()
        for task in self._edge_tasks:
            task.cancel()
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
        web_app = web.Application(
            middlewares=[self.guard.middleware], client_max_size=WHATSAPP_BODY_LIMIT
        )
        web_app.router.add_get("/healthz", self.health)
        if self.telegram is not None:
            web_app.router.add_post(TELEGRAM_PATH, self.telegram_update)
        if self.whatsapp is not None:
            web_app.router.add_get(WHATSAPP_PATH, self.whatsapp_handshake)
            web_app.router.add_post(WHATSAPP_PATH, self.whatsapp_delivery)
        return web_app

    # ------------------------------------------------------------ handlers
    async def health(self, request: web.Request) -> web.Response:
        detail = "detail" in request.query
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                if detail:
                    pending, aside = await self.app.store.inbox_counts()
                else:
                    async with self.app.store.reading() as conn:
                        await conn.execute_fetchall("SELECT 1")
        except Exception as error:
            log.warning("health check failed: %s", error)
            return web.Response(status=503, text="store unreachable\n")
        if not detail:
            return web.Response(text="ok\n")
        counts = {
            "status": "ok",
            "inbox": {"pending": pending, "set_aside": aside},
            "connections": {
                "open": self.guard.open_connections,
                "cap": self.guard.cap,
                "unverified_bodies_reading": self.unverified.reading,
            },
            "refused_since_start": dict(sorted(self.stats.totals.items())),
        }
        return web.json_response(counts)

    async def telegram_update(self, request: web.Request) -> web.Response:
        from telegram import Update

        assert self.telegram is not None
        secret = self.app.settings.telegram_webhook_secret
        assert secret is not None
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            raise edge.Refused(401, "wrong_secret")
        raw = await edge.read_body(request, TELEGRAM_BODY_LIMIT)
        try:
            body = webhooks.telegram_update(raw)
            Update.de_json(body, self.telegram.application.bot)
        except Exception:  # not an update PTB can read: whatever PTB raised, it is 400
            raise edge.Refused(400, "not_deliveries") from None
        inbox_id = await self.app.store.inbox_add("telegram", raw, self.app.clock.now())
        await self._queue(inbox_id, "telegram", lambda: self._telegram(inbox_id, body))
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
        body = await edge.read_signed(
            request, secret.get_secret_value().encode(), WHATSAPP_BODY_LIMIT, self.unverified
        )
        try:
            delivery = webhooks.whatsapp_delivery(body)
        except webhooks.NotADelivery:
            raise edge.Refused(400, "not_deliveries") from None
        inbox_id = await self.app.store.inbox_add("whatsapp", body, self.app.clock.now())
        await self._queue(inbox_id, "whatsapp", lambda: self._whatsapp(inbox_id, delivery))
        return web.Response()

    async def _queue(self, inbox_id: int, channel: str, submit: Callable[[], None]) -> None:
        """Hand a stored delivery to its channel; if even that fails, it is set aside (and
        still acknowledged: it is kept, and a retry by the platform would fail the same)."""
        try:
            submit()
        except Exception as error:
            await self._set_aside(inbox_id, channel, _reason(error))


def _reason(error: BaseException) -> str:
    """What went wrong, without the values involved (they may be personal data)."""
    if isinstance(error, webhooks.NotADelivery):
        return str(error)
    return type(error).__name__


async def build_server(app: App) -> Server:
    """The channels the settings configure, around ``app`` (not started)."""
    telegram_on, whatsapp_on = channels_of(app.settings)
    telegram = whatsapp = None
    if telegram_on:
        from bot.channels.telegram import TelegramChannel

        telegram = TelegramChannel(app)
    if whatsapp_on:
        from bot.channels.whatsapp import WhatsAppChannel

        whatsapp = WhatsAppChannel(app)
    return Server(app, telegram, whatsapp)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    from bot.app import create_app

    channels_of(settings)  # a missing setting stops here, before anything opens
    app = await create_app(settings)
    try:
        server = await build_server(app)
        addresses = await server.start()
        log.info("serving on %s", ", ".join(addresses))
        reader = None
        if settings.imap_host:  # IMAP and mail parsing imported only when a mailbox is read
            from bot.channels.mail import start_mail_reader

            reader = start_mail_reader(app, app.deliver)
        try:
            await stop.wait()
        finally:
            if reader is not None:
                await reader.stop()
            await server.stop()
    finally:
        await app.close()
