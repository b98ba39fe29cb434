"""``pte-bot bench``: synthetic officers through the real PTB ``Application``, and two PTB peers.

Every officer has the same conversation (8 updates): ``/start`` (consent notice), "Acepto",
"📋 Requisitos y pasos", then "Siguiente ▶" five times (the card is edited in place). Officers
are interleaved in waves: every officer's step 1, then every officer's step 2..., and an
officer's next step is fed only once the bot's reply to the previous one was delivered (it
taps the button that reply carried, found by its label, as a person would).

Updates are built as Bot API JSON, parsed with ``Update.de_json`` and fed one at a time to
``Application.process_update`` (what PTB's own sequential update fetcher does, without the
queue hop), identically for the three contenders:

* **product**: :class:`~bot.channels.telegram.TelegramChannel` on a fresh SQLite file in a
  temporary directory: state, event id and replies committed per update, replies sent by the
  outbox worker. No rate limiter (Telegram's 30 messages/s would be the only thing measured).
* **ceiling**: a stock ``ConversationHandler`` with the same texts and keyboards, in memory.
* **pickle**: the same handler, ``persistent=True``, with ``PicklePersistence`` flushed after
  every update (``await application.update_persistence()``): PTB's stock way to be durable.

All three talk to :class:`FakeBotApi`, a ``BaseRequest`` answering the Bot API in-process.
Latency of an update: from its JSON being parsed until the last reply it caused reaches the
fake Bot API. The last printed line is the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import warnings
from array import array
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import SecretStr
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    PersistenceInput,
    PicklePersistence,
)
from telegram.request import BaseRequest, RequestData
from telegram.warnings import PTBUserWarning

from bot.app import create_app
from bot.channels.telegram import TelegramApp, TelegramChannel
from bot.delivery.payload import JOIN_SEPARATOR
from bot.errors import PteBotError
from bot.settings import Settings
from bot.texts import Texts
from conversations import requirements
from conversations.names import FlowName, menu_entry

TOKEN = "123456789:BENCH-fake-token-never-sent-anywhere"
BOT_ID = 123456789
FIRST_CHAT = 700_000_001
REPLY_TIMEOUT = 15.0  # seconds an officer waits for a reply before the run is declared broken
SCALING_SIZES = (1_000, 10_000)
ROUNDS = 3  # product, ceiling and Pickle peer, one after another, this many times
TARGETS = {
    "updates_per_s": 1_000.0,
    "ratio_vs_ceiling": 0.75,
    "ratio_vs_pickle": 4.0,  # issue 18 (was 20x, above what the in-memory peer reaches)
    "p99_ms": 10.0,
    "scaling_tolerance": 0.15,
}


class BenchError(PteBotError):
    """The run is broken (a reply never came): no figure would mean anything."""


# --------------------------------------------------------------------------- fake Bot API
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


# --------------------------------------------------------------------------- the officers
@dataclass(frozen=True)
class Action:
    text: str  # a command ("/start") or the label of the button to tap
    replies: int  # messages the bot sends or edits in answer

    @property
    def is_command(self) -> bool:
        return self.text.startswith("/")


def script(texts: Texts) -> list[Action]:
    """The conversation every officer has (8 updates)."""
    return [
        # One message each since issue 18: the acknowledgement goes in front of the question.
        Action("/start", 1),  # welcome + consent notice
        Action(texts.label("btn.accept", {}), 1),  # thanks + main menu
        Action(texts.label("menu.requisitos", {}), 1),  # card 1 (a new message)
        *(Action(texts.label("btn.next", {}), 1) for _ in range(5)),  # cards 2-6, edited
    ]


def _user(chat_id: int) -> dict[str, Any]:
    number = chat_id - FIRST_CHAT + 1
    return {
        "id": chat_id,
        "is_bot": False,
        "first_name": f"Oficial {number}",
        "language_code": "es",
    }


def update_json(
    update_id: int, chat_id: int, action: Action, server: FakeTelegram
) -> dict[str, Any]:
    """The Bot API JSON of an officer's action, as ``getUpdates`` would return it."""
    user = _user(chat_id)
    if action.is_command:
        command = action.text.split()[0]
        message = {
            "message_id": server.new_message_id(chat_id),
            "from": user,
            "chat": {"id": chat_id, "type": "private", "first_name": user["first_name"]},
            "date": int(time.time()),
            "text": action.text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
        }
        return {"update_id": update_id, "message": message}
    on, data = server.button(chat_id, action.text)
    query = {
        "id": f"{chat_id}-{update_id}",
        "from": user,
        "chat_instance": str(-chat_id),
        "message": on,
        "data": data,
    }
    return {"update_id": update_id, "callback_query": query}


