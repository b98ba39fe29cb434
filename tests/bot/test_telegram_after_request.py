"""After the access request, end to end through Telegram: a consulta with an album of
attachments, the privacy of ticket numbers typed in a sentence, and a profile update once the
request was attended. The real python-telegram-bot Application polls the fake Bot API; our
app runs on a real SQLite file; mail goes to a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import struct
import zlib
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.bot.telegram_harness import (
    ENTITY,
    HELP_DESK,
    MAIL_FROM,
    RUC,
    Officer,
    SmtpServer,
    Starter,
    attachments,
    make_pdf,
    query,
    rejected,
    sheet_cells,
    walk,
)
from tests.bot.telegram_harness import officer as officer  # a fixture
from tests.bot.telegram_harness import smtp as smtp  # a fixture
from tests.fakes.telegram_api import BotMessage, FakeBotAPI, FakeUser

# The request suite's fixtures; `settings` below replaces theirs (it adds a staff member).
# `api` and `start_bot` come from tests/bot/conftest.py.

STAFF_ID = 7900
DESCRIPTION = "No puedo registrar el presupuesto institucional de apertura en el portal."
NUMBER = re.compile(r"PTE-\d{4}-\d{6}")


@pytest.fixture
def settings(tmp_path: Path, api: FakeBotAPI, smtp: SmtpServer) -> Settings:
    """The request suite's settings, with one staff member."""
    return Settings(
        data_dir=tmp_path / "data",
        telegram_bot_token=api.token,
        telegram_base_url=api.base_url,
        telegram_base_file_url=api.base_file_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=False,
        helpdesk_email=HELP_DESK,
        mail_from=MAIL_FROM,
        staff_telegram_ids=frozenset({STAFF_ID}),
        _env_file=None,
    )


