"""Issue 14, points 6 and 8: secrets do not stay at rest, and bookkeeping rows are purged
after their retention (bot/store/retention.py), so the database grows with tickets, not with
messages."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.channels.server import Server
from bot.settings import Settings
from bot.store import retention
from bot.store.database import iso
from tests.bot.harness import TeeMailer, mailer_done
from tests.bot.whatsapp_harness import STEPS, query, whatsapp_settings
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import wa_server as wa_server  # a fixture
from tests.conftest import AppFactory
from tests.driver import FakeClock
from tests.fakes.graph_api import FakeGraphAPI

ANA = "51987654321"
CODE = "734912"


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph)


@pytest.fixture
def mailer(settings: Settings) -> TeeMailer:
    """No SMTP server: mail is written as .eml files, as in development."""
    return TeeMailer(settings.data_dir / "outbox")


@pytest.fixture
def known_code(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(secrets, "randbelow", lambda _n: int(CODE))
    return CODE


def files_holding(root: Path, secret: bytes) -> list[str]:
    """Every file under ``root`` whose bytes contain ``secret``, database files included."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and secret in path.read_bytes()
    )


def emls(settings: Settings) -> list[str]:
    return sorted(p.name for p in (settings.data_dir / "outbox").glob("*.eml"))


async def test_no_verification_code_stays_at_rest(
    graph: FakeGraphAPI,
    settings: Settings,
    mailer: TeeMailer,
    wa_server: Server,
    clock: FakeClock,
    known_code: str,
) -> None:
    """The officer types the code on WhatsApp (a webhook body in the inbox) and it was
    mailed (a mail body in the outbox, an .eml file): after the purge the code is in no
    file of the data directory, the database's WAL included."""
    ana = graph.user(ANA, "Ana")
    for _name, action, _follows in STEPS:
        await action(ana, mailer)
    await ana.tap("✅ Confirmar y enviar", n=3)
    await mailer_done(wa_server.app, 2)
    data = settings.data_dir
    assert len(emls(settings)) == 2  # the code and the request
    assert files_holding(data, known_code.encode()) != []  # where it was before the purge
    assert query(settings, "SELECT count(*) FROM webhook_inbox") == [(0,)]  # processed: gone

    clock.advance(minutes=11)  # the code expired
    purged = await retention.purge(wa_server.app, clock.now())
    assert purged.eml_files == 1
    assert files_holding(data, known_code.encode()) == []
    assert len(emls(settings)) == 1  # the request, kept for its retention

    clock.advance(days=7)
    await retention.purge(wa_server.app, clock.now())
    assert emls(settings) == []


# ------------------------------------------------------------------------- retention
async def seed(app: App, at: str) -> None:
    """One of each purgeable row, as of ``at``."""
    async with app.store.reading() as conn:
        for channel in ("telegram", "whatsapp", "terminal"):
            await conn.execute(
                "INSERT INTO processed_events (channel, event_id, at) VALUES (?, ?, ?)",
                (channel, f"{channel}-{at}", at),
            )
        await conn.execute(  # a Telegram update as the channel claims it: its number
            "INSERT INTO telegram_updates (update_id, at) VALUES (?, ?)",
            (int(datetime.fromisoformat(at).timestamp()), at),
        )
        for state in ("sent", "failed", "pending"):
            await conn.execute(
                "INSERT INTO outbox (channel, chat_id, payload, state, created_at, sent_at)"
                " VALUES ('whatsapp', '51900000001', '{}', ?, ?, ?)",
                (state, at, at if state == "sent" else None),
            )
        await conn.execute(
            "INSERT INTO wa_statuses (wamid, status, at) VALUES (?, 'read', ?)", (at, at)
        )
        await conn.execute(
            "INSERT INTO webhook_inbox (channel, body, received_at, failed_at, error)"
            " VALUES ('whatsapp', x'7b7d', ?, ?, 'RuntimeError')",
            (at, at),
        )
        await conn.execute(
            "INSERT INTO mail_outbox (kind, message, state, next_attempt_at, created_at)"
            " VALUES ('code', x'00', 'sent', ?, ?), ('request', NULL, 'sent', ?, ?)",
            (at, at, at, at),
        )


