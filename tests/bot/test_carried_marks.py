"""A delivery mark that nothing of its chat waits behind rides in the next batch of turns'
transaction instead of one of its own; alone after MARK_DELAY when no turn comes; never
lost when a batch fails, never holding back a turn when it fails itself."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.delivery.outbox import OutboxWorker
from bot.store import database
from bot.store.database import ChatRecord, OutboxRow, Store, Tx
from tests.bot.test_inline_store import apologise, body_saving, count
from tests.conftest import StoreOpener
from tests.driver import FakeClock

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
SENT = "SELECT count(*) FROM outbox WHERE state = 'sent'"


def claim(n: int, chat: str) -> tuple[str, str, str, str]:
    return ("test", f"e{n}", chat, "v1")


def traced(store: Store) -> list[str]:
    said: list[str] = []
    raw = database.raw(store.conn)
    raw.set_trace_callback(lambda sql: said.append(" ".join(sql.split()[:2]).upper()))
    return said


async def test_a_mark_left_for_later_rides_in_the_next_turns_commit(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    rows = await store.turn(NOW, claim(1, "c1"), body_saving("c1"), apologise)
    committed = store.mark_sent_later([(rows[0].id, "m1")], NOW)
    assert not committed.done()
    said = traced(store)
    await store.turn(NOW, claim(2, "c2"), body_saving("c2"), apologise)
    assert committed.done()
    assert committed.exception() is None
    # One transaction: the next turn's, with the mark in a savepoint before its COMMIT.
    assert said.count("BEGIN IMMEDIATE") == 1
    assert said.count("COMMIT") == 1
    update = said.index("UPDATE OUTBOX")
    assert said[update - 1 : update + 2] == ["SAVEPOINT MARK", "UPDATE OUTBOX", "RELEASE MARK"]
    assert said[update + 2] == "COMMIT"
    assert store.carried_marks == 1
    assert await count(store, SENT) == 1
    await store.close()


async def test_a_mark_with_no_turn_after_it_commits_alone(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    rows = await store.turn(NOW, claim(1, "c1"), body_saving("c1"), apologise)
    committed = store.mark_sent_later([(rows[0].id, "m1")], NOW)
    await asyncio.wait_for(committed, 30)  # after MARK_DELAY, in a transaction of its own
    assert store.carried_marks == 0
    assert await count(store, SENT) == 1
    await store.close()


async def test_closing_the_store_commits_the_marks_left_for_later(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    path = tmp_path / "db.sqlite3"
    store = await open_store(path)
    rows = await store.turn(NOW, claim(1, "c1"), body_saving("c1"), apologise)
    store.mark_sent_later([(rows[0].id, "m1")], NOW)
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute(SENT).fetchone() == (1,)


async def test_a_mark_that_fails_is_undone_alone_and_the_turns_commit(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    first = await store.turn(NOW, claim(1, "c1"), body_saving("c1"), apologise)
    second = await store.turn(NOW, claim(2, "c2"), body_saving("c2"), apologise)
    # The first row's chat erased its data: marking it is an UPDATE, then a DELETE, which
    # SQLite itself refuses here. The UPDATE before it must be undone with it.
    async with store.transaction(NOW) as tx:
        await tx.execute(f"UPDATE outbox SET forget = 1 WHERE id = {first[0].id}")
        await tx.execute(
            "CREATE TEMP TRIGGER refuse BEFORE DELETE ON outbox"
            f" WHEN OLD.id = {first[0].id} BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    refused = store.mark_sent_later([(first[0].id, "m1")], NOW)
    taken = store.mark_sent_later([(second[0].id, "m2")], NOW)
    rows = await store.turn(NOW, claim(3, "c3"), body_saving("c3"), apologise)
    assert [row.payload for row in rows] == ["hola"]
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        await refused
    await taken
    assert await count(store, "SELECT count(*) FROM conversations") == 3
    assert await count(store, SENT) == 1  # the second row only: the first one is pending
    pending = f"SELECT count(*) FROM outbox WHERE id = {first[0].id} AND state = 'pending'"
    assert await count(store, pending) == 1
    await store.close()


async def test_marks_of_a_batch_that_cannot_commit_commit_alone_after_it(
    tmp_path: Path,
    open_store: StoreOpener,
) -> None:
    """A turn whose write breaks a deferred foreign key fails at the batch's COMMIT: the
    batch rolls back, the marks it carried are taken again and committed on their own."""
    store = await open_store(tmp_path / "db.sqlite3")
    first = await store.turn(NOW, claim(1, "c1"), body_saving("c1"), apologise)
    async with store.transaction(NOW) as tx:
        await tx.execute(
            "CREATE TABLE later_checked (person INTEGER REFERENCES people(id)"
            " DEFERRABLE INITIALLY DEFERRED)"
        )

    async def breaking(tx: Tx, chat: ChatRecord | None) -> list[OutboxRow]:
        await tx.execute("INSERT INTO later_checked VALUES (999999)")
        saved: list[OutboxRow] = await body_saving("c2")(tx, chat)
        return saved

    failures: list[BaseException] = []

    async def on_error(tx: Tx, error: BaseException) -> Any:
        failures.append(error)
        return None

    committed = store.mark_sent_later([(first[0].id, "m1")], NOW)
    with pytest.raises(sqlite3.IntegrityError):
        await store.turn(NOW, claim(2, "c2"), breaking, on_error)
    await asyncio.wait_for(committed, 30)
    assert store.carried_marks == 0
    assert await count(store, SENT) == 1
    assert await count(store, "SELECT count(*) FROM conversations") == 1  # c2's rolled back
    await store.close()


class Recording:
    """A transport that reads, from a connection of its own, what is committed as sent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.delivered: list[str] = []
        self.sent_before: list[int] = []
        self.arrived = asyncio.Event()

    async def deliver(self, row: OutboxRow) -> str | None:
        with sqlite3.connect(self.path) as db:
            self.sent_before.append(int(db.execute(SENT).fetchone()[0]))
        self.delivered.append(json.loads(row.payload)["key"])
        self.arrived.set()
        return f"ref-{row.id}"


