"""One ``pte-bot bench`` run of one contender: the officers driven through it, its result.

Updates are parsed with ``Update.de_json`` and fed one at a time to
``Application.process_update`` (what PTB's own sequential update fetcher does, without the
queue hop), identically for the three contenders (:mod:`bot.bench.product`,
:mod:`bot.bench.peers`). :func:`drive` measures wall and CPU time, each update's latency and
the run's peak RSS, and checks every reply came.
"""

from __future__ import annotations

import gc
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from telegram import Update

from bot.bench.fake_telegram import FakeTelegram
from bot.bench.host import peak_rss_mb, sample_rss
from bot.bench.officers import FIRST_CHAT, Action, Tracker, script, update_json
from bot.bench.peers import Peer, PeerTexts
from bot.bench.product import Product
from bot.channels.telegram_transport import TelegramApp
from bot.settings import Settings
from bot.texts import Texts

SAMPLE_EVERY = 500  # updates between two samples of VmRSS


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
