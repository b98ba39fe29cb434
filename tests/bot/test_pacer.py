"""The pacer on a fake clock: limits, fairness, replies first, 429s. No timed assertions:
time here is the fake clock's, advanced only by the pacer's own (injected) sleeps."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

from bot.delivery.outbox import OutboxWorker
from bot.delivery.pacer import Pacer
from bot.errors import TransientDelivery
from bot.store.database import OutboxRow
from tests.conftest import StoreOpener
from tests.driver import FakeClock

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    async def sleep(self, delay: float) -> None:
        self.t += delay
        await asyncio.sleep(0)


def pacer(clock: Clock, per_second: float = 10.0, **limits: int | float) -> Pacer:
    return Pacer(per_second, clock=clock.now, sleep=clock.sleep, **limits)  # type: ignore[arg-type]


class Sent(list[tuple[float, str]]):
    """(fake time, chat) of each turn, in the order granted."""


async def send(p: Pacer, clock: Clock, chat: str, sent: Sent, *, bulk: bool = False) -> None:
    async with p.slot(chat, bulk=bulk):
        sent.append((clock.t, chat))


def most_in_any_window(times: list[float], seconds: float) -> int:
    return max(sum(1 for u in times if t <= u < t + seconds - 1e-9) for t in times)


async def test_whole_bot_stays_under_the_limit_and_nothing_is_lost() -> None:
    clock, sent = Clock(), Sent()
    p = pacer(clock, per_second=10)
    await asyncio.gather(*(send(p, clock, str(chat), sent) for chat in range(1, 51)))
    times = [t for t, _ in sent]
    assert len(sent) == 50
    assert most_in_any_window(times, 1.0) <= 10
    assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(times))
    await p.close()


async def test_a_send_that_takes_long_still_counts_when_it_finishes() -> None:
    """At most ``per_second`` sends finish in any second before the next one starts, however
    long each takes: a sliding-window limiter never sees one too many."""
    clock = Clock()
    p = pacer(clock, per_second=5)
    starts: list[float] = []
    ends: list[float] = []

    async def slow(chat: str) -> None:
        async with p.slot(chat):
            starts.append(clock.t)
            await clock.sleep(0.4)  # the request travels for a while
            ends.append(clock.t)

    await asyncio.gather(*(slow(str(chat)) for chat in range(1, 21)))
    finished = sorted(ends)
    for start in sorted(starts)[5:]:
        recent = [e for e in finished if start - 1.0 < e <= start]
        assert len(recent) < 5
    await p.close()


async def test_one_chat_bulk_is_paced_to_one_per_second_after_a_short_burst() -> None:
    clock, sent = Clock(), Sent()
    p = pacer(clock, per_second=1000, chat_burst=3)
    await asyncio.gather(*(send(p, clock, "7", sent, bulk=True) for _ in range(8)))
    times = [t - sent[0][0] for t, _ in sent]
    assert times[2] < 0.1  # the burst goes at once
    for k in range(3, 8):
        assert times[k] >= k - 2 - 1e-6  # then one per second
    await p.close()


async def test_replies_in_a_private_chat_follow_the_person_not_one_per_second() -> None:
    clock, sent = Clock(), Sent()
    p = pacer(clock, per_second=1000, chat_burst=3)
    await asyncio.gather(*(send(p, clock, "7", sent) for _ in range(8)))
    assert sent[-1][0] - sent[0][0] < 0.1
    await p.close()


async def test_a_group_gets_at_most_twenty_a_minute() -> None:
    clock, sent = Clock(), Sent()
    p = pacer(clock, per_second=1000, chat_per_second=100, group_per_minute=20)
    await asyncio.gather(*(send(p, clock, "-100123", sent) for _ in range(45)))
    times = [t for t, _ in sent]
    assert len(times) == 45
    assert most_in_any_window(times, 60.0) <= 20
    assert times[20] - times[0] >= 60.0 - 1e-6
    await p.close()


async def test_chats_share_the_pipe_in_turn() -> None:
    clock, sent = Clock(), Sent()
    p = pacer(clock, per_second=10)
    busy = [send(p, clock, "busy", sent) for _ in range(10)]
    others = [send(p, clock, chat, sent) for chat in ("a", "b", "c", "d")]
    await asyncio.gather(*busy, *others)
    order = [chat for _, chat in sent]
    assert order[:5] == ["busy", "a", "b", "c", "d"]  # not ten of busy's first
    await p.close()


async def test_replies_go_before_bulk_notifications() -> None:
    clock, sent = Clock(), Sent()
    p = pacer(clock, per_second=10)
    late: list[asyncio.Task[None]] = []

    async def bulk(chat: str) -> None:
        await send(p, clock, chat, sent, bulk=True)
        if len(sent) == 2:  # an officer writes while the digest is going out
            late.append(asyncio.create_task(send(p, clock, "officer", sent)))

    await asyncio.gather(
        send(p, clock, "ana", sent),
        *(bulk(f"digest{n}") for n in range(10)),
        send(p, clock, "-100999", sent),  # a staff-group post is bulk too
    )
    await asyncio.gather(*late)
    order = [chat for _, chat in sent]
    assert order[0] == "ana"  # a reply waiting from the start goes first
    assert order.index("officer") == 2  # the next turn after it arrived
    assert order[-1] in {"-100999", *(f"digest{n}" for n in range(10))}
    await p.close()


async def test_a_429_holds_that_chat_only() -> None:
    clock, sent = Clock(), Sent()
    p = pacer(clock, per_second=100)
    await send(p, clock, "a", sent)
    p.flooded("a", 5.0)
    flooded_at = clock.t
    await asyncio.gather(send(p, clock, "a", sent), send(p, clock, "b", sent))
    assert [chat for _, chat in sent] == ["a", "b", "a"]  # b did not wait for a
    assert sent[1][0] - flooded_at < 0.1
    assert sent[2][0] - flooded_at >= 5.0 - 1e-6
    await p.close()


async def test_429s_for_two_chats_at_once_hold_the_whole_bot() -> None:
    clock, sent = Clock(), Sent()
    p = pacer(clock, per_second=100)
    p.flooded("a", 3.0)
    p.flooded("b", 3.0)
    start = clock.t
    await send(p, clock, "c", sent)
    assert sent[0][0] - start >= 3.0 - 1e-6
    assert p.floods == 2
    await p.close()


async def test_a_sender_that_gives_up_frees_its_turn() -> None:
    clock, sent = Clock(), Sent()
    p = pacer(clock, per_second=1)
    first = asyncio.create_task(send(p, clock, "a", sent))
    quitter = asyncio.create_task(send(p, clock, "b", sent))
    await asyncio.sleep(0)
    quitter.cancel()
    await asyncio.gather(first, send(p, clock, "c", sent), return_exceptions=True)
    assert [chat for _, chat in sent] == ["a", "c"]
    assert p.waiting == 0
    await p.close()


# ------------------------------------------------------------- with the outbox worker
class FloodingTransport:
    """Refuses some sends with 429 or 5xx, then accepts."""

    def __init__(self, failures: dict[str, list[TransientDelivery]]) -> None:
        self.failures = failures
        self.delivered: list[tuple[str, str]] = []

    async def deliver(self, row: OutboxRow) -> str | None:
        key = json.loads(row.payload)["key"]
        queued = self.failures.get(key)
        if queued:
            raise queued.pop(0)
        self.delivered.append((row.chat_id, key))
        return None


async def no_sleep(_delay: float) -> None:
    return None


def payload(key: str) -> str:
    return json.dumps({"key": key, "data": {}, "qid": 1})


async def test_outbox_retries_a_429_through_the_pacer_and_keeps_order(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        await tx.enqueue("t", "1", [(payload("a1"), False), (payload("a2"), False)])
        await tx.enqueue("t", "2", [(payload("b1"), False)])
    clock = Clock()
    p = pacer(clock, per_second=100)
    transport = FloodingTransport({"a1": [TransientDelivery("flood", retry_after=2.0)]})
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW), sleep=no_sleep, pacer=p)
    await worker.start()
    await worker.drain()
    assert [key for chat, key in transport.delivered if chat == "1"] == ["a1", "a2"]
    assert ("2", "b1") in transport.delivered
    assert p.floods == 1
    assert await store.pending_outbox("t") == []
    await worker.stop()
    await p.close()
    await store.close()


async def test_repeated_failures_leave_the_row_failed_for_staff(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        await tx.enqueue("t", "1", [(payload("a"), False), (payload("b"), False)])
    errors = [TransientDelivery("502 Bad Gateway") for _ in range(3)]
    flood = [TransientDelivery("flood", retry_after=1.0) for _ in range(5)]
    transport = FloodingTransport({"a": flood + errors})
    clock = Clock()
    p = pacer(clock, per_second=100)
    worker = OutboxWorker(
        store, "t", transport, FakeClock(NOW), sleep=no_sleep, pacer=p, max_attempts=3
    )
    await worker.start()
    await worker.drain()
    assert transport.delivered == [("1", "b")]  # 429s did not count; the 5xx did
    async with store.reading() as conn:
        rows = list(await conn.execute_fetchall("SELECT state, last_error FROM outbox"))
    assert rows[0] == ("failed", "502 Bad Gateway")
    await worker.stop()
    await p.close()
    await store.close()


class GatedTransport:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.delivered: list[str] = []

    async def deliver(self, row: OutboxRow) -> str | None:
        await self.gate.wait()
        self.delivered.append(json.loads(row.payload)["key"])
        return None


async def test_pick_up_does_not_resend_a_row_delivered_while_it_reads(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        await tx.enqueue("t", "1", [(payload("a"), False)])
    transport = GatedTransport()
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW), sleep=no_sleep)
    await worker.start()  # "a" is on its way
    read = store.pending_outbox

    async def slow_read(channel: str, limit: int = 10_000) -> list[OutboxRow]:
        rows = await read(channel, limit)  # "a" still reads as pending...
        transport.gate.set()
        await worker.drain()  # ...and is delivered and marked before the pick-up goes on
        for _ in range(1000):  # until the mark as sent has committed
            if not await read(channel, limit):
                break
            await asyncio.sleep(0.01)
        return rows

    store.pending_outbox = slow_read  # type: ignore[method-assign]
    await worker.pick_up()
    await worker.drain()
    assert transport.delivered == ["a"]
    await worker.stop()
    await store.close()
