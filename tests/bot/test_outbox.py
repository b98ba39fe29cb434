"""The outbox worker: order per chat, retries, permanent failures, restart."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bot.errors import PermanentDelivery, TransientDelivery
from bot.outbox import OutboxWorker
from bot.store import OutboxRow, Store
from tests.driver import FakeClock

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


class FlakyTransport:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.delivered: list[str] = []

    async def deliver(self, row: OutboxRow) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(json.loads(row.payload)["key"])
        return None


async def no_sleep(_delay: float) -> None:
    return None


def payload(key: str, edit_ref: str | None = None) -> str:
    body = {"key": key, "data": {}, "qid": 1}
    if edit_ref:
        body["edit_ref"] = edit_ref
    return json.dumps(body)


async def test_transient_failures_are_retried_in_order(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        await tx.enqueue("t", "1", [(payload("a"), False), (payload("b"), False)])
    transport = FlakyTransport([TransientDelivery("429", retry_after=3), TransientDelivery("500")])
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW), sleep=no_sleep)
    await worker.start()  # picks up the committed rows, as after a restart
    await worker.drain()
    assert transport.delivered == ["a", "b"]
    assert await store.pending_outbox("t") == []
    await worker.stop()
    await store.close()


async def test_permanent_failure_is_kept_visible(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        await tx.enqueue("t", "1", [(payload("a"), False), (payload("b"), False)])
    transport = FlakyTransport([PermanentDelivery("blocked")])
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW), sleep=no_sleep)
    await worker.start()  # picks up the committed rows, as after a restart
    await worker.drain()
    assert transport.delivered == ["b"]
    async with store.reading() as conn:
        failed = list(await conn.execute_fetchall("SELECT state, last_error FROM outbox"))
    assert failed[0] == ("failed", "blocked")
    await worker.stop()
    await store.close()


async def test_restart_delivers_pending_rows_but_not_superseded_card_edits(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        await tx.enqueue(
            "t",
            "1",
            [
                (payload("card1", edit_ref="7"), False),
                (payload("note"), False),
                (payload("card2", edit_ref="7"), False),
            ],
        )
    transport = FlakyTransport([])
    worker = OutboxWorker(store, "t", transport, FakeClock(NOW), sleep=no_sleep)
    await worker.start()
    await worker.drain()
    assert transport.delivered == ["note", "card2"]
    assert await store.pending_outbox("t") == []
    await worker.stop()
    await store.close()
