"""Solicitar accesos al PTE through the user driver, on a real SQLite file."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import openpyxl
import pytest

from tests.conftest import AppFactory
from tests.driver import Driver, FakeClock, MemoryMailer, choices
from tests.walks import ENTITY, PDF, RUC, count_rows, make_pdf, staff_member, tiny_png, to_step


async def test_full_request_in_19_interactions(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    summary = user.screen.last
    assert summary.progress == (16, 16)
    assert summary.data["entity"] == ENTITY
    assert "Pérez &lt;Ruiz&gt; &amp; Cía" in summary.html
    assert summary.data["res"]["pdf"]["pages"] == 2
    assert summary.data["authority"] == "Alcalde o alcaldesa"
    replies = await user.tap("btn.confirm_send")  # interaction 19
    registered, formato = replies[0], replies[1]
    assert registered.key == "solicitud.registrada"
    assert registered.data["number"] == "PTE-2026-000001"
    # Wednesday 2 Dec 2026 (fake clock, Lima) + 5 business days, 8 and 9 Dec are holidays.
    assert registered.data["due"] == "2026-12-11"
    assert registered.data["days"] == 5
    assert formato.document is not None
    assert formato.document["filename"] == "Formato_Perfiles_PTE-2026-000001.xlsx"
    sheet = openpyxl.load_workbook(
        io.BytesIO(user.app.files.read(formato.document["sha256"]))
    ).active
    cells = [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c]
    for section in user.app.services.sections:  # not of the justice system: no focalizada
        assert (section.name in cells) is not section.justice_only
    assert "45678912" in cells
    assert await count_rows(user, "tickets") == 1
    request_mail = mailer.sent[-1]
    assert request_mail["To"] == "mesadeayuda@gobiernodigital.gob.pe"
    assert request_mail["Cc"] == "ana.perez@munisjl.gob.pe"
    assert request_mail["Subject"] == f"Solicitud de accesos al PTE – {ENTITY} [PTE-2026-000001]"
    attachments = {a.get_filename(): a.get_content() for a in request_mail.iter_attachments()}
    assert attachments["Resolucion_PTE-2026-000001.pdf"] == PDF
    assert "Formato_Perfiles_PTE-2026-000001.xlsx" in attachments


async def test_ticket_row_and_first_event(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    async with user.app.store.reading() as conn:
        ticket = next(
            iter(
                await conn.execute_fetchall(
                    "SELECT number, type, state, due_on, received_on, flags, data FROM tickets"
                )
            )
        )
        events = list(
            await conn.execute_fetchall("SELECT from_state, to_state FROM ticket_events")
        )
        codes = list(await conn.execute_fetchall("SELECT code_hash FROM verification_codes"))
    number, kind, state, due, received, flags, data = ticket
    assert (number, kind, state) == ("PTE-2026-000001", "accesos", "registrado")
    assert (received, due) == ("2026-12-02", "2026-12-11")
    assert json.loads(flags) == []
    assert json.loads(data)["resp"]["verified"] is True
    assert events == [(None, "registrado")]
    assert not re.fullmatch(r"\d{6}", codes[0][0])  # stored hashed


@pytest.mark.parametrize(
    ("step", "answer", "error"),
    [
        ("ruc", "20131312956", "errors.ruc_check_digit"),  # dígito verificador
        ("ruc", "10456789124", "errors.ruc_not_entity"),  # no es de una entidad pública
        ("ruc", "2013131", "errors.ruc_length"),  # 11 dígitos
        ("nombres", "x", "errors.text_too_short"),  # muy corto
        ("dni", "1234567", "errors.dni_format"),  # 8 dígitos
        ("correo", "ana@gmail.com", "errors.email_webmail"),  # correo personal
        ("correo", "ana@", "errors.email_syntax"),  # no es válido
        ("codigo", "12345", "errors.code_format"),  # 6 dígitos
        ("celular", "014567890", "errors.phone_not_mobile"),  # teléfono fijo
        ("celular", "98x", "errors.phone_format"),  # No reconozco
        ("res_numero", "Resolución de Alcaldía", "errors.resolution_number"),  # numeración
        ("res_fecha", "31/02/2026", "errors.date_invalid"),  # no existe
        ("res_fecha", "15/12/2026", "errors.date_future"),  # aún no llega
        ("res_fecha", "ayer", "errors.date_format"),  # 15/03/2026
    ],
)
async def test_invalid_answer_is_refused_and_asked_again(
    user: Driver, mailer: MemoryMailer, step: str, answer: str, error: str
) -> None:
    await to_step(user, mailer, step)
    question = user.screen.last.plain
    replies = await user.send(answer)
    assert replies[0].key == error
    assert replies[-1].plain == question


async def test_unusual_domain_is_accepted_and_flagged(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "correo")
    await user.send("ana@munisjl.com.pe")
    await user.send(mailer.last_code())
    for answer in ("987654321", "Resolución N.° 1-2026", "01/10/2026"):
        await user.send(answer)
    await user.tap("btn.authority_rector")
    await user.upload(PDF)
    await user.tap("btn.no")
    await user.tap("btn.me")
    await user.tap("btn.confirm_send")
    async with user.app.store.reading() as conn:
        (flags,) = next(iter(await conn.execute_fetchall("SELECT flags FROM tickets")))
    assert json.loads(flags) == ["dominio por revisar"]
    # Issue 16, point 12: a line of its own naming the address and whose it is.
    lines = mailer.sent[-1].get_body().get_content().splitlines()
    assert "Dominio por revisar: ana@munisjl.com.pe (Ana María Pérez Ruiz)" in lines
    staff = await user.peer("9001", staff=True)
    await staff.send("/start")
    await staff.tap("btn.accept")
    card = (await staff.send("/ticket PTE-2026-000001"))[-1].plain.splitlines()
    assert "⚠️ Dominio por revisar: ana@munisjl.com.pe (Ana María Pérez Ruiz)" in card
    assert "Jefa de Tecnologías de la Información · ana@munisjl.com.pe · +51987654321" in card


async def test_an_address_this_person_already_proved_needs_no_new_code(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    mails = len(mailer.sent)
    await user.send("/solicitar")
    for answer in (RUC, ENTITY, "Ana María", "Pérez Ruiz", "45678912", "Jefa de TI"):
        await user.send(answer)
    replies = await user.send("ana.perez@munisjl.gob.pe")
    assert "¿Cuál es tu celular?" in replies[-1].plain  # no code asked
    assert len(mailer.sent) == mails  # and none sent
    await user.send("/atras")
    replies = await user.send("ana@munisjl.gob.pe")  # another address: proved anew
    assert "Te envié un código de 6 dígitos a ana@munisjl.gob.pe" in replies[-1].plain


async def test_wrong_code_counts_down_then_locks(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "codigo")
    good = mailer.last_code()
    wrong = "000000" if good != "000000" else "111111"
    for left in (4, 3, 2):
        replies = await user.send(wrong)
        assert (replies[0].key, replies[0].data["left"]) == ("errors.code_wrong", left)
    replies = await user.send(wrong)
    assert replies[0].key == "errors.code_wrong"
    assert replies[0].data["left"] == 1
    replies = await user.send(wrong)
    assert replies[0].key == "errors.code_locked"
    # The question no longer asks for that code: it says how to get a new one.
    assert "Escríbelo aquí" not in replies[-1].plain
    assert replies[-1].key == "solicitud.codigo"
    assert replies[-1].data["spent"] == "locked"
    replies = await user.send(good)  # even the right code is refused now
    assert replies[0].key == "errors.code_locked"


async def test_code_expires_after_ten_minutes(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    await to_step(user, mailer, "codigo")
    clock.advance(minutes=11)
    replies = await user.send(mailer.last_code())
    assert replies[0].key == "errors.code_expired"


async def test_resend_waits_sixty_seconds(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    await to_step(user, mailer, "codigo")
    first = mailer.last_code()
    replies = await user.tap("btn.resend_code")
    assert replies[0].key == "errors.code_wait"
    clock.advance(seconds=61)
    replies = await user.tap("btn.resend_code")
    assert replies[0].key == "solicitud.code_resent"
    assert len(mailer.sent) == 2
    second = mailer.last_code()
    if second != first:
        replies = await user.send(first)
        assert replies[0].key == "errors.code_wrong"
    replies = await user.send(second)
    assert replies[-1].key == "solicitud.celular"


async def test_shared_contact_is_taken_as_the_mobile(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "celular")
    replies = await user.share_contact("51987654321")
    assert "número" in replies[-1].plain.lower()
    assert replies[-1].progress == (10, 16)


@pytest.mark.parametrize(
    ("content", "name", "photo", "size", "complaint"),
    [
        (b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00" + b"\x00" * 200, "resolucion.pdf", False,
         None, "No puedo recibir ese tipo de archivo"),
        (PDF, "resolucion.pdf", False, 25 * 1024 * 1024, "más de 20 MB"),
        (make_pdf(1, password="x"), "resolucion.pdf", False, None, "tiene contraseña"),
        (PDF[: len(PDF) // 2], "resolucion.pdf", False, None, "dañado"),
        (b"", "vacio.pdf", False, None, "vacío"),
    ],
)  # fmt: skip
async def test_bad_resolution_file_is_refused(
    user: Driver,
    mailer: MemoryMailer,
    content: bytes,
    name: str,
    photo: bool,
    size: int | None,
    complaint: str,
) -> None:
    await to_step(user, mailer, "res_pdf")
    replies = await user.upload(content, name=name, size=size, photo=photo)
    assert complaint in replies[0].plain
    assert replies[-1].key == "solicitud.res_pdf"
    assert await count_rows(user, "files") == 0


async def test_oversize_file_is_refused_before_download(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "res_pdf")
    user.files.clear()
    fetched: list[str] = []
    original = user._fetch

    async def spy(file_id: str) -> bytes:
        fetched.append(file_id)
        return await original(file_id)

    user._fetch = spy  # type: ignore[method-assign]
    await user.upload(PDF, size=21 * 1024 * 1024)
    assert fetched == []


async def test_a_damaged_photo_of_the_resolution_is_refused_saying_why(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "res_pdf")
    replies = await user.upload(b"\xff\xd8\xff\xe0" + b"\x00" * 100, name=None, photo=True)
    assert replies[0].key == "errors.image_damaged"


async def test_corregir_changes_a_part_and_returns_to_the_summary(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.correct")
    await user.tap("btn.part_resolucion")
    await user.tap("btn.field_all")
    await user.send("Resolución de Alcaldía N.° 046-2026-MDSJL")
    await user.send("16/10/2026")
    await user.tap("btn.authority_otra")
    await user.send("Gerente Municipal")
    replies = await user.tap("btn.keep_pdf")
    summary = replies[-1].plain
    assert "Revisa tu solicitud" in summary
    assert "N.° 046-2026-MDSJL, del 16/10/2026, emitida por Gerente Municipal" in summary


async def test_profiles_by_section_with_another_person(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "perfiles_modo")
    await user.tap("btn.by_section")
    await user.tap("btn.me")  # Datos generales
    await user.tap("btn.other_person")  # Planeamiento
    for answer in ("Luis", "Quispe Mamani", "87654321", "Analista", "lquispe@munisjl.gob.pe"):
        await user.send(answer)
    replies = await user.send("912345678")
    assert replies[-1].key == "perfiles.seccion"
    assert replies[-1].data["section"] == "Presupuesto"
    assert choices(replies[-1]) == ["me", "p0", "other"]
    assert replies[-1].buttons[1][0].args["name"] == "Luis Quispe Mamani"
    for _ in range(7):  # Presupuesto ... Acceso a la información
        await user.tap(choice="p0")
    replies = await user.tap(choice="p0")  # Registro de visitas, the last one
    summary = replies[-1].plain  # focalizada is not asked: the entity is not of the justice
    assert "Datos generales: tú" in summary
    assert "Planeamiento y organización: Luis Quispe Mamani" in summary
    assert "Información focalizada: no aplica" in summary


async def test_summary_shows_who_else_is_in_charge_with_dni_and_email(
    user: Driver, mailer: MemoryMailer
) -> None:
    """Issue 16, point 14: the officer checks each colleague's DNI and email before sending."""
    await to_step(user, mailer, "perfiles_modo")
    await user.tap("btn.other_person")
    for answer in ("Luis", "Quispe Mamani", "87654321", "Analista", "lquispe@munisjl.gob.pe"):
        await user.send(answer)
    summary = (await user.send("912345678"))[-1].plain
    assert "Presupuesto: Luis Quispe Mamani" in summary
    assert (
        "La otra persona a cargo:\n• Luis Quispe Mamani: DNI 87654321 · lquispe@munisjl.gob.pe"
        in summary
    )
    assert summary.count("DNI 87654321") == 1  # once, however many sections the person holds