# --------------------------------------------------------------------------- measuring
class Tracker:
    """Which officer waits for which reply; latencies of completed updates."""

    def __init__(self, server: FakeTelegram) -> None:
        self._expected: dict[int, tuple[int, float]] = {}  # chat -> (delivered count, t0)
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self.latencies = array("d")  # seconds; 8 bytes each (a list of floats: 32)
        server.on_delivery = self.delivered

    def expect(self, chat_id: int, count: int, t0: float) -> None:
        self._expected[chat_id] = (count, t0)

    def delivered(self, chat_id: int, count: int) -> None:
        expected = self._expected.get(chat_id)
        if expected is None or count < expected[0]:
            return
        self.latencies.append(time.perf_counter() - expected[1])
        del self._expected[chat_id]
        waiter = self._waiters.pop(chat_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def ready(self, chat_id: int) -> None:
        """Wait for the reply to this officer's previous update."""
        if chat_id not in self._expected:
            return
        waiter = self._waiters[chat_id] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(waiter, REPLY_TIMEOUT)
        except TimeoutError:
            raise BenchError(f"chat {chat_id}: no reply within {REPLY_TIMEOUT:.0f}s") from None

    async def all_replied(self) -> None:
        for chat_id in list(self._expected):
            await self.ready(chat_id)


class Contender(Protocol):
    name: str

    @property
    def application(self) -> TelegramApp: ...

    async def start(self) -> None: ...

    async def feed(self, update: Update) -> None: ...

    async def drain(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Result:
    name: str
    officers: int
    updates: int
    wall_s: float
    cpu_s: float  # CPU time of the whole process (all threads) during the run
    latencies: Sequence[float]
    replies_ok: bool
    transcript: list[tuple[str, str, tuple[str, ...]]]
    peak_rss_mb: float  # since the last reset_peak_rss() (see peak_rss_mb())
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_us_per_update(self) -> float:
        return self.cpu_s / self.updates * 1e6 if self.updates else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
        return ordered[index] * 1000.0


_EARLIER_PEAK_KIB = 0  # the highest VmHWM before a reset: resetting it resets ru_maxrss too
_SAMPLED_KIB = 0  # the highest VmRSS sampled since the last reset
SAMPLE_EVERY = 500  # updates between two samples of VmRSS


def process_peak_rss_mb() -> float:
    """The process's peak RSS since it started (``ru_maxrss``, and the peaks reset since)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    mb = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    return max(mb, max(_EARLIER_PEAK_KIB, _SAMPLED_KIB, _status_kib("VmHWM") or 0) / 1024)


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak_rss() -> bool:
    """Start a new peak from the RSS of now: on Linux, ``5`` to ``/proc/self/clear_refs``
    resets ``VmHWM``. Freed memory is handed back to the system first (``gc.collect()``,
    glibc's ``malloc_trim``), so a part's peak does not carry what an earlier part freed but
    the allocator kept. False where the peak cannot be reset (then it is the process's)."""
    global _EARLIER_PEAK_KIB, _SAMPLED_KIB
    gc.collect()
    _trim()
    _EARLIER_PEAK_KIB = max(_EARLIER_PEAK_KIB, _status_kib("VmHWM") or 0, _SAMPLED_KIB)
    _SAMPLED_KIB = 0
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def _trim() -> None:
    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim with
        return


def sample_rss() -> None:
    """Note the RSS of now: the kernel updates ``VmHWM`` lazily, so a peak that is gone
    again by the time it is read can be missed; the bench samples during a run too."""
    global _SAMPLED_KIB
    _SAMPLED_KIB = max(_SAMPLED_KIB, _status_kib("VmRSS") or 0)


def peak_rss_mb() -> float:
    """Peak RSS since :func:`reset_peak_rss` (``VmHWM`` and the samples of
    :func:`sample_rss`), or since the process started where it cannot be reset."""
    hwm = _status_kib("VmHWM")
    if hwm is None:
        return process_peak_rss_mb()
    return max(hwm, _SAMPLED_KIB) / 1024


async def drive(
    contender: Contender, server: FakeTelegram, officers: int, actions: Sequence[Action]
) -> Result:
    tracker = Tracker(server)
    await contender.start()
    try:
        bot = contender.application.bot
        gc.collect()
        update_id = 0
        cpu_started = time.process_time()
        started = time.perf_counter()
        for action in actions:
            for chat_id in range(FIRST_CHAT, FIRST_CHAT + officers):
                await tracker.ready(chat_id)
                update_id += 1
                if update_id % SAMPLE_EVERY == 0:
                    sample_rss()
                data = update_json(update_id, chat_id, action, server)
                t0 = time.perf_counter()
                tracker.expect(chat_id, server.chat(chat_id).delivered + action.replies, t0)
                await contender.feed(Update.de_json(data, bot))
                if getattr(contender, "window", 1) <= 1:
                    # One at a time means to its end: the peers reply inside process_update,
                    # the product's outbox worker sends after the turn's commit.
                    await tracker.ready(chat_id)
        await tracker.all_replied()
        await contender.drain()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        sample_rss()
        rss = peak_rss_mb()
        total_replies = sum(action.replies for action in actions)
        replies_ok = len(tracker.latencies) == update_id and all(
            server.chat(chat_id).delivered == total_replies
            for chat_id in range(FIRST_CHAT, FIRST_CHAT + officers)
        )
        extra = await contender_checks(contender, officers, update_id)
    finally:
        await contender.stop()  # also after a failure: no thread left behind
    first = server.chat(FIRST_CHAT).transcript or []
    return Result(
        contender.name,
        officers,
        update_id,
        wall,
        cpu,
        tracker.latencies,
        replies_ok,
        first,
        rss,
        extra,
    )


async def contender_checks(contender: Contender, officers: int, updates: int) -> dict[str, Any]:
    if isinstance(contender, Product):
        return await contender.checks(officers, updates)
    return {}


# --------------------------------------------------------------------------- product
class Product:
    """Our bot: ``TelegramChannel`` + ``App`` on a fresh SQLite file."""

    name = "product"

    def __init__(
        self, settings: Settings, server: FakeTelegram, data_dir: Path, window: int = 1
    ) -> None:
        # window 1: each update runs to its end before the next is fed (like the peers);
        # more: fed as polling feeds them, through the channel's update processor (chats
        # at the same time, one chat in order), with at most ``window`` in flight.
        self.window = window
        self._slots: asyncio.Semaphore | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self.settings = settings.model_copy(
            update={
                "data_dir": data_dir,
                "telegram_bot_token": SecretStr(TOKEN),
                "staff_telegram_ids": frozenset(),
            }
        )
        self.server = server
        self.channel: TelegramChannel | None = None

    @property
    def application(self) -> TelegramApp:
        assert self.channel is not None
        return self.channel.application

    async def start(self) -> None:
        app = await create_app(self.settings)
        self.channel = TelegramChannel(
            app,
            request=FakeBotApi(self.server),
            get_updates_request=FakeBotApi(self.server),
            rate_limiter=False,
        )
        await self.channel.start()

    async def feed(self, update: Update) -> None:
        application = self.application
        if self.window <= 1:
            await application.process_update(update)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.window)
        slots = self._slots
        await slots.acquire()
        task = asyncio.create_task(
            application.update_processor.process_update(update, application.process_update(update))
        )
        self._in_flight.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._in_flight.discard(task)
            slots.release()

        task.add_done_callback(done)

    async def drain(self) -> None:
        assert self.channel is not None
        await asyncio.gather(*self._in_flight)
        await self.channel.worker.drain()

    async def checks(self, officers: int, updates: int) -> dict[str, Any]:
        """What the database holds: every update, state and reply committed."""
        assert self.channel is not None
        async with self.channel.app.store.reading() as conn:
            counts = {}
            for name, sql in (
                ("events", "SELECT count(*) FROM processed_events"),
                ("conversations", "SELECT count(*) FROM conversations"),
                ("sent", "SELECT count(*) FROM outbox WHERE state = 'sent'"),
                ("outbox", "SELECT count(*) FROM outbox"),
            ):
                rows = list(await conn.execute_fetchall(sql))
                counts[name] = int(rows[0][0])
            first = await conn.execute_fetchall(
                "SELECT payload FROM outbox WHERE chat_id = ? ORDER BY id", (str(FIRST_CHAT),)
            )
        durable = (
            counts["events"] == updates
            and counts["conversations"] == officers
            and counts["sent"] == counts["outbox"]
        )
        store = self.channel.app.store
        return {
            "db": counts,
            "durable_ok": durable,
            "first_payloads": [r[0] for r in first],
            "turns_per_commit": round(store.batched_turns / max(1, store.batches), 2),
            # Delivery marks committed with a batch of turns, not in a transaction alone.
            "marks_carried": store.carried_marks,
        }

    async def stop(self) -> None:
        assert self.channel is not None
        await self.channel.stop()
        await self.channel.app.close()


# --------------------------------------------------------------------------- PTB peers
CONSENT, MENU, CARD, READY = 0, 1, 10, 20  # CARD + i: showing card i


class PeerTexts:
    """What the peers say: the product's own messages, rendered per message (same work).

    The template data and button layout of each message are taken from the outbox rows the
    product committed for the first officer, so the peers follow the templates and the menu
    as they are today; the rendering (Jinja, "Paso k de N", labels) is redone per message,
    as the product's outbox worker does. The transcripts are compared after the run.
    """

    def __init__(self, texts: Texts, payloads: Sequence[str]) -> None:
        self.texts = texts
        self.messages: dict[str, dict[str, Any]] = {}
        for payload in payloads:
            body = json.loads(payload)
            self.messages.setdefault(body["key"], body)

    def has(self, key: str) -> bool:
        return key in self.messages

    def render(self, key: str) -> str:
        from bot.channels.telegram import CAPABILITIES  # the peers are Telegram bots too

        body = self.messages[key]
        text = self.texts.render(key, {**body["data"], "canal": CAPABILITIES.as_data()})
        progress = body.get("progress")
        if progress:
            paso = self.texts.render("common.paso", {"k": progress[0], "n": progress[1]})
            text = paso + "\n" + text
        return text

    def keyboard(self, key: str) -> InlineKeyboardMarkup | None:
        rows = self.messages[key].get("choices")
        if not rows:
            return None
        # Callback data: the choice id alone (the product prefixes its question counter).
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(self.texts.label(label, data), callback_data=choice)
                    for choice, label, data in row
                ]
                for row in rows
            ]
        )


Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, int]]


