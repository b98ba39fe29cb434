"""``pte-bot bench --burst N``: N officers open the bot at the same moment, under a flood limit.

Each officer does what a new officer does when a rule comes out: ``/start``, "Acepto",
"📋 Requisitos y pasos", then "Siguiente ▶" five times (8 bot messages since issue 18: the
greeting with the notice, the thanks with the menu, the first card and five card edits), each
step as soon as the previous step's replies arrived. All N start at once.

Two contenders, one after the other, each polling its own
:class:`~bot.bench.fake_api.FloodLimitedBotAPI` over real HTTP long polling, with the same limit
(``--flood-limit``, 429 with ``retry_after`` beyond it):

* **product**: ``pte-bot run`` as built (:class:`~bot.channels.telegram.TelegramChannel`:
  updates of different chats concurrently, replies through the pacer), on a fresh SQLite
  file in a temporary directory.
* **peer**: stock python-telegram-bot: the same conversation as a ``ConversationHandler``
  (the texts and keyboards of :mod:`bot.bench.peers`, taken from the product's own
  replies) with
  ``AIORateLimiter(max_retries=5)``, PTB's documented answer to flood limits (its default
  of no retries loses a reply for every 429), processing updates one at a time (PTB's
  default).

Reported for each: completion time (first update to the last reply), the physical floor
(bot messages ÷ limit: no bot can finish sooner), 429s received, p50/p99 reply latency
(an update injected until the last of its replies accepted by the Bot API) and lost replies
(waited for longer than ``reply_timeout`` and never came). The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from telegram.ext import AIORateLimiter, Application, ContextTypes

from bot.bench.fake_api import JSON, FloodLimitedBotAPI
from bot.bench.host import machine
from bot.bench.officers import Action, script
from bot.bench.peers import PeerTexts, conversation
from bot.settings import Settings
from bot.texts import Texts

PRODUCT_TOKEN = "700000001:BURST-product-fake-token"
PEER_TOKEN = "700000002:BURST-peer-fake-token"
FIRST_CHAT = 800_000_001
# AIORateLimiter's default (0) turns every 429 into an exception in the handler, i.e. a lost
# reply; with retries it waits out retry_after (pausing every request) and sends again.
PEER_RETRIES = 5
TARGET_RATIO = 1.10  # the bound: completion within 1.10x the physical floor


@dataclass
class Outcome:
    name: str
    officers: int
    expected: int  # bot messages the script calls for
    flood_limit: float
    completion_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    lost: int = 0
    officers_done: int = 0
    sent: int = 0
    refused: int = 0
    errors: int = 0
    first_payloads: list[str] = field(default_factory=list)
    updates: int = 0

    @property
    def floor_s(self) -> float:
        return self.expected / self.flood_limit

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]

    def summary(self) -> dict[str, Any]:
        return {
            "completion_s": round(self.completion_s, 2),
            "ratio_to_floor": round(self.completion_s / self.floor_s, 3),
            "p50_ms": round(self.percentile_ms(0.50), 1),
            "p99_ms": round(self.percentile_ms(0.99), 1),
            "lost_replies": self.lost,
            "officers_done": self.officers_done,
            "messages_sent": self.sent,
            # Sent beyond the script (at-least-once delivery resending): should stay 0.
            "extra_messages": max(0, self.sent - (self.expected - self.lost)),
            "429s": self.refused,
            # Messages sent or edited per update (8 updates per officer): under the flood
            # limit, the count everyone waits for.
            "bot_messages_per_update": round(self.sent / max(1, self.updates), 3),
            "handler_errors": self.errors,
        }


class Officers:
    """The N officers: inject their updates, wait for and time the replies."""

    def __init__(self, api: FloodLimitedBotAPI, steps: list[Action], reply_timeout: float):
        self.api = api
        self.steps = steps
        self.reply_timeout = reply_timeout
        self.received: dict[int, int] = {}
        self.last_at: dict[int, float] = {}
        self.waiting: dict[int, tuple[int, asyncio.Event]] = {}
        api.on_output = self._output

    def _output(self, chat_id: int, message: JSON) -> None:
        self.received[chat_id] = self.received.get(chat_id, 0) + 1
        self.last_at[chat_id] = time.perf_counter()
        wanted = self.waiting.get(chat_id)
        if wanted is not None and self.received[chat_id] >= wanted[0]:
            wanted[1].set()

    def _update(self, chat_id: int, action: Action) -> JSON:
        user = {"id": chat_id, "is_bot": False, "first_name": f"Oficial {chat_id}"}
        if action.is_command:
            message = {
                "message_id": self.api.new_message_id(chat_id),
                "from": user,
                "chat": self.api.chat_json(chat_id),
                "date": int(time.time()),
                "text": action.text,
                "entities": [{"type": "bot_command", "offset": 0, "length": len(action.text)}],
            }
            return {"message": message}
        on, data = self._button(chat_id, action.text)
        query = {"id": f"{chat_id}-{time.perf_counter_ns()}", "from": user}
        query |= {"chat_instance": str(chat_id), "message": on, "data": data}
        return {"callback_query": query}

    def _button(self, chat_id: int, label: str) -> tuple[JSON, str]:
        mine = [m for (c, _), m in self.api.messages.items() if c == chat_id]
        for message in sorted(mine, key=lambda m: -int(m["message_id"])):
            for row in message.get("reply_markup", {}).get("inline_keyboard", []):
                for button in row:
                    if button.get("text") == label and "callback_data" in button:
                        return message, str(button["callback_data"])
        raise LookupError(f"chat {chat_id}: no button {label!r}")

    async def officer(self, chat_id: int, results: Outcome) -> None:
        expected = 0
        for action in self.steps:
            expected += action.replies
            got = asyncio.Event()
            self.waiting[chat_id] = (expected, got)
            start = time.perf_counter()
            self.api.inject(self._update(chat_id, action))
            if self.received.get(chat_id, 0) < expected:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(got.wait(), self.reply_timeout)
            if self.received.get(chat_id, 0) < expected:
                results.lost += expected - self.received.get(chat_id, 0)
                return  # the officer is stuck: nothing to tap
            results.latencies.append(self.last_at[chat_id] - start)
        results.officers_done += 1

    async def run(self, officers: int, results: Outcome) -> None:
        start = time.perf_counter()
        chats = range(FIRST_CHAT, FIRST_CHAT + officers)
        await asyncio.gather(*(self.officer(chat, results) for chat in chats))
        ends = [self.last_at[c] for c in chats if c in self.last_at]
        results.completion_s = (max(ends) if ends else time.perf_counter()) - start


async def run_product(
    settings: Settings, texts: Texts, officers: int, flood_limit: float, reply_timeout: float
) -> Outcome:
    from bot.app import create_app
    from bot.channels.telegram import TelegramChannel, run_polling

    steps = script(texts)
    outcome = Outcome("product", officers, officers * sum(a.replies for a in steps), flood_limit)
    outcome.updates = officers * len(steps)
    api = FloodLimitedBotAPI(PRODUCT_TOKEN, flood_limit)
    await api.start()
    with tempfile.TemporaryDirectory(prefix="pte-burst-") as tmp:
        local = settings.model_copy(
            update={
                "data_dir": Path(tmp),
                "telegram_bot_token": SecretStr(PRODUCT_TOKEN),
                "telegram_base_url": api.base_url,
                "telegram_base_file_url": api.base_file_url,
                "telegram_flood_limit": flood_limit,
                "staff_telegram_ids": frozenset(),
                "staff_chat_id": None,
                "smtp_host": None,
            }
        )
        app = await create_app(local)
        stop, ready = asyncio.Event(), asyncio.Event()
        channel = TelegramChannel(app)
        polling = asyncio.create_task(run_polling(channel, stop, ready))
        try:
            await ready.wait()
            await Officers(api, steps, reply_timeout).run(officers, outcome)
            async with app.store.reading() as conn:
                rows = await conn.execute_fetchall(
                    "SELECT payload FROM outbox WHERE chat_id = ? ORDER BY id", (str(FIRST_CHAT),)
                )
            outcome.first_payloads = [r[0] for r in rows]
        finally:
            stop.set()
            await polling
            await app.close()
            await api.stop()
    outcome.sent, outcome.refused = api.sent, api.refused
    return outcome


async def run_peer(
    texts: Texts, payloads: list[str], officers: int, flood_limit: float, reply_timeout: float
) -> Outcome:
    steps = script(texts)
    outcome = Outcome("peer", officers, officers * sum(a.replies for a in steps), flood_limit)
    outcome.updates = officers * len(steps)
    api = FloodLimitedBotAPI(PEER_TOKEN, flood_limit)
    await api.start()
    builder: Any = (
        Application.builder()
        .token(PEER_TOKEN)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .rate_limiter(AIORateLimiter(max_retries=PEER_RETRIES))
    )
    application = builder.build()
    application.add_handler(conversation(PeerTexts(texts, payloads), persistent=False))

    async def count_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        outcome.errors += 1  # a RetryAfter the rate limiter did not absorb: a reply lost

    application.add_error_handler(count_error)
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0.0, timeout=30)
    try:
        await Officers(api, steps, reply_timeout).run(officers, outcome)
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
        await api.stop()
    outcome.sent, outcome.refused = api.sent, api.refused
    return outcome


async def burst(
    settings: Settings, officers: int, flood_limit: float, *, peer: bool = True
) -> dict[str, Any]:
    texts = Texts()
    # Long enough for the last reply of a fully queued burst, with room to spare.
    reply_timeout = 30.0 + 3 * officers * 2 / flood_limit
    product = await run_product(settings, texts, officers, flood_limit, reply_timeout)
    result: dict[str, Any] = {
        "officers": officers,
        "flood_limit": flood_limit,
        "bot_messages": product.expected,
        "floor_s": round(product.floor_s, 2),
        "product": product.summary(),
    }
    if peer:
        other = await run_peer(texts, product.first_payloads, officers, flood_limit, reply_timeout)
        result["peer"] = other.summary()
        result["faster_than_peer"] = product.completion_s < other.completion_s
    result["within_target"] = (
        product.lost == 0 and product.completion_s <= TARGET_RATIO * product.floor_s
    )
    result["machine"] = machine()
    return result


def _line(label: str, summary: dict[str, Any]) -> str:
    return (
        f"{label:<8} {summary['completion_s']:7.2f} s ({summary['ratio_to_floor']:.3f}x floor)  "
        f"429s {summary['429s']:4d}  p50 {summary['p50_ms']:7.1f} ms  "
        f"p99 {summary['p99_ms']:7.1f} ms  lost {summary['lost_replies']}  "
        f"{summary['bot_messages_per_update']:.3f} msgs/update"
    )


def main(settings: Settings, args: argparse.Namespace) -> int:
    # The peer's lost replies and our retried 429s would otherwise print a line each.
    for name in (
        "bot.delivery.outbox",
        "bot.delivery.pacer",
        "bot.store.database",
        "telegram",
        "httpx",
        "bot.app",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
    result = asyncio.run(
        burst(settings, args.burst, args.flood_limit, peer=not getattr(args, "skip_peer", False))
    )
    print(
        f"{result['officers']} officers at once, flood limit {result['flood_limit']:g}/s: "
        f"{result['bot_messages']} bot messages, physical floor {result['floor_s']:.2f} s"
    )
    print(_line("product", result["product"]))
    if "peer" in result:
        print(_line("peer", result["peer"]))
    line = json.dumps(result)
    print(line)
    if getattr(args, "out", None):
        Path(args.out).write_text(line + "\n", encoding="utf-8")
    return 0
