"""The SQLite store: migrations, WAL, transactions that commit whole or not at all."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import StoreError
from tests.conftest import StoreOpener

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


async def test_migrations_apply_once_and_wal_is_on(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    async with store.reading() as conn:
        ((version,),) = list(await conn.execute_fetchall("PRAGMA user_version"))
        ((mode,),) = list(await conn.execute_fetchall("PRAGMA journal_mode"))
        ((fk,),) = list(await conn.execute_fetchall("PRAGMA foreign_keys"))
    assert version >= 1
    assert mode == "wal"
    assert fk == 1
    await store.close()
    again = await open_store(tmp_path / "db.sqlite3")  # no error re-applying
    await again.close()


async def test_a_newer_schema_is_refused(tmp_path: Path, open_store: StoreOpener) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    await store.conn.execute("PRAGMA user_version = 999")
    await store.close()
    with pytest.raises(StoreError, match="newer"):
        await open_store(tmp_path / "db.sqlite3")


async def test_failed_transaction_leaves_nothing(tmp_path: Path, open_store: StoreOpener) -> None:
    store = await open_store(tmp_path / "db.sqlite3")

    async def fail_midway() -> None:
        async with store.transaction(NOW) as tx:
            assert await tx.claim_event("test", "1")
            await tx.load_chat("test", "42", "v1")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_midway()
    async with store.transaction(NOW) as tx:
        assert await tx.claim_event("test", "1")  # not recorded the first time
        assert not await tx.claim_event("test", "1")
        chat = await tx.load_chat("test", "42", "v1")
    assert chat.state is None
    await store.close()


async def test_outbox_rows_come_back_in_order(tmp_path: Path, open_store: StoreOpener) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    async with store.transaction(NOW) as tx:
        rows = await tx.enqueue("test", "7", [("a", False), ("b", True), ("c", False)])
    assert [r.payload for r in rows] == ["a", "b", "c"]
    assert rows[0].id < rows[1].id < rows[2].id
    await store.mark_sent([(rows[0].id, "m1")], NOW)
    pending = await store.pending_outbox("test")
    assert [r.payload for r in pending] == ["b", "c"]
    await store.close()