def conversation(peer: PeerTexts, *, persistent: bool) -> ConversationHandler[Any]:
    """The same conversation as a stock ``ConversationHandler``."""
    cards = [f"requisitos.{name}" for name in requirements.CARDS]

    async def send(chat: int, context: ContextTypes.DEFAULT_TYPE, *keys: str) -> None:
        # Several keys: one message, as the product joins an acknowledgement and a question.
        await context.bot.send_message(
            chat,
            JOIN_SEPARATOR.join(peer.render(key) for key in keys),
            parse_mode=ParseMode.HTML,
            reply_markup=peer.keyboard(keys[-1]),
        )

    def chat_of(update: Update) -> int:
        assert update.effective_chat is not None
        return update.effective_chat.id

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        chat = chat_of(update)
        welcome = ("consent.welcome",) if peer.has("consent.welcome") else ()
        await send(chat, context, *welcome, "consent.notice")
        return CONSENT

    async def consent(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        query = update.callback_query
        assert query is not None
        await query.answer()
        accepted = query.data == "accept"
        answer = "consent.accepted" if accepted else "consent.declined"
        await send(chat_of(update), context, answer, "menu.main")
        return MENU

    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        query = update.callback_query
        assert query is not None
        await query.answer()
        if query.data != menu_entry(FlowName.REQUIREMENTS):
            await send(chat_of(update), context, "menu.main")
            return MENU
        await send(chat_of(update), context, cards[0])
        return CARD

    def card(index: int) -> Callback:
        async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            query = update.callback_query
            assert query is not None
            assert query.message is not None
            await query.answer()
            if query.data == "menu":
                await send(chat_of(update), context, "menu.main")
                return MENU
            target = index + 1 if query.data == "next" else max(0, index - 1)
            key = cards[target] if target < len(cards) else "requisitos.ready"
            await context.bot.edit_message_text(
                peer.render(key),
                chat_id=chat_of(update),
                message_id=query.message.message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=peer.keyboard(key),
            )
            return CARD + target if target < len(cards) else READY

        return answer

    async def ready(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        query = update.callback_query
        assert query is not None
        await query.answer()
        await send(chat_of(update), context, "menu.main")
        return MENU

    states: dict[object, list[Any]] = {
        CONSENT: [CallbackQueryHandler(consent, pattern="^(accept|decline)$")],
        MENU: [CallbackQueryHandler(menu, pattern="^f:")],
        READY: [CallbackQueryHandler(ready)],
    }
    for index in range(len(cards)):
        states[CARD + index] = [CallbackQueryHandler(card(index), pattern="^(next|prev|menu)$")]
    with warnings.catch_warnings():
        # PTB warns that with per_message=False a CallbackQueryHandler is tracked per chat and
        # user, not per message: exactly what this bot wants (per_message=True would refuse
        # the /start CommandHandler with another warning).
        warnings.filterwarnings("ignore", "If 'per_message=False'", PTBUserWarning)
        return ConversationHandler(
            entry_points=[CommandHandler("start", start)],
            states=states,
            fallbacks=[CommandHandler("start", start)],
            per_message=False,
            name="bench" if persistent else None,
            persistent=persistent,
        )


class Peer:
    """A stock PTB bot: in memory, or with ``PicklePersistence`` flushed per update."""

    def __init__(self, peer: PeerTexts, server: FakeTelegram, pickle_file: Path | None) -> None:
        self.name = "pickle" if pickle_file else "ceiling"
        builder: Any = (
            Application.builder()
            .token(TOKEN)
            .request(FakeBotApi(server))
            .get_updates_request(FakeBotApi(server))
        )
        if pickle_file is not None:
            # Only the conversations: the peer stores what it needs and no more (its best case).
            store = PersistenceInput(
                bot_data=False, chat_data=False, user_data=False, callback_data=False
            )
            # Flushed by hand after every update; the interval only has to stay out of the way.
            persistence = PicklePersistence(
                filepath=pickle_file, store_data=store, update_interval=3600
            )
            builder = builder.persistence(persistence)
        self.application: TelegramApp = builder.build()
        self.application.add_handler(conversation(peer, persistent=pickle_file is not None))
        self.flush = pickle_file is not None

    async def start(self) -> None:
        await self.application.initialize()
        await self.application.start()

    async def feed(self, update: Update) -> None:
        await self.application.process_update(update)
        if self.flush:
            await self.application.update_persistence()

    async def drain(self) -> None:
        return None

    async def stop(self) -> None:
        await self.application.stop()
        await self.application.shutdown()


# --------------------------------------------------------------------------- running
async def run_product(settings: Settings, texts: Texts, officers: int, window: int = 1) -> Result:
    server = FakeTelegram(transcripts=[FIRST_CHAT])
    with tempfile.TemporaryDirectory(prefix="pte-bench-") as tmp:
        product = Product(settings, server, Path(tmp), window)
        return await drive(product, server, officers, script(texts))


async def run_peer(
    texts: Texts, payloads: Sequence[str], officers: int, *, pickle: bool
) -> Result:
    """A PTB peer; ``payloads``: the product's outbox rows for its first officer."""
    server = FakeTelegram(transcripts=[FIRST_CHAT])
    with tempfile.TemporaryDirectory(prefix="pte-bench-") as tmp:
        pickle_file = Path(tmp) / "bench.pickle" if pickle else None
        peer = Peer(PeerTexts(texts, payloads), server, pickle_file)
        result = await drive(peer, server, officers, script(texts))
        if pickle:
            result.extra["pickle_bytes"] = (Path(tmp) / "bench.pickle").stat().st_size
        return result


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
    }


def _ratio(a: float, b: float | None) -> float | None:
    return round(a / b, 3) if b else None


def _line(result: Result, label: str) -> str:
    return (
        f"{label:<9} {result.updates_per_s:8.0f} updates/s  wall {result.wall_s:6.2f} s  "
        f"p50 {result.percentile_ms(0.50):6.2f} ms  p99 {result.percentile_ms(0.99):7.2f} ms  "
        f"cpu {result.cpu_us_per_update:5.0f} us/update  "
        f"replies {'ok' if result.replies_ok else 'MISSING'}"
    )


def _pooled(runs: Sequence[Result]) -> Result:
    """Several runs of one contender as one: their updates, time and latencies together."""
    first = runs[0]
    return Result(
        first.name,
        first.officers,
        sum(run.updates for run in runs),
        sum(run.wall_s for run in runs),
        sum(run.cpu_s for run in runs),
        [latency for run in runs for latency in run.latencies],
        all(run.replies_ok for run in runs),
        first.transcript,
        max(run.peak_rss_mb for run in runs),
        first.extra,
    )


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 3) if present else None


