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
from collections.abc import Awaitable, Sequence
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
# Officers per turn of a contender when interleaved: about 0.3 s of the product's work, short
# against the drifts of this VM's speed (from 1,174 to 729 updates/s within two minutes).
SLICE = 250


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


async def _wave(
    contender: Contender,
    server: FakeTelegram,
    tracker: Tracker,
    chats: range,
    action: Action,
    update_id: int,
) -> int:
    """The next update of every officer in ``chats`` fed to ``contender``; returns the last
    update id."""
    bot = contender.application.bot
    for chat_id in chats:
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
    return update_id


def _chats(officers: int, start: int = 0, stop: int | None = None) -> range:
    """The chat ids of officers ``start`` to ``stop`` (all by default)."""
    return range(FIRST_CHAT + start, FIRST_CHAT + (officers if stop is None else stop))


def _replies_ok(
    server: FakeTelegram, tracker: Tracker, officers: int, updates: int, actions: Sequence[Action]
) -> bool:
    total_replies = sum(action.replies for action in actions)
    return len(tracker.latencies) == updates and all(
        server.chat(chat_id).delivered == total_replies for chat_id in _chats(officers)
    )


async def drive(
    contender: Contender, server: FakeTelegram, officers: int, actions: Sequence[Action]
) -> Result:
    tracker = Tracker(server)
    await contender.start()
    try:
        gc.collect()
        update_id = 0
        cpu_started = time.process_time()
        started = time.perf_counter()
        chats = _chats(officers)
        for action in actions:
            update_id = await _wave(contender, server, tracker, chats, action, update_id)
        await tracker.all_replied()
        await contender.drain()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        sample_rss()
        rss = peak_rss_mb()
        replies_ok = _replies_ok(server, tracker, officers, update_id, actions)
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


async def drive_interleaved(
    lanes: Sequence[tuple[Contender, FakeTelegram]], officers: int, actions: Sequence[Action]
) -> list[Result]:
    """The contenders side by side in one process, taking turns slice by slice: the first
    update of the first :data:`SLICE` officers to the first contender, then to the second,
    ..., then the next slice's, and so on through every officer's every update. Each is
    timed over its own slices only (a few tenths of a second each), so a drift of the
    machine's speed weighs on all of them alike instead of on whichever ran during it.
    All are alive at once: the peak RSS is the process's, and a collection of the garbage
    collector walks all their objects. Work a contender leaves for later (the product's
    last delivery marks, committed within 50 ms; a checkpoint on a worker thread; its
    outbox pick-up every 2 s) may run in another's slice: the order rotates every slice,
    so it falls on each of the others in turn; its own ``drain`` at the end is timed as
    its. With a window above 1 each slice ends when all its replies came (the product's
    pipeline empties once a slice)."""
    trackers = [Tracker(server) for _, server in lanes]
    started: list[Contender] = []
    try:
        for contender, _ in lanes:
            await contender.start()
            started.append(contender)
        gc.collect()
        walls = [0.0] * len(lanes)
        cpus = [0.0] * len(lanes)
        ids = [0] * len(lanes)

        async def timed(index: int, work: Awaitable[Any]) -> Any:
            cpu_started, started_at = time.process_time(), time.perf_counter()
            result = await work
            walls[index] += time.perf_counter() - started_at
            cpus[index] += time.process_time() - cpu_started
            return result

        turn = 0
        for action in actions:
            for start in range(0, officers, SLICE):
                chats = _chats(officers, start, min(officers, start + SLICE))
                # Each slice starts with the next contender: what one leaves running after
                # its slice (a checkpoint, its last marks) falls on each of the others.
                for step in range(len(lanes)):
                    index = (turn + step) % len(lanes)
                    contender, server = lanes[index]
                    tracker = trackers[index]
                    ids[index] = await timed(
                        index, _wave(contender, server, tracker, chats, action, ids[index])
                    )
                    await timed(index, tracker.all_replied())
                turn += 1
        for index, (contender, _) in enumerate(lanes):
            await timed(index, contender.drain())
        sample_rss()
        rss = peak_rss_mb()
        results = []
        for index, (contender, server) in enumerate(lanes):
            updates = ids[index]
            replies_ok = _replies_ok(server, trackers[index], officers, updates, actions)
            extra = await contender_checks(contender, officers, updates)
            results.append(
                Result(
                    contender.name,
                    officers,
                    updates,
                    walls[index],
                    cpus[index],
                    trackers[index].latencies,
                    replies_ok,
                    [],
                    rss,
                    extra,
                )
            )
    finally:
        for contender in started:
            await contender.stop()  # also after a failure: no thread left behind
    for result, (_, server) in zip(results, lanes, strict=True):
        result.transcript = server.chat(FIRST_CHAT).transcript or []
    return results


async def contender_checks(contender: Contender, officers: int, updates: int) -> dict[str, Any]:
    if isinstance(contender, Product):
        return await contender.checks(officers, updates)
    return {}


async def run_product(settings: Settings, texts: Texts, officers: int, window: int = 1) -> Result:
    server = FakeTelegram(transcripts=[FIRST_CHAT])
    with tempfile.TemporaryDirectory(prefix="pte-bench-") as tmp:
        product = Product(settings, server, Path(tmp), window)
        return await drive(product, server, officers, script(texts))


async def run_interleaved(
    settings: Settings,
    texts: Texts,
    payloads: Sequence[str],
    officers: int,
    window: int = 1,
    *,
    pickle: bool,
) -> list[Result]:
    """The product, the ceiling and (``pickle``) the Pickle peer, interleaved slice by
    slice (:func:`drive_interleaved`); ``payloads``: the product's outbox rows for its first
    officer, which the peers send as they are."""
    with tempfile.TemporaryDirectory(prefix="pte-bench-") as tmp:
        lanes: list[tuple[Contender, FakeTelegram]] = []
        server = FakeTelegram(transcripts=[FIRST_CHAT])
        lanes.append((Product(settings, server, Path(tmp), window), server))
        server = FakeTelegram(transcripts=[FIRST_CHAT])
        lanes.append((Peer(PeerTexts(texts, payloads), server, None), server))
        if pickle:
            server = FakeTelegram(transcripts=[FIRST_CHAT])
            pickle_file = Path(tmp) / "bench.pickle"
            lanes.append((Peer(PeerTexts(texts, payloads), server, pickle_file), server))
        results = await drive_interleaved(lanes, officers, script(texts))
        if pickle:
            results[2].extra["pickle_bytes"] = (Path(tmp) / "bench.pickle").stat().st_size
        return results


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
