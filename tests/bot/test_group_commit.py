"""Group commit: turns ready at the same moment share one transaction, each all-or-nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.store.database import ChatRecord, OutboxRow, Store, Tx
from tests.conftest import StoreOpener

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


class Counting:
    """Counts the trips to the database thread and the COMMITs they carry."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.trips = 0
        self.commits = 0
        original = Tx.run

        async def run(tx: Tx, work: Any) -> Any:
            self.trips += 1
            return await original(tx, work)

        monkeypatch.setattr(Tx, "run", run)

    async def trace(self, store: Store) -> None:
        def on_statement(sql: str) -> None:
            if sql.strip().upper() == "COMMIT":
                self.commits += 1

        await store.conn.set_trace_callback(on_statement)


def body_saving(chat_id: str, payload: str, *, fail: bool = False) -> Any:
    async def body(tx: Tx, chat: ChatRecord | None) -> list[OutboxRow]:
        assert chat is not None
        if fail:
            await tx.execute("INSERT INTO people (created_at) VALUES (?)", (tx.stamp,))
            raise RuntimeError("a bug in this turn")
        return await tx.save_and_enqueue(
            chat.identity_id, '{"n": 1}', chat.version + 1, "test", chat_id, [(payload, False)]
        )

    return body


async def apologise(tx: Tx, error: BaseException) -> list[OutboxRow]:
    return await tx.enqueue("test", "apology", [("sorry", False)])


async def count(store: Store, sql: str) -> int:
    async with store.reading() as conn:
        rows = list(await conn.execute_fetchall(sql))
    return int(rows[0][0])


async def test_a_lone_turn_runs_in_its_caller_and_a_task_ready_beside_it_makes_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    counting = Counting(monkeypatch)
    await counting.trace(store)
    leaders: list[int] = []
    ensure_leader = store._ensure_leader

    def counted() -> None:
        leaders.append(1)
        ensure_leader()

    monkeypatch.setattr(store, "_ensure_leader", counted)
    # Alone on the loop: the caller runs it (no leader task), one COMMIT.
    rows = await store.turn(NOW, ("test", "e1", "c1", "v1"), body_saving("c1", "r1"), apologise)
    assert [row.payload for row in rows] == ["r1"]
    assert (leaders, counting.commits) == ([], 1)
    # A task ready beside it could join a batch: it goes to the leader, and both share one.
    other = asyncio.create_task(
        store.turn(NOW, ("test", "e2", "c2", "v1"), body_saving("c2", "r2"), apologise)
    )
    rows = await store.turn(NOW, ("test", "e3", "c3", "v1"), body_saving("c3", "r3"), apologise)
    assert [row.payload for row in rows] == ["r3"]
    assert [row.payload for row in await other] == ["r2"]
    assert leaders != []
    assert counting.commits == 2
    assert await count(store, "SELECT count(*) FROM conversations") == 3
    await store.close()


async def test_turns_ready_together_share_one_commit_and_about_one_trip_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    counting = Counting(monkeypatch)
    await counting.trace(store)
    monkeypatch.setattr("bot.store.turns.MAX_BATCH_SECONDS", 60.0)  # a slow machine batches too
    turns = [
        store.turn(NOW, ("test", f"e{i}", f"c{i}", "v1"), body_saving(f"c{i}", f"r{i}"), apologise)
        for i in range(10)
    ]
    results = await asyncio.gather(*turns)
    assert [[row.payload for row in rows] for rows in results] == [[f"r{i}"] for i in range(10)]
    assert counting.commits == 1
    assert counting.trips == 11  # the first claim, then one per turn (save + next claim)
    assert await count(store, "SELECT count(*) FROM conversations") == 10
    await store.close()


async def test_a_lone_turn_does_not_wait_and_commits_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    counting = Counting(monkeypatch)
    await counting.trace(store)
    rows = await store.turn(NOW, ("test", "e1", "c1", "v1"), body_saving("c1", "r1"), apologise)
    assert [row.payload for row in rows] == ["r1"]
    assert (counting.trips, counting.commits) == (2, 1)
    await store.close()


