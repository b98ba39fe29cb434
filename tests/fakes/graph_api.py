"""A strict fake of the WhatsApp Cloud API (Graph API), on loopback, and of Meta's webhooks.

The bot is pointed at it with ``WHATSAPP_GRAPH_URL=api.base_url``. It answers what the
channel calls, with the Cloud API's shapes and error objects, and refuses what the real one
refuses: more than 3 reply buttons, button titles over 20 characters, list rows over 10,
row titles over 24, list button labels over 20, bodies over 1024 (interactive, captions) or
4096 (text), duplicate ids or titles, unknown media or media uploaded more than 30 days
ago (Meta keeps an upload that long; on the fake's ``clock``), templates not approved, a
missing or wrong bearer token (190). Every call is recorded in ``calls``.

As Meta, it delivers signed webhooks to ``webhook_url``: simulated people write, tap buttons
and list rows, send images and documents (served through the media download flow: ``GET
/{media-id}`` for the URL and size, then the URL with the bearer token), and the fake posts
status callbacks on demand. With ``close_window(wa_id)`` a free-form message to that person
fails with 131047 (at once, or as a failed status callback with ``window_errors="async"``)
until they write again.

    async with FakeGraphAPI() as api:
        api.webhook_url = "http://127.0.0.1:8080/webhooks/whatsapp"
        ana = api.user("51987654321", "Ana")
        greeting, notice = await ana.say("hola", n=2)
        [menu] = await ana.tap("Acepto")  # the thanks joined in front of the menu
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web

from conversations.text import normalize

JSONDict = dict[str, Any]
TEXT_LIMIT = 4096
BODY_LIMIT = 1024
MAX_BUTTONS = 3
BUTTON_TITLE = 20
MAX_ROWS = 10
ROW_TITLE = 24
ROW_DESCRIPTION = 72
LIST_BUTTON = 20
MAX_SECTIONS = 10
MEDIA_KEPT = 30 * 24 * 3600  # seconds Meta keeps an uploaded file


class GraphRefusal(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _invalid(message: str) -> GraphRefusal:
    return GraphRefusal(400, 131009, f"(#131009) Parameter value is not valid: {message}")


@dataclass
class Call:
    method: str
    path: str
    status: int
    error: str | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status} {self.error or ''}".strip()


@dataclass
class Sent:
    """One message the bot sent, as the person sees it."""

    wamid: str
    to: str
    type: str  # text | button | list | document | template
    text: str = ""
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (id, title)
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (id, title, description)
    list_button: str = ""
    document: bytes | None = None
    filename: str | None = None
    template: str | None = None

    @property
    def labels(self) -> list[str]:
        return [title for _, title in self.buttons] + [title for _, title, _ in self.rows]

    def __str__(self) -> str:
        return f"[{self.type}] {self.text[:80]!r} {self.labels or ''}"


@dataclass
class Media:
    content: bytes
    mime: str
    filename: str | None = None
    declared_size: int | None = None
    added_at: float = 0.0  # on the fake's clock


class FakeWhatsAppUser:
    def __init__(self, api: FakeGraphAPI, wa_id: str, name: str) -> None:
        self.api, self.wa_id, self.name = api, wa_id, name
        self.outputs: list[Sent] = []
        self._cursor = 0

    @property
    def last(self) -> Sent:
        assert self.outputs, f"nothing was sent to {self.wa_id}"
        return self.outputs[-1]

    # ---- what the person does ----
    async def send(self, kind: str, content: JSONDict, context: str | None = None) -> JSONDict:
        message: JSONDict = {
            "from": self.wa_id,
            "id": f"wamid.IN{next(self.api._ids)}",
            "timestamp": str(int(self.api.clock())),
            "type": kind,
            kind: content,
        }
        if context is not None:
            message["context"] = {"from": self.api.display_number, "id": context}
        await self.deliver(message)
        return message

    async def deliver(self, message: JSONDict) -> None:
        """Post (or post again: a redelivery) one of this person's messages."""
        self._cursor = len(self.outputs)
        self.api.windows_closed.discard(self.wa_id)
        status, _ = await self.api.deliver(self.api.envelope(messages=[message], user=self))
        assert status == 200, f"webhook answered {status}"

    async def say(self, text: str, n: int = 1) -> list[Sent]:
        await self.send("text", {"body": text})
        return await self.expect(n)

    def find(self, label: str) -> tuple[Sent, str, str]:
        """(message, id, kind) of the newest button or list row titled ``label``."""
        wanted = normalize(label)
        for sent in reversed(self.outputs):
            for ident, title in sent.buttons:
                if title == label or normalize(title) == wanted:
                    return sent, ident, "button_reply"
            for ident, title, description in sent.rows:
                if label in (title, description) or normalize(title) == wanted:
                    return sent, ident, "list_reply"
        shown = self.outputs[-1].labels if self.outputs else []
        raise AssertionError(f"no button or row {label!r}; the last message offers {shown}")

    async def tap(self, label: str, n: int = 1) -> list[Sent]:
        sent, ident, kind = self.find(label)
        titles = dict(sent.buttons) | {i: t for i, t, _ in sent.rows}
        title = titles[ident]
        await self.send(
            "interactive", {"type": kind, kind: {"id": ident, "title": title}}, sent.wamid
        )
        return await self.expect(n)

    async def send_image(
        self, content: bytes, *, size: int | None = None, caption: str = ""
    ) -> str:
        media_id = self.api.add_media(content, "image/jpeg", size=size)
        body: JSONDict = {"id": media_id, "mime_type": "image/jpeg", "sha256": "x"}
        if caption:
            body["caption"] = caption
        await self.send("image", body)
        return media_id

    async def send_document(
        self, content: bytes, filename: str, mime: str = "application/pdf", size: int | None = None
    ) -> str:
        media_id = self.api.add_media(content, mime, filename, size)
        body = {"id": media_id, "filename": filename, "mime_type": mime, "sha256": "x"}
        await self.send("document", body)
        return media_id

    # ---- what the person sees ----
    async def expect(self, n: int = 1, timeout: float = 10.0) -> list[Sent]:  # noqa: ASYNC109
        start = self._cursor
        if not await self.api.wait_for(lambda: len(self.outputs) - start >= n, timeout):
            got = "\n".join(f"  - {m}" for m in self.outputs[start:]) or "  (nothing)"
            failing = "\n".join(f"  {c}" for c in self.api.calls if c.status != 200)
            raise AssertionError(
                f"expected {n} message(s) to {self.wa_id}; got:\n{got}\nrefused calls:\n{failing}"
            )
        self._cursor = start + n
        return self.outputs[start : start + n]

    async def settle(self, timeout: float = 10.0) -> list[Sent]:  # noqa: ASYNC109
        """Wait until the bot is done (see :meth:`FakeGraphAPI.quiet`); the new messages to
        this person."""
        await self.api.quiet(timeout)
        found = self.outputs[self._cursor :]
        self._cursor = len(self.outputs)
        return found