async def test_yo_outside_the_justice_system_leaves_informacion_focalizada_out(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "justicia")
    question = user.screen.last
    assert "¿forma parte del sistema de justicia?" in question.plain
    assert [b.label for row in question.buttons for b in row] == ["Sí", "No"]
    await user.tap("btn.no")
    summary = (await user.tap("btn.me"))[-1].plain
    assert "Sistema de justicia: tu entidad no forma parte" in summary
    assert "Información focalizada: no aplica" in summary
    assert summary.count(": tú") == len(user.app.services.sections) - 1
    replies = await user.tap("btn.confirm_send")
    body = mailer.sent[-1].get_body().get_content()
    assert "Del sistema de justicia (Ley 30934): no" in body
    assert "- Información focalizada: no aplica" in body
    document = replies[1].document
    assert document is not None
    sheet = openpyxl.load_workbook(io.BytesIO(user.app.files.read(document["sha256"]))).active
    cells = [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c]
    assert "Información focalizada" not in cells  # no row for it...
    assert "No: «Información focalizada» no aplica" in cells  # ...and the reason, once
    assert "Participación ciudadana" in cells


async def test_a_justice_system_entity_gets_informacion_focalizada(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "justicia")
    await user.tap("btn.yes")
    summary = (await user.tap("btn.me"))[-1].plain
    assert "Sistema de justicia: tu entidad forma parte" in summary
    assert "Información focalizada: tú" in summary
    assert summary.count(": tú") == len(user.app.services.sections)


