"""A small fake Telegram Bot API over real HTTP that enforces a flood limit, for ``bench --burst``.

It answers the methods a bot needs for the burst (getMe, getUpdates long polling,
sendMessage, editMessageText, answerCallbackQuery, deleteMessage, setMyCommands,
deleteWebhook) with Telegram's shapes, and refuses messages beyond ``flood_limit`` in any
sliding second with Telegram's 429 (``parameters.retry_after``, whole seconds). Callback
answers, getUpdates and the set-up calls are not messages and are not limited.

Why not the test suite's fake (``tests/fakes/telegram_api.py``)? A product command must not
import from ``tests/``, and that fake is 2,500 lines of strictness (HTML parsing, files,
webhooks) a benchmark does not need; this one is the smallest Bot API the benchmark's two
contenders (our bot and stock PTB) can both poll, and it keeps the numbers the benchmark
reports: messages sent, 429s answered, and when each chat's messages arrived.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

JSON = dict[str, Any]
FLOODED = ("send", "edit", "copy", "forward")


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.retry_after = retry_after

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": str(self)}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


class FloodLimitedBotAPI:
    """One bot's Bot API on loopback. ``on_output(chat_id, message)`` is called for every
    message sent or edited, when the fake accepts it."""

    def __init__(
        self,
        token: str,
        flood_limit: float | None,
        *,
        username: str = "pte_bench_bot",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.username = username
        self.flood_limit = flood_limit
        self.clock = clock
        self.on_output: Callable[[int, JSON], None] | None = None
        self.sent = 0  # messages sent or edited
        self.refused = 0  # 429s answered
        self.answers = 0  # callback queries answered
        self.messages: dict[tuple[int, int], JSON] = {}
        self._next_message: dict[int, int] = {}
        self._updates: deque[JSON] = deque()
        self._next_update = 1
        self._arrived = asyncio.Event()
        self._window: deque[float] = deque()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._closing = False
        self.first_poll_at: float | None = None  # clock() at the first getUpdates (cold start)
        self.polled = asyncio.Event()

    # -------------------------------------------------------------- life
    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self._closing = True
        self._arrived.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/file/bot"

    # ----------------------------------------------------------- driving
    def inject(self, update: JSON) -> int:
        """Queue an update for getUpdates; returns its update_id."""
        update_id = self._next_update
        self._next_update += 1
        self._updates.append({"update_id": update_id, **update})
        self._arrived.set()
        return update_id

    def new_message_id(self, chat_id: int) -> int:
        number = self._next_message.get(chat_id, 0) + 1
        self._next_message[chat_id] = number
        return number

    def chat_json(self, chat_id: int) -> JSON:
        return {"id": chat_id, "type": "private", "first_name": f"Oficial {chat_id}"}

    # ------------------------------------------------------------ serving
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            params = await _params(request)
            handler = self._methods().get(method.lower())
            if handler is None:
                raise ApiError(400, f"Bad Request: method {method} is not implemented here")
            if method.lower().startswith(FLOODED):
                self._check_flood()
            result = await handler(params)
        except ApiError as error:
            return web.json_response(error.body(), status=error.status)
        return web.json_response({"ok": True, "result": result})

    def _methods(self) -> dict[str, Callable[[JSON], Any]]:
        return {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "deletewebhook": self._true,
            "setmycommands": self._true,
            "close": self._true,
            "logout": self._true,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "answercallbackquery": self._answer,
            "deletemessage": self._true,
        }

    def _check_flood(self) -> None:
        limit = self.flood_limit
        if limit is None:
            return
        now = time.monotonic()
        window = self._window
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= limit:
            self.refused += 1
            retry_after = max(1, math.ceil(1.0 - (now - window[0])))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        window.append(now)

    async def _true(self, params: JSON) -> bool:
        return True

    async def _get_me(self, params: JSON) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Asistente PTE",
            "username": self.username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, params: JSON) -> list[JSON]:
        if self.first_poll_at is None:
            self.first_poll_at = self.clock()
            self.polled.set()
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = float(params.get("timeout") or 0)
        while self._updates and self._updates[0]["update_id"] < offset:
            self._updates.popleft()  # confirmed by this offset
        deadline = time.monotonic() + timeout
        while not self._updates and not self._closing:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                break
        return [self._updates[i] for i in range(min(limit, len(self._updates)))]

    def _chat_id(self, params: JSON) -> int:
        try:
            return int(params["chat_id"])
        except (KeyError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None

    async def _send_message(self, params: JSON) -> JSON:
        chat_id = self._chat_id(params)
        text = str(params.get("text") or "")
        if not text:
            raise ApiError(400, "Bad Request: message text is empty")
        message: JSON = {
            "message_id": self.new_message_id(chat_id),
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "Asistente PTE"},
            "chat": self.chat_json(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return self._output(chat_id, message)

    async def _edit_message_text(self, params: JSON) -> JSON:
        chat_id = self._chat_id(params)
        key = (chat_id, int(params.get("message_id") or 0))
        old = self.messages.get(key)
        if old is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup")
        message = {**old, "text": str(params.get("text") or ""), "edit_date": int(time.time())}
        message.pop("reply_markup", None)
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        if message["text"] == old["text"] and message.get("reply_markup") == old.get(
            "reply_markup"
        ):
            raise ApiError(400, "Bad Request: message is not modified")
        return self._output(chat_id, message)

    def _output(self, chat_id: int, message: JSON) -> JSON:
        self.messages[(chat_id, message["message_id"])] = message
        self.sent += 1
        if self.on_output is not None:
            self.on_output(chat_id, message)
        return message

    async def _answer(self, params: JSON) -> bool:
        self.answers += 1
        return True


async def _params(request: web.Request) -> JSON:
    """The call's parameters, from a query string, a form (PTB) or a JSON body; nested
    values (reply_markup) arrive JSON-encoded in forms, as Telegram accepts them."""
    params: JSON = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.can_read_body:
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        try:
            params["reply_markup"] = json.loads(markup)
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON") from None
    return params
