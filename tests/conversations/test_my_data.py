"""/mis_datos and /borrar_mis_datos."""

from __future__ import annotations

from tests.driver import Driver, MemoryMailer
from tests.walks import count_rows, to_step


async def test_my_data_shows_what_is_stored(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    await user.send("/solicitar")
    shown = (await user.send("/mis_datos"))[0].plain
    assert "versión 2026-12, aceptado el 02/12/2026 10:00" in shown
    assert "ana.perez@munisjl.gob.pe" in shown
    assert "PTE-2026-000001 (Registrado)" in shown
    assert "Solicitud en curso: sí" in shown


async def test_erasure_asks_first_and_keeps_tickets(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    ask = (await user.send("/borrar_mis_datos"))[-1].plain
    assert "se conservan como registros administrativos" in ask
    replies = await user.tap("btn.erase_no")
    assert replies[0].key == "mis_datos.kept"
    await user.send("/borrar_mis_datos")
    replies = await user.tap("btn.erase_yes")
    assert replies[-1].key == "mis_datos.erased"
    assert await count_rows(user, "consents") == 0
    assert await count_rows(user, "verification_codes") == 0
    assert await count_rows(user, "tickets") == 1
    async with user.app.store.reading() as conn:
        ids = [
            r[0] for r in await conn.execute_fetchall("SELECT external_id FROM chat_identities")
        ]
    assert user.chat_id not in ids
    replies = await user.send("hola")  # a new person now: the notice again
    assert replies[-1].key == "consent.notice"
    replies = await user.tap("btn.accept")
    shown = (await user.send("/mis_datos"))[0].plain
    assert "Trámites enviados: ninguno" in shown