async def test_by_section_outside_the_justice_system_never_asks_for_focalizada(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "perfiles_modo")
    replies = await user.tap("btn.by_section")
    assert "(sección 1 de 10)" in replies[-1].plain
    for _ in range(9):
        replies = await user.tap("btn.me")
    assert "Registro de visitas" in replies[-1].plain
    assert "(sección 10 de 10)" in replies[-1].plain
    summary = (await user.tap("btn.me"))[-1].plain
    assert "Revisa tu solicitud" in summary
    assert "Información focalizada: no aplica" in summary


async def test_corregir_perfiles_asks_the_justice_question_again(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "justicia")
    await user.tap("btn.yes")
    await user.tap("btn.me")
    await user.tap("btn.correct")
    replies = await user.click("Perfiles")
    assert "sistema de justicia" in replies[-1].plain
    await user.tap("btn.no")
    summary = (await user.tap("btn.me"))[-1].plain
    assert "Información focalizada: no aplica" in summary
    await user.tap("btn.confirm_send")
    async with user.app.store.reading() as conn:
        (raw,) = next(iter(await conn.execute_fetchall("SELECT data FROM tickets")))
    data = json.loads(raw)
    assert data["justicia"] is False
    assert data["profiles"]["focalizada"] == "none"


LUIS = ("Luis", "Quispe Mamani", "87654321", "Analista", "lquispe@munisjl.gob.pe", "912345678")