async def compare(
    settings: Settings, officers: int, *, pickle: bool, window: int = 1, rounds: int = ROUNDS
) -> dict[str, Any]:
    """The product, the ceiling and the Pickle peer, one after another, ``rounds`` times.

    A 2-vCPU VM's speed drifts by 10-20 % over a minute or two (measured: the same code's
    ratio moved from 0.63 to 0.78 between two runs). Each ratio is taken within a round,
    from runs seconds apart, and the median of the rounds' ratios is reported; throughput
    and latencies are over all rounds."""
    texts = Texts(helpdesk=settings.helpdesk_email)
    actions = script(texts)
    print(
        f"Asistente PTE bench: {officers} officers x {len(actions)} updates = "
        f"{officers * len(actions)} updates, interleaved in waves; product window {window}; "
        f"{rounds} rounds"
    )
    products: list[Result] = []
    ceilings: list[Result] = []
    peers: list[Result] = []
    per_run = True
    for number in range(1, rounds + 1):
        per_run = reset_peak_rss() and per_run
        product = await run_product(settings, texts, officers, window)
        products.append(product)
        print(_line(product, f"product {number}") + f"  peak RSS {product.peak_rss_mb:.0f} MB")
        reset_peak_rss()
        payloads = products[0].extra["first_payloads"]
        ceiling = await run_peer(texts, payloads, officers, pickle=False)
        ceilings.append(ceiling)
        print(_line(ceiling, f"ceiling {number}") + "  (PTB ConversationHandler, in memory)")
        if pickle:
            reset_peak_rss()
            pickled = await run_peer(texts, payloads, officers, pickle=True)
            peers.append(pickled)
            print(
                _line(pickled, f"pickle {number}")
                + "  (PicklePersistence flushed per update, "
                + f"{pickled.extra['pickle_bytes']} bytes)"
            )
    print(f"          (SQLite committed per update; db {products[0].extra.get('db')})")
    each = [
        {
            "updates_per_s": round(run.updates_per_s, 1),
            "p99_ms": round(run.percentile_ms(0.99), 3),
            "ceiling_updates_per_s": round(top.updates_per_s, 1),
            "pickle_updates_per_s": round(peers[i].updates_per_s, 1) if peers else None,
            "ratio_vs_ceiling": _ratio(run.updates_per_s, top.updates_per_s),
            "ratio_vs_pickle": _ratio(run.updates_per_s, peers[i].updates_per_s)
            if peers
            else None,
            "cpu_ratio_vs_ceiling": _ratio(top.cpu_us_per_update, run.cpu_us_per_update),
            "turns_per_commit": run.extra.get("turns_per_commit"),
            "marks_carried": run.extra.get("marks_carried"),
        }
        for i, (run, top) in enumerate(zip(products, ceilings, strict=True))
    ]
    same = all(run.transcript == products[0].transcript for run in [*products, *ceilings, *peers])
    product = _pooled(products)
    ceiling = _pooled(ceilings)
    peer = _pooled(peers) if peers else None
    result: dict[str, Any] = {
        "officers": officers,
        "window": window,
        "rounds": rounds,
        "updates_per_officer": len(actions),
        "updates": products[0].updates,
        "wall_s": round(product.wall_s, 3),
        "updates_per_s": round(product.updates_per_s, 1),
        "p50_ms": round(product.percentile_ms(0.50), 3),
        "p99_ms": round(product.percentile_ms(0.99), 3),
        "max_ms": round(product.percentile_ms(1.0), 3),
        "cpu_us_per_update": round(product.cpu_us_per_update, 1),
        "turns_per_commit": products[0].extra.get("turns_per_commit"),
        "marks_carried": sum(run.extra.get("marks_carried") or 0 for run in products),
        "peak_rss_mb": round(product.peak_rss_mb, 1),
        # "run": each product run alone (VmHWM reset before it); "process": ru_maxrss.
        "peak_rss_scope": "run" if per_run else "process",
        "process_peak_rss_mb": round(process_peak_rss_mb(), 1),
        "replies_ok": product.replies_ok,
        "durable_ok": all(run.extra.get("durable_ok") for run in products),
        "ceiling_updates_per_s": round(ceiling.updates_per_s, 1),
        "ceiling_p50_ms": round(ceiling.percentile_ms(0.50), 3),
        "ceiling_p99_ms": round(ceiling.percentile_ms(0.99), 3),
        "ceiling_cpu_us_per_update": round(ceiling.cpu_us_per_update, 1),
        "ceiling_replies_ok": ceiling.replies_ok,
        "pickle_updates_per_s": round(peer.updates_per_s, 1) if peer else None,
        "pickle_p50_ms": round(peer.percentile_ms(0.50), 3) if peer else None,
        "pickle_p99_ms": round(peer.percentile_ms(0.99), 3) if peer else None,
        "pickle_cpu_us_per_update": round(peer.cpu_us_per_update, 1) if peer else None,
        "pickle_replies_ok": peer.replies_ok if peer else None,
        # The median of the rounds' ratios (each round's runs seconds apart; see above).
        "ratio_vs_ceiling": _median([r["ratio_vs_ceiling"] for r in each]),
        "ratio_vs_pickle": _median([r["ratio_vs_pickle"] for r in each]),
        # The same ratio from CPU time: steadier when other processes share the machine.
        "cpu_ratio_vs_ceiling": _median([r["cpu_ratio_vs_ceiling"] for r in each]),
        "each_round": each,
        "transcripts_match": same,
    }
    result["targets_met"] = {
        "updates_per_s": result["updates_per_s"] >= TARGETS["updates_per_s"],
        "ratio_vs_ceiling": (result["ratio_vs_ceiling"] or 0) >= TARGETS["ratio_vs_ceiling"],
        "ratio_vs_pickle": (
            None
            if peer is None
            else (result["ratio_vs_pickle"] or 0) >= TARGETS["ratio_vs_pickle"]
        ),
        "p99_ms": result["p99_ms"] <= TARGETS["p99_ms"],
    }
    result["machine"] = machine()
    print(
        f"ratio vs ceiling {result['ratio_vs_ceiling']} (rounds: "
        f"{', '.join(str(r['ratio_vs_ceiling']) for r in each)})  ratio vs pickle "
        f"{result['ratio_vs_pickle']}  same texts and keyboards: {'yes' if same else 'NO'}"
    )
    return result


