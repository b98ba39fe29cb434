"""A ticket keeps the entity name its officer sent; the RUC's known name is a suggestion."""

from __future__ import annotations

import argparse
import csv
import io
import sqlite3
from pathlib import Path

from bot.settings import Settings
from bot.staff_cli import run
from tests.conftest import AppFactory
from tests.driver import Driver, FakeClock, MemoryMailer, button_keys
from tests.walks import ENTITY, RUC, file_request

FIRST, SECOND = "PTE-2026-000001", "PTE-2026-000002"
OTHER_NAME = "Muni Otra Escritura"


async def csv_rows(user: Driver, tmp_path: Path) -> dict[str, list[str]]:
    target = tmp_path / "t.csv"
    args = argparse.Namespace(action="export-csv", file=target)
    await run(user.app, args, io.StringIO())
    with target.open(encoding="utf-8-sig") as handle:
        return {row[0]: row for row in csv.reader(handle)}


async def test_another_officer_typing_the_name_does_not_rename_an_older_ticket(
    user: Driver, mailer: MemoryMailer, clock: FakeClock, tmp_path: Path
) -> None:
    await file_request(user, mailer, ENTITY)
    clock.advance(hours=1)
    other = await user.peer("2002")
    await file_request(other, mailer, OTHER_NAME)
    assert "Solicitud registrada: PTE-2026-000002" in "\n".join(
        m.plain for m in other.screen.messages[-3:]
    )

    staff = await user.peer("9001", staff=True)
    await staff.send("/start")
    await staff.tap("btn.accept")
    first = (await staff.send(f"/ticket {FIRST}"))[-1].plain
    assert f"Entidad: {ENTITY} (RUC {RUC})" in first
    assert OTHER_NAME not in first
    second = (await staff.send(f"/ticket {SECOND}"))[-1].plain
    assert f"Entidad: {OTHER_NAME} (RUC {RUC})" in second
    assert OTHER_NAME not in (await user.send(FIRST))[-1].plain  # the officer's own detail
    table = await csv_rows(user, tmp_path)
    assert table[FIRST][4] == ENTITY
    assert table[SECOND][4] == OTHER_NAME
    queue = (await staff.send("/pendientes"))[-1].plain
    assert f"{FIRST} · Accesos · Registrado · quedan 5 d.h. · {ENTITY}" in queue
    # The RUC's last name is still offered as a suggestion to the next officer.
    third = await user.peer("2003")
    await third.send("/start")
    await third.tap("btn.accept")
    await third.tap("menu.solicitud")
    offered = (await third.send(RUC))[-1]
    assert (offered.key, offered.data["known"]) == ("solicitud.entidad", OTHER_NAME)
    assert "btn.use_name" in button_keys(offered)


async def test_existing_tickets_are_backfilled_with_the_name_their_officer_sent(
    user: Driver, mailer: MemoryMailer, make_app: AppFactory, settings: Settings
) -> None:
    await file_request(user, mailer, ENTITY)
    await user.app.close()
    # The database as release 0006 left it: no entity_name, and the RUC renamed since.
    db = sqlite3.connect(settings.database_path)
    db.execute("ALTER TABLE tickets DROP COLUMN entity_name")
    db.execute("DROP TABLE mail_inbox")  # 0012, later than 0006 too
    db.execute("DROP INDEX mail_outbox_message_id")
    db.execute("ALTER TABLE mail_outbox DROP COLUMN ticket_id")
    db.execute("ALTER TABLE tickets DROP COLUMN desk_number")
    db.execute("ALTER TABLE mail_outbox DROP COLUMN message_id")  # 0008, later than 0006
    db.execute("UPDATE entities SET name = ?", (OTHER_NAME,))
    db.execute("PRAGMA user_version = 6")
    # Nor what later migrations added (they are applied again at the next start).
    for index in ("webhook_inbox_failed", "wa_statuses_at", "mail_outbox_kind",
                  "outbox_failed_at", "verification_codes_unconfirmed"):  # fmt: skip
        db.execute(f"DROP INDEX {index}")  # (0010's outbox_done_at: 0018 dropped it)
    db.execute("DROP INDEX processed_events_channel_at")  # 0017 replaced processed_events_at
    db.execute("CREATE INDEX processed_events_at ON processed_events(at)")
    db.execute("DROP TABLE telegram_updates")  # 0019
    for table, column in [("webhook_inbox", "attempts"), ("webhook_inbox", "failed_at"),
                          ("webhook_inbox", "error"), ("outbox", "forget")]:  # fmt: skip
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.commit()
    db.close()
    app = await make_app()
    async with app.store.reading() as conn:
        found = list(await conn.execute_fetchall("SELECT number, entity_name FROM tickets"))
    assert found == [(FIRST, ENTITY)]