async def test_a_colleague_with_the_responsibles_dni_is_refused_and_yo_offered(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "perfiles_modo")
    await user.tap("btn.other_person")
    await user.send("Ana")
    await user.send("Pérez Ruiz")
    replies = await user.send("45 678 912")  # the responsible's DNI, spaced
    assert "Ese DNI es el tuyo" in replies[0].plain
    assert "¿Cuál es su DNI?" in replies[-1].plain  # the question, again
    assert [b.label for row in replies[-1].buttons for b in row] == ["Yo"]
    summary = (await user.tap("btn.me"))[-1].plain
    assert "Revisa tu solicitud" in summary
    assert "Datos generales: tú" in summary
    frame = await stored_frame(user)
    assert frame["data"]["people"] == []


async def test_a_colleague_named_twice_by_dni_is_refused_and_offered(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "perfiles_modo")
    await user.tap("btn.by_section")
    await user.tap("btn.other_person")  # Datos generales
    for answer in LUIS:
        await user.send(answer)
    await user.tap("btn.other_person")  # Planeamiento
    await user.send("Luis Alberto")
    await user.send("Quispe")
    replies = await user.send("87654321")
    assert "Ese DNI es de Luis Quispe Mamani, a quien ya registraste" in replies[0].plain
    assert "¿Cuál es su DNI?" in replies[-1].plain
    replies = await user.tap(choice="p0")
    assert "Presupuesto" in replies[-1].plain  # Planeamiento went to Luis; next section
    frame = await stored_frame(user)
    assert len(frame["data"]["people"]) == 1
    assert frame["data"]["profiles"]["planeamiento"] == "p0"