async def scaling(
    settings: Settings, sizes: Sequence[int] = SCALING_SIZES, window: int = 1
) -> dict[str, Any]:
    """Throughput at the largest size against the smallest, which runs before and after it
    (1,000; 10,000; 1,000): the machine's drift over the long run cancels out in the mean of
    the two small runs around it."""
    texts = Texts(helpdesk=settings.helpdesk_email)
    runs: list[dict[str, Any]] = []
    per_run = True
    order = [*sizes, sizes[0]] if len(sizes) > 1 else list(sizes)
    for officers in order:
        # Each run's own peak: from the RSS it starts with (what the earlier run freed was
        # handed back first), not the process's since it started.
        per_run = reset_peak_rss() and per_run
        at_start = _status_kib("VmRSS")
        product = await run_product(settings, texts, officers, window)
        print(_line(product, f"{officers}") + f"  officers  peak RSS {product.peak_rss_mb:.0f} MB")
        runs.append(
            {
                "officers": officers,
                "updates": product.updates,
                "updates_per_s": round(product.updates_per_s, 1),
                "p50_ms": round(product.percentile_ms(0.50), 3),
                "p99_ms": round(product.percentile_ms(0.99), 3),
                "cpu_us_per_update": round(product.cpu_us_per_update, 1),
                "peak_rss_mb": round(product.peak_rss_mb, 1),
                "rss_at_start_mb": round(at_start / 1024, 1) if at_start is not None else None,
                "replies_ok": product.replies_ok,
                "durable_ok": product.extra.get("durable_ok"),
            }
        )
    small = [run["updates_per_s"] for run in runs if run["officers"] == sizes[0]]
    first = sum(small) / len(small)
    largest = [run for run in runs if run["officers"] == sizes[-1]][-1]
    last: float = largest["updates_per_s"]
    ratio = round(last / first, 3) if first else 0.0
    print(f"throughput at {sizes[-1]} / at {sizes[0]} officers: {ratio}")
    return {
        "mode": "scaling",
        "window": window,
        "runs": runs,
        "throughput_ratio": ratio,
        "scaling_ratio": ratio,
        "within_15pct": abs(1.0 - ratio) <= TARGETS["scaling_tolerance"],
        # The largest run's own peak (the figure issue 18 sets a bound on), each run's in
        # ``runs``, and the whole process's since it started.
        "peak_rss_mb": largest["peak_rss_mb"],
        "peak_rss_scope": "run" if per_run else "process",
        "process_peak_rss_mb": round(process_peak_rss_mb(), 1),
        "machine": machine(),
    }


