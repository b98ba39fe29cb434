"""Hacer una consulta: screenshots and documents, albums, limits, ticket."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from bot.delivery.payload import Rendered
from tests.conftest import AppFactory
from tests.driver import Driver, MemoryMailer
from tests.walks import (
    DESCRIPTION,
    OFFICER,
    PDF,
    count_rows,
    make_pdf,
    tiny_png,
    to_attachments,
    to_step,
    who_asks,
)


def docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


async def test_consulta_with_two_screenshots_and_a_pdf(user: Driver, mailer: MemoryMailer) -> None:
    await to_attachments(user)
    assert user.screen.last.progress == (4, 11)
    first = await user.upload(tiny_png(), name=None, mime="image/png", photo=True)
    assert first[-1].key == "consulta.recibido"
    assert first[-1].data["count"] == 1
    assert first[-1].data["max"] == 10
    second_png = tiny_png()[:-12] + tiny_png()[-12:]  # same bytes: counted once
    dup = await user.upload(second_png, name=None, mime="image/png", photo=True)
    assert dup[-1].key == "consulta.duplicate"
    await user.upload(make_pdf(3), name="captura2.pdf")
    await user.upload(PDF, name="informe.pdf")
    await user.tap("btn.done")
    summary_message = (await who_asks(user, mailer))[-1]
    assert summary_message.progress == (11, 11)
    summary = summary_message.plain
    assert "Adjuntos: 3" in summary
    assert DESCRIPTION in summary
    replies = await user.tap("btn.confirm_send")
    assert replies[0].key == "consulta.registrada"
    assert replies[0].data["number"] == "PTE-2026-000001"
    assert await count_rows(user, "ticket_files") == 3
    mail = mailer.sent[-1]
    assert mail["Subject"] == "Consulta PTE – Municipalidad de Prueba [PTE-2026-000001]"
    assert len(list(mail.iter_attachments())) == 3
    detail = (await user.send("PTE-2026-000001"))[-1].plain
    assert "Consulta" in detail
    assert "Adjuntos: 3" in detail


async def test_album_gets_one_confirmation(user: Driver, mailer: MemoryMailer) -> None:
    await to_attachments(user)
    replies = []
    for i in range(3):
        content = make_pdf(i + 1)
        info_replies = await user.upload_in_album(content, group="album-1")
        replies.extend(info_replies)
    assert len(replies) == 1
    assert replies[0].key == "consulta.album"
    await user.tap("btn.done")
    summary = (await who_asks(user, mailer))[-1].plain
    assert "Adjuntos: 3" in summary


async def test_eleventh_file_is_refused(user: Driver, mailer: MemoryMailer) -> None:
    await to_attachments(user)
    for i in range(10):
        await user.upload(make_pdf(i + 1))
    replies = await user.upload(make_pdf(11))
    assert replies[-1].key == "errors.too_many_files"
    assert replies[-1].data["max"] == 10
    await user.tap("btn.done")
    summary = (await who_asks(user, mailer))[-1].plain
    assert "Adjuntos: 10" in summary


async def test_oversize_and_executable_are_refused(user: Driver) -> None:
    await to_attachments(user)
    replies = await user.upload(PDF, size=30 * 1024 * 1024)
    assert replies[-1].key == "errors.attachment_file_too_big"
    exe = b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00" + b"\x00" * 200
    replies = await user.upload(exe, name="captura.png", mime="image/png")
    assert replies[-1].key == "errors.attachment_file_type_not_allowed"
    replies = await user.upload(docx(), name="informe.docx", mime="application/msword")
    assert replies[-1].key == "consulta.recibido"
    assert replies[-1].data["count"] == 1
    assert replies[-1].data["max"] == 10


async def test_short_description_is_refused(user: Driver) -> None:
    await user.send("/start")
    await user.tap("btn.accept")
    await user.send("/consulta")
    await user.send("20131312955")
    await user.send("Municipalidad de Prueba")
    await user.tap("btn.topic_other")
    replies = await user.send("no funciona nada")
    assert replies[0].key == "errors.description_short"


async def test_entity_is_remembered_from_earlier_tickets(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    replies = await user.tap("menu.consulta")
    assert replies[-1].key == "consulta.entidad"
    assert replies[-1].data["usual"]["name"] == "Municipalidad de Pérez <Ruiz> & Cía"
    replies = await user.tap("btn.entity_usual")
    assert replies[-1].key == "consulta.seccion"


# --- who asks (issue 16, point 1) -------------------------------------------------------


async def consulta_until_who(user: Driver) -> list[Rendered]:
    """From the menu of someone who consented to the question of who asks."""
    await user.tap("menu.consulta")
    await user.send("20131312955")
    await user.tap(choice="presupuesto")
    await user.send(DESCRIPTION)
    return await user.tap("btn.done")


async def test_a_consulta_names_who_asks_and_copies_them(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_attachments(user)
    replies = await user.tap("btn.done")
    assert "Paso 5 de 11" in replies[-1].plain
    assert "¿Cuáles son tus nombres?" in replies[-1].plain
    for answer in OFFICER:
        replies = await user.send(answer)
    assert "Paso 9 de 11" in replies[-1].plain
    assert "Te envié un código de 6 dígitos a rosa@munisjl.gob.pe" in replies[-1].plain
    replies = await user.send(mailer.last_code())
    assert "Paso 10 de 11" in replies[-1].plain
    summary = (await user.send("912 345 678"))[-1].plain
    assert "Consulta de: Rosa Huamán Torres, Especialista en Transparencia" in summary
    assert "rosa@munisjl.gob.pe · +51912345678" in summary
    replies = await user.tap("btn.confirm_send")
    assert "con tu correo rosa@munisjl.gob.pe en copia" in replies[0].plain
    mail = mailer.sent[-1]
    assert mail["To"] == "mesadeayuda@gobiernodigital.gob.pe"
    assert mail["Cc"] == "rosa@munisjl.gob.pe"
    body = mail.get_body().get_content()
    assert "Rosa Huamán Torres\r\n" in body  # no DNI: a consulta does not ask it
    assert "Cargo: Especialista en Transparencia" in body
    assert "Correo: rosa@munisjl.gob.pe – Celular: +51912345678" in body
    async with user.app.store.reading() as conn:
        (raw,) = next(iter(await conn.execute_fetchall("SELECT data FROM tickets")))
    assert json.loads(raw)["resp"] == {
        "nombres": "Rosa",
        "apellidos": "Huamán Torres",
        "cargo": "Especialista en Transparencia",
        "email": "rosa@munisjl.gob.pe",
        "review": False,
        "verified": True,
        "phone": "+51912345678",
    }
    staff = await user.peer("9001", staff=True)
    await staff.send("/start")
    await staff.tap("btn.accept")
    card = (await staff.send("/ticket PTE-2026-000001"))[-1].plain
    assert "Consulta de: Rosa Huamán Torres\n" in card
    assert "Especialista en Transparencia · rosa@munisjl.gob.pe · +51912345678" in card


async def test_an_unusual_domain_of_who_asks_is_flagged_for_the_desk(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_attachments(user)
    await user.tap("btn.done")
    for answer in (*OFFICER[:3], "rosa@munisjl.com.pe"):
        await user.send(answer)
    await user.send(mailer.last_code())
    replies = await user.send("912345678")
    assert "Consulta de: Rosa Huamán Torres" in replies[-1].plain
    await user.tap("btn.confirm_send")
    async with user.app.store.reading() as conn:
        (flags,) = next(iter(await conn.execute_fetchall("SELECT flags FROM tickets")))
    assert json.loads(flags) == ["dominio por revisar"]


async def test_sigues_siendo_reuses_who_asked_before_without_a_new_code(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")  # the access request: Ana, her email proved
    mails = len(mailer.sent)
    question = (await consulta_until_who(user))[-1]
    assert (
        "¿Sigues siendo Ana María Pérez Ruiz, Jefa de Tecnologías de la Información?"
        in question.plain
    )
    assert "Pérez Ruiz" in question.plain
    assert [b.label for row in question.buttons for b in row] == ["Sí", "No"]
    summary = (await user.tap("btn.yes"))[-1].plain  # her email proved already: no code
    assert "Revisa tu consulta" in summary
    assert "Consulta de: Ana María Pérez Ruiz, Jefa de Tecnologías de la Información" in summary
    assert "ana.perez@munisjl.gob.pe · +51987654321" in summary
    await user.tap("btn.confirm_send")
    assert len(mailer.sent) == mails + 1  # the consulta, and no code
    mail = mailer.sent[-1]
    assert mail["Cc"] == "ana.perez@munisjl.gob.pe"
    assert "Ana María Pérez Ruiz – DNI 45678912" in mail.get_body().get_content()
    async with user.app.store.reading() as conn:
        rows = list(await conn.execute_fetchall("SELECT data FROM tickets ORDER BY id"))
    resp = json.loads(rows[-1][0])["resp"]
    assert resp["dni"] == "45678912"
    assert resp["verified"] is True
    assert set(resp) == {"nombres", "apellidos", "dni", "cargo", "email", "review",
                         "verified", "phone"}  # fmt: skip


async def test_si_to_sigues_siendo_after_her_codes_were_purged_proves_the_email_again(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")  # the access request: Ana, her email proved
    async with user.app.store.reading() as conn:  # her codes gone, as after a purge
        await conn.execute("DELETE FROM verification_codes")
    mails = len(mailer.sent)
    await consulta_until_who(user)
    replies = await user.tap("btn.yes")  # nothing proves her address now: a new code
    assert len(mailer.sent) == mails + 1
    assert mailer.sent[-1]["To"] == "ana.perez@munisjl.gob.pe"
    assert replies[-1].key == "solicitud.codigo"
    assert "Te envié un código de 6 dígitos a ana.perez@munisjl.gob.pe" in replies[-1].plain
    replies = await user.send(mailer.last_code())
    assert replies[-1].key == "solicitud.celular"
    assert replies[-1].current == "+51987654321"  # her mobile, offered to keep
    summary = (await user.tap("btn.keep"))[-1].plain
    assert "Consulta de: Ana María Pérez Ruiz, Jefa de Tecnologías de la Información" in summary
    replies = await user.tap("btn.confirm_send")
    assert replies[0].key == "consulta.registrada"
    async with user.app.store.reading() as conn:
        rows = list(await conn.execute_fetchall("SELECT data FROM tickets ORDER BY id"))
    assert json.loads(rows[-1][0])["resp"]["verified"] is True


async def test_no_to_sigues_siendo_asks_who_asks(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    await consulta_until_who(user)
    replies = await user.tap("btn.no")
    assert "¿Cuáles son tus nombres?" in replies[-1].plain
    assert "Mantener" not in [b.label for row in replies[-1].buttons for b in row]
    summary = (await who_asks(user, mailer))[-1].plain
    assert "Consulta de: Rosa Huamán Torres" in summary
    await user.tap("btn.confirm_send")
    async with user.app.store.reading() as conn:
        rows = list(await conn.execute_fetchall("SELECT data FROM tickets ORDER BY id"))
    assert "dni" not in json.loads(rows[-1][0])["resp"]  # Ana's DNI is not Rosa's


async def test_a_second_consulta_offers_who_asked_the_first(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_attachments(user)
    await user.tap("btn.done")
    await who_asks(user, mailer)
    await user.tap("btn.confirm_send")
    await user.tap("menu.consulta")
    await user.tap("btn.entity_usual")
    await user.tap(choice="presupuesto")
    await user.send(DESCRIPTION)
    question = (await user.tap("btn.done"))[-1].plain
    assert "¿Sigues siendo Rosa Huamán Torres, Especialista en Transparencia?" in question


async def test_corregir_tus_datos_comes_back_to_the_summary(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_attachments(user)
    await user.tap("btn.done")
    await who_asks(user, mailer)
    await user.tap("btn.correct")
    await user.click("Tus datos")
    for _ in range(3):  # nombres, apellidos, cargo
        await user.click("Mantener")
    await user.click("Mantener")  # the email, proved
    summary = (await user.send("923 456 789"))[-1].plain
    assert "Revisa tu consulta" in summary
    assert "+51923456789" in summary
    await user.tap("btn.correct")
    await user.click("Adjuntos")
    summary = (await user.tap("btn.done"))[-1].plain
    assert "Revisa tu consulta" in summary


async def test_a_draft_from_before_who_asks_was_asked_asks_it_on_confirming(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_attachments(user)
    await user.tap("btn.done")
    await who_asks(user, mailer)
    async with user.app.store.reading() as conn:  # as a draft saved by the previous release
        (raw,) = next(iter(await conn.execute_fetchall("SELECT state FROM conversations")))
        state = json.loads(raw)
        del state["frame"]["data"]["resp"]
        await conn.execute("UPDATE conversations SET state = ?", (json.dumps(state),))
    summary = (await user.send("/start"))[-1].plain
    assert "Revisa tu consulta" in summary
    assert "Consulta de" not in summary
    replies = await user.tap("btn.confirm_send")
    assert "¿Sigues siendo Rosa Huamán Torres" not in replies[-1].plain  # no ticket yet
    assert "¿Cuáles son tus nombres?" in replies[-1].plain
    assert await count_rows(user, "tickets") == 0


@pytest.mark.parametrize("stop_at", ["quien", "nombres", "codigo", "celular"])
async def test_a_restart_in_who_asks_resumes_at_the_open_question(
    make_app: AppFactory, mailer: MemoryMailer, stop_at: str
) -> None:
    """Who asks is part of the draft: a restart between its questions loses nothing, and
    the consulta then goes out with who asks in Cc."""
    app = await make_app()
    user = Driver(app)
    await user.start()
    if stop_at == "quien":  # someone an earlier ticket names
        await to_step(user, mailer, "resumen")
        await user.tap("btn.confirm_send")
        await consulta_until_who(user)
    else:
        await to_attachments(user)
        await user.tap("btn.done")
        answers = {"nombres": 0, "codigo": 4, "celular": 4}[stop_at]
        for answer in OFFICER[:answers]:
            await user.send(answer)
        if stop_at == "celular":
            await user.send(mailer.last_code())
    question = user.screen.last.plain
    await user.stop()
    await app.close()

    again = Driver(await make_app())
    await again.start()
    replies = await again.send("/start")
    assert replies[-1].plain == question
    if stop_at == "quien":
        await again.tap("btn.yes")
        email = "ana.perez@munisjl.gob.pe"
    else:
        for answer in OFFICER[: 4 - {"nombres": 0, "codigo": 4, "celular": 4}[stop_at]]:
            await again.send(answer)
        if stop_at != "celular":
            await again.send(mailer.last_code())
        await again.send("912 345 678")
        email = "rosa@munisjl.gob.pe"
    assert "Revisa tu consulta" in again.screen.last.plain
    await again.tap("btn.confirm_send")
    mail = mailer.sent[-1]
    assert "Consulta PTE" in str(mail["Subject"])
    assert mail["Cc"] == email
    await again.stop()
