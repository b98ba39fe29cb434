"""Sequences just beside the happy paths (issue 12): go back, leave, resume, correct, answer.

Each test is a walk that once broke, kept as a plain regression test. The model-based tests in
``test_model.py`` look for more of them.
"""

from __future__ import annotations

import json
from typing import Any

from tests.driver import Driver, MemoryMailer, button_keys
from tests.walks import to_step

COLLEAGUE = ("Carlos", "Quispe Mamani", "41234567", "Especialista", "carlos@munisjl.gob.pe")


async def stored_frame(user: Driver) -> dict[str, Any]:
    async with user.app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall(
                "SELECT c.state FROM conversations c"
                " JOIN chat_identities i ON i.id = c.identity_id WHERE i.external_id = ?",
                (user.chat_id,),
            )
        )
    return dict(json.loads(rows[0][0]))


async def add_colleague(user: Driver, phone: str = "912345678") -> None:
    await user.tap("btn.other_person")
    for answer in COLLEAGUE:
        await user.send(answer)
    await user.send(phone)


def texts(messages: list[Any]) -> str:
    return "\n".join(m.plain for m in messages)


async def test_back_twice_from_a_section_then_menu_and_continue_never_breaks(
    user: Driver, mailer: MemoryMailer
) -> None:
    """Reproduction 1: /atras twice at sección 3 after naming a colleague, /menu, Continuar,
    the colleague's email: once "algo falló" forever."""
    await to_step(user, mailer, "perfiles_modo")
    await user.tap("btn.by_section")
    await user.tap("btn.me")
    await add_colleague(user)
    assert user.screen.last.key == "perfiles.seccion"
    assert user.screen.last.data["i"] == 3
    await user.send("/atras")
    await user.send("/atras")
    menu = texts(await user.send("/menu"))
    assert "paso 0 de 0" not in menu
    await user.tap("menu.solicitud")
    await user.tap("btn.draft_continue")
    replies = texts(await user.send("carlos.q@munisjl.gob.pe"))
    assert "algo falló" not in replies
    # The colleague's mobile again, then every section to the end.
    replies = texts(await user.send("912345678"))
    assert "algo falló" not in replies
    assert user.screen.last.key == "perfiles.seccion"
    assert user.screen.last.data["i"] == 3
    for _ in range(30):
        if "btn.confirm_send" in button_keys(user.screen.last):
            break
        await user.tap("btn.me")
    summary = user.screen.last.plain
    assert "Carlos Quispe Mamani" in summary
    frame = (await stored_frame(user))["frame"]
    people = frame["data"]["people"]
    assert len(people) == 1
    assert people[0]["email"] == "carlos.q@munisjl.gob.pe"
    assert all(people[0].get(k) for k in ("nombres", "apellidos", "dni", "cargo", "phone"))
    await user.tap("btn.confirm_send")
    assert "Solicitud registrada" in texts(user.screen.messages[-3:])


async def test_back_at_a_section_returns_to_the_previous_section(
    user: Driver, mailer: MemoryMailer
) -> None:
    """Reproduction 3: /atras at sección 3 went back to "Paso 14" and lost secciones 1-2."""
    await to_step(user, mailer, "perfiles_modo")
    await user.tap("btn.by_section")
    await user.tap("btn.me")
    await user.tap("btn.me")
    assert user.screen.last.key == "perfiles.seccion"
    assert user.screen.last.data["i"] == 3
    back = (await user.send("/atras"))[-1].plain
    assert "sección 2 de" in back
    back = (await user.send("/atras"))[-1].plain
    assert "sección 1 de" in back
    await user.tap("btn.me")
    await user.tap("btn.me")
    assert user.screen.last.key == "perfiles.seccion"
    assert user.screen.last.data["i"] == 3


async def test_the_menu_names_the_flow_a_draft_belongs_to(user: Driver) -> None:
    """Reproduction 2: a consulta's draft was announced as "una solicitud (paso 0 de 0)"."""
    await user.send("/start")
    await user.tap("btn.accept")
    await user.send("/consulta")
    await user.send("20131312955")
    menu = texts(await user.send("/menu"))
    assert "paso 0 de 0" not in menu
    assert "Solicitar accesos" not in menu.split("\n")[0]
    assert "consulta en curso" in menu
    assert "paso 1 de 11" in menu  # the RUC given, its name asked: still step 1


async def test_accepting_from_a_refused_command_opens_what_was_asked(user: Driver) -> None:
    """Reproduction 4: notice seen, /consulta, "Aviso de privacidad", "Acepto": the notice came
    again and nothing was stored; accepting then led to the menu, not to the consulta."""
    await user.send("hola")
    await user.send("/consulta")
    await user.tap("btn.read_notice")
    replies = await user.tap("btn.accept")
    assert user.app.store is not None
    async with user.app.store.reading() as conn:
        consents = list(await conn.execute_fetchall("SELECT accepted FROM consents"))
    assert consents
    assert consents[-1][0] == 1
    assert replies[-1].key == "consulta.entidad"  # the consulta's first question
    assert replies[-1].progress == (1, 11)


