"""``pte-bot bench --status-lookup``: an officer's status check with few and with many tickets.

A fresh store is filled with N tickets in one bulk ``INSERT ... SELECT`` (a recursive CTE;
four tickets per person, one event each), then the status check a flow makes is timed
through the same services a turn uses: the officer's latest tickets (``my_tickets``) and one
ticket's detail with its history (``ticket_detail``), for random officers, each in its own
read transaction. The figure is the median time of a lookup; the ratio compares the largest
store with the smallest, run one after the other in the same process.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.app import create_app
from bot.domain.types import Who
from bot.services import TurnServices
from bot.settings import Settings

STATUS_SIZES = (1_000, 1_000_000)
TICKETS_PER_PERSON = 4
LOOKUPS = 1_000
STATUS_TOLERANCE = 1.5  # issue 18: with 1,000,000 tickets within 1.5x of 1,000

FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :people)
INSERT INTO people (id, created_at) SELECT i, '2026-11-02T10:00:00' FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :people)
INSERT INTO chat_identities (id, channel, external_id, person_id, created_at)
SELECT i, 'telegram', CAST(800000000 + i AS TEXT), i, '2026-11-02T10:00:00' FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :tickets)
INSERT INTO tickets (id, number, type, state, person_id, identity_id, registered_at,
                     received_on, due_on, data, updated_at)
SELECT i, printf('PTE-2026-%07d', i), 'consulta', 'en_atencion', 1 + (i - 1) % :people,
       1 + (i - 1) % :people, '2026-11-02T10:00:00', '2026-11-02', '2026-11-20', '{}',
       '2026-11-02T10:00:00' FROM n;
INSERT INTO ticket_events (ticket_id, at, actor, from_state, to_state, message)
SELECT id, '2026-11-02T10:00:00', 'officer', NULL, 'registrado', NULL FROM tickets;
"""


async def lookup_times(settings: Settings, tickets: int, lookups: int) -> list[float]:
    people = max(1, tickets // TICKETS_PER_PERSON)
    with tempfile.TemporaryDirectory(prefix="pte-bench-status-") as tmp:
        app = await create_app(settings.model_copy(update={"data_dir": Path(tmp)}))
        try:
            script = FILL.replace(":people", str(people)).replace(":tickets", str(tickets))
            await app.store.conn.executescript(f"BEGIN;\n{script}\nCOMMIT;")
            await app.store.checkpoint()  # the tickets in the database file, not the WAL
            rng = random.Random(18)
            times: list[float] = []
            for _ in range(lookups):
                person = rng.randint(1, people)
                who = Who(person, person, "telegram", str(800000000 + person))
                started = time.perf_counter()
                async with app.store.transaction(app.clock.now()) as tx:
                    services = TurnServices(app, tx, who)
                    mine = await services.my_tickets()
                    detail = await services.ticket_detail(mine[0]["number"])
                times.append(time.perf_counter() - started)
                if detail is None or not detail["history"]:
                    raise RuntimeError("the status lookup found no ticket detail")
            return times
        finally:
            await app.close()


async def status_lookup(
    settings: Settings, sizes: Sequence[int] = STATUS_SIZES, lookups: int = LOOKUPS
) -> dict[str, Any]:
    runs = []
    for tickets in sizes:
        started = time.perf_counter()
        times = await lookup_times(settings, tickets, lookups)
        median_us = statistics.median(times) * 1e6
        p99_us = sorted(times)[max(0, int(len(times) * 0.99) - 1)] * 1e6
        print(
            f"{tickets:>9} tickets  status lookup median {median_us:7.0f} us  "
            f"p99 {p99_us:7.0f} us  ({time.perf_counter() - started:.1f} s with the fill)"
        )
        runs.append(
            {"tickets": tickets, "median_us": round(median_us, 1), "p99_us": round(p99_us, 1)}
        )
    ratio = round(runs[-1]["median_us"] / runs[0]["median_us"], 3)
    print(f"status lookup at {sizes[-1]} / at {sizes[0]} tickets: {ratio}")
    return {
        "mode": "status_lookup",
        "runs": runs,
        "status_lookup_ratio": ratio,
        "within_1_5x": ratio <= STATUS_TOLERANCE,
    }