def png(rgb: tuple[int, int, int]) -> bytes:
    """A real 1x1 RGB PNG of that colour (distinct colours give distinct files)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + bytes(rgb))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


RED, BLUE = png((255, 0, 0)), png((0, 0, 255))
PDF = make_pdf(1)


async def consent(user: FakeUser) -> None:
    await user.say("/start")
    await user.press("Acepto")


def texts(messages: list[BotMessage]) -> str:
    return "\n".join(m.text for m in messages)


async def consultation_until_attachments(user: FakeUser) -> None:
    """From the menu to the attachments question of a consulta about ENTITY (a new RUC)."""
    [entity_question] = await user.press("Hacer una consulta")
    assert "Escribe su RUC" in entity_question.text
    [name_question] = await user.say(RUC)
    assert "nombre completo de la entidad" in name_question.text
    [section_question] = await user.say(ENTITY)
    assert "¿Qué sección del portal está afectada?" in section_question.text
    assert "Presupuesto" in section_question.button_labels
    [description_question] = await user.press("Presupuesto")
    assert "Cuéntame qué pasa" in description_question.text
    [attachments_question] = await user.say(DESCRIPTION)
    assert "envíalos ahora (hasta 10)" in attachments_question.text
    assert attachments_question.button_labels == ["✅ Listo"]


ROSA_EMAIL = "rosa@munisjl.gob.pe"


async def who_asks(user: FakeUser, smtp: SmtpServer) -> BotMessage:
    """Who asks the consulta, someone new: names, cargo, the email and its code, the mobile;
    returns the summary."""
    for answer in ("Rosa", "Huamán Torres", "Especialista en Transparencia", ROSA_EMAIL):
        await user.say(answer)
    await user.say(await smtp.inbox.code(ROSA_EMAIL))
    [summary] = await user.say("912345678")
    return summary


async def confirm_consultation(user: FakeUser) -> str:
    await user.tap("✅ Confirmar y enviar")
    outputs = await user.settle(quiet=0.3)
    registered = [m for m in outputs if "Consulta registrada: PTE-" in m.text]
    assert len(registered) == 1, [str(m) for m in outputs]
    found = NUMBER.search(registered[0].text)
    assert found is not None
    return found.group()


# --- 1. a consulta with an album ---------------------------------------------------------------


async def test_consultation_with_an_album_is_answered_once_and_keeps_three_files(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, start_bot: Starter
) -> None:
    await start_bot()
    ana = api.user(7101, first_name="Ana")
    await consent(ana)
    await consultation_until_attachments(ana)

    # Two screenshots and a PDF, sent together as one album.
    album = "13579246801357924"
    await ana.send_photo(RED, media_group_id=album, caption="Error al guardar")
    await ana.send_photo(BLUE, media_group_id=album)
    await ana.send_document(PDF, "Oficio.pdf", media_group_id=album)
    answers = await ana.settle(quiet=0.5)
    assert [m.text for m in answers] == [
        "📎 Recibiendo tus archivos. Cuando terminen de llegar, toca «Listo»."
    ], [str(m) for m in answers]
    assert answers[0].button_labels == ["✅ Listo"]
    assert len(api.calls_to("getFile")) == 3  # every file of the album was fetched

    [who] = await ana.press("✅ Listo")
    assert "¿Cuáles son tus nombres?" in who.text
    summary = await who_asks(ana, smtp)
    assert "Revisa tu consulta" in summary.text
    assert "Consulta de: Rosa Huamán Torres, Especialista en Transparencia" in summary.text
    assert f"Entidad: {ENTITY} (RUC {RUC})" in summary.text
    assert "Sección: Presupuesto" in summary.text
    assert "Adjuntos: 3" in summary.text
    assert "1: «Error al guardar»" in summary.text  # a caption stays with its file
    assert summary.button_labels == ["✅ Confirmar y enviar", "✏️ Corregir"]

    number = await confirm_consultation(ana)
    assert "con 3 adjuntos" in texts(ana.messages)
    assert query(settings, "SELECT count(*) FROM tickets WHERE type = 'consulta'") == [(1,)]

    # The ticket's detail, by typing its number.
    detail = await ana.say(number)
    assert len(detail) == 1, [str(m) for m in detail]
    assert f"{number} · Consulta" in detail[0].text
    assert "Adjuntos: 3" in detail[0].text
    assert f"Entidad: {ENTITY} (RUC {RUC})" in detail[0].text

    # The help desk receives the three files byte for byte.
    [mail] = await smtp.inbox.wait_for(f"Consulta PTE – {ENTITY} [{number}]")
    assert mail.rcpt_tos == [HELP_DESK, ROSA_EMAIL]  # who asks, in Cc
    files = attachments(mail.message)
    body = mail.message.get_body(("plain",))
    assert body is not None
    assert f"Adjunto_01_{number}.png: «Error al guardar»" in body.get_content()
    assert sorted(files.values()) == sorted(
        [("image/png", RED), ("image/png", BLUE), ("application/pdf", PDF)]
    )
    assert rejected(api) == []


# --- 2. ticket numbers are private --------------------------------------------------------------


async def test_someone_elses_ticket_number_reads_as_a_non_existent_one(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, start_bot: Starter
) -> None:
    await start_bot()
    ana = api.user(7201, first_name="Ana")
    await consent(ana)
    await consultation_until_attachments(ana)
    await ana.press("✅ Listo")
    await who_asks(ana, smtp)
    number = await confirm_consultation(ana)
    year = number.split("-")[1]
    missing = f"PTE-{year}-000999"

    beto = api.user(7202, first_name="Beto")
    await consent(beto)
    others = await beto.say(f"hola, ¿cómo va {number}?")
    others += await beto.settle()
    nothing = await beto.say(f"hola, ¿cómo va {missing}?")
    nothing += await beto.settle()
    assert len(others) == len(nothing) == 1, [str(m) for m in others + nothing]
    assert others[0].text.replace(number, "<n>") == nothing[0].text.replace(missing, "<n>")
    assert others[0].button_labels == nothing[0].button_labels
    assert "No encuentro el trámite" in others[0].text
    for message in beto.messages:
        assert ENTITY not in message.text
        assert RUC not in message.text
        assert DESCRIPTION not in message.text

    # A lower-case, spaced variant of the same number is the same number, and still private.
    [variant] = await beto.say(f"estado pte {year}-{int(number[-6:])}")
    assert variant.text == others[0].text

    # Staff see it.
    staff = api.user(STAFF_ID, first_name="Mesa")
    await consent(staff)
    [detail] = await staff.say(f"hola, ¿cómo va {number}?")
    assert f"{number} · Consulta" in detail.text
    assert f"Entidad: {ENTITY} (RUC {RUC})" in detail.text
    assert "Estado: Registrado" in detail.text
    assert rejected(api) == []


# --- 3. a profile update after the request was attended ----------------------------------------


def set_state(settings: Settings, number: str, state: str) -> None:
    """What the staff desk will do, written directly to the bot's SQLite file."""
    path = settings.data_dir / "ptebot.sqlite3"
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        changed = conn.execute(
            "UPDATE tickets SET state = ? WHERE number = ?", (state, number)
        ).rowcount
    assert changed == 1