async def test_common_questions_mean_the_same_on_list_screens(
    user: Driver, mailer: MemoryMailer
) -> None:
    """Reproduction 5: after a number that does not exist, typed questions got "Elige una de
    las opciones con los botones"; a menu label typed at the RUC got "El RUC solo tiene
    números"."""
    await user.send("/start")
    await user.tap("btn.accept")
    await user.send("PTE-2026-000077")
    for typed in ("cuánto demora", "gracias"):
        answer = texts(await user.send(typed))
        assert "Elige una de las opciones" not in answer, typed
    await user.send("/consulta")
    answer = texts(await user.send("Solicitar accesos al PTE"))
    assert "solo tiene números" not in answer
    assert "¿Quieres dejar" in answer or "RUC" in answer


async def test_correcting_one_field_takes_four_interactions(
    user: Driver, mailer: MemoryMailer
) -> None:
    """Reproduction 6: fixing the cargo took 8 interactions with every field typed again."""
    await to_step(user, mailer, "resumen")
    start = len(user.screen.messages)
    await user.tap("btn.correct")
    await user.tap("btn.part_responsable")
    question = (await user.tap("btn.field_cargo"))[-1]
    assert question.key == "solicitud.cargo"
    assert question.current == "Jefa de Tecnologías de la Información"
    await user.send("Subgerenta de Tecnologías de la Información")
    summary = user.screen.last.plain
    assert "Subgerenta de Tecnologías" in summary
    assert "Ana María" in summary
    assert "btn.confirm_send" in button_keys(user.screen.last)
    assert len(user.screen.messages) - start == 4


async def test_correcting_a_whole_part_shows_each_answer_with_mantener(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.correct")
    await user.tap("btn.part_responsable")
    question = (await user.tap("btn.field_all"))[-1]
    assert question.key == "solicitud.nombres"
    assert question.current == "Ana María"
    for _ in range(3):
        await user.tap("btn.keep")
    await user.send("Subgerenta de Tecnologías de la Información")
    await user.tap("btn.keep")  # the proved email: no new code
    await user.send("Mantener")  # the mobile's keyboard: typed, as the label shows
    summary = user.screen.last.plain
    assert "Subgerenta de Tecnologías" in summary
    assert "987 654 321" in summary or "987654321" in summary
    await user.tap("btn.confirm_send")
    assert len(mailer.sent) == 2  # the one code and the request: no second code


async def test_correcting_the_email_alone_proves_the_new_one(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.correct")
    await user.tap("btn.part_responsable")
    await user.tap("btn.field_correo")
    await user.send("ana.ruiz@munisjl.gob.pe")
    assert user.screen.last.key == "solicitud.codigo"
    await user.send(mailer.last_code())
    summary = user.screen.last.plain
    assert "ana.ruiz@munisjl.gob.pe" in summary
    assert "btn.confirm_send" in button_keys(user.screen.last)


async def test_a_profile_change_drafted_before_a_newer_request_was_attended(
    user: Driver, mailer: MemoryMailer
) -> None:
    """Found by the model-based test (seed 3): a change drafted on request 1, then request 2
    for the same entity attended, then Confirmar: the app's catch-all answered (the server
    check refused the old base). The newest attended request is the registry to change."""
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    async with user.app.store.reading() as conn:
        await conn.execute("UPDATE tickets SET state = 'atendido'")
    await user.tap("menu.perfiles")
    await user.tap("btn.entity_same")
    await user.tap(choice="presupuesto")
    await user.tap("btn.continue")
    await user.tap("btn.action_baja")
    await user.send("Rotación de personal en la oficina de presupuesto")
    async with user.app.store.reading() as conn:  # a second request, attended meanwhile
        await conn.execute(
            "INSERT INTO tickets (number, type, state, entity_id, person_id, identity_id,"
            " registered_at, received_on, due_on, data, updated_at, entity_name)"
            " SELECT 'PTE-2026-000050', type, 'atendido', entity_id, person_id, identity_id,"
            " registered_at, received_on, due_on, data, updated_at, entity_name FROM tickets"
        )
    replies = texts(await user.tap("btn.confirm_send"))
    assert "algo falló" not in replies
    assert "Cambio de perfiles registrado" in replies
    async with user.app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall("SELECT data FROM tickets WHERE type = 'perfiles'")
        )
    assert json.loads(rows[0][0])["base"] == "PTE-2026-000050"


async def test_a_profile_change_from_someone_no_longer_responsible_is_not_sent(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_step(user, mailer, "resumen")
    await user.tap("btn.confirm_send")
    async with user.app.store.reading() as conn:
        await conn.execute("UPDATE tickets SET state = 'atendido'")
    await user.tap("menu.perfiles")
    await user.tap("btn.entity_same")
    await user.tap(choice="presupuesto")
    await user.tap("btn.continue")
    await user.tap("btn.action_baja")
    await user.send("Rotación de personal en la oficina de presupuesto")
    async with user.app.store.reading() as conn:
        await conn.execute("UPDATE tickets SET state = 'anulado'")
    replies = texts(await user.tap("btn.confirm_send"))
    assert "algo falló" not in replies
    assert "Ya no figuras como responsable" in replies