def main(settings: Settings, args: argparse.Namespace) -> int:
    """``pte-bot bench``; prints human lines, then the JSON result as the last line.

    ``--all`` runs the comparison, ``--scaling``, ``--status-lookup`` and ``--cold-start``
    one after the other and puts their figures in one JSON line; on its own each flag runs
    its part alone. Every result carries ``scaling_ratio``, ``status_lookup_ratio`` and
    ``cold_start_s`` (None where that part did not run)."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    everything = getattr(args, "all", False)
    window = getattr(args, "window", 1)
    ok = True
    extras: dict[str, Any] = {}
    if everything or getattr(args, "cold_start", False):
        from bot.bench.cold_start import cold_start

        extras.update(asyncio.run(cold_start()))
    if everything or getattr(args, "status_lookup", False):
        from bot.bench.status import status_lookup

        status = asyncio.run(status_lookup(settings))
        extras["status_lookup_ratio"] = status["status_lookup_ratio"]
        extras["status_lookup"] = status
    if everything or getattr(args, "scaling", False):
        scaled = asyncio.run(scaling(settings, window=window))
        ok = ok and all(run["replies_ok"] and run["durable_ok"] for run in scaled["runs"])
        extras["scaling_ratio"] = scaled["scaling_ratio"]
        extras["scaling"] = scaled
    only = not everything and any(
        getattr(args, flag, False) for flag in ("cold_start", "status_lookup", "scaling")
    )
    if only:  # one part alone, as before: its own figures at the top level
        part = extras.pop("scaling", None) or extras.pop("status_lookup", None) or {}
        result = {**part, **extras}
    else:
        if args.officers < 1:
            print("pte-bot bench: --officers must be at least 1", file=sys.stderr)
            return 2
        pickle = not getattr(args, "skip_pickle", False)
        rounds = getattr(args, "rounds", ROUNDS)
        result = asyncio.run(
            compare(settings, args.officers, pickle=pickle, window=window, rounds=rounds)
        )
        ok = ok and bool(
            result["replies_ok"] and result["durable_ok"] and result["ceiling_replies_ok"]
        )
        result.update(extras)
    for key in ("scaling_ratio", "status_lookup_ratio", "cold_start_s"):
        result.setdefault(key, None)
    result["machine"] = machine()
    line = json.dumps(result, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(line + "\n", encoding="utf-8")
    print(line)
    return 0 if ok else 1
