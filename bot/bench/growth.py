"""``pte-bot bench --growth N``: the database after N new users, and after the retention purge.

N people (half on Telegram, half on WhatsApp) each do what a new officer does first:
``/start``, Acepto, 📋 Requisitos y pasos, Siguiente twice; five updates, through
``App.process`` on a fresh SQLite file, with a fake clock (all within one day). Every reply
is marked delivered, and each WhatsApp message gets Meta's three status callbacks (sent,
delivered, read). Then the clock moves 15 days on and :func:`bot.store.retention.purge` runs.

Reported: the rows of each table and the bytes the database uses (pages in use: the file
keeps its free pages for the next rows, ``VACUUM`` would hand them back) before and after
the purge, and the file size after a ``VACUUM``. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import App, create_app
from bot.settings import Settings
from bot.store.database import OutboxRow, iso
from bot.store.retention import purge
from conversations.events import Inbound, Kind

START = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
TABLES = (
    "people",
    "chat_identities",
    "consents",
    "conversations",
    "processed_events",
    "telegram_updates",
    "outbox",
    "wa_statuses",
)


class Clock:
    def __init__(self) -> None:
        self.moment = START

    def now(self) -> datetime:
        return self.moment


class NoMail:
    async def send(self, msg: object) -> str:
        return "none"


SCRIPT = (
    (Kind.COMMAND, "start"),
    (Kind.TEXT, "Acepto"),
    (Kind.TEXT, "Requisitos y pasos"),
    (Kind.TEXT, "Siguiente"),
    (Kind.TEXT, "Siguiente"),
)


async def grow(app: App, clock: Clock, users: int, first: int = 0) -> int:
    """Users ``first``..``first + users - 1`` do their five updates; returns messages sent."""
    ids = itertools.count(first * 10)
    sent = 0
    step = timedelta(seconds=86_000 / max(users, 1))
    for n in range(first, first + users):
        channel = "whatsapp" if n % 2 else "telegram"
        chat_id = f"519{n:08d}" if channel == "whatsapp" else str(700_000_000 + n)
        rows: list[OutboxRow] = []
        for kind, text in SCRIPT:
            number = next(ids)  # Telegram's update_id is a number; a WhatsApp id is text
            event_id = str(number) if channel == "telegram" else f"wamid.{number}"
            event = Inbound(channel, chat_id, event_id, kind, text)
            rows += await app.process(event)
        clock.moment += step
        await deliver(app, rows, clock.now())
        sent += len(rows)
    return sent


async def deliver(app: App, rows: list[OutboxRow], now: datetime) -> None:
    """Mark the rows sent, as a channel does; Meta reports three statuses per message."""
    refs = [(row.id, f"wamid.OUT{row.id:012d}" if row.channel == "whatsapp" else str(row.id))
            for row in rows]  # fmt: skip
    await app.store.mark_sent(refs, now)
    statuses = [
        (ref, status, iso(now))
        for row, (_id, ref) in zip(rows, refs, strict=True)
        if row.channel == "whatsapp"
        for status in ("sent", "delivered", "read")
    ]
    async with app.store.reading() as conn:
        await conn.executemany(
            "INSERT OR IGNORE INTO wa_statuses (wamid, status, at) VALUES (?, ?, ?)", statuses
        )


async def measure(app: App) -> dict[str, Any]:
    await app.store.checkpoint()
    async with app.store.reading() as conn:
        found: dict[str, Any] = {}
        for table in TABLES:
            [(count,)] = list(await conn.execute_fetchall(f"SELECT count(*) FROM {table}"))
            found[table] = count
        [(pages,)] = list(await conn.execute_fetchall("PRAGMA page_count"))
        [(free,)] = list(await conn.execute_fetchall("PRAGMA freelist_count"))
        [(size,)] = list(await conn.execute_fetchall("PRAGMA page_size"))
    return {"rows": found, "bytes_in_use": (pages - free) * size, "file_bytes": pages * size}


async def growth(users: int, data_dir: Path) -> dict[str, Any]:
    clock = Clock()
    settings = Settings(data_dir=data_dir, _env_file=None)
    app = await create_app(settings, clock, NoMail())
    try:
        started = time.monotonic()
        sent = await grow(app, clock, users)
        took = time.monotonic() - started
        before = await measure(app)
        clock.moment += timedelta(days=15)
        purged = await purge(app, clock.now())
        after = await measure(app)
    finally:
        await app.close()
    vacuumed = data_dir / "vacuumed.sqlite3"
    vacuumed.unlink(missing_ok=True)
    with sqlite3.connect(settings.database_path) as db:
        db.execute("VACUUM INTO ?", (str(vacuumed),))
    after["file_bytes_after_vacuum"] = vacuumed.stat().st_size
    vacuumed.unlink()
    return {
        "users": users,
        "updates": users * len(SCRIPT),
        "messages_sent": sent,
        "seconds": round(took, 1),
        "before_purge": before,
        "purged_rows": purged.rows,
        "after_purge": after,
        "bytes_per_user_before": round(before["bytes_in_use"] / users),
        "bytes_per_user_after": round(after["bytes_in_use"] / users),
    }


def main(args: argparse.Namespace) -> int:
    data = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="pte-growth-"))
    result = asyncio.run(growth(args.growth, data))
    mb = 1024 * 1024
    before, after = result["before_purge"], result["after_purge"]
    print(
        f"{result['users']} users, {result['updates']} updates, {result['messages_sent']}"
        f" messages in {result['seconds']} s"
    )
    print(
        f"before the purge: {before['bytes_in_use'] / mb:.1f} MB in use"
        f" ({result['bytes_per_user_before']} B per user); rows {before['rows']}"
    )
    print(
        f"after the purge: {after['bytes_in_use'] / mb:.1f} MB in use"
        f" ({result['bytes_per_user_after']} B per user), file"
        f" {after['file_bytes'] / mb:.1f} MB, {after['file_bytes_after_vacuum'] / mb:.1f} MB"
        f" after VACUUM; rows {after['rows']}"
    )
    line = json.dumps(result)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n", encoding="utf-8")
    return 0
