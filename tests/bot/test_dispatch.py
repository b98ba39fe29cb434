"""Per-chat order with cross-chat concurrency."""

from __future__ import annotations

import asyncio

import pytest

from bot.dispatch import ChatDispatcher


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