@pytest.mark.parametrize(
    ("phone", "complaint"),
    [
        ("+51 987 654 321", "Ese celular es el tuyo"),
        ("912-345-678", "Ese celular es de Luis Quispe Mamani, a quien ya registraste"),
    ],
)
async def test_a_colleague_with_a_mobile_already_given_is_refused(
    user: Driver, mailer: MemoryMailer, phone: str, complaint: str
) -> None:
    await to_step(user, mailer, "perfiles_modo")
    await user.tap("btn.by_section")
    await user.tap("btn.other_person")
    for answer in LUIS:
        await user.send(answer)
    await user.tap("btn.other_person")
    for answer in ("Rosa", "Huamán Torres", "42345678", "Asistente", "rosa@munisjl.gob.pe"):
        await user.send(answer)
    replies = await user.send(phone)
    assert complaint in replies[0].plain
    assert "escribe el de Rosa Huamán Torres" in replies[0].plain
    assert "¿Cuál es su celular?" in replies[-1].plain
    replies = await user.send("923456789")
    assert "Presupuesto" in replies[-1].plain
    frame = await stored_frame(user)
    assert [p["phone"] for p in frame["data"]["people"]] == ["+51912345678", "+51923456789"]


async def test_the_responsible_cannot_take_a_colleagues_dni_or_mobile(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "perfiles_modo")
    await user.tap("btn.other_person")
    for answer in LUIS:
        await user.send(answer)
    await user.tap("btn.correct")
    await user.click("Tus datos")
    await user.click("DNI")
    replies = await user.send("87654321")
    assert "Ese DNI es de Luis Quispe Mamani, a quien registraste" in replies[0].plain
    assert "¿Cuál es tu DNI?" in replies[-1].plain
    assert "Revisa tu solicitud" in (await user.click("Mantener"))[-1].plain  # dni kept
    await user.tap("btn.correct")
    await user.click("Tus datos")
    await user.click("Celular")
    replies = await user.send("912345678")
    assert "Ese celular es de Luis Quispe Mamani" in replies[0].plain
    assert "celular" in replies[-1].plain.lower()  # asked again


async def test_a_second_request_for_the_same_ruc_is_allowed_and_the_desk_told(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    from bot.domain import workflow

    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")  # PTE-2026-000001, Wednesday 2 Dec
    clock.advance(days=1)
    async with user.app.store.transaction(clock.now()) as tx:
        for state in (workflow.IN_PROGRESS, workflow.ATTENDED):
            await workflow.change_state(user.app, tx, "PTE-2026-000001", state, "staff:test:1")
    other = await user.peer("1002")  # another officer of the same entity
    await to_step(other, mailer, "resumen")
    replies = await other.tap("btn.confirm_send")
    assert "Solicitud registrada: PTE-2026-000002" in replies[0].plain
    body = mailer.sent[-1].get_body().get_content()
    assert "ya existe PTE-2026-000001 (Atendido el 03/12/2026)" in body
    staff = await staff_member(user)
    card = (await staff.send("/ticket PTE-2026-000002"))[-1].plain
    assert "ya existe PTE-2026-000001 (Atendido el 03/12/2026)" in card
    # A third one while the second is open: both are named.
    await to_step(other, mailer, "resumen")
    await other.tap("btn.confirm_send")
    body = mailer.sent[-1].get_body().get_content()
    assert "ya existe PTE-2026-000001 (Atendido el 03/12/2026)" in body
    assert "ya existe PTE-2026-000002 (Registrado, registrado el 03/12/2026)" in body
    # The first one's card says nothing of later ones: only requests are checked as sent.
    card = (await staff.send("/ticket PTE-2026-000001"))[-1].plain
    assert "ya existe" not in card


async def test_a_cancelled_request_is_not_an_existing_one(
    user: Driver, mailer: MemoryMailer
) -> None:
    from bot.domain import workflow

    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    async with user.app.store.transaction(user.app.clock.now()) as tx:
        await workflow.change_state(user.app, tx, "PTE-2026-000001", workflow.CANCELLED, "officer")
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    assert "ya existe" not in mailer.sent[-1].get_body().get_content()


async def stored_frame(user: Driver) -> dict[str, Any]:
    async with user.app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall(
                "SELECT c.state FROM conversations c"
                " JOIN chat_identities i ON i.id = c.identity_id WHERE i.external_id = ?",
                (user.chat_id,),
            )
        )
    frame: dict[str, Any] = json.loads(rows[0][0])["frame"]
    return frame


