"""The help desk on Telegram, end to end: an officer and a specialist on the real
python-telegram-bot Application polling the fake Bot API, mail through a real SMTP server.

The loop the issue asks for: the queue shows the new ticket; Tomar tells the officer "En
atención"; Observar reaches the officer with a Corregir button; the officer sends a new
PDF and the ticket is back "En atención"; Atender tells the officer to check the
institutional email; an officer replaying a staff button changes nothing; with the Bot API
failing for a while (429 and 500), no notification is lost.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings
from tests.bot.telegram_harness import (
    ENTITY,
    HELP_DESK,
    HOST,
    MAIL_FROM,
    Officer,
    SmtpServer,
    make_pdf,
    query,
    walk,
)
from tests.bot.telegram_harness import officer as officer  # a fixture
from tests.bot.telegram_harness import smtp as smtp  # a fixture
from tests.fakes.telegram_api import FakeBotAPI, FakeUser

STAFF_ID = 9001
STAFF_GROUP = -1001234567890


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
        staff_telegram_ids=frozenset({STAFF_ID}),
        staff_chat_id=STAFF_GROUP,
        _env_file=None,
    )


def state(settings: Settings) -> str:
    [(found,)] = query(settings, "SELECT state FROM tickets")
    return str(found)


async def specialist(api: FakeBotAPI) -> FakeUser:
    staff = api.user(STAFF_ID, first_name="Rosa")
    await staff.say("/start")
    menu = (await staff.press("Acepto"))[-1]
    assert "Bandeja de la mesa" in menu.button_labels
    return staff


async def test_observe_correct_attend_through_telegram(
    api: FakeBotAPI, settings: Settings, smtp: SmtpServer, officer: Officer
) -> None:
    group = api.group(STAFF_GROUP, title="Mesa de ayuda PTE")
    await walk(officer)
    await officer.press("✅ Confirmar y enviar", n=3)
    [(number,)] = query(settings, "SELECT number FROM tickets")

    # The new ticket is posted in the staff group, with a link into a private chat.
    [post] = await group.expect(1)
    assert f"🆕 {number}" in post.text
    assert ENTITY in post.text
    assert post.urls["🗂 Ver ficha"].endswith(f"?start={number}")

    staff = await specialist(api)
    queue = (await staff.say("/pendientes"))[-1]
    assert f"🆕 {number} · Accesos · Registrado" in queue.text
    [label] = [b for b in queue.button_labels if b.startswith(f"🆕 {number} · ")]
    card = (await staff.press(label))[-1]
    assert "Estado: Registrado" in card.text
    assert "Pérez &lt;Ruiz&gt; &amp; Cía" in card.html

    # Tomar → the officer hears "En atención".
    [taken_card] = await staff.press("🙋 Tomar")  # "queda a tu cargo" with the card after it
    assert "queda a tu cargo" in taken_card.text
    [taken] = await officer.user.expect(1)
    assert f"{number}: tu solicitud de accesos pasó a En atención" in taken.text

    # An officer replaying the specialist's buttons changes nothing and learns nothing.
    observe_data = staff.last.callback_data["⚠️ Observar"]
    await officer.user.tap_data(observe_data)
    replies = await officer.user.expect(1)
    assert "Ese botón es de una pregunta anterior" in replies[0].text
    assert "Estado:" not in replies[0].text
    assert state(settings) == "en_atencion"

    # Observar the resolution → the officer gets the message and a Corregir button.
    await staff.press("⚠️ Observar")
    await staff.press("Resolución")
    done = await staff.say("La resolución no tiene la firma del alcalde.")
    assert "quedó Observado" in done[0].text
    [observed] = await officer.user.expect(1)
    assert "pasó a Observado" in observed.text
    assert "La resolución no tiene la firma del alcalde." in observed.text
    assert "✏️ Corregir" in observed.button_labels
    assert state(settings) == "observado"

    # Corregir → straight to the resolution; a new PDF; the same ticket back in attention.
    question = (await officer.press("✏️ Corregir"))[-1]
    assert "Paso 10 de 16" in question.text
    await officer.say("Resolución de Alcaldía N.° 046-2026-MDSJL")
    await officer.say("16/03/2025")
    await officer.press("Alcalde o alcaldesa")
    signed = make_pdf(pages=3)
    summary = (await officer.send_document(signed, "firmada.pdf"))[-1]
    assert f"Revisa tu corrección de {number}" in summary.text
    fixed, formato, _menu = await officer.press("✅ Confirmar y enviar", n=3)
    assert f"Corrección enviada: {number}" in fixed.text
    assert formato.document is not None
    assert state(settings) == "en_atencion"
    [told] = await staff.expect(1)
    assert f"{number}: el responsable envió su corrección" in told.text
    [mail] = await smtp.inbox.wait_for("Subsanación de solicitud de accesos al PTE")
    assert HELP_DESK in mail.rcpt_tos

    # Atender, with the Bot API failing for a while: nothing is lost.
    await staff.say(f"/ticket {number}")
    await staff.press("✅ Atender")
    api.fail("sendMessage", times=1, status=429, retry_after=1)
    api.fail("sendMessage", times=2, status=500)
    await staff.press("Sí, atender")
    [attended] = await officer.user.expect(1, timeout=30)
    assert "pasó a Atendido" in attended.text
    assert "Los accesos se enviaron a tu correo institucional" in attended.text
    assert state(settings) == "atendido"
    assert [c.status for c in api.calls_to("sendMessage") if c.status != 200][:3] == [
        429,
        500,
        500,
    ]
    assert not query(settings, "SELECT id FROM outbox WHERE state = 'failed'")

    # The deep link from the group opens the card in the specialist's private chat.
    card = (await staff.say(f"/start {number}"))[-1]
    assert f"🗂 {number}" in card.text
    assert "Estado: Atendido · a tu cargo" in card.text


async def test_staff_commands_are_set_for_staff_only(
    api: FakeBotAPI, settings: Settings, start_bot: object
) -> None:
    api.user(STAFF_ID)  # the specialist's chat exists
    await start_bot()  # type: ignore[operator]  # commands are set before it is ready
    public = [c["command"] for c in api.commands()]
    staff = [c["command"] for c in api.commands({"type": "chat", "chat_id": STAFF_ID})]
    assert "pendientes" not in public
    assert {"pendientes", "ticket", "buscar"} <= set(staff)
    assert set(public) <= set(staff)
