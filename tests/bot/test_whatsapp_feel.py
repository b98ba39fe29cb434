"""WhatsApp that feels made for WhatsApp (issue 19), through ``pte-bot serve`` and the strict
fake Graph API: the message that reopens the 24-hour window, old menus and lists, labels that
fit, buttons where they do, list wording, a number from abroad, captions, the local-mode hint
and the channel's name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.channels.server import Server
from bot.settings import Settings
from tests.bot.telegram_harness import make_png
from tests.bot.whatsapp_harness import (
    HELP_DESK,
    STEPS,
    mailed_code,
    query,
    refused,
    whatsapp_settings,
)
from tests.bot.whatsapp_harness import graph as graph  # a fixture
from tests.bot.whatsapp_harness import wa_server as wa_server  # a fixture
from tests.driver import FakeClock, MemoryMailer
from tests.fakes.graph_api import FakeGraphAPI, FakeWhatsAppUser, Sent

ANA = "51987654321"
ROSA = "51911222333"  # a specialist
RUC = "20131312955"
ENTITY = "Municipalidad Distrital de San Juan de Lurigancho"
DESCRIPTION = "No puedo guardar el presupuesto: el portal muestra un error 500."


@pytest.fixture
def settings(tmp_path: Path, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(tmp_path, graph, staff_whatsapp_ids=frozenset({ROSA}))


async def consented(graph: FakeGraphAPI, wa_id: str = ANA) -> FakeWhatsAppUser:
    user = graph.user(wa_id)
    await user.say("hola", n=2)
    await user.tap("Acepto")
    return user


async def to_description(ana: FakeWhatsAppUser, known: bool = False) -> Sent:
    """A consulta up to "Paso 3 de 11", the description."""
    first = (await ana.tap("Hacer una consulta"))[-1]
    if known:
        assert first.type == "button"  # one remembered entity: a button, not a list
        assert first.labels == ["Sí, esa entidad"]
        assert "Toca «Sí, esa entidad»" in first.text
        await ana.tap("Sí, esa entidad")
    else:
        await ana.say(RUC)
        await ana.say(ENTITY)
    await ana.tap("Más opciones ▸")
    [question] = await ana.tap("Otro")
    assert "Paso 3 de 11" in question.text
    return question


async def registered_consulta(
    ana: FakeWhatsAppUser, settings: Settings, mailer: MemoryMailer
) -> str:
    await to_description(ana)
    await ana.say(DESCRIPTION)
    await ana.tap("✅ Listo")
    for answer in ("Ana", "Pérez Ruiz", "Especialista", "ana.perez@munisjl.gob.pe"):
        await ana.say(answer)  # who asks
    await ana.say(await mailed_code(mailer))
    await ana.say("987654321")
    registered, *_ = await ana.tap("✅ Confirmar y enviar", n=2)
    await ana.settle()
    [(number,)] = query(settings, "SELECT number FROM tickets ORDER BY id DESC LIMIT 1")
    assert number in registered.text
    return str(number)


async def tap_on(user: FakeWhatsAppUser, sent: Sent, title: str) -> list[Sent]:
    """Tap the row titled ``title`` of that message (however old), as the person scrolls up."""
    row = next(ident for ident, shown, _ in sent.rows if shown == title)
    reply = {"type": "list_reply", "list_reply": {"id": row, "title": title}}
    await user.send("interactive", reply, sent.wamid)
    return await user.expect(1)


def stored_state(settings: Settings, wa_id: str = ANA) -> dict[str, object]:
    [(raw,)] = query(
        settings,
        "SELECT c.state FROM conversations c JOIN chat_identities i ON i.id = c.identity_id"
        " WHERE i.external_id = ?",
        (wa_id,),
    )
    return dict(json.loads(raw))


# --- 1. the message that reopens the window ---------------------------------------------------


async def test_the_answer_to_the_template_is_not_taken_as_the_description(
    graph: FakeGraphAPI,
    settings: Settings,
    clock: FakeClock,
    wa_server: Server,
    mailer: MemoryMailer,
) -> None:
    ana = await consented(graph)
    number = await registered_consulta(ana, settings, mailer)
    await to_description(ana, known=True)  # a second consulta, left at "Paso 3 de 11"

    clock.advance(hours=25)
    rosa = graph.user(ROSA, "Rosa")  # the specialist moves the first ticket twice
    await rosa.say(f"/ticket {number}")
    await rosa.tap("🙋 Tomar")
    await rosa.settle()
    await rosa.tap("↩️ Responder")
    await rosa.say("Ya revisamos el error; prueba de nuevo, por favor.")
    await rosa.settle()
    [template] = await ana.expect(1)  # both notices held, one template
    assert template.type == "template"
    assert await ana.settle() == []
    assert len(query(settings, "SELECT outbox_id FROM wa_held")) == 2

    reply = "Hola, me llegó su aviso. ¿Qué novedades hay de mi trámite de accesos?"
    await ana.send("text", {"body": reply}, context=template.wamid)
    # What was held, in its order: released together, the notices join into one message.
    held, offer = await ana.expect(2)
    assert held.text.index("En atención") < held.text.index("prueba de nuevo")
    assert "no tomé tu mensaje como respuesta" in offer.text
    assert "Tienes una consulta en curso (paso 3 de 11)" in offer.text
    assert offer.labels == ["Continuar", "Empezar de nuevo"]
    draft = stored_state(settings)["drafts"]["consulta"]  # type: ignore[index]
    assert "description" not in draft["data"]
    assert query(settings, "SELECT count(*) FROM tickets") == [(1,)]

    [question] = await ana.tap("Continuar")
    assert "Paso 3 de 11" in question.text
    [attachments] = await ana.say(DESCRIPTION)  # within the window now: an answer
    assert "Paso 4 de 11" in attachments.text
    assert refused(graph) == []


async def test_a_short_greeting_after_a_day_is_not_refused_as_too_short(
    graph: FakeGraphAPI, settings: Settings, clock: FakeClock, wa_server: Server
) -> None:
    ana = await consented(graph)
    await to_description(ana)
    # Within the window, the same words are an answer to the open question (too short).
    [again] = await ana.say("buenas, ¿hay novedades?")  # the refusal joined to the question
    assert again.text.startswith("Cuéntame un poco más")
    assert "Paso 3 de 11" in again.text

    clock.advance(hours=26)  # nothing held: the window closed by time alone
    [offer] = await ana.say("buenas, ¿hay novedades?")
    assert "Cuéntame un poco más" not in offer.text
    assert "Tienes una consulta en curso (paso 3 de 11)" in offer.text

    clock.advance(hours=30)  # a greeting reopens it: welcomed, offered where it stood
    [offer] = await ana.say("hola")  # the welcome in front of the offer
    assert offer.text.startswith("¡Hola de nuevo!")
    assert "no tomé tu mensaje" not in offer.text
    assert "paso 3 de 11" in offer.text

    clock.advance(hours=30)  # the template's quick-reply button, and a word that names an entry
    await ana.send("button", {"text": "Ver novedades", "payload": "novedades"})
    [menu] = await ana.expect(1)
    assert menu.labels[0] == "Requisitos y pasos"  # at the menu, the consulta kept
    assert "Tienes una consulta en curso" in menu.text
    clock.advance(hours=30)
    [status] = await ana.say("quiero ver el estado de mi trámite")
    assert "Aún no tienes trámites" in status.text
    assert "consulta" in stored_state(settings)["drafts"]  # type: ignore[operator]
    assert refused(graph) == []


# --- 2. old menus and lists -------------------------------------------------------------------


async def test_old_menus_and_tickets_work_and_a_closed_question_is_refused_briefly(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server, mailer: MemoryMailer
) -> None:
    ana = await consented(graph)
    number = await registered_consulta(ana, settings, mailer)
    first_menu = next(m for m in ana.outputs if "Requisitos y pasos" in m.labels)
    [card] = await ana.tap("Requisitos y pasos")
    assert "Paso 1 de 7" in card.text

    # "Hacer una consulta" on the very first menu, while on a requirements card.
    [entity] = await tap_on(ana, first_menu, "Hacer una consulta")
    assert "Paso 1 de 11" in entity.text

    # "Siguiente ▶" on the card answers a question no longer open: one short message.
    [stale] = await ana.tap("Siguiente ▶")
    assert stale.text == (
        "Ese botón es de una pregunta anterior, así que no cambié nada. Sigue con mi última "
        "pregunta, más arriba."
    )
    assert await ana.settle() == []  # not the card, not the question again

    # "Estado de mis trámites" and a ticket from lists that are no longer open.
    [tickets] = await tap_on(ana, first_menu, "Estado de mis trámites")
    await ana.tap("Menú")
    await ana.tap("Hacer una consulta")
    [detail] = await tap_on(ana, tickets, f"N.° {number[-6:]} · Registrado")
    assert f"*{number}* · Consulta" in detail.text
    assert refused(graph) == []


# --- 3. labels shortened with sense, typed back -----------------------------------------------


async def test_labels_keep_what_tells_them_apart_and_are_accepted_as_shown(
    graph: FakeGraphAPI, settings: Settings, mailer: MemoryMailer, wa_server: Server
) -> None:
    ana = graph.user(ANA, "Ana")
    for name, action, _follows in STEPS:
        await action(ana, mailer)
        if name == "res_pdf":
            break
    await ana.tap("No")  # not of the justice system
    await ana.tap("Definir por sección")
    await ana.tap("Yo")  # Datos generales
    await ana.tap("Otra persona")
    for answer in ("María del Carmen", "Fernández Quispe", "41234567", "Especialista"):
        await ana.say(answer)
    await ana.say("mcfernandez@munisjl.gob.pe")
    [section] = await ana.say("912345678")
    assert "Presupuesto" in section.text
    assert section.type == "button"  # a colleague by a short form: still buttons
    assert section.labels == ["Yo", "María Fernández", "Otra persona"]
    [nxt] = await ana.say("María Fernández")  # the label as shown, typed back
    assert "Proyectos de inversión e Infobras" in nxt.text

    await ana.tap("Otra persona")
    for answer in ("Luis Alberto", "Rojas", "42345678", "Analista"):
        await ana.say(answer)
    await ana.say("lrojas@munisjl.gob.pe")
    [listed] = await ana.say("923456789")
    assert "*Participación ciudadana*" in listed.text
    assert listed.type == "list"  # four choices
    rows = {title: description for _, title, description in listed.rows}
    assert rows["María Fernández"] == "María del Carmen Fernández Quispe"
    assert rows["Luis Alberto Rojas"] == "-"  # fits whole: no description
    [nxt] = await ana.say("María del Carmen Fernández Quispe")  # the whole label typed
    assert "*Personal*" in nxt.text
    [nxt] = await ana.say("María Fer…")  # a label typed as a channel cuts it
    assert "Contratación de bienes y servicios" in nxt.text
    assert refused(graph) == []


async def test_a_ticket_row_keeps_its_number_and_state(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server, mailer: MemoryMailer
) -> None:
    ana = await consented(graph)
    number = await registered_consulta(ana, settings, mailer)
    [tickets] = await ana.tap("Estado de mis trámites")
    assert tickets.type == "list"
    short = f"N.° {number[-6:]} · Registrado"
    assert tickets.rows[0][1:] == (short, f"{number} · Consulta · Registrado")
    [detail] = await ana.say(short)  # typed as shown
    assert f"*{number}* · Consulta" in detail.text
    assert refused(graph) == []


# --- 4 and 5. buttons where they do; list wording ---------------------------------------------


async def test_short_choices_are_buttons_and_lists_are_spoken_of_as_options(
    graph: FakeGraphAPI, settings: Settings, wa_server: Server
) -> None:
    ana = await consented(graph)
    await ana.tap("Requisitos y pasos")
    for _card in range(6):
        [ready] = await ana.tap("Siguiente ▶")
    assert "Paso 7 de 7" in ready.text
    assert ready.type == "button"  # "Sí, empezar solicitud" (21) made it a list
    assert ready.labels == ["Sí, empezar", "Aún no", "◀ Anterior"]
    assert "empezamos tu solicitud" in ready.text

    await ana.say("menú")
    [answer] = await ana.say("¿cuánto demora?")
    assert answer.type == "button"
    assert answer.labels == ["Mis trámites", "Menú"]  # "Estado de mis trámites", shortened

    await ana.tap("Hacer una consulta")
    await ana.say(RUC)
    [sections] = await ana.say(ENTITY)
    assert sections.type == "list"
    [again] = await ana.say("no sé")
    wrong = again.text.split("\n\n")[0]
    assert wrong == "Elige una de las opciones de abajo."
    assert "botones" not in wrong
    [second] = await ana.tap("Más opciones ▸")
    assert second.text.startswith("_Paso 2 de 11_\n¿Qué sección del portal está afectada?")
    assert second.text.endswith("_Más opciones (2 de 2)_")
    assert refused(graph) == []


# --- 6. "Compartir mi número" from abroad -----------------------------------------------------


async def test_a_number_from_abroad_is_asked_to_be_typed(
    graph: FakeGraphAPI, settings: Settings, mailer: MemoryMailer, wa_server: Server
) -> None:
    abroad = graph.user("34600111222", "Ana")
    for name, action, _follows in STEPS:
        if name == "celular":
            break
        await action(abroad, mailer)
    assert abroad.last.labels == ["Compartir mi número"]
    error, question = await abroad.tap("Compartir mi número", n=2)
    assert "El número que compartiste (+34600111222) no es un celular del Perú" in error.text
    assert question.type == "text"  # no "Compartir mi número" again
    assert "Compartir mi número" not in question.text
    [next_step] = await abroad.say("987654321")
    assert "Paso 10 de 16" in next_step.text
    assert refused(graph) == []


# --- 7. captions -----------------------------------------------------------------------------


async def test_a_caption_goes_with_its_screenshot_to_the_summary_and_the_desk_mail(
    graph: FakeGraphAPI, settings: Settings, mailer: MemoryMailer, wa_server: Server
) -> None:
    ana = await consented(graph)
    await to_description(ana)
    await ana.say(DESCRIPTION)
    await ana.send_image(make_png(), caption="Error al guardar")
    await ana.expect(1)
    await ana.tap("✅ Listo")
    for answer in ("Ana", "Pérez Ruiz", "Especialista", "ana.perez@munisjl.gob.pe"):
        await ana.say(answer)  # who asks
    await ana.say(await mailed_code(mailer))
    [summary] = await ana.say("987654321")
    assert "«Error al guardar»" in summary.text
    await ana.tap("✅ Confirmar y enviar", n=2)
    [(number,)] = query(settings, "SELECT number FROM tickets")
    assert await mailer.wait_for(lambda: any(m["To"] == HELP_DESK for m in mailer.sent))
    to_desk = [m for m in mailer.sent if m["To"] == HELP_DESK]
    body = to_desk[0].get_body(("plain",))
    assert body is not None
    assert f"Adjunto_01_{number}.png: «Error al guardar»" in body.get_content()


# --- 8 and 9. the local-mode hint; the channel's name -----------------------------------------


async def test_no_server_path_reaches_whatsapp_and_my_data_names_the_channel(
    graph: FakeGraphAPI, settings: Settings, mailer: MemoryMailer, wa_server: Server
) -> None:
    assert settings.smtp_host is None  # local mode: mail is written as .eml files
    ana = graph.user(ANA, "Ana")
    for name, action, _follows in STEPS:
        replies = await action(ana, mailer)
        if name == "correo":
            [code] = replies
            assert "Paso 8 de 16" in code.text
            assert "Modo local" not in code.text
            assert ".eml" not in code.text
            assert str(settings.data_dir) not in code.text
    registered, _formato, _menu = await ana.tap("✅ Confirmar y enviar", n=3)
    assert "Modo local" not in registered.text
    assert str(settings.data_dir) not in registered.text

    mine = await ana.say("/mis_datos")  # the data joined in front of the menu
    assert "*Canal:* WhatsApp" in mine[0].text
    assert refused(graph) == []