async def counts(app: App) -> dict[str, Any]:
    queries = {
        "events": "SELECT group_concat(channel) FROM processed_events",
        "updates": "SELECT count(*) FROM telegram_updates",
        "outbox": "SELECT group_concat(state) FROM outbox",
        "statuses": "SELECT count(*) FROM wa_statuses",
        "set_aside": "SELECT count(*) FROM webhook_inbox",
        "mails": "SELECT group_concat(kind) FROM mail_outbox",
    }
    found: dict[str, Any] = {}
    async with app.store.reading() as conn:
        for name, sql in queries.items():
            [(value,)] = list(await conn.execute_fetchall(sql))
            found[name] = sorted(value.split(",")) if isinstance(value, str) else value
    return found


@pytest.mark.parametrize(
    ("age", "left"),
    [
        (
            timedelta(days=1),
            {
                "events": ["telegram", "terminal", "whatsapp"],
                "updates": 1,
                "outbox": ["failed", "pending", "sent"],
                "statuses": 1,
                "set_aside": 1,
                "mails": ["code", "request"],
            },
        ),
        (
            timedelta(days=3),
            {
                "events": ["whatsapp"],
                "updates": 0,
                "outbox": ["failed", "pending", "sent"],
                "statuses": 1,
                "set_aside": 1,
                "mails": ["code", "request"],
            },
        ),
        (
            timedelta(days=15),
            {
                "events": None,
                "updates": 0,
                "outbox": ["failed", "pending"],
                "statuses": 0,
                "set_aside": 1,
                "mails": ["request"],
            },
        ),
        (
            timedelta(days=91),
            {
                "events": None,
                "updates": 0,
                "outbox": ["pending"],
                "statuses": 0,
                "set_aside": 0,
                "mails": ["request"],
            },
        ),
    ],
)
async def test_each_kind_of_row_is_kept_for_its_period(
    make_app: AppFactory, clock: FakeClock, age: timedelta, left: dict[str, Any]
) -> None:
    app = await make_app()
    await seed(app, iso(clock.now()))
    clock.moment += age
    await retention.purge(app, clock.now())
    assert await counts(app) == left


async def test_a_code_mail_is_emptied_once_sent_and_dropped_once_its_code_expired(
    make_app: AppFactory, clock: FakeClock
) -> None:
    app = await make_app()
    at = iso(clock.now())
    async with app.store.reading() as conn:
        await conn.execute(
            "INSERT INTO mail_outbox (kind, message, state, next_attempt_at, created_at)"
            " VALUES ('code', x'01', 'sent', ?, ?), ('code', x'02', 'pending', ?, ?),"
            " ('request', x'03', 'pending', ?, ?)",
            (at, at, at, at, at, at),
        )
    await retention.purge(app, clock.now())
    clock.advance(minutes=10)
    await retention.purge(app, clock.now())
    async with app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall("SELECT kind, state, message FROM mail_outbox ORDER BY id")
        )
    assert rows == [
        ("code", "sent", None),
        ("code", "failed", None),  # never sent: its code expired meanwhile
        ("request", "pending", b"\x03"),  # a request still goes
    ]


async def test_held_whatsapp_notices_are_not_purged(
    make_app: AppFactory, clock: FakeClock
) -> None:
    app = await make_app()
    at = iso(clock.now())
    async with app.store.reading() as conn:
        cursor = await conn.execute(
            "INSERT INTO outbox (channel, chat_id, payload, state, created_at, sent_at)"
            " VALUES ('whatsapp', '51900000001', ?, 'sent', ?, ?)",
            (json.dumps({"key": "x"}), at, at),
        )
        await conn.execute(
            "INSERT INTO wa_held (outbox_id, wa_id, held_at) VALUES (?, '51900000001', ?)",
            (cursor.lastrowid, at),
        )
    clock.advance(days=30)
    await retention.purge(app, clock.now())
    assert (await counts(app))["outbox"] == ["sent"]


