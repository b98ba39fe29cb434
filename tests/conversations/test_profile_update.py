"""Actualizar perfiles: only the verified responsible of an attended request."""

from __future__ import annotations

import io

import openpyxl

from tests.conversations.test_access_request import count_rows, to_step
from tests.driver import Driver, MemoryMailer


async def attended(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    await user.click("Confirmar y enviar")
    # The help desk attends it (its own tools come with the staff-desk issue).
    async with user.app.store.reading() as conn:
        await conn.execute("UPDATE tickets SET state = 'Atendido'")


async def test_refused_without_an_attended_request(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    await user.click("Confirmar y enviar")  # registered, not attended yet
    replies = await user.click("Actualizar perfiles")
    assert "Aún no figuras así" in replies[-1].plain
    labels = [b.label for row in replies[-1].buttons for b in row]
    assert labels == ["Solicitar accesos al PTE", "💬 Hacer una consulta", "Menú"]
    replies = await user.click("💬 Hacer una consulta")
    assert "consulta" in replies[-1].plain


async def test_refused_for_someone_who_never_requested(user: Driver) -> None:
    await user.send("/start")
    await user.click("Acepto")
    replies = await user.send("/perfiles")
    assert "Aún no figuras así" in replies[-1].plain


async def test_verified_responsible_replaces_a_section_owner(
    user: Driver, mailer: MemoryMailer
) -> None:
    await attended(user, mailer)
    await user.click("Actualizar perfiles")
    replies = await user.click("Municipalidad de Pérez <Ruiz> & Cía")
    assert "Elige la(s) sección(es)" in replies[-1].plain
    replies = await user.click("Presupuesto")
    assert replies[-1].edit_ref is not None
    labels = [b.label for row in replies[-1].buttons for b in row]
    assert "✅ Presupuesto" in labels
    await user.click("Personal")
    await user.click("✅ Personal")  # toggled off again
    await user.click("Continuar")
    await user.click("Reemplazar")
    for answer in ("Luis", "Quispe Mamani", "87654321", "Analista", "lquispe@munisjl.gob.pe"):
        await user.send(answer)
    await user.send("912345678")
    summary = (await user.send("Rotación de personal en la oficina de presupuesto"))[-1].plain
    assert "Secciones: Presupuesto" in summary
    assert "Cambio: Reemplazar" in summary
    replies = await user.click("Confirmar y enviar")
    assert "Cambio de perfiles registrado: PTE-2026-000002" in replies[0].plain
    document = replies[1].document
    assert document is not None
    sheet = openpyxl.load_workbook(io.BytesIO(user.app.files.read(document["sha256"]))).active
    table = [[str(c) for c in row if c] for row in sheet.iter_rows(values_only=True)]
    presupuesto = [row for row in table if row and row[0] == "Presupuesto"]
    assert presupuesto[0][1:3] == ["Luis", "Quispe Mamani"]
    assert await count_rows(user, "tickets") == 2
    mail = mailer.sent[-1]
    assert "Actualización de perfiles del PTE" in str(mail["Subject"])
    assert mail["Cc"] == "ana.perez@munisjl.gob.pe"


async def test_dar_de_baja_skips_the_person(user: Driver, mailer: MemoryMailer) -> None:
    await attended(user, mailer)
    await user.send("/perfiles")
    await user.click("Municipalidad de Pérez <Ruiz> & Cía")
    await user.click("Registro de visitas")
    await user.click("Continuar")
    replies = await user.click("Dar de baja")
    assert "motivo" in replies[-1].plain