def payload(key: str) -> str:
    return json.dumps({"key": key, "data": {}, "qid": 1})


async def one_row_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_store: StoreOpener
) -> tuple[Store, Recording, OutboxWorker]:
    """A chat's only row delivered, its mark left for later behind an hour's timer (the
    outbox alone hurries it), not committed yet."""
    monkeypatch.setattr("bot.store.outbox.MARK_DELAY", 3600.0)
    path = tmp_path / "db.sqlite3"
    store = await open_store(path)
    transport = Recording(path)
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW))
    await worker.start()
    async with store.transaction(NOW) as tx:
        worker.submit(await tx.enqueue("t", "1", [(payload("a"), False)]))
    await transport.arrived.wait()
    await asyncio.sleep(0)  # the chat's task ends: nothing of the chat behind the row
    timer = store._mark_timer
    assert timer is not None
    assert timer.when() - asyncio.get_running_loop().time() > 60  # the patched delay
    assert await count(store, SENT) == 0  # its mark waits for a batch of turns
    return store, transport, worker


async def test_a_chats_next_row_waits_for_its_previous_mark_and_pick_up_skips_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_store: StoreOpener
) -> None:
    store, transport, worker = await one_row_delivered(tmp_path, monkeypatch, open_store)
    await worker.pick_up()  # reads it as pending, and does not send it again
    async with store.transaction(NOW) as tx:
        worker.submit(await tx.enqueue("t", "1", [(payload("b"), False)]))
    await worker.drain()
    assert transport.delivered == ["a", "b"]
    assert transport.sent_before == [0, 1]  # "a" was marked sent before "b" went
    assert await count(store, SENT) == 2
    await worker.stop()
    await store.close()


async def test_stopping_the_outbox_commits_its_marks_left_for_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_store: StoreOpener
) -> None:
    store, _transport, worker = await one_row_delivered(tmp_path, monkeypatch, open_store)
    await worker.stop()
    assert await count(store, SENT) == 1
    await store.close()
