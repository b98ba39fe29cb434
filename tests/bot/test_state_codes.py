"""Ticket states are stored as codes; a database that stored their Spanish names is migrated
(0014) and reads exactly as before."""

from __future__ import annotations

import json
import sqlite3

from bot.settings import Settings
from bot.texts import Texts
from tests.conftest import AppFactory
from tests.driver import Driver, MemoryMailer
from tests.walks import ENTITY, file_request

FIRST = "PTE-2026-000001"


async def test_a_database_with_state_names_is_migrated_to_codes(
    user: Driver, mailer: MemoryMailer, make_app: AppFactory, settings: Settings
) -> None:
    await file_request(user, mailer, ENTITY)
    staff = await user.peer("9001", staff=True)
    await staff.send("/start")
    await staff.click("Acepto")
    await staff.send(f"/ticket {FIRST}")
    await staff.click("Tomar")
    await user.app.close()
    # The database as release 0013 left it: states stored as the names people read, and a
    # notice about one still waiting in the outbox (held for WhatsApp's window, say).
    db = sqlite3.connect(settings.database_path)
    db.execute("UPDATE tickets SET state = 'En atención'")
    db.execute("UPDATE ticket_events SET to_state = 'Registrado' WHERE to_state = 'registrado'")
    db.execute(
        "UPDATE ticket_events SET from_state = 'Registrado', to_state = 'En atención'"
        " WHERE to_state = 'en_atencion'"
    )
    notice = {"key": "aviso.estado", "qid": 0, "data": {"number": FIRST, "type": "accesos",
              "state": "Observado", "message": None, "part": "otro", "changes": []}}  # fmt: skip
    db.execute(
        "INSERT INTO outbox (channel, chat_id, payload, created_at)"
        " VALUES ('telegram', '1001', ?, '2026-12-02T15:00:00+00:00')",
        (json.dumps(notice, ensure_ascii=False),),
    )
    db.execute("PRAGMA user_version = 13")
    db.commit()
    db.close()

    app = await make_app()
    async with app.store.reading() as conn:
        states = list(await conn.execute_fetchall("SELECT number, state FROM tickets"))
        events = list(
            await conn.execute_fetchall(
                "SELECT from_state, to_state FROM ticket_events WHERE kind = 'estado' ORDER BY id"
            )
        )
        (payload,) = next(
            iter(
                await conn.execute_fetchall("SELECT payload FROM outbox ORDER BY id DESC LIMIT 1")
            )
        )
    assert states == [(FIRST, "en_atencion")]
    assert events == [(None, "registrado"), ("registrado", "en_atencion")]
    queued = json.loads(payload)
    assert queued["data"]["state"] == "observado"
    assert "pasó a Observado" in Texts().plain(queued["key"], queued["data"])

    officer = Driver(app)
    await officer.start()
    try:
        desk = await officer.peer("9001", staff=True)
        card = (await desk.send(f"/ticket {FIRST}"))[-1].plain
    finally:
        await officer.stop()
    assert "Estado: En atención · a tu cargo" in card
    assert "En atención (" in card  # the history names the state as before