async def test_profile_update_only_after_the_request_was_attended(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, officer: Officer
) -> None:
    await walk(officer)
    await officer.press("✅ Confirmar y enviar", n=3)
    [(number,)] = query(settings, "SELECT number FROM tickets WHERE type = 'accesos'")
    user = officer.user

    # Registered only: refused.
    [refusal] = await user.press("Actualizar perfiles")
    assert "Aún no figuras así" in refusal.text
    assert refusal.button_labels == ["Solicitar accesos al PTE", "Hacer una consulta", "Menú"]
    await user.press("Menú")

    set_state(settings, number, "atendido")

    [entity_question] = await user.press("Actualizar perfiles")
    assert "¿En qué entidad quieres cambiar perfiles?" in entity_question.text
    assert entity_question.button_labels == [ENTITY]
    [sections] = await user.press(ENTITY)
    assert "Elige las secciones" in sections.text
    assert "Continuar ▶" not in sections.button_labels
    [toggled] = await user.press("Presupuesto")
    assert "✅ Presupuesto" in toggled.button_labels
    assert "Continuar ▶" in toggled.button_labels
    [action] = await user.press("Continuar ▶")
    assert "¿Qué cambio necesitas" in action.text
    assert action.button_labels == ["Reemplazar", "Agregar", "Dar de baja"]
    [reason_question] = await user.press("Dar de baja")
    assert "motivo" in reason_question.text
    [summary] = await user.say("Renuncia de la responsable de presupuesto.")
    assert "Revisa el cambio de perfiles" in summary.text
    assert "Secciones: Presupuesto" in summary.text
    assert "Cambio: Dar de baja" in summary.text
    assert "Persona:" not in summary.text

    await user.tap("✅ Confirmar y enviar")
    outputs = await user.settle(quiet=0.3)
    registered = [m for m in outputs if "Cambio de perfiles registrado: PTE-" in m.text]
    assert len(registered) == 1, [str(m) for m in outputs]
    [(update_number,)] = query(settings, "SELECT number FROM tickets WHERE type = 'perfiles'")
    assert update_number in registered[0].text
    assert update_number != number
    [formato] = [m for m in outputs if m.kind == "document"]
    assert formato.filename == f"Formato_Perfiles_{update_number}.xlsx"
    assert formato.document is not None
    cells = sheet_cells(formato.document)
    assert update_number in cells
    assert ENTITY in cells
    # The officer stays responsible and in charge of the other nine sections; the section
    # removed is still listed, marked (issue 16, point 3).
    assert cells.count("45678912") == 1 + 10
    assert cells.count("dar de baja") == 1

    [mail] = await smtp.inbox.wait_for("Actualización de perfiles del PTE")
    assert update_number in str(mail.message["Subject"])
    assert rejected(api) == []


async def test_a_refused_profile_update_leaves_no_draft(
    api: FakeBotAPI, start_bot: Starter
) -> None:
    await start_bot()
    ana = api.user(7301, first_name="Ana")
    await consent(ana)
    [refusal] = await ana.press("Actualizar perfiles")
    assert "Aún no figuras así" in refusal.text
    await ana.press("Menú")
    [again] = await ana.press("Actualizar perfiles")
    assert "Aún no figuras así" in again.text, again.text  # not "solicitud en curso"
