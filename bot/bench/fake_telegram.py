"""The in-process fake Telegram of ``pte-bot bench``: chats, message ids, keyboards, no sockets.

All three contenders of :mod:`bot.bench.throughput` (the product and the two PTB peers) talk
to :class:`FakeBotApi`, a ``BaseRequest`` answering the Bot API in-process from
:class:`FakeTelegram`, which keeps per chat only what the officer's next tap needs. Also
here: the token the contenders are built with, and :class:`BenchError` (a reply never came,
or a button is not there).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from telegram.request import BaseRequest, RequestData

from bot.errors import PteBotError

TOKEN = "123456789:BENCH-fake-token-never-sent-anywhere"
BOT_ID = 123456789


class BenchError(PteBotError):
    """The run is broken (a reply never came): no figure would mean anything."""


@dataclass(slots=True)
class ChatLog:
    """What the fake Telegram server knows of one private chat: no more than the officer's
    next tap needs (10,000 chats are kept at once, and the benchmark measures the bot's
    memory, not this record's)."""

    next_id: int = 1  # message ids are shared by both sides of a private chat
    delivered: int = 0  # sendMessage + editMessageText calls that succeeded
    # The newest bot message carrying an inline keyboard (what the officer taps next): its
    # id and its keyboard as the bot sent it (JSON, ASCII). Its text is not kept: a tap
    # carries the message, and the bot reads only its id.
    keyboard_id: int | None = None
    keyboard: str | None = None
    transcript: list[tuple[str, str, tuple[str, ...]]] | None = None


class FakeTelegram:
    """The server side: chats, message ids, keyboards; calls ``on_delivery`` per reply."""

    BOT_USER: ClassVar[dict[str, Any]] = {
        "id": BOT_ID,
        "is_bot": True,
        "first_name": "Asistente PTE",
        "username": "asistente_pte_bench_bot",
        "can_join_groups": False,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }

    def __init__(self, *, transcripts: Sequence[int] = ()) -> None:
        self.chats: dict[int, ChatLog] = {}
        self.on_delivery: Callable[[int, int], None] | None = None
        self.calls: dict[str, int] = {}
        self._transcripts = set(transcripts)

    def chat(self, chat_id: int) -> ChatLog:
        log = self.chats.get(chat_id)
        if log is None:
            log = self.chats[chat_id] = ChatLog()
            if chat_id in self._transcripts:
                log.transcript = []
        return log

    def new_message_id(self, chat_id: int) -> int:
        log = self.chat(chat_id)
        log.next_id += 1
        return log.next_id - 1

    def button(self, chat_id: int, label: str) -> tuple[dict[str, Any], str]:
        """The message holding the newest keyboard (as a callback query carries it: id,
        chat, keyboard), and the callback data of its ``label``."""
        log = self.chat(chat_id)
        keyboard: dict[str, Any] = json.loads(log.keyboard) if log.keyboard else {}
        buttons = _buttons(keyboard)
        data = buttons.get(label)
        if log.keyboard_id is None or data is None:
            raise BenchError(f"chat {chat_id}: no button {label!r} (offered {list(buttons)})")
        message = {
            "message_id": log.keyboard_id,
            "from": self.BOT_USER,
            "chat": {"id": chat_id, "type": "private", "first_name": "Oficial"},
            "date": int(time.time()),
            "reply_markup": keyboard,
        }
        return message, data

    def call(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.calls[method] = self.calls.get(method, 0) + 1
        if method in ("sendMessage", "editMessageText"):
            return self._message(method, params)
        if method == "getMe":
            return 200, {"ok": True, "result": self.BOT_USER}
        if method == "getUpdates":
            return 200, {"ok": True, "result": []}
        if method in (
            "setMyCommands",
            "deleteMyCommands",
            "answerCallbackQuery",
            "deleteWebhook",
            "setWebhook",
            "close",
            "logOut",
        ):
            return 200, {"ok": True, "result": True}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}

    def _message(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        chat_id = int(params["chat_id"])
        log = self.chat(chat_id)
        if method == "editMessageText":
            message_id = int(params["message_id"])
            if not 0 < message_id < log.next_id:
                return 400, _bad_request("message to edit not found")
        else:
            message_id = self.new_message_id(chat_id)
        text = params["text"]
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self.BOT_USER,
            "chat": {"id": chat_id, "type": "private", "first_name": "Oficial"},
            "date": int(time.time()),
            "text": text,
        }
        if method == "editMessageText":
            message["edit_date"] = message["date"]
        markup = params.get("reply_markup")
        labels: tuple[str, ...] = ()
        if markup is not None:
            keyboard = json.loads(markup)
            message["reply_markup"] = keyboard
            if "inline_keyboard" in keyboard:
                log.keyboard_id, log.keyboard = message_id, markup
                labels = tuple(_buttons(keyboard))
        if log.transcript is not None:
            log.transcript.append((method, text, labels))
        log.delivered += 1
        if self.on_delivery is not None:
            self.on_delivery(chat_id, log.delivered)
        return 200, {"ok": True, "result": message}


def _buttons(keyboard: dict[str, Any]) -> dict[str, str]:
    """An inline keyboard's buttons: label -> callback data."""
    rows = keyboard.get("inline_keyboard", [])
    return {b["text"]: b["callback_data"] for row in rows for b in row}


def _bad_request(reason: str) -> dict[str, Any]:
    return {"ok": False, "error_code": 400, "description": f"Bad Request: {reason}"}


class FakeBotApi(BaseRequest):
    """PTB's HTTP layer replaced by calls into :class:`FakeTelegram` (no sockets)."""

    def __init__(self, server: FakeTelegram) -> None:
        self.server = server

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        # What HTTPXRequest sends (each value JSON-encoded) and what Telegram answers (bytes).
        params = request_data.json_parameters if request_data is not None else {}
        code, body = self.server.call(url.rsplit("/", 1)[-1], params)
        return code, json.dumps(body).encode()