class FakeGraphAPI:
    def __init__(
        self,
        token: str = "wa-test-token",
        phone_number_id: str = "109876543210",
        app_secret: str = "wa-app-secret",
        *,
        templates: frozenset[str] = frozenset({"aviso_tramite"}),
    ) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.app_secret = app_secret
        self.display_number = "51100000000"
        self.templates = templates
        self.webhook_url: str | None = None
        # The harness's wait until the bot is done: every delivery it acknowledged has run,
        # every outbox row is sent, held or failed, and marked so (see quiet()).
        self.settled: Callable[[], Awaitable[None]] | None = None
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.media: dict[str, Media] = {}
        self.downloads: list[str] = []  # media ids whose bytes were fetched
        self.windows_closed: set[str] = set()
        self.window_errors = "sync"  # or "async": 131047 comes as a failed status callback
        self.clock: Callable[[], float] = time.time
        # The next sends fail, in order: (status, code, text); None lets that send through.
        # Status 200: the send is accepted, then fails with a status callback (code, title).
        self.failures: list[tuple[int, int, str] | None] = []
        self._users: dict[str, FakeWhatsAppUser] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v21.0"

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v21.0/{number}/messages", self._messages)
        app.router.add_post("/v21.0/{number}/media", self._upload)
        app.router.add_get("/v21.0/{media_id}", self._media_info)
        app.router.add_get("/download/{media_id}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- people, media, webhooks ----
    def user(self, wa_id: str, name: str = "Ana") -> FakeWhatsAppUser:
        return self._users.setdefault(wa_id, FakeWhatsAppUser(self, wa_id, name))

    def close_window(self, wa_id: str) -> None:
        self.windows_closed.add(wa_id)

    def add_media(
        self, content: bytes, mime: str, filename: str | None = None, size: int | None = None
    ) -> str:
        media_id = f"{next(self._ids) + 900000}"
        self.media[media_id] = Media(content, mime, filename, size, self.clock())
        return media_id

    def envelope(
        self, *, messages: list[JSONDict] | None = None, statuses: list[JSONDict] | None = None,
        user: FakeWhatsAppUser | None = None,
    ) -> JSONDict:  # fmt: skip
        value: JSONDict = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.display_number,
                "phone_number_id": self.phone_number_id,
            },
        }
        if user is not None:
            value["contacts"] = [{"profile": {"name": user.name}, "wa_id": user.wa_id}]
        if messages:
            value["messages"] = messages
        if statuses:
            value["statuses"] = statuses
        change = {"field": "messages", "value": value}
        entry = {"id": "WABA", "changes": [change]}
        return {"object": "whatsapp_business_account", "entry": [entry]}

    async def deliver(
        self, payload: JSONDict, *, signature: str | None = "valid", raw: bytes | None = None
    ) -> tuple[int, str]:
        """POST a webhook as Meta does: ``signature`` "valid", None (no header) or a value."""
        assert self.webhook_url is not None
        assert self._session is not None
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "valid":
            digest = hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        async with self._session.post(self.webhook_url, data=body, headers=headers) as response:
            return response.status, await response.text()

    async def status(
        self, sent: Sent, status: str, errors: list[JSONDict] | None = None
    ) -> tuple[int, str]:
        callback: JSONDict = {
            "id": sent.wamid,
            "status": status,
            "timestamp": str(int(self.clock())),
            "recipient_id": sent.to,
        }
        if errors:
            callback["errors"] = errors
        return await self.deliver(self.envelope(statuses=[callback]))

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:  # noqa: ASYNC109
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(condition), timeout)
            except TimeoutError:
                return condition()
        return True

    async def quiet(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until our webhooks in flight (status callbacks) are delivered and the bot is
        done with everything, again until a round makes no new call to us: an event the
        harness's ``settled`` waits for, not a lull. ``timeout`` is only a safety net."""
        assert self.settled is not None, "quiet() needs the harness's wait (api.settled)"
        try:
            async with asyncio.timeout(timeout):
                while True:
                    calls = len(self.calls)
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
                    await self.settled()
                    if len(self.calls) == calls and not self._tasks:
                        return
        except TimeoutError:
            busy = "\n".join(f"  {c}" for c in self.calls[-5:])
            raise AssertionError(
                f"the bot was not done after {timeout}s; last calls:\n{busy}"
            ) from None

    async def _later(self, work: Awaitable[Any]) -> None:
        await asyncio.sleep(0.05)  # after our answer reached the bot
        await work

    async def _bump(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ---- the Graph API ----
    def _authorize(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            raise GraphRefusal(401, 190, "Invalid OAuth access token - Cannot parse access token")

    async def _answer(self, request: web.Request, work: Callable[[], Any]) -> web.Response:
        try:
            self._authorize(request)
            result = await work()
        except GraphRefusal as refusal:
            self.calls.append(Call(request.method, request.path, refusal.status, refusal.message))
            await self._bump()
            error = {"message": refusal.message, "type": "OAuthException", "code": refusal.code}
            return web.json_response({"error": error}, status=refusal.status)
        self.calls.append(Call(request.method, request.path, 200))
        await self._bump()
        return web.json_response(result)

    async def _messages(self, request: web.Request) -> web.Response:
        async def work() -> JSONDict:
            if request.match_info["number"] != self.phone_number_id:
                raise GraphRefusal(400, 100, "Unsupported post request: unknown phone number id")
            body = await request.json()
            failure = self.failures.pop(0) if self.failures else None
            if failure is not None and failure[0] != 200:
                status, code, text = failure
                raise GraphRefusal(status, code, text)
            sent = self._check(body)
            if failure is not None:  # 200: accepted now, failed by a status callback
                self._fail_later(sent, failure[1], failure[2])
            elif sent.type != "template" and sent.to in self.windows_closed:
                if self.window_errors == "sync":
                    raise GraphRefusal(400, 131047, "(#131047) Re-engagement message")
                self._fail_later(sent, 131047, "Re-engagement message")
            else:
                self.sent.append(sent)
                self.user(sent.to).outputs.append(sent)
            return {
                "messaging_product": "whatsapp",
                "contacts": [{"input": sent.to, "wa_id": sent.to}],
                "messages": [{"id": sent.wamid}],
            }

        return await self._answer(request, work)

    def _fail_later(self, sent: Sent, code: int, title: str) -> None:
        """Accepted now, failed a moment later by a status callback, as Meta may do."""
        failed = {"code": code, "title": title}
        task = asyncio.create_task(self._later(self.status(sent, "failed", [failed])))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check(self, body: JSONDict) -> Sent:
        if body.get("messaging_product") != "whatsapp":
            raise GraphRefusal(400, 100, "messaging_product must be whatsapp")
        to = str(body.get("to", ""))
        if not to.isdigit():
            raise GraphRefusal(400, 100, "Invalid parameter: to")
        sent = Sent(f"wamid.OUT{next(self._ids)}", to, str(body.get("type")))
        if sent.type == "text":
            sent.text = _bounded(body["text"]["body"], TEXT_LIMIT, "text.body")
        elif sent.type == "interactive":
            self._check_interactive(body["interactive"], sent)
        elif sent.type == "document":
            doc = body["document"]
            media = self.media.get(str(doc.get("id")))
            if media is None:
                raise GraphRefusal(400, 131053, "Media upload error: unknown media id")
            if self.clock() - media.added_at > MEDIA_KEPT:
                raise GraphRefusal(400, 131053, "Media upload error: media id expired")
            sent.document, sent.filename = media.content, doc.get("filename")
            sent.text = _bounded(doc.get("caption", "x"), BODY_LIMIT, "caption")
            if "caption" not in doc:
                sent.text = ""
        elif sent.type == "template":
            template = body["template"]
            if template.get("name") not in self.templates:
                raise GraphRefusal(404, 132001, "Template name does not exist in the translation")
            if not template.get("language", {}).get("code"):
                raise _invalid("template.language.code")
            sent.template = template["name"]
        else:
            raise GraphRefusal(400, 131051, f"Unsupported message type {sent.type}")
        return sent

    def _check_interactive(self, interactive: JSONDict, sent: Sent) -> None:
        sent.text = _bounded(interactive["body"]["text"], BODY_LIMIT, "interactive.body.text")
        action = interactive["action"]
        if interactive["type"] == "button":
            sent.type = "button"
            buttons = action.get("buttons") or []
            if not 1 <= len(buttons) <= MAX_BUTTONS:
                raise _invalid(f"buttons: {len(buttons)}, at most {MAX_BUTTONS}")
            for button in buttons:
                reply = button["reply"]
                title = _bounded(reply["title"], BUTTON_TITLE, "button title")
                sent.buttons.append((_bounded(reply["id"], 256, "button id"), title))
            _unique([i for i, _ in sent.buttons], "button ids")
            _unique([t for _, t in sent.buttons], "button titles")
        elif interactive["type"] == "list":
            sent.type = "list"
            sent.list_button = _bounded(action["button"], LIST_BUTTON, "action.button")
            sections = action.get("sections") or []
            if not 1 <= len(sections) <= MAX_SECTIONS:
                raise _invalid("sections")
            for section in sections:
                if len(sections) > 1 or "title" in section:
                    _bounded(section.get("title", ""), ROW_TITLE, "section title")
                for row in section.get("rows") or []:
                    sent.rows.append(
                        (
                            _bounded(row["id"], 200, "row id"),
                            _bounded(row["title"], ROW_TITLE, "row title"),
                            _bounded(row.get("description", "-"), ROW_DESCRIPTION, "row desc"),
                        )
                    )
            if not 1 <= len(sent.rows) <= MAX_ROWS:
                raise _invalid(f"rows: {len(sent.rows)}, at most {MAX_ROWS}")
            _unique([i for i, _, _ in sent.rows], "row ids")
        else:
            raise _invalid(f"interactive type {interactive['type']}")

    async def _upload(self, request: web.Request) -> web.Response:
        async def work() -> JSONDict:
            form = await request.post()
            upload = form.get("file")
            if form.get("messaging_product") != "whatsapp" or not hasattr(upload, "file"):
                raise GraphRefusal(400, 100, "Invalid parameter: file")
            content = upload.file.read()  # type: ignore[union-attr]
            mime = str(form.get("type", ""))
            return {"id": self.add_media(content, mime, upload.filename)}  # type: ignore[union-attr]

        return await self._answer(request, work)

    async def _media_info(self, request: web.Request) -> web.Response:
        async def work() -> JSONDict:
            media_id = request.match_info["media_id"]
            media = self.media.get(media_id)
            if media is None:
                raise GraphRefusal(400, 100, "Unsupported get request: unknown media id")
            size = media.declared_size if media.declared_size is not None else len(media.content)
            return {
                "messaging_product": "whatsapp",
                "url": f"http://127.0.0.1:{self.port}/download/{media_id}?sig=abc",
                "mime_type": media.mime,
                "sha256": hashlib.sha256(media.content).hexdigest(),
                "file_size": size,
                "id": media_id,
            }

        return await self._answer(request, work)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        try:
            self._authorize(request)
        except GraphRefusal as refusal:
            self.calls.append(Call("GET", request.path, 401, refusal.message))
            return web.Response(status=401)
        media_id = request.match_info["media_id"]
        self.calls.append(Call("GET", request.path, 200))
        self.downloads.append(media_id)
        media = self.media[media_id]
        return web.Response(body=media.content, content_type=media.mime)


def _bounded(value: object, limit: int, what: str) -> str:
    text = str(value)
    if not text:
        raise _invalid(f"{what} is empty")
    if len(text) > limit:
        raise _invalid(f"{what} has {len(text)} characters, at most {limit}")
    return text


def _unique(values: list[str], what: str) -> None:
    if len(values) != len(set(values)):
        raise _invalid(f"{what} must be unique")
