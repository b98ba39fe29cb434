"""Hacer una consulta: screenshots and documents, albums, limits, ticket."""

from __future__ import annotations

import io
import zipfile

from tests.driver import Driver, MemoryMailer
from tests.walks import DESCRIPTION, PDF, count_rows, make_pdf, tiny_png, to_attachments, to_step


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
    assert user.screen.last.progress == (4, 5)
    first = await user.upload(tiny_png(), name=None, mime="image/png", photo=True)
    assert first[-1].key == "consulta.recibido"
    assert first[-1].data["count"] == 1
    assert first[-1].data["max"] == 10
    second_png = tiny_png()[:-12] + tiny_png()[-12:]  # same bytes: counted once
    dup = await user.upload(second_png, name=None, mime="image/png", photo=True)
    assert dup[-1].key == "consulta.duplicate"
    await user.upload(make_pdf(3), name="captura2.pdf")
    await user.upload(PDF, name="informe.pdf")
    summary = (await user.tap("btn.done"))[-1].plain
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


async def test_album_gets_one_confirmation(user: Driver) -> None:
    await to_attachments(user)
    replies = []
    for i in range(3):
        content = make_pdf(i + 1)
        info_replies = await user.upload_in_album(content, group="album-1")
        replies.extend(info_replies)
    assert len(replies) == 1
    assert replies[0].key == "consulta.album"
    summary = (await user.tap("btn.done"))[-1].plain
    assert "Adjuntos: 3" in summary


async def test_eleventh_file_is_refused(user: Driver) -> None:
    await to_attachments(user)
    for i in range(10):
        await user.upload(make_pdf(i + 1))
    replies = await user.upload(make_pdf(11))
    assert replies[-1].key == "errors.too_many_files"
    assert replies[-1].data["max"] == 10
    summary = (await user.tap("btn.done"))[-1].plain
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
