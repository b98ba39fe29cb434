"""Per-chat order with cross-chat concurrency."""

from __future__ import annotations

import asyncio

import pytest

from bot.channels.dispatch import ChatDispatcher


async def test_one_chat_in_order_other_chats_not_blocked() -> None:
    dispatcher = ChatDispatcher()
    log: list[str] = []
    gate = asyncio.Event()

    def step(chat: str, n: int, wait: bool = False):  # type: ignore[no-untyped-def]
        async def work() -> None:
            if wait:
                await gate.wait()
            log.append(f"{chat}{n}")

        return work

    dispatcher.submit("a", step("a", 1, wait=True))
    dispatcher.submit("a", step("a", 2))
    dispatcher.submit("b", step("b", 1))
    await dispatcher.run("b", step("b", 2))
    assert log == ["b1", "b2"]  # chat b went on while chat a waited
    gate.set()
    await dispatcher.join()
    assert log == ["b1", "b2", "a1", "a2"]
    assert dispatcher.busy_chats == 0


async def test_a_failure_is_reported_to_the_waiter_and_the_chat_goes_on() -> None:
    dispatcher = ChatDispatcher()
    done: list[int] = []

    async def boom() -> None:
        raise ValueError("bad update")

    async def fine() -> None:
        done.append(1)

    with pytest.raises(ValueError, match="bad update"):
        await dispatcher.run("a", boom)
    await dispatcher.run("a", fine)
    assert done == [1]


async def test_concurrency_is_bounded() -> None:
    dispatcher = ChatDispatcher(concurrency=2)
    running = 0
    peak = 0

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running -= 1

    for chat in range(10):
        dispatcher.submit(str(chat), work)
    await dispatcher.join()
    assert peak == 2


async def test_a_flooding_chat_is_cut_and_told_once_others_go_on() -> None:
    told: list[str] = []
    dispatcher = ChatDispatcher(max_queued=5, on_flood=told.append)
    gate = asyncio.Event()
    ran: list[str] = []

    def work(chat: str, n: int):  # type: ignore[no-untyped-def]
        async def run() -> None:
            await gate.wait()
            ran.append(f"{chat}{n}")

        return run

    futures = [dispatcher.submit("flood", work("flood", n)) for n in range(100)]
    other = dispatcher.submit("ana", work("ana", 0))
    status = dispatcher.submit("flood", work("status", 0), droppable=False)
    assert told == ["flood"]  # once, not 95 times
    assert dispatcher.dropped == 95
    assert all(f.done() for f in futures[5:])  # dropped at once: nothing waits on them
    gate.set()
    await other
    await status
    await dispatcher.join()
    assert ran.count("ana0") == 1
    assert [r for r in ran if r.startswith("flood")] == [f"flood{n}" for n in range(5)]
    assert "status0" in ran
    # Once its queue drained, the chat is heard again (and warned again if it floods again).
    await dispatcher.run("flood", work("flood", 100))
    assert ran[-1] == "flood100"
