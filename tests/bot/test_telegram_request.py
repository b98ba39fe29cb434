"""Solicitar accesos al PTE end to end: the real python-telegram-bot Application polling the
fake Bot API, our app on a real SQLite file, and mail through a real SMTP server (aiosmtpd)
on loopback. The verification code is read from the mail that server received."""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime
from pathlib import Path

import pytest

from bot.dates import lima_date, long_date
from bot.domain.calendar import BusinessCalendar
from bot.settings import Settings
from tests.bot.conftest import Starter
from tests.bot.telegram_harness import (
    ENTITY,
    EXECUTABLE,
    HELP_DESK,
    HOST,
    MAIL_FROM,
    MAX_INTERACTIONS,
    OFFICER_EMAIL,
    PDF,
    PHONE,
    RESOLUTION,
    RESOLUTION_DATE,
    RUC,
    TEXTS,
    XLSX,
    Officer,
    SmtpServer,
    attachments,
    make_png,
    query,
    rejected,
    sheet_cells,
    text,
    walk,
)
from tests.bot.telegram_harness import officer as officer  # a fixture
from tests.bot.telegram_harness import smtp as smtp  # a fixture
from tests.fakes.telegram_api import FakeBotAPI


@pytest.fixture
def settings(tmp_path: Path, api: FakeBotAPI, smtp: SmtpServer) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        telegram_bot_token=api.token,
        telegram_base_url=api.base_url,
        telegram_base_file_url=api.base_file_url,
        smtp_host=HOST,
        smtp_port=smtp.port,
        smtp_starttls=False,
        helpdesk_email=HELP_DESK,
        mail_from=MAIL_FROM,
        _env_file=None,
    )


# --- 1. the whole request ---------------------------------------------------------------------


async def test_whole_request_through_telegram_with_a_real_smtp_server(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, officer: Officer
) -> None:
    await walk(officer)
    summary = officer.user.last
    assert ENTITY in summary.text  # shown literally...
    assert "Pérez &lt;Ruiz&gt; &amp; Cía" in summary.html  # ...because it was escaped
    assert f"(RUC {RUC})" in summary.text
    assert f"{OFFICER_EMAIL} · {PHONE}" in summary.text
    assert f"{RESOLUTION}, del {RESOLUTION_DATE}, emitida por Alcalde o alcaldesa" in summary.text
    assert "(PDF de 2 páginas)" in summary.text
    # Not of the justice system: every section but Información focalizada.
    assert summary.text.count(": tú") == len(TEXTS.sections) - 1 == 10

    registered, formato, menu = await officer.press("✅ Confirmar y enviar", n=3)
    print(f"\nofficer interactions from /start to the confirmation: {officer.interactions}")
    assert officer.interactions <= MAX_INTERACTIONS

    # The ticket, as the officer reads it.
    [(number, registered_at, due_on)] = query(
        settings, "SELECT number, registered_at, due_on FROM tickets"
    )
    today = lima_date(datetime.fromisoformat(registered_at))
    assert number == f"PTE-{today.year}-000001"
    due = date.fromisoformat(due_on)
    assert due == BusinessCalendar.from_data_dir(settings.data_dir).add_business_days(today, 5)
    assert f"Solicitud registrada: {number}" in registered.text
    assert re.search(
        r"a más tardar el (lunes|martes|miércoles|jueves|viernes) \d{1,2} de [a-z]+ de \d{4} "
        r"\(5 días hábiles\)",
        registered.text,
    ), registered.text
    assert f"a más tardar el {long_date(due)} (5 días hábiles)" in registered.text
    assert OFFICER_EMAIL in registered.text
    assert "Modo local" not in registered.text  # mail went to the SMTP server, not to files
    assert "¿Qué necesitas hacer?" in menu.text

    # The Formato, sent as a document.
    assert formato.kind == "document"
    assert formato.filename == f"Formato_Perfiles_{number}.xlsx"
    assert formato.document is not None
    assert formato.document.startswith(b"PK\x03\x04")
    cells = sheet_cells(formato.document)
    for section in TEXTS.sections:  # all but focalizada: not an entity of the justice system
        assert (section.name in cells) is not section.justice_only, section.name
    assert cells.count("45678912") == 1 + 10  # the responsible, and the 10 sections that apply
    assert ENTITY in cells
    assert RUC in cells

    # The mail to the help desk, as the SMTP server received it.
    subject = f"Solicitud de accesos al PTE – {ENTITY} [{number}]"
    [request] = await smtp.inbox.wait_for("Solicitud de accesos al PTE")
    mail = request.message
    assert mail["Subject"] == subject
    assert mail["To"] == HELP_DESK
    assert mail["Cc"] == OFFICER_EMAIL
    assert mail["From"] == MAIL_FROM
    assert request.mail_from == MAIL_FROM
    assert request.rcpt_tos == [HELP_DESK, OFFICER_EMAIL]
    body = mail.get_body(("plain",))
    assert body is not None
    assert f"{ENTITY} – RUC {RUC}" in body.get_content()
    files = attachments(mail)
    assert set(files) == {f"Resolucion_{number}.pdf", f"Formato_Perfiles_{number}.xlsx"}
    pdf_type, pdf_bytes = files[f"Resolucion_{number}.pdf"]
    assert pdf_type == "application/pdf"
    assert pdf_bytes == PDF  # byte for byte what the officer uploaded
    xlsx_type, xlsx_bytes = files[f"Formato_Perfiles_{number}.xlsx"]
    assert xlsx_type == XLSX
    assert xlsx_bytes == formato.document
    for section in TEXTS.sections:
        assert (section.name in sheet_cells(xlsx_bytes)) is not section.justice_only

    # Exactly two mails: the code to the officer, the request to the help desk.
    assert len(smtp.inbox.received) == 2
    assert rejected(api) == []


