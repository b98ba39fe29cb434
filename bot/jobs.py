"""Scheduled work, idempotent across restarts: reminders that go out once, and purges
(orphan files here; everything with a retention period in :mod:`bot.store.retention`).

``remind_drafts`` tells an officer whose request draft has been silent for 25 days that it
expires in 5. The reminder is an outbox row written in the same transaction that marks the
conversation as reminded, so a restart neither loses nor repeats it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.delivery.payload import encode
from bot.desk.jobs import run_desk_jobs
from bot.domain.types import Context
from bot.store.database import OutboxRow, iso
from bot.store.retention import purge
from conversations.engine import DRAFT_LIFETIME
from conversations.events import Outbound
from conversations.state import State

if TYPE_CHECKING:
    from conversations.engine import Engine

REMIND_AFTER = timedelta(days=25)


class JobsContext(Context, Protocol):
    """What the jobs read of the application: the desk's context and the flows."""

    @property
    def engine(self) -> Engine: ...


async def remind_drafts(app: JobsContext, now: datetime) -> list[OutboxRow]:
    silent_since = iso(now - REMIND_AFTER)
    still_alive = (now - DRAFT_LIFETIME).isoformat()
    rows: list[OutboxRow] = []
    async with app.store.transaction(now) as tx:
        found = await tx.fetchall(
            "SELECT c.identity_id, c.state, ci.channel, ci.external_id"
            "  FROM conversations c JOIN chat_identities ci ON ci.id = c.identity_id"
            " WHERE c.updated_at < ? AND c.reminded_at IS NULL"
            "   AND (json_extract(c.state, '$.drafts') != '{}'"
            "        OR json_extract(c.state, '$.frame.flow') IS NOT NULL)",
            (silent_since,),
        )
        for identity_id, raw, channel, chat_id in found:
            state = State.from_json(raw)
            frames = list(state.drafts.values())
            if state.frame is not None:
                frames.append(state.frame)
            drafts = [
                f
                for f in frames
                if app.engine.flows[f.flow].keeps_draft and f.updated > still_alive
            ]
            await tx.execute(
                "UPDATE conversations SET reminded_at = ? WHERE identity_id = ?",
                (tx.stamp, identity_id),
            )
            if not drafts:
                continue
            frame = drafts[0]
            flow = app.engine.flows[frame.flow]
            k, n = flow.position_near(frame.step, frame.history) or (1, len(flow.steps))
            expires = datetime.fromisoformat(frame.updated) + DRAFT_LIFETIME
            message = Outbound(
                "common.draft_reminder",
                {"flow": frame.flow, "k": k, "n": n, "days": max(1, (expires - now).days)},
                bulk=True,
            )
            rows += await tx.enqueue(channel, chat_id, [(encode(message, 0, None), True)])
    return rows


ORPHAN_GRACE = timedelta(days=1)


async def purge_orphan_files(app: JobsContext, now: datetime) -> int:
    """Delete stored files that no ticket and no conversation refers to any more.

    A file is stored before the step that receives it decides (files first, then the row);
    one the step refused (a photo where a PDF was needed), or a draft's PDF after the draft
    was cancelled or expired, is personal data kept for nothing. A day of grace covers
    files whose conversation has not moved yet.
    """
    async with app.store.transaction(now) as tx:
        found = await tx.fetchall(
            "SELECT f.sha256 FROM files f WHERE f.created_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM ticket_files t WHERE t.sha256 = f.sha256)"
            " AND NOT EXISTS (SELECT 1 FROM conversations c WHERE instr(c.state, f.sha256) > 0)",
            (iso(now - ORPHAN_GRACE),),
        )
        for (sha256,) in found:
            await tx.execute("DELETE FROM files WHERE sha256 = ?", (sha256,))
            app.files.path_for(sha256).unlink(missing_ok=True)
        recorded = {sha for (sha,) in await tx.fetchall("SELECT sha256 FROM files")}
    # A file written just before a crash, whose row never committed, has no row at all.
    # File times are the file system's, so this one compares with the wall clock.
    cutoff = time.time() - ORPHAN_GRACE.total_seconds()
    strays = await asyncio.to_thread(unrecorded_files, app.files.root, recorded, cutoff)
    for path in strays:
        path.unlink(missing_ok=True)
    return len(found) + len(strays)


def unrecorded_files(root: Path, recorded: set[str], older_than: float) -> list[Path]:
    if not root.exists():
        return []
    return [
        path
        for path in root.glob("??/??/*")
        if (
            (len(path.name) == 64 and path.name not in recorded)
            # A kill -9 while a file was being written leaves its temporary part behind.
            or (path.name.startswith(".tmp-") and path.name.endswith(".part"))
        )
        and path.is_file()
        and path.stat().st_mtime < older_than
    ]


async def run_all(app: JobsContext, now: datetime) -> list[OutboxRow]:
    """Every scheduled job, each in its own transaction; the rows they queued."""
    queued = await remind_drafts(app, now)
    queued += await run_desk_jobs(app, now)
    await purge_orphan_files(app, now)
    await purge(app, now)  # what outlived its retention; expired codes; the WAL emptied
    return queued
