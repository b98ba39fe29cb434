"""Ticket states are stored as codes; a database that stored their Spanish names is migrated
(0014) and reads exactly as before."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from bot.settings import Settings
from bot.texts import Texts
from tests.conftest import AppFactory
from tests.driver import Driver, MemoryMailer
from tests.walks import ENTITY, file_request

FIRST = "PTE-2026-000001"


async def taken(user: Driver, mailer: MemoryMailer) -> Driver:
    """A request filed and taken by a specialist (its history: Registrado, En atención);
    returns the specialist."""
    await file_request(user, mailer, ENTITY)
    staff = await user.peer("9001", staff=True)
    await staff.send("/start")
    await staff.click("Acepto")
    await staff.send(f"/ticket {FIRST}")
    await staff.click("Tomar")
    return staff


async def test_a_database_with_state_names_is_migrated_to_codes(
    user: Driver, mailer: MemoryMailer, make_app: AppFactory, settings: Settings
) -> None:
    await taken(user, mailer)
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
    for index in ("outbox_failed_at", "verification_codes_unconfirmed"):  # 0016, later
        db.execute(f"DROP INDEX {index}")
    db.execute("DROP INDEX processed_events_channel_at")  # 0017 replaced processed_events_at
    db.execute("CREATE INDEX processed_events_at ON processed_events(at)")
    db.execute("CREATE INDEX outbox_done_at ON outbox(sent_at) WHERE state = 'sent'")  # 0018
    db.execute("DROP TABLE telegram_updates")  # 0019
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


NAMES = {
    "registrado": "Registrado",
    "en_atencion": "En atención",
    "observado": "Observado",
    "atendido": "Atendido",
    "cerrado": "Cerrado",
    "anulado": "Anulado",
}
STATE_KEYS = ("state", "from_state", "to_state")


def with_names(value: Any) -> Any:
    """``value`` with every state under a state key written as its name, as release 0013
    queued it (0014 converted '$.data.state' only)."""
    if isinstance(value, dict):
        return {
            key: NAMES.get(item, item)
            if key in STATE_KEYS and isinstance(item, str)
            else with_names(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [with_names(item) for item in value]
    return value


async def test_states_deep_in_a_queued_message_are_migrated_to_codes(
    user: Driver, mailer: MemoryMailer, make_app: AppFactory, settings: Settings
) -> None:
    """A ticket list, a ticket's detail with its history and the desk's card, queued before
    0015 with states as names in the history and in the buttons' data, read the same once
    delivered after it."""
    staff = await taken(user, mailer)
    listed = (await user.send("/estado"))[-1]
    detail = (await user.click(listed.buttons[0][0].label))[-1]
    card = (await staff.send(f"/ticket {FIRST}"))[-1]
    seen = {
        message.key: (message.plain, [b.label for row in message.buttons for b in row])
        for message in (listed, detail, card)
    }
    assert "Estado: En atención" in detail.plain
    assert "— Registrado\n" in detail.plain  # its history
    assert "— Registrado (responsable)" in card.plain
    assert f"{FIRST} · Accesos · En atención" in seen[listed.key][1]
    await user.app.close()

    # The database as release 0014 left it: these three messages (the newest of their kind)
    # still waiting in the outbox (held for WhatsApp's window, say), nested states as names.
    db = sqlite3.connect(settings.database_path)
    found = db.execute("SELECT id, payload FROM outbox ORDER BY id DESC").fetchall()
    queued = {}
    for row_id, payload in found:
        body = json.loads(payload)
        if body.get("key") in seen and body["key"] not in queued:
            queued[body["key"]] = body
            assert with_names(body) != body  # each holds a state 0014 left as a name
            db.execute(
                "UPDATE outbox SET state = 'pending', sent_at = NULL, payload = ? WHERE id = ?",
                (json.dumps(with_names(body), ensure_ascii=False), row_id),
            )
    assert set(queued) == set(seen)
    db.execute("DELETE FROM outbox WHERE state = 'sent'")
    db.execute("PRAGMA user_version = 14")
    for index in ("outbox_failed_at", "verification_codes_unconfirmed"):  # 0016, later
        db.execute(f"DROP INDEX {index}")
    db.execute("DROP INDEX processed_events_channel_at")  # 0017 replaced processed_events_at
    db.execute("CREATE INDEX processed_events_at ON processed_events(at)")
    db.execute("CREATE INDEX outbox_done_at ON outbox(sent_at) WHERE state = 'sent'")  # 0018
    db.execute("DROP TABLE telegram_updates")  # 0019
    db.commit()
    db.close()

    app = await make_app()
    async with app.store.reading() as conn:
        migrated = [
            json.loads(payload)
            for (payload,) in await conn.execute_fetchall("SELECT payload FROM outbox ORDER BY id")
        ]
    assert {body["key"]: body for body in migrated} == queued  # the codes, as first queued
    officer = Driver(app)
    desk = Driver(app, "9001")
    officer.peers["9001"] = desk
    desk.peers = officer.peers
    await officer.start()
    await desk.start()
    try:
        delivered = [*officer.screen.messages, *desk.screen.messages]
    finally:
        await officer.stop()
    assert {
        message.key: (message.plain, [b.label for row in message.buttons for b in row])
        for message in delivered
    } == seen