async def test_a_failing_turn_rolls_back_alone_and_apologises(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    turns = [
        store.turn(
            NOW,
            ("test", f"e{i}", f"c{i}", "v1"),
            body_saving(f"c{i}", f"r{i}", fail=i == 1),
            apologise,
        )
        for i in range(3)
    ]
    first, failed, last = await asyncio.gather(*turns)
    assert [row.payload for row in first] == ["r0"]
    assert [row.payload for row in failed] == ["sorry"]
    assert [row.payload for row in last] == ["r2"]
    # The failed turn's person row is gone, its chat and the others' are kept.
    assert await count(store, "SELECT count(*) FROM conversations") == 2
    # Even the failed turn's claim and new person are rolled back; its apology claims it.
    assert await count(store, "SELECT count(*) FROM people") == 2
    assert await count(store, "SELECT count(*) FROM processed_events") == 2
    assert await count(store, "SELECT count(*) FROM outbox") == 3
    await store.close()


async def test_a_failing_save_rolls_back_that_turn_only(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")

    async def bad_save(tx: Tx, chat: ChatRecord | None) -> list[OutboxRow]:
        assert chat is not None
        await tx.enqueue("test", "c1", [("written before the failure", False)])
        return await tx.save_and_enqueue(
            10_000,
            "{}",
            1,
            "test",
            "c1",
            [("never", False)],  # no such identity: FK fails
        )

    turns = [
        store.turn(NOW, ("test", "e0", "c0", "v1"), body_saving("c0", "r0"), apologise),
        store.turn(NOW, ("test", "e1", "c1", "v1"), bad_save, apologise),
        store.turn(NOW, ("test", "e2", "c2", "v1"), body_saving("c2", "r2"), apologise),
    ]
    first, failed, last = await asyncio.gather(*turns)
    assert [row.payload for row in failed] == ["sorry"]
    assert [row.payload for row in first + last] == ["r0", "r2"]
    async with store.reading() as conn:
        payloads = [r[0] for r in await conn.execute_fetchall("SELECT payload FROM outbox")]
    assert sorted(payloads) == ["r0", "r2", "sorry"]
    await store.close()


async def test_replies_are_released_only_after_the_batch_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    monkeypatch.setattr("bot.store.turns.MAX_BATCH_SECONDS", 60.0)
    other = sqlite3.connect(tmp_path / "db.sqlite3")
    seen: list[tuple[int, bool]] = []

    def turn(i: int, body: Any) -> asyncio.Task[list[OutboxRow]]:
        return asyncio.ensure_future(
            store.turn(NOW, ("test", f"e{i}", f"c{i}", "v1"), body, apologise)
        )

    async def watching(tx: Tx, chat: ChatRecord | None) -> list[OutboxRow]:
        rows = await body_saving("c1", "r1")(tx, chat)
        # Saved, the batch not committed: nobody else sees it, the first turn still waits.
        (visible,) = other.execute("SELECT count(*) FROM outbox").fetchone()
        seen.append((visible, first.done()))
        return rows

    first = turn(0, body_saving("c0", "r0"))
    middle = turn(1, watching)
    last = turn(2, body_saving("c2", "r2"))
    await asyncio.gather(first, middle, last)
    assert seen == [(0, False)]
    assert other.execute("SELECT count(*) FROM outbox").fetchone() == (3,)
    other.close()
    await store.close()


async def test_a_redelivered_update_in_the_same_batch_changes_nothing(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    same = ("test", "e1", "c1", "v1")
    first, again = await asyncio.gather(
        store.turn(NOW, same, body_saving("c1", "r1"), apologise),
        store.turn(NOW, same, body_saving("c1", "r1 again"), apologise),
    )
    assert [row.payload for row in first] == ["r1"]
    assert again == [] or [row.payload for row in again] == ["sorry"]
    assert await count(store, "SELECT count(*) FROM outbox WHERE payload LIKE 'r1%'") == 1
    await store.close()
