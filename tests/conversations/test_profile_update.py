"""Actualizar perfiles: only the verified responsible of an attended request."""

from __future__ import annotations

import io
import json

import openpyxl

from tests.driver import Driver, MemoryMailer, button_keys
from tests.walks import count_rows, to_step


async def attended(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    # The help desk attends it (its own tools come with the staff-desk issue).
    async with user.app.store.reading() as conn:
        await conn.execute("UPDATE tickets SET state = 'atendido'")


async def test_refused_without_an_attended_request(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")  # registered, not attended yet
    replies = await user.tap("menu.perfiles")
    assert replies[-1].key == "perfiles_upd.not_allowed"
    assert button_keys(replies[-1]) == ["menu.solicitud", "menu.consulta", "btn.menu"]
    replies = await user.tap("menu.consulta")
    assert replies[-1].key == "consulta.entidad"


async def test_refused_for_someone_who_never_requested(user: Driver) -> None:
    await user.send("/start")
    await user.tap("btn.accept")
    replies = await user.send("/perfiles")
    assert replies[-1].key == "perfiles_upd.not_allowed"


async def test_verified_responsible_replaces_a_section_owner(
    user: Driver, mailer: MemoryMailer
) -> None:
    await attended(user, mailer)
    await user.tap("menu.perfiles")
    replies = await user.tap("btn.entity_same")
    assert replies[-1].key == "perfiles_upd.secciones"
    replies = await user.tap(choice="presupuesto")
    assert replies[-1].edit_ref is not None
    labels = [b.label for row in replies[-1].buttons for b in row]
    assert "✅ Presupuesto" in labels
    await user.tap(choice="personal")
    await user.tap(choice="personal")  # toggled off again
    await user.tap("btn.continue")
    await user.tap("btn.action_reemplazar")
    for answer in ("Luis", "Quispe Mamani", "87654321", "Analista", "lquispe@munisjl.gob.pe"):
        await user.send(answer)
    await user.send("912345678")
    summary = (await user.send("Rotación de personal en la oficina de presupuesto"))[-1].plain
    assert "Secciones: Presupuesto" in summary
    assert "Cambio: Reemplazar" in summary
    replies = await user.tap("btn.confirm_send")
    assert replies[0].key == "perfiles_upd.registrada"
    assert replies[0].data["number"] == "PTE-2026-000002"
    document = replies[1].document
    assert document is not None
    sheet = openpyxl.load_workbook(io.BytesIO(user.app.files.read(document["sha256"]))).active
    table = [[str(c) for c in row if c] for row in sheet.iter_rows(values_only=True)]
    presupuesto = [row for row in table if row and row[0] == "Presupuesto"]
    assert [row[1:3] + row[-1:] for row in presupuesto] == [
        ["Ana María", "Pérez Ruiz", "dar de baja"],
        ["Luis", "Quispe Mamani", "dar de alta"],
    ]
    assert await count_rows(user, "tickets") == 2
    mail = mailer.sent[-1]
    assert "Actualización de perfiles del PTE" in str(mail["Subject"])
    assert mail["Cc"] == "ana.perez@munisjl.gob.pe"


async def test_dar_de_baja_skips_the_person(user: Driver, mailer: MemoryMailer) -> None:
    await attended(user, mailer)
    await user.send("/perfiles")
    await user.tap("btn.entity_same")
    await user.tap(choice="visitas")
    await user.tap("btn.continue")
    replies = await user.tap("btn.action_baja")
    assert replies[-1].key == "perfiles_upd.motivo"


# ------------------------------------------------------------------ issue 16, point 3
ANA = ["Ana María", "Pérez Ruiz", "45678912"]
LUIS = ["Luis", "Quispe Mamani", "87654321"]
CARLA = ["Carla", "Rojas Díaz", "76543210"]
PEOPLE = {
    "87654321": ("Luis", "Quispe Mamani", "Analista", "lquispe@munisjl.gob.pe", "912345678"),
    "76543210": ("Carla", "Rojas Díaz", "Asistente", "crojas@munisjl.gob.pe", "923456789"),
}


async def change(
    user: Driver, sections: list[str], action: str, dni: str | None = None
) -> tuple[str, list[list[str]]]:
    """Files a profile change: its number and its Formato's profile rows (section, names,
    DNI, mark). ``sections`` by name, ``action`` by choice id (agregar, baja, reemplazar)."""
    await user.send("/perfiles")
    await user.tap("btn.entity_same")
    for section in sections:
        await user.tap("btn.toggle", name=section)
    await user.tap("btn.continue")
    await user.tap(choice=action)
    if dni is not None:
        nombres, apellidos, cargo, email, phone = PEOPLE[dni]
        for answer in (nombres, apellidos, dni, cargo, email, phone):
            await user.send(answer)
    await user.send("Cambio de personal en la entidad")
    replies = await user.tap("btn.confirm_send")
    number = replies[0].plain.split("registrado: ")[1].split()[0]
    document = replies[1].document
    assert document is not None
    sheet = openpyxl.load_workbook(io.BytesIO(user.app.files.read(document["sha256"]))).active
    table = [[str(c or "") for c in row] for row in sheet.iter_rows(values_only=True)]
    header = next(i for i, row in enumerate(table) if row[0] == "Sección")
    profiles = [row[:4] + row[7:8] for row in table[header + 1 :] if row[0]]
    return number, profiles


async def attend(staff: Driver, number: str) -> None:
    await staff.send(f"/ticket {number}")
    await staff.tap("btn.desk_take")
    await staff.tap("btn.desk_attend")
    await staff.tap("btn.desk_attend_yes")


def rows_of(profiles: list[list[str]], section: str) -> list[list[str]]:
    return [row[1:] for row in profiles if row[0] == section]


async def test_three_changes_in_a_row_build_on_each_other(
    user: Driver, mailer: MemoryMailer
) -> None:
    """Each Formato is the registry as it stands (the request plus every attended change, in
    order) with its own change applied; what a change removes is marked, never dropped."""
    await attended(user, mailer)
    staff = await user.peer("9001", staff=True)
    await staff.send("/start")
    await staff.tap("btn.accept")

    first, profiles = await change(user, ["Presupuesto", "Personal"], "reemplazar", "87654321")
    assert rows_of(profiles, "Presupuesto") == [[*ANA, "dar de baja"], [*LUIS, "dar de alta"]]
    assert rows_of(profiles, "Personal") == [[*ANA, "dar de baja"], [*LUIS, "dar de alta"]]
    body = mailer.sent[-1].get_body().get_content().splitlines()
    assert (
        "- Presupuesto: Luis Quispe Mamani (DNI 87654321) reemplaza a"
        " Ana María Pérez Ruiz (DNI 45678912)" in body
    )
    await attend(staff, first)

    second, profiles = await change(user, ["Personal", "Registro de visitas"], "baja")
    assert rows_of(profiles, "Presupuesto") == [[*LUIS, ""]]  # the first change, attended
    assert rows_of(profiles, "Personal") == [[*LUIS, "dar de baja"]]
    assert rows_of(profiles, "Registro de visitas") == [[*ANA, "dar de baja"]]
    assert rows_of(profiles, "Datos generales") == [[*ANA, ""]]
    body = mailer.sent[-1].get_body().get_content().splitlines()
    assert "- Personal: se da de baja a Luis Quispe Mamani (DNI 87654321)" in body
    assert "- Registro de visitas: se da de baja a Ana María Pérez Ruiz (DNI 45678912)" in body
    # Issue 16, point 14: the card says who holds each section now.
    card = (await staff.send(f"/ticket {second}"))[-1].plain.splitlines()
    assert "Quién tiene cada sección hoy (antes de este cambio; ✏️ las que cambia):" in card
    assert "• Presupuesto: Luis Quispe Mamani" in card
    assert "• Personal: Luis Quispe Mamani ✏️" in card
    assert "• Registro de visitas: Ana María Pérez Ruiz ✏️" in card
    await attend(staff, second)
    card = (await staff.send(f"/ticket {second}"))[-1].plain.splitlines()
    assert "Quién tiene cada sección hoy (con este cambio):" in card
    assert "• Personal: nadie ✏️" in card

    third, profiles = await change(user, ["Presupuesto"], "agregar", "76543210")
    assert rows_of(profiles, "Presupuesto") == [[*LUIS, ""], [*CARLA, "dar de alta"]]
    assert rows_of(profiles, "Personal") == []  # removed by the second change
    assert rows_of(profiles, "Registro de visitas") == []
    assert rows_of(profiles, "Datos generales") == [[*ANA, ""]]
    body = mailer.sent[-1].get_body().get_content().splitlines()
    assert "- Presupuesto: se agrega a Carla Rojas Díaz (DNI 76543210)" in body

    # A fourth while the third waits: only attended changes are the registry.
    _, profiles = await change(user, ["Presupuesto"], "baja")
    assert rows_of(profiles, "Presupuesto") == [[*LUIS, "dar de baja"]]
    await attend(staff, third)
    _, profiles = await change(user, ["Personal"], "agregar", "76543210")
    assert rows_of(profiles, "Presupuesto") == [[*LUIS, ""], [*CARLA, ""]]
    assert rows_of(profiles, "Personal") == [[*CARLA, "dar de alta"]]


async def test_attending_a_change_tells_which_profiles_changed(
    user: Driver, mailer: MemoryMailer
) -> None:
    """Issue 16, point 2: a profile change is attended telling what changed, not accesses."""
    await attended(user, mailer)
    staff = await user.peer("9001", staff=True)
    await staff.send("/start")
    await staff.tap("btn.accept")
    number, _ = await change(user, ["Presupuesto", "Registro de visitas"], "reemplazar", LUIS[2])
    await staff.send(f"/ticket {number}")
    await staff.tap("btn.desk_take")
    prompt = (await staff.tap("btn.desk_attend"))[-1].plain
    assert "¿Ya aplicaste en el portal el cambio de perfiles" in prompt
    seen = len(user.screen.messages)
    done = await staff.tap("btn.desk_attend_yes")
    assert done[0].key == "mesa.hecho_attend"
    assert done[0].data["type"] == "perfiles"
    notice = user.screen.messages[seen].plain
    assert "pasó a Atendido — la mesa de ayuda aplicó el cambio de perfiles." in notice
    assert "• Presupuesto: entra Luis Quispe Mamani, en lugar de Ana María Pérez Ruiz" in notice
    assert "• Registro de visitas: entra Luis Quispe Mamani, en lugar de Ana María" in notice
    assert "Los accesos se enviaron" not in notice


async def test_focalizada_is_not_offered_outside_the_justice_system(
    user: Driver, mailer: MemoryMailer
) -> None:
    await attended(user, mailer)  # the request answered "No" to the justice question
    await user.send("/perfiles")
    replies = await user.click("Municipalidad de Pérez <Ruiz> & Cía")
    labels = [b.label for row in replies[-1].buttons for b in row]
    assert "Participación ciudadana" in labels
    assert "Información focalizada" not in labels


async def to_person(user: Driver, mailer: MemoryMailer) -> None:
    await attended(user, mailer)
    await user.send("/perfiles")
    await user.click("Municipalidad de Pérez <Ruiz> & Cía")
    await user.click("Presupuesto")
    await user.click("Continuar")
    await user.click("Agregar")


async def test_someone_elses_dni_in_the_registry_is_refused(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_person(user, mailer)
    await user.send("Luis")
    await user.send("Quispe Mamani")
    replies = await user.send("45678912")  # the responsible's DNI, under another name
    assert (
        "Ese DNI ya figura en el registro de tu entidad, a nombre de Ana María Pérez Ruiz"
        in replies[0].plain
    )
    assert "¿Cuál es su DNI?" in replies[-1].plain
    replies = await user.send("87654321")
    assert "¿Cuál es su cargo?" in replies[-1].plain


async def test_someone_elses_mobile_in_the_registry_is_refused(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_person(user, mailer)
    for answer in ("Luis", "Quispe Mamani", "87654321", "Analista", "lquispe@munisjl.gob.pe"):
        await user.send(answer)
    replies = await user.send("987654321")  # the responsible's mobile
    assert "Ese celular ya figura en el registro de tu entidad" in replies[0].plain
    assert "escribe el de Luis Quispe Mamani" in replies[0].plain
    assert "¿Cuál es su celular?" in replies[-1].plain
    replies = await user.send("912345678")
    assert "motivo" in replies[-1].plain


async def test_an_unusual_domain_of_the_person_is_flagged_for_the_desk(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_person(user, mailer)
    luis = ("Luis", "Quispe Mamani", "87654321", "Analista", "lquispe@munisjl.com.pe")
    for answer in (*luis, "912345678", "Rotación de personal"):
        await user.send(answer)
    await user.tap("btn.confirm_send")
    async with user.app.store.reading() as conn:
        found = await conn.execute_fetchall("SELECT type, flags FROM tickets ORDER BY id")
    assert [(kind, json.loads(flags)) for kind, flags in found] == [
        ("accesos", []),
        ("perfiles", ["dominio por revisar"]),
    ]


async def test_the_same_person_again_is_taken_for_more_sections(
    user: Driver, mailer: MemoryMailer
) -> None:
    """The responsible (or a colleague) given another section: same DNI, same name."""
    await to_person(user, mailer)
    ana = ("ana maría", "PÉREZ RUIZ", "45678912", "Jefa de TI", "ana.perez@munisjl.gob.pe")
    for answer in ana:
        await user.send(answer)
    replies = await user.send("987654321")
    assert "motivo" in replies[-1].plain


async def test_someone_an_attended_change_added_is_in_the_registry(
    user: Driver, mailer: MemoryMailer
) -> None:
    """The registry people are the request's and those of its ATTENDED changes: a DNI or a
    mobile a waiting change names is still free, one an attended change named is not."""
    await attended(user, mailer)
    staff = await user.peer("9001", staff=True)
    await staff.send("/start")
    await staff.tap("btn.accept")
    waiting, _ = await change(user, ["Personal"], "agregar", "76543210")
    first, _ = await change(user, ["Presupuesto"], "agregar", "87654321")
    await attend(staff, first)
    await user.send("/perfiles")
    await user.tap("btn.entity_same")
    await user.tap("btn.toggle", name="Personal")
    await user.tap("btn.continue")
    await user.tap(choice="agregar")
    await user.send("Rosa")
    await user.send("Flores Vega")
    replies = await user.send("87654321")  # Luis's, whom the attended change added
    assert "a nombre de Luis Quispe Mamani" in replies[0].plain
    replies = await user.send("76543210")  # Carla's: her change is still waiting
    assert "¿Cuál es su cargo?" in replies[-1].plain
    for answer in ("Analista", "rflores@munisjl.gob.pe"):
        await user.send(answer)
    replies = await user.send("912345678")  # Luis's mobile
    assert "Ese celular ya figura en el registro de tu entidad" in replies[0].plain
    assert "a nombre de Luis Quispe Mamani" in replies[0].plain
    replies = await user.send("923456789")  # Carla's: still free
    assert "motivo" in replies[-1].plain
    assert waiting != first
