"""Telegram updates are recognised by their number (``telegram_updates``, migration 0019);
every other event by its text id (``processed_events``). A database written before 0019
keeps recognising the updates it had processed."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from bot.store import events
from bot.store.database import ChatRecord, OutboxRow, Tx, iso
from tests.conftest import StoreOpener

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
AT = "2026-12-02T14:00:00+00:00"


def body(ran: list[str]) -> object:
    async def run(tx: Tx, chat: ChatRecord | None) -> list[OutboxRow]:
        if chat is None:  # an update seen before
            return []
        ran.append(tx.stamp)
        return await tx.save_and_enqueue(
            chat.identity_id, "{}", chat.version + 1, "telegram", "7001", [("r", False)]
        )

    return run


async def apologise(tx: Tx, error: BaseException) -> list[OutboxRow]:
    raise error


def test_only_a_telegram_number_is_kept_as_a_number() -> None:
    assert events.update_number("telegram", "123456789") == 123456789
    assert events.update_number("telegram", "9" * 18) == int("9" * 18)
    for event_id in ("", "9" * 19, "-5", "12a", "١٢٣", " 12", "telegram-1"):
        assert events.update_number("telegram", event_id) is None, event_id
    assert events.update_number("whatsapp", "123") is None
    assert events.update_number("terminal", "123") is None


async def test_a_redelivered_update_runs_once_and_other_ids_keep_their_table(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    store = await open_store(tmp_path / "db.sqlite3")
    ran: list[str] = []
    for channel, event_id in [
        ("telegram", "700"),
        ("telegram", "700"),  # redelivered
        ("telegram", "tg-1"),  # not a number (a test's id): kept as text
        ("telegram", "tg-1"),
        ("whatsapp", "700"),  # another channel's 700 is another event
    ]:
        await store.turn(NOW, (channel, event_id, "7001", "v1"), body(ran), apologise)
    assert len(ran) == 3
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    assert db.execute("SELECT update_id FROM telegram_updates").fetchall() == [(700,)]
    assert db.execute(
        "SELECT channel, event_id FROM processed_events ORDER BY channel"
    ).fetchall() == [("telegram", "tg-1"), ("whatsapp", "700")]
    assert events.seen(db, "telegram", "700")
    assert not events.seen(db, "telegram", "701")
    assert db.execute(events.EVENTS_COUNT).fetchone() == (3,)
    db.close()


async def test_updates_processed_before_0019_are_still_recognised(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    path = tmp_path / "db.sqlite3"
    store = await open_store(path)
    await store.close()
    # The database as release 0018 left it: every event in processed_events.
    db = sqlite3.connect(path)
    db.execute("DROP TABLE telegram_updates")
    db.executemany(
        "INSERT INTO processed_events (channel, event_id, at) VALUES (?, ?, ?)",
        [
            ("telegram", "900000001", AT),
            ("telegram", "tg-1", AT),
            ("telegram", "1" * 19, AT),  # beyond an integer: stays text
            ("whatsapp", "900000002", AT),
        ],
    )
    db.execute("PRAGMA user_version = 18")
    db.commit()
    db.close()

    store = await open_store(path)
    ran: list[str] = []
    await store.turn(NOW, ("telegram", "900000001", "7001", "v1"), body(ran), apologise)
    assert ran == []  # processed before the upgrade: nothing happens
    await store.turn(NOW, ("telegram", "900000003", "7001", "v1"), body(ran), apologise)
    assert len(ran) == 1
    db = sqlite3.connect(path)
    assert db.execute("SELECT update_id, at FROM telegram_updates ORDER BY 1").fetchall() == [
        (900000001, AT),
        (900000003, iso(NOW)),
    ]
    assert sorted(db.execute("SELECT channel, event_id FROM processed_events")) == [
        ("telegram", "1" * 19),
        ("telegram", "tg-1"),
        ("whatsapp", "900000002"),
    ]
    db.close()
