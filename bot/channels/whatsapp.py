"""WhatsApp Cloud API: webhook deliveries in, Graph API messages out, our engine between.

A delivery (already checked against ``X-Hub-Signature-256`` by :mod:`bot.channels.server`) carries
messages and status callbacks. Each message becomes a neutral :class:`Inbound` whose event
id is its wamid, so a redelivered message is recognised by the same durable table as a
Telegram update. Work is queued per officer (:class:`~bot.channels.dispatch.ChatDispatcher`): the
webhook is answered at once and each officer's messages run in order.

Outbound rows are rendered by :mod:`bot.channels.whatsapp_render` and sent with
:class:`~bot.channels.whatsapp_graph.GraphClient`; outside the 24-hour window they are held
(:mod:`bot.channels.whatsapp_window`). A reply's text-only rows go in front of the row
after them as one message while it fits WhatsApp's limits (``WhatsAppTransport.joins``);
such a message is sent, retried, failed or held as a whole. Interactive replies carry our
callback data (``"<question id>:<choice id>"``) as their id; two ids are the channel's own:
the next page of a long list, and "Compartir mi número", which becomes a contact event with
the sender's number (WhatsApp already tells us who writes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bot.app import App
from bot.channels.dispatch import ChatDispatcher, Work
from bot.channels.whatsapp_graph import GraphClient, GraphError, MediaTooBig
from bot.channels.whatsapp_render import (
    MORE_PREFIX,
    SHARE_PHONE,
    Message,
    plan,
    template_message,
)
from bot.channels.whatsapp_sent import SentParts, UploadedMedia
from bot.channels.whatsapp_window import CHANNEL, REENGAGEMENT, Window
from bot.delivery.outbox import OutboxWorker
from bot.delivery.payload import Rendered, Renders
from bot.domain import files
from bot.errors import PermanentDelivery, TransientDelivery
from bot.store.database import OutboxRow
from bot.texts import Capabilities
from conversations.events import FileInfo, Inbound, Kind
from conversations.text import normalize

log = logging.getLogger(__name__)
# WhatsApp cannot delete what the officer sent nor edit a message it sent; it has a share-number
# option (see the render module) and swipe replies.
CAPABILITIES = Capabilities(shares_contact=True, quotes=True, carrier="WhatsApp (Meta)")
FILE_TRIES = 3
FILE_RETRY_WAIT = 1.0  # seconds, times the attempt
FILE_FAILED = "whatsapp.file_failed"
STATUS_TRIES, STATUS_WAIT = 10, 0.3  # a failure reported before its send was recorded
# Graph error codes that mean "slow down": seconds to wait before trying again.
THROTTLED = {4: 60.0, 80007: 60.0, 130429: 10.0, 131048: 60.0, 131056: 6.0}
IGNORED = {"reaction", "system", "ephemeral"}  # not something an officer asks


def to_event(message: dict[str, Any], name: str, share_label: str) -> Inbound | None:
    """The neutral event for one webhook message (None for what the assistant ignores)."""
    kind = str(message.get("type", ""))
    if kind in IGNORED:
        return None
    wa_id = str(message["from"])
    context = message.get("context") or {}
    base: dict[str, Any] = {
        "channel": CHANNEL,
        "chat_id": wa_id,
        "event_id": str(message["id"]),
        "user_name": name,
    }
    if kind == "text":
        text = str((message.get("text") or {}).get("body", ""))
        if normalize(text) == normalize(share_label):
            return Inbound(kind=Kind.CONTACT, phone="+" + wa_id, **base)
        word, _, args = text.strip().partition(" ")
        if word.startswith("/") and word[1:].replace("_", "").isalnum():
            return Inbound(kind=Kind.COMMAND, text=word[1:].lower(), args=args.strip(), **base)
        return Inbound(
            kind=Kind.TEXT,
            text=text,
            message_ref=base["event_id"],
            reply_to=context.get("id"),
            **base,
        )
    if kind == "interactive":
        reply = message.get("interactive") or {}
        chosen = reply.get("button_reply") or reply.get("list_reply") or {}
        data = str(chosen.get("id", ""))
        if data == SHARE_PHONE:
            return Inbound(kind=Kind.CONTACT, phone="+" + wa_id, **base)
        return Inbound(kind=Kind.BUTTON, text=data, message_ref=context.get("id"), **base)
    if kind == "button":  # a quick-reply button of a template: its text, as typed
        text = str((message.get("button") or {}).get("text", ""))
        return Inbound(kind=Kind.TEXT, text=text, **base)
    if kind == "contacts":
        # Only the officer's own card proves their number, as on Telegram.
        phones = [p for c in message.get("contacts") or [] for p in c.get("phones") or []]
        own = any(p.get("wa_id") == wa_id for p in phones)
        return Inbound(kind=Kind.CONTACT, phone="+" + wa_id if own else None, **base)
    if kind in ("image", "document"):
        media = message.get(kind) or {}
        info = FileInfo(
            file_id=str(media.get("id", "")),
            name=media.get("filename"),
            mime=media.get("mime_type"),
            is_photo=kind == "image",
        )
        return Inbound(kind=Kind.FILE, file=info, text=str(media.get("caption", "")), **base)
    return Inbound(kind=Kind.UNSUPPORTED, **base)


def sent_at(message: dict[str, Any], now: datetime) -> datetime:
    """When the officer wrote (Meta's timestamp), never later than now."""
    try:
        moment = datetime.fromtimestamp(int(message.get("timestamp", "")), UTC)
    except (TypeError, ValueError, OverflowError):
        return now
    return min(moment, now)


class WhatsAppTransport:
    """Delivers one outbox row as one or more WhatsApp messages (see the render module)."""

    def __init__(self, app: App, graph: GraphClient, window: Window) -> None:
        self.app = app
        self.graph = graph
        self.window = window
        self.parts = SentParts()
        self._media = UploadedMedia()
        self.renders = Renders(CAPABILITIES)

    def joins(self, row: OutboxRow) -> bool:
        """A reply's acknowledgement and its question go as one message while they fit one
        (see :mod:`bot.delivery.outbox`): a text within 4096 characters, a body with
        buttons or a list within 1024. Otherwise each goes on its own."""

        def fits(rendered: Rendered) -> bool:
            return rendered.delete_ref is None and len(plan(self.app.texts, rendered, row.id)) == 1

        return self.renders.measured(self.app.texts, row, fits)

    async def deliver(self, row: OutboxRow) -> str | None:
        rendered = self.renders.delivered(self.app.texts, row)
        if rendered.delete_ref is not None:
            return None  # WhatsApp cannot delete the officer's message; the warning still goes
        now = self.app.clock.now()
        held, template = await self.window.hold_if_closed(row, now)
        if held:
            log.info("outbox row %d held until the 24-hour window reopens", row.id)
            if template:
                await self.send_template(row.chat_id, retry=True)
            return None
        page = int(json.loads(row.payload).get("wa_page", 0))
        messages = plan(self.app.texts, rendered, row.id, page)
        ref: str | None = None
        for index in range(self.parts.sent(row.id, row.chat_id, messages), len(messages)):
            try:
                ref = await self._send(row.chat_id, messages[index])
            except GraphError as error:
                if error.code == REENGAGEMENT:
                    log.info("outbox row %d: window closed (131047); held", row.id)
                    if await self.window.closed_by_meta(row, now):
                        await self.send_template(row.chat_id, retry=True)
                    return None
                raise _delivery_error(error) from error
            except (aiohttp.ClientError, TimeoutError) as error:
                raise TransientDelivery(f"network: {type(error).__name__}") from error
            self.parts.went(row.ids, row.chat_id, messages, index, ref)  # for its status
            if index + 1 < len(messages):  # a retry resumes after it
                self.parts.advance(row.id, row.chat_id, messages, index + 1)
        self.parts.forget(row.id)
        return ref

    def given_up(self, row: OutboxRow) -> None:
        """The worker marked ``row`` failed: it is not tried again (see the outbox)."""
        self.parts.given_up(row.id)

    def stopped(self) -> None:
        """The channel stopped: rows not sent to the end go whole after a restart."""
        self.parts.clear()

    async def send_template(self, wa_id: str, *, retry: bool) -> None:
        """The re-engagement template. ``retry``: a transient failure is the row's to retry."""
        settings = self.app.settings
        message = template_message(
            settings.whatsapp_template_name, settings.whatsapp_template_language
        )
        try:
            await self.graph.send(wa_id, message)
        except (GraphError, aiohttp.ClientError, TimeoutError) as error:
            permanent = isinstance(error, GraphError) and isinstance(
                _delivery_error(error), PermanentDelivery
            )
            if permanent:  # not approved, wrong name...: the notice still waits for the officer
                log.warning("re-engagement template refused: %s", error)
                return
            await self.window.template_failed(wa_id, self.app.clock.now())
            if retry:
                raise TransientDelivery(f"template: {error}") from error
            log.warning("re-engagement template not sent: %s", error)

    async def _send(self, wa_id: str, message: Message) -> str:
        if message["type"] == "document":
            doc = dict(message["document"])
            sha256, mime = doc.pop("sha256"), doc.pop("mime")
            now = self.app.clock.now()  # before the upload: Meta's 30 days start later
            media = self._media.get(sha256, now)
            if media is None:
                content = await asyncio.to_thread(self.app.files.read, sha256)
                media = await self.graph.upload(content, doc["filename"], mime)
                self._media.add(sha256, media, now)
            message = {"type": "document", "document": {"id": media, **doc}}
        return await self.graph.send(wa_id, message)


def _delivery_error(error: GraphError) -> TransientDelivery | PermanentDelivery:
    if error.code in THROTTLED or error.status == 429:
        return TransientDelivery(str(error), retry_after=THROTTLED.get(error.code or 0, 30.0))
    if error.status >= 500 or error.status == 0:
        return TransientDelivery(str(error))
    if error.status == 401 or error.code == 190:  # token expired: wait for the operator
        return TransientDelivery("access token rejected", retry_after=300.0)
    return PermanentDelivery(f"refused: {error}")


class WhatsAppChannel:
    """Graph client, outbox worker and per-officer queue; fed by the webhook server."""

    def __init__(self, app: App) -> None:
        settings = app.settings
        assert settings.whatsapp_token is not None
        assert settings.whatsapp_phone_number_id is not None
        self.app = app
        self.graph = GraphClient(
            settings.whatsapp_graph_url,
            settings.whatsapp_token.get_secret_value(),
            settings.whatsapp_phone_number_id,
        )
        self.window = Window(app.store, bool(settings.whatsapp_template_name))
        self.transport = WhatsAppTransport(app, self.graph, self.window)
        self.worker = OutboxWorker(app.store, CHANNEL, self.transport, app.clock)
        # Per officer; one who floods is told once to slow down (see ChatDispatcher).
        self.dispatcher = ChatDispatcher(on_flood=self._flood)
        self._share_label = app.texts.label("whatsapp.share_phone", {})
        self._urls: dict[str, str] = {}  # media id -> its download URL, from the metadata
        self._background: set[asyncio.Task[None]] = set()

    def _flood(self, wa_id: str) -> None:
        async def warn() -> None:
            self.submit(await self.app.slow_down(CHANNEL, wa_id))

        self._spawn(warn())

    async def start(self) -> None:
        await self.worker.start()
        await self.app.start(self.worker)

    async def stop(self) -> None:
        await self.dispatcher.join()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.app.stop(self.worker)
        await self.worker.stop()
        self.transport.stopped()
        await self.graph.close()

    def accept(
        self,
        delivery: dict[str, Any],
        ran: list[asyncio.Future[None]] | None = None,
        guard: Callable[[Work], Work] | None = None,
    ) -> int:
        """Queue a verified webhook delivery's messages and statuses; returns how many.
        ``ran`` collects a future per piece of work, done once it has run; ``guard`` wraps
        each piece (the server uses it to notice a failure)."""
        queued = 0
        ran = [] if ran is None else ran
        wrap = guard or (lambda work: work)
        ours = self.app.settings.whatsapp_phone_number_id
        for entry in delivery.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                if (value.get("metadata") or {}).get("phone_number_id") != ours:
                    continue  # another number of the same app
                names = {
                    str(c.get("wa_id")): str((c.get("profile") or {}).get("name", ""))
                    for c in value.get("contacts") or []
                }
                for message in value.get("messages") or []:
                    wa_id = str(message.get("from", ""))
                    work = wrap(self._work(message, names.get(wa_id, "")))
                    ran.append(self.dispatcher.submit(wa_id, work))
                    queued += 1
                for status in value.get("statuses") or []:
                    wa_id = str(status.get("recipient_id", ""))
                    work = wrap(self._status_work(status))
                    ran.append(self.dispatcher.submit(wa_id, work, droppable=False))
                    queued += 1
        return queued

    def submit(self, rows: list[OutboxRow]) -> None:
        self.app.deliver(rows)  # every started channel's worker takes its own rows

    async def handle_message(self, message: dict[str, Any], name: str) -> None:
        event = to_event(message, name, self._share_label)
        if event is None:
            return
        now = self.app.clock.now()
        touched = await self.window.touch(event.chat_id, sent_at(message, now), now)
        self.submit(touched.released)  # held notices first, then the answer to this message
        if touched.reopened:
            event = dataclasses.replace(event, reopens=True)
        if event.kind is Kind.BUTTON and event.text.startswith(MORE_PREFIX):
            await self._next_page(event)
            return
        if event.file is not None:
            await self._process_file(event)
            return
        self.submit(await self.app.process(event))

    async def handle_status(self, status: dict[str, Any]) -> None:
        errors = status.get("errors") or []
        error = None
        if errors:
            code = errors[0].get("code")
            error = (code if isinstance(code, int) else None, str(errors[0].get("title", "")))
        wa_id, wamid = str(status.get("recipient_id", "")), str(status.get("id", ""))
        state = str(status.get("status", ""))
        if not await self.window.record_status(wamid, state, error, self.app.clock.now()):
            return  # reported before
        if state != "failed" or error is None:
            return
        log.warning("WhatsApp reported a message failed: %s", error)
        parts = self.transport.parts
        for _ in range(STATUS_TRIES):
            rows = parts.rows_of(wamid)  # a part of a row of several (the outbox names its last)
            now = self.app.clock.now()
            template = await self.window.apply_failure(wamid, wa_id, error, now, rows)
            if template is not None:
                break
            await asyncio.sleep(STATUS_WAIT)  # the row's wamid is written just after the send
        if template is not None and error[0] == REENGAGEMENT:
            parts.failed(wamid)  # held: released, it goes from this part on
        if template:
            await self.transport.send_template(wa_id, retry=False)

    # -------------------------------------------------------------- internals
    def _work(self, message: dict[str, Any], name: str) -> Work:
        return lambda: self.handle_message(message, name)

    def _status_work(self, status: dict[str, Any]) -> Work:
        return lambda: self.handle_status(status)

    async def _process_file(self, event: Inbound) -> None:
        assert event.file is not None
        media_id = event.file.file_id
        if await self._seen(event):
            return  # a redelivered file: not downloaded again
        for attempt in range(1, FILE_TRIES + 1):
            try:
                info = await self.graph.media_info(media_id)
                self._urls[media_id] = str(info["url"])
                size = info.get("file_size")
                file = FileInfo(
                    file_id=media_id,
                    name=event.file.name,
                    mime=event.file.mime or info.get("mime_type"),
                    size=int(size) if size is not None else None,  # refused before download
                    is_photo=event.file.is_photo,
                )
                try:
                    rows = await self.app.process(_with_file(event, file), self._fetch)
                except MediaTooBig:  # the metadata understated it: refuse it like a big one
                    big = _with_file(event, _sized(file, files.MAX_DOWNLOAD_BYTES + 1))
                    rows = await self.app.process(big, self._fetch)
            except (GraphError, aiohttp.ClientError, TimeoutError, KeyError) as error:
                if attempt == FILE_TRIES:
                    # Not claimed: the officer is asked to send it again, as a new message.
                    log.error("a received file could not be fetched: %s", error)
                    self.submit(await self.app.notify(CHANNEL, event.chat_id, FILE_FAILED))
                    return
                await asyncio.sleep(attempt * FILE_RETRY_WAIT)
            else:
                self.submit(rows)
                return
            finally:
                self._urls.pop(media_id, None)

    async def _seen(self, event: Inbound) -> bool:
        async with self.app.store.reading() as conn:
            found = await conn.execute_fetchall(
                "SELECT 1 FROM processed_events WHERE channel = ? AND event_id = ?",
                (CHANNEL, event.event_id),
            )
        return bool(list(found))

    async def _fetch(self, media_id: str) -> bytes:
        url = self._urls.get(media_id) or str((await self.graph.media_info(media_id))["url"])
        return await self.graph.download(url, files.MAX_DOWNLOAD_BYTES)

    async def _next_page(self, event: Inbound) -> None:
        """ "Más opciones": the next page of a list, as a new outbox row (ordered, durable)."""
        row_id, _, page = event.text[len(MORE_PREFIX) :].partition(":")
        async with self.app.store.transaction(self.app.clock.now()) as tx:
            if not await tx.claim_event(CHANNEL, event.event_id):
                return
            found = await tx.fetchone(
                "SELECT payload FROM outbox WHERE id = ? AND channel = ? AND chat_id = ?",
                (int(row_id) if row_id.isdigit() else 0, CHANNEL, event.chat_id),
            )
            if found is None or not page.isdigit():
                return
            payload = {**json.loads(found[0]), "wa_page": int(page)}
            payload.pop("edit_ref", None)
            rows = await tx.enqueue(CHANNEL, event.chat_id, [(json.dumps(payload), False)])
        self.submit(rows)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _sized(file: FileInfo, size: int) -> FileInfo:
    return FileInfo(file.file_id, file.name, file.mime, size, file.is_photo)


def _with_file(event: Inbound, file: FileInfo) -> Inbound:
    return dataclasses.replace(event, file=file)
