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


async def bad_save(tx: Tx, chat: ChatRecord | None) -> list[OutboxRow]:
    """Writes, then saves a state for an identity that does not exist: the FK refuses."""
    assert chat is not None
    await tx.enqueue("test", "c1", [("written before the failure", False)])
    return await tx.save_and_enqueue(10_000, "{}", 1, "test", "c1", [("never", False)])


async def apologise_then_fail(tx: Tx, error: BaseException) -> list[OutboxRow]:
    await tx.enqueue("test", "apology", [("half an apology", False)])
    raise RuntimeError("the apology fails too")


@pytest.mark.parametrize("failing", ["body", "save", "apology"])
async def test_a_lone_turn_that_fails_is_rolled_back_whole_and_its_neighbours_keep_theirs(
    tmp_path: Path, open_store: StoreOpener, failing: str
) -> None:
    """A turn run alone has no savepoint (nothing else is in its transaction): a failure
    rolls the transaction back, the apology begins another, and a delivery mark that was
    waiting for a COMMIT still rides in it."""
    store = await open_store(tmp_path / "db.sqlite3")
    said: list[str] = []
    await store.conn.set_trace_callback(lambda sql: said.append(" ".join(sql.split()[:2])))
    first = await store.turn(NOW, ("test", "e0", "c0", "v1"), body_saving("c0", "r0"), apologise)
    waiting = store.mark_sent_later([(first[0].id, "m0")], NOW)
    body = bad_save if failing == "save" else body_saving("c1", "r1", fail=True)
    on_error = apologise_then_fail if failing == "apology" else apologise
    claim = ("test", "e1", "c1", "v1")
    if failing == "apology":
        with pytest.raises(RuntimeError, match="the apology fails too"):
            await store.turn(NOW, claim, body, on_error)
    else:
        failed = await store.turn(NOW, claim, body, on_error)
        assert [row.payload for row in failed] == ["sorry"]
    last = await store.turn(NOW, ("test", "e2", "c2", "v1"), body_saving("c2", "r2"), apologise)
    assert [row.payload for row in last] == ["r2"]
    await waiting  # carried by the apology's COMMIT, or by the last turn's
    assert store.carried_marks == 1  # run once, in one COMMIT
    assert not [statement for statement in said if "SAVEPOINT turn" in statement]
    # Nothing of the failed turn is kept: not its person, its writes, its claim, or a
    # failed apology's row (then its batch committed nothing, and is not counted).
    apologised = failing != "apology"
    assert store.batches == store.batched_turns == 2 + apologised
    assert await count(store, "SELECT count(*) FROM people") == 2
    assert await count(store, "SELECT count(*) FROM conversations") == 2
    assert await count(store, "SELECT count(*) FROM processed_events") == 2
    async with store.reading() as conn:
        payloads = [r[0] for r in await conn.execute_fetchall("SELECT payload FROM outbox")]
    assert sorted(payloads) == ["r0", "r2", *(["sorry"] if apologised else [])]
    assert await count(store, "SELECT count(*) FROM outbox WHERE state = 'sent'") == 1
    await store.close()


async def test_a_lone_failing_turn_keeps_a_cancellation_of_its_caller(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    """A caller cancelled while its lone turn fails is still cancelled: the rollback does
    not give it a moment at which the cancellation is caught and lost. What the turn did
    is undone, its apology is committed whole, and the store goes on."""
    store = await open_store(tmp_path / "db.sqlite3")

    async def cancelled_then_failing(tx: Tx, chat: ChatRecord | None) -> list[OutboxRow]:
        await tx.execute("INSERT INTO people (created_at) VALUES (?)", (tx.stamp,))
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        raise RuntimeError("a bug in this turn")

    turn = asyncio.create_task(
        store.turn(NOW, ("test", "e1", "c1", "v1"), cancelled_then_failing, apologise)
    )
    with pytest.raises(asyncio.CancelledError):
        await turn
    assert not store.conn.in_transaction
    last = await store.turn(NOW, ("test", "e2", "c2", "v1"), body_saving("c2", "r2"), apologise)
    assert [row.payload for row in last] == ["r2"]
    assert await count(store, "SELECT count(*) FROM people") == 1  # the last turn's only
    async with store.reading() as conn:
        payloads = [r[0] for r in await conn.execute_fetchall("SELECT payload FROM outbox")]
    assert sorted(payloads) == ["r2", "sorry"]
    await store.close()


async def test_a_failing_save_rolls_back_that_turn_only(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")

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