async def test_double_confirmation_opens_one_ticket(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    confirm, _ref = user.find("btn.confirm_send")
    await user.click_data(confirm)
    replies = await user.click_data(confirm)
    assert replies[0].key == "common.stale_button"
    assert await count_rows(user, "tickets") == 1
    assert sum("Solicitud de accesos" in str(m["Subject"]) for m in mailer.sent) == 1


@pytest.mark.parametrize("stop_before", ["entidad", "codigo", "res_fecha", "res_pdf", "resumen"])
async def test_restart_resumes_at_the_open_question(
    make_app: AppFactory, mailer: MemoryMailer, stop_before: str
) -> None:
    app = await make_app()
    user = Driver(app)
    await user.start()
    await to_step(user, mailer, stop_before)
    question = user.screen.last.plain
    await user.stop()
    await app.close()

    again = Driver(await make_app())
    await again.start()
    replies = await again.send("/start")
    assert replies[-1].plain == question
    await again.stop()


async def test_draft_survives_the_menu_and_can_restart(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "cargo")
    menu = (await user.send("/menu"))[-1]
    assert menu.key == "menu.main"
    assert [(d["flow"], d["k"], d["n"]) for d in menu.data["drafts"]] == [("solicitud", 6, 16)]
    offer = (await user.tap("menu.solicitud"))[-1]
    assert offer.key == "common.draft_found"
    assert offer.data["flow"] == "solicitud"
    replies = await user.tap("btn.draft_continue")
    assert replies[-1].key == "solicitud.cargo"
    await user.send("/menu")
    await user.tap("menu.solicitud")
    replies = await user.tap("btn.draft_restart")
    assert replies[-1].key == "solicitud.ruc"


async def test_draft_expires_after_thirty_days(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    await to_step(user, mailer, "cargo")
    clock.advance(days=31)
    replies = await user.send("Jefa de TI")
    assert replies[0].key == "common.draft_expired"


async def test_cancel_discards_the_draft(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "dni")
    await user.send("/cancelar")
    await user.tap("btn.cancel_yes")
    replies = await user.send("/solicitar")
    assert replies[-1].key == "solicitud.ruc"


async def test_known_ruc_offers_the_known_name(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    clock.advance(days=1)
    await user.send("/solicitar")
    replies = await user.send(RUC)
    assert replies[-1].data["known"] == ENTITY
    replies = await user.tap("btn.use_name")
    assert replies[-1].key == "solicitud.nombres"


async def test_silent_draft_gets_one_reminder_before_it_expires(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    from bot.jobs import remind_drafts

    await to_step(user, mailer, "cargo")
    clock.advance(days=24)
    assert await remind_drafts(user.app, clock.now()) == []
    clock.advance(days=2)
    rows = await remind_drafts(user.app, clock.now())
    assert len(rows) == 1
    user.worker.submit(rows)
    await user.worker.drain()
    assert user.screen.last.key == "common.draft_reminder"
    assert user.screen.last.data["k"] == 6
    assert user.screen.last.data["n"] == 16
    assert user.screen.last.data["days"] == 4
    assert await remind_drafts(user.app, clock.now()) == []  # once, also after a restart
    replies = await user.send("Jefa de TI")  # the draft is still there
    assert replies[-1].progress == (7, 16)


async def test_refused_and_abandoned_files_are_purged(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    from bot.jobs import purge_orphan_files

    png = tiny_png()
    await to_step(user, mailer, "res_pdf")
    await user.upload(png, name=None, mime="image/png", photo=True)  # a page, then not used
    await user.upload(PDF)  # kept: the draft refers to it
    assert await count_rows(user, "files") == 2
    assert await purge_orphan_files(user.app, clock.now()) == 0  # within the day of grace
    clock.advance(days=2)
    assert await purge_orphan_files(user.app, clock.now()) == 1
    assert await count_rows(user, "files") == 1
    await user.send("/cancelar")
    await user.tap("btn.cancel_yes")
    assert await purge_orphan_files(user.app, clock.now()) == 1
    assert await count_rows(user, "files") == 0
    assert not any(p.is_file() for p in (user.app.settings.data_dir / "files").rglob("*"))


async def test_share_number_keyboard_is_removed_after_a_restart(
    make_app: AppFactory, mailer: MemoryMailer
) -> None:
    app = await make_app()
    user = Driver(app)
    await user.start()
    await to_step(user, mailer, "celular")
    assert user.screen.last.request_contact
    await user.stop()
    await app.close()

    again = Driver(await make_app())
    await again.start()
    replies = await again.send("987654321")
    assert replies[-1].remove_keyboard
    assert replies[-1].progress == (10, 16)
    replies = await again.send("Resolución N.° 1-2026")
    assert not replies[-1].remove_keyboard
    await again.stop()
