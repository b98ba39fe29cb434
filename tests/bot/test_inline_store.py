"""A turn's statements run on the event loop while the write lock is free, and on
aiosqlite's thread, waiting there, while another connection holds it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.store.database import ChatRecord, OutboxRow, Store, Tx
from tests.conftest import StoreOpener

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def body_saving(chat_id: str) -> Any:
    async def body(tx: Tx, chat: ChatRecord | None) -> list[OutboxRow]:
        assert chat is not None
        return await tx.save_and_enqueue(
            chat.identity_id, '{"n": 1}', chat.version + 1, "test", chat_id, [("hola", False)]
        )

    return body


async def apologise(tx: Tx, error: BaseException) -> list[OutboxRow]:
    raise AssertionError(f"the turn failed: {error!r}")


async def count(store: Store, sql: str) -> int:
    async with store.reading() as conn:
        rows = list(await conn.execute_fetchall(sql))
    return int(rows[0][0])


def other_writer(path: Path) -> sqlite3.Connection:
    """Another process's connection (the staff shell, a second bot) taking the write lock."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO people (created_at) VALUES ('2026-12-02')")
    return other


async def test_a_turn_runs_its_statements_on_the_event_loop_when_the_lock_is_free(
    tmp_path: Path,
    open_store: StoreOpener,
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    threads: list[tuple[str, int]] = []
    said: list[str] = []

    def trace(sql: str) -> None:
        said.append(" ".join(sql.split()))
        threads.append((sql.split()[0].upper(), threading.get_ident()))

    await store.conn.set_trace_callback(trace)
    rows = await store.turn(NOW, ("test", "e1", "c1", "v1"), body_saving("c1"), apologise)
    assert [row.payload for row in rows] == ["hola"]
    loop_thread = threading.get_ident()
    statements = [(verb, ident) for verb, ident in threads if verb != "PRAGMA"]
    verbs = [verb for verb, _ in statements]
    assert verbs[0] == "BEGIN"
    assert verbs[-1] == "COMMIT"
    assert {ident for _, ident in statements} == {loop_thread}
    # The BEGIN tried on the loop never waits for another connection: no busy timeout
    # (turned off once; the thread's next trip turns it back on, see test below).
    assert said[:2] == ["PRAGMA busy_timeout = 0", "BEGIN IMMEDIATE"]
    assert said.count("PRAGMA busy_timeout = 0") == 1
    before = len(threads)
    await store.mark_sent([(rows[0].id, "m1")], NOW)
    marks = [(verb, ident) for verb, ident in threads[before:] if verb != "PRAGMA"]
    assert [verb for verb, _ in marks] == ["BEGIN", "UPDATE", "COMMIT"]
    assert {ident for _, ident in marks} == {loop_thread}
    await store.close()


async def test_a_turn_waits_for_another_writer_on_the_thread_and_the_loop_goes_on(
    tmp_path: Path,
    open_store: StoreOpener,
) -> None:
    path = tmp_path / "db.sqlite3"
    store = await open_store(path)
    other = other_writer(path)
    turn = asyncio.create_task(
        store.turn(NOW, ("test", "e1", "c1", "v1"), body_saving("c1"), apologise)
    )
    for _ in range(20):  # the loop keeps running while the turn waits for the lock
        await asyncio.sleep(0)
    assert not turn.done()
    assert await asyncio.to_thread(lambda: other.execute("SELECT 1").fetchone()) == (1,)
    other.execute("COMMIT")  # the other writer is done: the turn gets the lock
    rows = await turn
    assert [row.payload for row in rows] == ["hola"]
    assert await count(store, "SELECT count(*) FROM conversations") == 1
    assert await count(store, "SELECT count(*) FROM people") == 2  # theirs and the turn's
    async with store.reading() as conn:  # the thread waits for the lock again
        assert list(await conn.execute_fetchall("PRAGMA busy_timeout")) == [(5000,)]
    # The next turn finds the lock free again and runs on the loop.
    rows = await store.turn(NOW, ("test", "e2", "c1", "v1"), body_saving("c1"), apologise)
    assert await count(store, "SELECT count(*) FROM outbox") == 2
    other.close()
    await store.close()


async def test_a_delivery_mark_waits_for_another_writer_without_blocking_the_loop(
    tmp_path: Path,
    open_store: StoreOpener,
) -> None:
    path = tmp_path / "db.sqlite3"
    store = await open_store(path)
    rows = await store.turn(NOW, ("test", "e1", "c1", "v1"), body_saving("c1"), apologise)
    other = other_writer(path)
    mark = asyncio.create_task(store.mark_sent([(rows[0].id, "m1")], NOW))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not mark.done()
    other.execute("ROLLBACK")
    await mark
    assert await count(store, "SELECT count(*) FROM outbox WHERE state = 'sent'") == 1
    # A failed attempt on a message's rows, the same way.
    other = other_writer(path)
    attempt = asyncio.create_task(
        store.mark_attempt([rows[0].id], "boom", failed=False, next_attempt=None)
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert not attempt.done()
    other.execute("COMMIT")
    await attempt
    assert await count(store, "SELECT attempts FROM outbox") == 1
    other.close()
    await store.close()


async def test_a_lock_held_past_the_busy_timeout_fails_the_turn_not_the_loop(
    tmp_path: Path, monkeypatch: Any, open_store: StoreOpener
) -> None:
    """The thread waits up to the busy timeout; then the turn fails as before (the update
    is redelivered), and the statements after it find the connection usable."""
    path = tmp_path / "db.sqlite3"
    store = await open_store(path)
    monkeypatch.setattr("bot.store.connection.BUSY_TIMEOUT_MS", 50)
    other = other_writer(path)
    mark = asyncio.create_task(store.mark_sent([(1, "m1")], NOW))
    done, _ = await asyncio.wait({mark}, timeout=30)
    assert done
    assert isinstance(mark.exception(), sqlite3.OperationalError)
    other.execute("ROLLBACK")
    other.close()
    rows = await store.turn(NOW, ("test", "e1", "c1", "v1"), body_saving("c1"), apologise)
    assert [row.payload for row in rows] == ["hola"]
    await store.close()


async def test_the_wal_is_checkpointed_on_a_thread_not_inside_a_commit_on_the_loop(
    tmp_path: Path, monkeypatch: Any, open_store: StoreOpener
) -> None:
    """SQLite's own checkpoint would run inside a COMMIT, on the loop when the turn ran
    there, and block it for the fsync; the store turns it off and checkpoints itself, on a
    connection of its own, every CHECKPOINT_EVERY commits."""
    monkeypatch.setattr("bot.store.database.CHECKPOINT_EVERY", 3)
    path = tmp_path / "db.sqlite3"
    store = await open_store(path)
    async with store.reading() as conn:
        assert list(await conn.execute_fetchall("PRAGMA wal_autocheckpoint")) == [(0,)]
    assert await store.checkpoint()  # the schema in the database file

    def in_the_database_file() -> int:
        """Conversations the database file holds without its WAL (what was checkpointed)."""
        copy = tmp_path / "copy.sqlite3"
        copy.write_bytes(path.read_bytes())
        with sqlite3.connect(copy) as db:
            return int(db.execute("SELECT count(*) FROM conversations").fetchone()[0])

    for i in range(2):
        await store.turn(NOW, ("test", f"e{i}", f"c{i}", "v1"), body_saving(f"c{i}"), apologise)
    assert store._checkpointing is None
    assert in_the_database_file() == 0  # committed, in the WAL only
    await store.turn(NOW, ("test", "e2", "c2", "v1"), body_saving("c2"), apologise)
    assert store._checkpointing is not None
    await store._checkpointing
    assert in_the_database_file() == 3
    await store.close()


async def cancelled_while_waiting(
    work: Awaitable[Any], other: sqlite3.Connection, store: Store, *, times: int = 1
) -> None:
    """Run ``work`` in this task, which runs it alone (nothing else is ready on the loop);
    cancel the task (``times`` times, a few passes of the loop apart) while its BEGIN waits
    for ``other``'s lock on the database thread, and only then let ``other`` commit."""
    me = asyncio.current_task()
    assert me is not None
    releasing: list[asyncio.Task[None]] = []

    async def release() -> None:
        for _ in range(times - 1):  # cancelled again while it waits for the thread
            for _ in range(5):
                await asyncio.sleep(0)
            me.cancel()
        for _ in range(20):  # the cancelled work has reacted by now
            await asyncio.sleep(0)
        other.execute("COMMIT")

    def cancel() -> None:
        me.cancel()
        releasing.append(asyncio.create_task(release()))

    asyncio.get_running_loop().call_later(0, cancel)  # a timer: nothing ready meanwhile
    try:
        await work
    except asyncio.CancelledError:
        while me.cancelling():
            me.uncancel()
    else:
        raise AssertionError("the work was not cancelled")
    await releasing[0]
    async with store.reading() as conn:  # after the cancelled trip, on the thread
        await conn.execute("SELECT 1")


@pytest.mark.parametrize("times", [1, 2])
async def test_a_turn_cancelled_while_waiting_for_the_lock_leaves_no_transaction_open(
    tmp_path: Path, open_store: StoreOpener, times: int
) -> None:
    path = tmp_path / "db.sqlite3"
    store = await open_store(path)
    other = other_writer(path)
    turn = store.turn(NOW, ("test", "e1", "c1", "v1"), body_saving("c1"), apologise)
    await cancelled_while_waiting(turn, other, store, times=times)
    assert not store.conn.in_transaction
    assert await count(store, "SELECT count(*) FROM processed_events") == 0
    # The update comes again (Telegram redelivers what was not confirmed): it runs.
    rows = await store.turn(NOW, ("test", "e1", "c1", "v1"), body_saving("c1"), apologise)
    assert [row.payload for row in rows] == ["hola"]
    assert await count(store, "SELECT count(*) FROM conversations") == 1
    other.close()
    await store.close()


async def test_a_transaction_cancelled_while_waiting_for_the_lock_leaves_none_open(
    tmp_path: Path,
    open_store: StoreOpener,
) -> None:
    path = tmp_path / "db.sqlite3"
    store = await open_store(path)
    other = other_writer(path)

    async def write() -> None:
        async with store.transaction(NOW) as tx:
            await tx.execute("INSERT INTO people (created_at) VALUES ('2026-12-02')")

    await cancelled_while_waiting(write(), other, store)
    assert not store.conn.in_transaction
    assert await count(store, "SELECT count(*) FROM people") == 1  # the other writer's
    await write()
    assert await count(store, "SELECT count(*) FROM people") == 2
    other.close()
    await store.close()