# --- 2. refusals ------------------------------------------------------------------------------


async def test_refused_files_are_explained_and_the_question_asked_again(
    api: FakeBotAPI, officer: Officer
) -> None:
    await walk(officer, until="res_pdf")
    question = "Envíame la resolución en PDF"

    # An executable dressed up as a PDF.
    # The refusal and the question again: one message (issue 18).
    [again] = await officer.send_document(EXECUTABLE, "resolucion.pdf")
    assert again.text.startswith(text("errors.file_type_not_allowed") + "\n\n")
    assert question in again.text
    assert "Paso 13 de 16" in again.text

    # 25 MB declared: refused on the declared size, never downloaded.
    big_size = 25 * 1024 * 1024
    update = await officer.user.send_document(PDF, "resolucion_escaneada.pdf", file_size=big_size)
    [again] = await officer.user.expect(1)
    assert again.text.startswith(text("errors.file_too_big") + "\n\n")
    assert question in again.text
    big_id = update["message"]["document"]["file_id"]
    fetched = [c.params.get("file_id") for c in api.calls_to("getFile")]
    assert big_id not in fetched
    assert len(fetched) == 1  # only the executable was downloaded (and refused)

    # A photo of the resolution: a page of a PDF to be built, unless a PDF comes after all.
    await officer.user.send_photo(make_png())
    [page] = await officer.user.expect(1)
    assert "Recibí la página 1" in page.text
    assert page.button_labels == ["Listo, armar el PDF"]

    # A real PDF is then accepted.
    [profiles] = await officer.send_document(PDF, "resolucion.pdf")
    assert "Paso 14 de 16" in profiles.text
    assert profiles.button_labels == ["Sí", "No"]  # the justice question opens the profiles
    assert rejected(api) == []