async def test_events_of_a_channel_without_a_period_of_its_own_are_kept_two_days(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """The purge finds the channels that have events in the index, whatever their names: one
    sorting before the known channels, one between them, one after them."""
    app = await make_app()
    async with app.store.reading() as conn:
        for channel in ("api", "telegram", "terminal", "whatsapp", "zz-test"):
            for days in (1, 3, 9):
                await conn.execute(
                    "INSERT INTO processed_events (channel, event_id, at) VALUES (?, ?, ?)",
                    (channel, f"{channel}-{days}", iso(clock.now() - timedelta(days=days))),
                )
    await retention.purge(app, clock.now())
    async with app.store.reading() as conn:
        left = list(
            await conn.execute_fetchall("SELECT event_id FROM processed_events ORDER BY event_id")
        )
    assert [event_id for (event_id,) in left] == [
        "api-1",
        "telegram-1",
        "terminal-1",
        "whatsapp-1",
        "whatsapp-3",
        "zz-test-1",
    ]


async def test_every_purge_statement_finds_its_rows_by_an_index(
    make_app: AppFactory, clock: FakeClock
) -> None:
    """The purge holds the write lock every 10 minutes: no statement of it may read a whole
    table (SQLite's plan says SCAN), however many messages the last 14 days left there.
    Processed events (one per update) are found by channel and age together: an index on
    the channel alone would read every event of the channel's last 2 or 8 days."""
    app = await make_app()
    await seed(app, iso(clock.now()))
    said: list[str] = []
    await app.store.conn.set_trace_callback(said.append)
    clock.advance(days=91)
    await retention.purge(app, clock.now())
    await app.store.conn.set_trace_callback(None)
    reads_or_writes = {"DELETE", "UPDATE", "SELECT", "WITH"}  # WITH: a CTE, then its SELECT
    statements = [sql for sql in said if sql.split(maxsplit=1)[0].upper() in reads_or_writes]
    plans: dict[str, list[str]] = {}
    async with app.store.reading() as conn:
        for sql in statements:
            rows = await conn.execute_fetchall(f"EXPLAIN QUERY PLAN {sql}")
            plans[sql] = [row[3] for row in rows]
    writes = [
        sql for sql in statements if sql.split(maxsplit=1)[0].upper() in {"DELETE", "UPDATE"}
    ]
    tables = {sql.replace("DELETE FROM", "DELETE").split()[1] for sql in writes}
    assert tables == {
        "processed_events",
        "telegram_updates",
        "outbox",
        "wa_statuses",
        "webhook_inbox",
        "mail_outbox",
        "verification_codes",
    }

    def scans_a_table(sql: str, step: str) -> bool:
        ctes = re.findall(r"WITH(?: RECURSIVE)? (\w+)", sql)  # a CTE's rows are read as made
        return step.startswith("SCAN") and step.split()[1] not in ctes

    scans = {sql: plan for sql, plan in plans.items() if any(scans_a_table(sql, s) for s in plan)}
    # One read in id order is bounded instead of indexed: sent messages, up to the first row
    # written within the 14 days kept (the next test shows it reads no recent row).
    sent = [sql for sql in scans if sql.split()[:5] == ["DELETE", "FROM", "outbox", "WHERE", "id"]]
    assert len(sent) == 1
    assert "SEARCH outbox USING INTEGER PRIMARY KEY (rowid<?)" in plans[sent[0]]
    del scans[sent[0]]
    # Telegram updates likewise, in the order of their numbers, from each end up to the
    # first one received within the 2 days kept (tested below).
    updates = [sql for sql in scans if sql.split()[:3] == ["DELETE", "FROM", "telegram_updates"]]
    assert len(updates) == 2
    for sql in updates:
        assert any(
            step.startswith("SEARCH telegram_updates USING INTEGER PRIMARY KEY (rowid")
            for step in plans[sql]
        )
        del scans[sql]
    assert scans == {}
    events = {
        sql: plan for sql, plan in plans.items() if sql.startswith("DELETE FROM processed_events")
    }
    assert len(events) == 3  # telegram, whatsapp, terminal
    by_channel_and_age = [
        sql
        for sql, plan in events.items()
        if len(plan) == 1
        and plan[0].startswith("SEARCH processed_events USING")
        and plan[0].endswith("(channel=? AND at<?)")
    ]
    assert sorted(by_channel_and_age) == sorted(events)


def purge_steps(
    settings: Settings, statements: Sequence[str], cutoff: datetime, now: datetime
) -> tuple[int, int]:
    """A purge's statements run (?1: the cutoff, ?2: now), then undone: the steps of
    SQLite's virtual machine they took (a step: 10 instructions) and the rows they deleted."""
    counted = [0]

    def step() -> int:
        counted[0] += 1
        return 0

    db = sqlite3.connect(settings.database_path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    db.set_progress_handler(step, 10)
    deleted = sum(db.execute(sql, (iso(cutoff), iso(now))).rowcount for sql in statements)
    db.set_progress_handler(None, 0)
    db.execute("ROLLBACK")
    db.close()
    return counted[0], deleted


async def test_the_purge_of_sent_messages_reads_the_old_rows_never_the_recent_ones(
    make_app: AppFactory, clock: FakeClock, settings: Settings
) -> None:
    """Sent messages are found in id order up to the first one written within the 14 days
    kept, with no index on when they were sent (which every delivery would write to): the
    work of the purge does not grow with the messages of the last 14 days."""
    app = await make_app()
    now = clock.now()
    old, recent = iso(now - timedelta(days=20)), iso(now - timedelta(days=1))
    insert = (
        "INSERT INTO outbox (channel, chat_id, payload, state, created_at, sent_at)"
        " VALUES ('telegram', '1', '{}', ?, ?, ?)"
    )

    async def add(state: str, at: str, n: int) -> None:
        async with app.store.reading() as conn:
            sent_at = at if state == "sent" else None
            await conn.executemany(insert, [(state, at, sent_at)] * n)

    def steps() -> tuple[int, int]:
        cutoff = now - retention.SENT_KEPT
        return purge_steps(settings, [retention.SENT_MESSAGES], cutoff, now)

    await add("sent", old, 50)
    await add("failed", old, 5)  # kept 90 days: read at every purge
    await add("sent", iso(now + timedelta(days=365)), 1)  # a clock ahead, then corrected
    await add("sent", old, 50)
    await add("sent", recent, 100)
    few, deleted = steps()
    assert deleted == 100
    await add("sent", recent, 20_000)
    many, deleted = steps()
    assert deleted == 100
    assert many <= few * 1.05  # 20,000 more recent messages, nothing more read
    clock.moment += timedelta(days=14)  # now the first recent ones are old too
    await retention.purge(app, clock.now())
    async with app.store.reading() as conn:
        left = list(await conn.execute_fetchall("SELECT state, count(*) FROM outbox GROUP BY 1"))
    assert left == [("failed", 5), ("sent", 1)]  # the row stamped in the future: kept


async def test_the_purge_of_telegram_updates_reads_the_old_ones_never_the_recent_ones(
    make_app: AppFactory, clock: FakeClock, settings: Settings
) -> None:
    """Telegram updates are found in the order of their numbers (the order Telegram hands
    them out in) from both ends, up to the first one received within the 2 days kept: the
    work of the purge does not grow with the updates of the last 2 days. Old numbers above
    the recent ones (Telegram starts again at random after a week without updates) go too."""
    app = await make_app()
    now = clock.now()
    old, recent = iso(now - timedelta(days=3)), iso(now - timedelta(hours=1))
    ahead = iso(now + timedelta(days=365))  # a clock set ahead, then corrected
    numbers = itertools.count(500_000_000)

    async def add(at: str, n: int) -> None:
        async with app.store.reading() as conn:
            await conn.executemany(
                "INSERT INTO telegram_updates (update_id, at) VALUES (?, ?)",
                [(next(numbers), at) for _ in range(n)],
            )

    def steps() -> tuple[int, int]:
        cutoff = now - retention.EVENTS_KEPT["telegram"]
        return purge_steps(settings, retention.TELEGRAM_UPDATES, cutoff, now)

    await add(old, 50)
    await add(ahead, 1)
    await add(old, 50)
    await add(recent, 100)
    numbers = itertools.count(900_000_000)
    await add(old, 7)  # strays above the recent ones
    few, deleted = steps()
    assert deleted == 107
    numbers = itertools.count(600_000_000)  # between the recent ones and the strays
    await add(recent, 20_000)
    many, deleted = steps()
    assert deleted == 107
    assert many <= few * 1.05  # 20,000 more recent updates, nothing more read
    clock.moment += timedelta(days=2)  # now the recent ones are old too
    await retention.purge(app, clock.now())
    async with app.store.reading() as conn:
        left = list(await conn.execute_fetchall("SELECT at FROM telegram_updates"))
    assert left == [(ahead,)]
