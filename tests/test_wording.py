"""How the main screens read, in one place.

Behaviour tests assert on template keys and data, so rewording ``locales/es/`` does not break
them; this module and ``tests/test_templates.py`` own the wording. When a text is reworded on
purpose, update the sentence here.
"""

from __future__ import annotations

from tests.driver import Driver, FakeClock, MemoryMailer
from tests.walks import (
    DESCRIPTION,
    ENTITY,
    NUMBER,
    registered,
    staff_member,
    take,
    tiny_png,
    to_attachments,
    to_step,
    who_asks,
)


async def test_the_request_reads_well(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    summary = user.screen.last
    assert "Paso 16 de 16" in summary.plain
    assert ENTITY in summary.plain
    assert "emitida por Alcalde o alcaldesa (PDF de 2 páginas)" in summary.plain
    assert [b.label for row in summary.buttons for b in row] == [
        "✅ Confirmar y enviar",
        "✏️ Corregir",
    ]
    done = await user.tap("btn.confirm_send")
    assert f"Solicitud registrada: {NUMBER}" in done[0].plain
    # Wednesday 2 Dec 2026 (fake clock, Lima) + 5 business days, 8 and 9 Dec are holidays.
    assert "viernes 11 de diciembre de 2026 (5 días hábiles)" in done[0].plain


async def test_a_wrong_code_counts_down_in_words(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "codigo")
    wrong = "000000" if mailer.last_code() != "000000" else "111111"
    assert "Te quedan 4 intentos" in (await user.send(wrong))[0].plain
    for _ in range(2):
        await user.send(wrong)
    assert "Te queda 1 intento:" in (await user.send(wrong))[0].plain
    assert "Superaste los 5 intentos" in (await user.send(wrong))[0].plain


async def test_the_consulta_reads_well(user: Driver, mailer: MemoryMailer) -> None:
    await to_attachments(user)
    assert "Paso 4 de 11" in user.screen.last.plain
    first = await user.upload(tiny_png(), name=None, mime="image/png", photo=True)
    assert "Recibido (1 de 10)" in first[-1].plain
    names = (await user.tap("btn.done"))[-1].plain
    assert "Paso 5 de 11" in names
    assert "¿Cuáles son tus nombres?" in names
    summary = (await who_asks(user, mailer))[-1].plain
    assert "Paso 11 de 11" in summary
    assert "Consulta de: Rosa Huamán Torres, Especialista en Transparencia" in summary
    assert "Adjuntos: 1" in summary
    assert DESCRIPTION in summary
    replies = await user.tap("btn.confirm_send")
    assert f"Consulta registrada: {NUMBER}" in replies[0].plain


async def test_the_desk_and_its_notices_read_well(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    await registered(user, mailer)
    staff = await staff_member(user)
    queue = (await staff.send("/pendientes"))[-1]
    assert "1 trámite abierto" in queue.plain
    assert f"🆕 {NUMBER} · Accesos · Registrado · quedan 5 d.h. · {ENTITY}" in queue.plain
    seen = len(user.screen.messages)
    replies = await take(staff)
    assert "queda a tu cargo" in replies[0].plain
    card = replies[-1]
    assert "Estado: En atención · a tu cargo" in card.plain
    assert "Responsable: Ana María Pérez Ruiz · DNI 45678912" in card.plain
    assert "Resolución: Resolución de Alcaldía N.° 045-2026-MDSJL del 15/10/2026" in card.plain
    [notice] = user.screen.messages[seen:]
    assert f"{NUMBER}: tu solicitud de accesos pasó a En atención" in notice.plain
    clock.advance(days=1)
    await staff.tap("btn.desk_observe")
    await staff.tap("btn.desk_part_resolucion")
    done = await staff.send("Falta la firma del alcalde en la resolución.")
    assert "quedó Observado" in done[0].plain
    assert "4 días hábiles pendientes" in done[0].plain
    observed = user.screen.last
    assert "pasó a Observado" in observed.plain
    assert "Qué corregir: la resolución de designación" in observed.plain
    assert "Falta la firma del alcalde" in observed.plain