async def test_invalid_ruc_and_personal_email_are_refused_and_asked_again(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, officer: Officer
) -> None:
    await walk(officer, until="ruc")
    [again] = await officer.say("20131312956")  # wrong check digit
    assert again.text.startswith(text("errors.ruc_check_digit") + "\n\n")
    assert text("solicitud.ruc") in again.text
    assert "Paso 1 de 16" in again.text
    [again] = await officer.say("10456789124")  # a natural person's RUC
    assert again.text.startswith(text("errors.ruc_not_entity") + "\n\n")
    assert "Paso 1 de 16" in again.text

    await walk(officer, after="menu", until="correo")
    [again] = await officer.say("ana.perez@gmail.com")
    assert again.text.startswith(text("errors.email_webmail") + "\n\n")
    assert text("solicitud.correo") in again.text
    assert "Paso 7 de 16" in again.text
    # No code for the personal address: nothing queued, nothing at the SMTP server.
    assert query(settings, "SELECT count(*) FROM mail_outbox") == [(0,)]
    assert smtp.inbox.received == []

    [code_question] = await officer.say(OFFICER_EMAIL)
    assert "Paso 8 de 16" in code_question.text
    assert OFFICER_EMAIL in code_question.text
    assert len(await officer.smtp.inbox.code(OFFICER_EMAIL)) == 6
    assert rejected(api) == []


# --- 3. double confirmation -------------------------------------------------------------------


async def test_confirming_twice_quickly_opens_one_ticket_and_sends_one_mail(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, officer: Officer
) -> None:
    await walk(officer)
    summary, button = officer.user.find_button("✅ Confirmar y enviar")
    data = str(button["callback_data"])
    await officer.user.tap_data(data, message_id=summary.message_id)
    await officer.user.tap_data(data, message_id=summary.message_id)
    outputs = await officer.user.settle(quiet=0.5)

    assert query(settings, "SELECT count(*) FROM tickets") == [(1,)]
    [(number,)] = query(settings, "SELECT number FROM tickets")
    assert sum(f"Solicitud registrada: {number}" in m.text for m in outputs) == 1
    assert sum(m.kind == "document" for m in outputs) == 1
    assert sum("Solicitud registrada" in m.text for m in officer.user.messages) == 1
    # The second tap is on a question already answered: told so, not a second ticket.
    assert any(text("common.stale_button") in m.text for m in outputs)
    assert len(api.calls_to("answerCallbackQuery")) >= 2

    prefix = "Solicitud de accesos al PTE"
    assert query(settings, "SELECT count(*) FROM mail_outbox WHERE kind = 'request'") == [(1,)]
    await smtp.inbox.wait_for(prefix)
    # Every mail the bot committed has left (an event, not a pause): a second one would be
    # in the SMTP server's inbox by now.
    for _ in range(500):
        if query(settings, "SELECT count(*) FROM mail_outbox WHERE state = 'pending'") == [(0,)]:
            break
        await asyncio.sleep(0.02)
    assert query(settings, "SELECT count(*) FROM mail_outbox WHERE state = 'pending'") == [(0,)]
    assert len(smtp.inbox.matching(prefix)) == 1
    assert rejected(api) == []


# --- 4. restart mid-request -------------------------------------------------------------------


async def test_restart_mid_request_resumes_at_the_open_question(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, start_bot: Starter
) -> None:
    stop = await start_bot()
    officer = Officer(api.user(7002, first_name="Ana"), smtp)
    await walk(officer, until="cargo")  # the DNI was the last answer; the cargo is asked
    assert "¿Cuál es tu cargo?" in officer.user.last.text
    await stop()

    await start_bot()  # same data directory, same SQLite file
    [email_question] = await officer.say("Jefa de Tecnologías de la Información")
    assert "Paso 7 de 16" in email_question.text
    assert text("solicitud.correo") in email_question.text
    await walk(officer, after="cargo", until="res_numero")  # code mailed by the new process
    await walk(officer, after="celular")
    registered, _formato, _menu = await officer.press("✅ Confirmar y enviar", n=3)
    assert "Solicitud registrada: PTE-" in registered.text
    [request] = await smtp.inbox.wait_for("Solicitud de accesos al PTE")
    assert request.rcpt_tos == [HELP_DESK, OFFICER_EMAIL]
    body = request.message.get_body(("plain",))
    assert body is not None
    assert "Ana María Pérez Ruiz – DNI 45678912" in body.get_content()
    assert rejected(api) == []
