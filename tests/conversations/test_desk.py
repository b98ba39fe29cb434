"""The help desk in the chat: queue, card, actions, and what the officer hears of each."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import AppFactory
from tests.driver import Driver, FakeClock, MemoryMailer, button_keys
from tests.walks import (
    ENTITY,
    NUMBER,
    RUC,
    STAFF,
    consulta_taken,
    count_rows,
    make_pdf,
    registered,
    staff_member,
    taken,
    ticket_row,
    tiny_png,
)


async def test_queue_shows_the_ticket_and_tomar_tells_the_officer(
    user: Driver, mailer: MemoryMailer
) -> None:
    await registered(user, mailer)
    staff = await staff_member(user)
    menu = staff.screen.last
    assert "menu.mesa" in button_keys(menu)
    queue = (await staff.send("/pendientes"))[-1]
    assert queue.key == "mesa.cola"
    assert queue.data["total"] == 1
    [item] = queue.data["items"]
    assert (item["number"], item["state"], item["left"], item["entity"]) == (
        NUMBER,
        "registrado",
        5,
        ENTITY,
    )
    card = (await staff.tap(choice=f"t:{NUMBER}"))[-1]
    assert card.key == "mesa.ficha"
    assert card.data["resp"]["nombres"] == "Ana María"
    assert card.data["resp"]["apellidos"] == "Pérez Ruiz"
    assert card.data["resp"]["dni"] == "45678912"
    assert card.data["res"]["numero"] == "Resolución de Alcaldía N.° 045-2026-MDSJL"
    assert card.data["res"]["fecha"] == "2026-10-15"
    assert "Pérez &lt;Ruiz&gt; &amp; Cía" in card.html  # the entity name, escaped
    assert button_keys(card)[:2] == ["btn.desk_take", "btn.desk_files"]
    seen = len(user.screen.messages)
    replies = await staff.tap("btn.desk_take")
    assert replies[0].key == "mesa.hecho_take"
    assert replies[-1].key == "mesa.ficha"
    assert replies[-1].data["state"] == "en_atencion"
    notice = user.screen.messages[seen:]
    assert len(notice) == 1
    assert notice[0].key == "aviso.estado"
    assert (notice[0].data["number"], notice[0].data["state"]) == (NUMBER, "en_atencion")
    assert (await ticket_row(user))["assignee"] == STAFF


async def test_an_officer_has_no_staff_commands_and_learns_nothing(
    user: Driver, mailer: MemoryMailer
) -> None:
    await registered(user, mailer)
    for command in ("/pendientes", f"/ticket {NUMBER}", f"/buscar {RUC}"):
        replies = await user.send(command)
        assert replies[0].key == "common.unknown_command"
        assert replies[0].data["command"] == command.split()[0][1:]
        assert ENTITY not in " ".join(r.plain for r in replies)
    assert "menu.mesa" not in button_keys(user.screen.last)


async def test_an_officer_replaying_staff_buttons_changes_nothing(
    user: Driver, mailer: MemoryMailer
) -> None:
    await registered(user, mailer)
    staff = await staff_member(user)
    await staff.send(f"/ticket {NUMBER}")
    take, _ref = staff.find("btn.desk_take")
    before = await ticket_row(user)
    forged = [take, "0:n:card:" + NUMBER, "0:n:sreply:" + NUMBER, "0:n:queue:", "1:f:mesa",
              "0:n:fix:" + NUMBER, "0:n:reply:PTE-2026-000999", "9:observe"]  # fmt: skip
    for data in forged:
        replies = await user.click_data(data)
        shown = " ".join(r.plain for r in replies)
        assert "Estado:" not in shown, data
        assert "Bandeja" not in shown, data
    assert await ticket_row(user) == before
    async with user.app.store.reading() as conn:
        events = list(await conn.execute_fetchall("SELECT count(*) FROM ticket_events"))
    assert events[0][0] == 1  # only "Registrado"


async def test_observe_the_resolution_then_the_officer_corrects_it(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    staff = await taken(user, mailer)  # Wed 2 Dec, due Fri 11 Dec
    clock.advance(days=1)  # Thu 3 Dec: 4 business days left (4, 7, 10, 11)
    await staff.tap("btn.desk_observe")
    await staff.tap("btn.desk_part_resolucion")
    seen = len(user.screen.messages)
    done = await staff.send("Falta la firma del alcalde en la resolución.")
    assert done[0].key == "mesa.hecho_observe"
    assert done[0].data["paused"] == 4
    notice = user.screen.messages[seen]
    assert notice.key == "aviso.estado"
    assert notice.data["state"] == "observado"
    assert notice.data["part"] == "resolucion"
    assert notice.data["message"] == "Falta la firma del alcalde en la resolución."
    assert (await ticket_row(user))["paused"] == 4
    clock.advance(days=11)  # Mon 14 Dec: the clock was stopped meanwhile
    question = (await user.tap("btn.notice_fix"))[-1]
    assert question.progress == (10, 16)  # straight to the resolution's number
    await user.send("Resolución de Alcaldía N.° 046-2026-MDSJL")
    await user.send("16/10/2026")
    await user.tap("btn.authority_alcalde")
    signed = make_pdf(pages=3)
    summary = (await user.upload(signed, name="firmada.pdf"))[-1]
    assert summary.data["ticket"] == NUMBER
    assert summary.key == "solicitud.resumen"
    assert summary.data["resp"]["nombres"] == "Ana María"
    assert "046-2026" in summary.data["res"]["numero"]
    seen_staff = len(staff.screen.messages)
    replies = await user.tap("btn.confirm_send")
    assert replies[0].key == "solicitud.subsanada"
    assert replies[0].data["number"] == NUMBER
    assert replies[0].key == "solicitud.subsanada"  # 4 days after Mon 14
    assert replies[0].data["due"] == "2026-12-18"
    assert replies[1].document is not None
    assert replies[1].document["filename"].endswith("_v2.xlsx")
    row = await ticket_row(user)
    assert row["state"] == "en_atencion"
    assert row["due"] == "2026-12-18"
    assert row["data"]["res"]["numero"] == "Resolución de Alcaldía N.° 046-2026-MDSJL"  # type: ignore[index]
    assert await count_rows(user, "tickets") == 1
    assert staff.screen.messages[seen_staff].key == "mesa.subsanado"
    mail = mailer.sent[-1]
    assert mail["Subject"].startswith("Subsanación de solicitud de accesos al PTE")
    attachments = {a.get_filename(): a.get_content() for a in mail.iter_attachments()}
    assert attachments[f"Resolucion_{NUMBER}_v2.pdf"] == signed
    lines = mail.get_body().get_content().splitlines()
    assert "Parte: Resolución" in lines
    assert "Mensaje de la mesa de ayuda: Falta la firma del alcalde en la resolución." in lines
    assert (
        "- Número de la resolución: Resolución de Alcaldía N.° 045-2026-MDSJL"
        " → Resolución de Alcaldía N.° 046-2026-MDSJL" in lines
    )
    assert "- Fecha de la resolución: 15/10/2026 → 16/10/2026" in lines
    assert f"- Resolucion_{NUMBER}_v2.pdf reemplaza a Resolucion_{NUMBER}.pdf" in lines
    formato = f"Formato_Perfiles_{NUMBER}"
    assert f"- {formato}_v2.xlsx reemplaza a {formato}.xlsx" in lines
    card = (await staff.send(f"/ticket {NUMBER}"))[-1]
    assert card.key == "mesa.ficha"
    assert card.data["state"] == "en_atencion"
    assert card.data["res"]["pdf"]["pages"] == 3


async def test_correcting_again_is_refused_once_the_ticket_moved_on(
    user: Driver, mailer: MemoryMailer
) -> None:
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_observe")
    await staff.tap("btn.desk_part_responsable")
    await staff.send("El cargo no coincide con la resolución.")
    fix, _ref = user.find("btn.notice_fix")
    await user.tap("btn.notice_fix")
    assert user.screen.last.progress == (3, 16)  # the responsible's names
    for answer in ("Ana María", "Pérez Ruiz", "45678912", "Gerente Municipal"):
        await user.send(answer)
    await user.send("ana.perez@munisjl.gob.pe")  # the same, proved: no new code
    await user.send("987 654 321")
    assert user.screen.last.key == "solicitud.resumen"
    assert user.screen.last.data["ticket"] == NUMBER
    await user.tap("btn.confirm_send")
    replies = await user.click_data(fix)  # the old notification's button, again
    assert replies[0].key == "common.stale_button"
    assert (await ticket_row(user))["state"] == "en_atencion"


async def test_observation_of_kind_otro_is_answered_in_words(
    user: Driver, mailer: MemoryMailer
) -> None:
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_observe")
    await staff.tap("btn.desk_part_otro")
    await staff.send("¿La resolución ya fue publicada en el diario oficial?")
    question = (await user.tap("btn.notice_fix"))[-1]
    assert question.key == "respuesta.pregunta"
    assert question.data["observed"] is True
    refused = await user.send("x")
    assert refused[0].key == "errors.text_too_short"
    seen = len(staff.screen.messages)
    done = await user.send("Sí, se publicó el 20 de octubre.")
    assert done[0].key == "respuesta.enviada"
    assert done[0].data["resumed"] is True
    relayed = staff.screen.messages[seen]
    assert relayed.key == "mesa.respuesta_oficial"
    assert relayed.data["resumed"] is True
    assert relayed.data["text"] == "Sí, se publicó el 20 de octubre."
    assert (await ticket_row(user))["state"] == "en_atencion"


async def test_responder_relays_both_ways(user: Driver, mailer: MemoryMailer) -> None:
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_reply")
    seen = len(user.screen.messages)
    await staff.send("Hola Ana: ¿el alcalde firmó digitalmente?\nGracias.")
    message = user.screen.messages[seen]
    assert message.key == "aviso.mensaje"
    assert message.data["number"] == NUMBER
    assert message.data["message"] == "Hola Ana: ¿el alcalde firmó digitalmente?\nGracias."
    await user.tap("btn.notice_reply")
    seen_staff = len(staff.screen.messages)
    await user.send("Sí, con firma digital.")
    relayed = staff.screen.messages[seen_staff]
    assert relayed.key == "mesa.respuesta_oficial"
    assert relayed.data["text"] == "Sí, con firma digital."
    # A swipe reply to the help desk's message goes onto the ticket too.
    await user.reply(message, "Y adjunté la constancia por correo.")
    assert staff.screen.last.key == "mesa.respuesta_oficial"
    assert staff.screen.last.data["text"] == "Y adjunté la constancia por correo."
    # ...and the specialist can answer the relayed message the same way.
    await staff.reply(staff.screen.last, "Recibido, gracias.")
    assert user.screen.last.key == "aviso.mensaje"
    assert user.screen.last.data["message"] == "Recibido, gracias."
    card = (await staff.send(f"/ticket {NUMBER}"))[-1]
    assert card.key == "mesa.ficha"
    assert ("oficial", "Sí, con firma digital.") in [
        (h["kind"], h["message"]) for h in card.data["history"]
    ]
    assert f"{STAFF} (mesa): «Recibido, gracias.»" in card.plain  # no name set: the chat id


async def test_attend_then_close(user: Driver, mailer: MemoryMailer) -> None:
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_attend")
    assert staff.screen.last.key == "mesa.atender"
    assert staff.screen.last.data["type"] == "accesos"
    seen = len(user.screen.messages)
    await staff.tap("btn.desk_attend_yes")
    notice = user.screen.messages[seen]
    assert notice.key == "aviso.estado"
    assert notice.data["state"] == "atendido"
    assert notice.data["type"] == "accesos"
    assert "btn.desk_close" in button_keys(staff.screen.last)
    assert "btn.desk_observe" not in button_keys(staff.screen.last)
    await staff.tap("btn.desk_close")
    assert user.screen.last.key == "aviso.estado"
    assert user.screen.last.data["state"] == "cerrado"
    assert (await ticket_row(user))["state"] == "cerrado"


async def test_a_stale_card_cannot_make_an_invalid_change(
    user: Driver, mailer: MemoryMailer
) -> None:
    staff = await taken(user, mailer)
    colleague = await user.peer("9002", staff=True)
    await colleague.send("/start")
    await colleague.tap("btn.accept")
    await colleague.send(f"/ticket {NUMBER}")
    await staff.tap("btn.desk_attend")
    await staff.tap("btn.desk_attend_yes")
    replies = await colleague.tap("btn.desk_observe")  # the colleague's card is older
    await colleague.tap("btn.desk_part_otro")
    replies = await colleague.send("Falta algo")
    assert replies[0].key == "mesa.no_aplica"
    assert replies[0].data["state"] == "atendido"
    assert (await ticket_row(user))["state"] == "atendido"


async def test_search_by_ruc_and_by_name_and_files(user: Driver, mailer: MemoryMailer) -> None:
    await registered(user, mailer)
    staff = await staff_member(user)
    found = (await staff.send(f"/buscar {RUC}"))[-1]
    assert [item["number"] for item in found.data["items"]] == [NUMBER]
    found = (await staff.send("/buscar ruiz> & c"))[-1]
    assert [item["number"] for item in found.data["items"]] == [NUMBER]
    none = (await staff.send("/buscar Municipalidad de Nadie"))[-1]
    assert none.key == "mesa.resultados"
    assert none.data["items"] == []
    missing = (await staff.send("/ticket PTE-2026-000999"))[-1]
    assert missing.key == "mesa.no_existe"
    assert missing.data["number"] == "PTE-2026-000999"
    await staff.send(NUMBER)  # a number typed: the card
    files = await staff.tap("btn.desk_files")
    names = [f.document["filename"] for f in files if f.document]
    assert names == ["Formato_Perfiles_PTE-2026-000001.xlsx", "Resolucion_PTE-2026-000001.pdf"]
    # The files end with a way on: back to the card, the queue, the menu.
    assert files[-1].key == "mesa.adjuntos_fin"
    assert files[-1].data["count"] == 2
    assert button_keys(files[-1]) == ["btn.desk_back", "btn.desk_queue", "btn.menu"]
    card = (await staff.tap("btn.desk_back"))[-1]
    assert (card.key, card.data["number"]) == ("mesa.ficha", NUMBER)


async def test_undeliverable_notice_shows_on_the_card(user: Driver, mailer: MemoryMailer) -> None:
    await registered(user, mailer)
    staff = await staff_member(user)
    user.transport.blocked = True  # the officer blocked the bot
    await staff.send(f"/ticket {NUMBER}")
    await staff.tap("btn.desk_take")  # "En atención" cannot reach the officer
    card = (await staff.send(f"/ticket {NUMBER}"))[-1]
    assert card.key == "mesa.ficha"
    assert card.data["undelivered"] == 1


async def test_officer_withdraws_a_request_nobody_started(
    user: Driver, mailer: MemoryMailer
) -> None:
    await registered(user, mailer)
    await user.send(NUMBER)
    await user.tap("btn.cancel_ticket")
    replies = await user.tap("btn.cancel_ticket_yes")
    assert (replies[0].key, replies[0].data["number"]) == ("estado.anulado", NUMBER)
    assert replies[-1].key == "estado.detail"
    assert replies[-1].data["state"] == "anulado"
    assert (await ticket_row(user))["state"] == "anulado"
    staff = await staff_member(user)
    queue = (await staff.send("/pendientes"))[-1]
    assert (queue.key, queue.data["total"]) == ("mesa.cola", 0)


async def test_restart_in_the_middle_of_an_observation(
    user: Driver, mailer: MemoryMailer, make_app: AppFactory
) -> None:
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_observe")
    await staff.tap("btn.desk_part_perfiles")
    await user.stop()
    app = await make_app()  # restart
    app.staff["test"] = frozenset({STAFF})
    officer = Driver(app, user.chat_id)
    await officer.start()
    again = await officer.peer(STAFF)
    replies = await again.send("Falta el perfil de Información focalizada.")
    assert replies[0].key == "mesa.hecho_observe"
    assert officer.screen.last.key == "aviso.estado"
    assert officer.screen.last.data["state"] == "observado"
    question = (await officer.tap("btn.notice_fix"))[-1]
    assert question.key == "perfiles.justicia"  # the profiles start at the justice question
    await officer.stop()


async def test_staff_removed_from_the_list_loses_the_desk(
    user: Driver, mailer: MemoryMailer
) -> None:
    staff = await taken(user, mailer)
    user.app.staff["test"] = frozenset()
    replies = await staff.tap("btn.desk_attend")
    assert "Estado:" not in " ".join(r.plain for r in replies)
    assert (await ticket_row(user))["state"] == "en_atencion"


async def test_search_marks_finished_work_without_a_clock(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_attend")
    await staff.tap("btn.desk_attend_yes")
    clock.advance(days=10)  # past the due date: finished work is never "vencido"
    found = (await staff.send(f"/buscar {RUC}"))[-1]
    assert f"✅ {NUMBER} · Accesos · Atendido · {ENTITY}" in found.plain
    assert "quedan" not in found.plain
    assert "🟢" not in found.plain.split("\n\n")[1]  # the ticket's line
    assert found.key == "mesa.resultados"  # the legend
    assert [item["done"] for item in found.data["items"]] == [True]
    labels = [b.label for row in found.buttons for b in row]
    assert f"✅ {NUMBER} · Atendido" in labels
    await staff.tap(choice=f"t:{NUMBER}")
    await staff.tap("btn.desk_close")
    found = (await staff.send(f"/buscar {RUC}"))[-1]
    assert f"✅ {NUMBER} · Accesos · Cerrado · {ENTITY}" in found.plain
    assert f"✅ {NUMBER} · Cerrado" in [b.label for row in found.buttons for b in row]


async def test_queue_legend_and_markers_of_open_work(user: Driver, mailer: MemoryMailer) -> None:
    staff = await taken(user, mailer)
    queue = (await staff.send("/pendientes"))[-1].plain
    assert f"🟢 {NUMBER} · Accesos · En atención · quedan 5 d.h. · {ENTITY}" in queue
    assert "🟢 en atención" in queue
    assert "✅ atendido o cerrado" in queue


async def test_the_desk_works_without_the_officers_notice(
    user: Driver, mailer: MemoryMailer
) -> None:
    """Issue 16, point 4: staff are not the data subjects of the officers' notice."""
    await registered(user, mailer)
    staff = await user.peer(STAFF, staff=True)
    queue = (await staff.send("/pendientes"))[-1].plain
    assert "aviso de privacidad" not in queue
    assert NUMBER in queue
    card = (await staff.send(NUMBER))[-1].plain
    assert "Responsable: Ana María Pérez Ruiz" in card
    await staff.tap("btn.desk_take")
    assert "Tomaste" in staff.screen.messages[-2].plain or "a tu cargo" in staff.screen.last.plain
    async with user.app.store.reading() as conn:
        consents = list(await conn.execute_fetchall("SELECT count(*) FROM consents"))
    assert consents[0][0] == 1  # the officer's only
    # Their own request is another matter: the notice first, then what they asked for.
    first = (await staff.send("/solicitar"))[-1].plain
    assert "btn.accept" in button_keys(staff.screen.last)
    assert "RUC" not in first


async def test_observed_and_corrected_within_the_minute_keeps_the_due_date(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    """Issue 16, point 5: registered Sunday 29/11/2026 (due Monday 07/12, 6 business days
    left), observed and corrected within the same minute: the due date did not move."""
    clock.moment = datetime(2026, 11, 29, 20, 46, tzinfo=UTC)  # Sunday 15:46 in Lima
    staff = await taken(user, mailer)
    assert staff.screen.last.key == "mesa.ficha"
    assert staff.screen.last.data["due"] == "2026-12-07"
    assert staff.screen.last.data["left"] == 6
    assert staff.screen.last.data["undelivered"] == 0
    await staff.tap("btn.desk_observe")
    await staff.tap("btn.desk_part_otro")
    await staff.send("¿Qué página de su portal falla?")
    clock.advance(seconds=40)
    await user.tap("btn.notice_fix")
    await user.send("La página de Personal.")
    card = (await staff.send(f"/ticket {NUMBER}"))[-1].plain
    assert "Plazo: 07/12/2026 — quedan 6 d.h." in card
    assert (await ticket_row(user))["due"] == "2026-12-07"


async def test_subsanacion_mail_names_what_changed_and_what_stayed(
    user: Driver, mailer: MemoryMailer
) -> None:
    """Issue 16, point 12: the Subsanación mail says what was observed and what changed."""
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_observe")
    await staff.tap("btn.desk_part_responsable")
    await staff.send("El cargo no coincide con la resolución.")
    await user.tap("btn.notice_fix")
    for answer in ("Ana María", "Pérez Ruiz", "45678912", "Gerente Municipal"):
        await user.send(answer)
    await user.send("ana.perez@munisjl.gob.pe")
    await user.send("987 654 321")
    await user.tap("btn.confirm_send")
    mail = mailer.sent[-1]
    assert mail["Subject"].startswith("Subsanación de solicitud de accesos al PTE")
    body = mail.get_body().get_content()
    observed = body[body.index("LO OBSERVADO") : body.index("ENTIDAD")].strip().splitlines()
    formato = f"Formato_Perfiles_{NUMBER}"
    assert observed == [
        "LO OBSERVADO",
        "Parte: Datos del responsable",
        "Mensaje de la mesa de ayuda: El cargo no coincide con la resolución.",
        "",
        "LO QUE CAMBIÓ",
        "- Cargo del responsable: Jefa de Tecnologías de la Información → Gerente Municipal",
        "",
        "ARCHIVOS",
        f"- {formato}_v2.xlsx reemplaza a {formato}.xlsx",
        "- La resolución es el mismo PDF de antes: no se reemplazó.",
    ]


# ------------------------------------------------------------- issue 16, point 2
async def test_a_consulta_is_attended_with_its_answer_read_in_the_chat(
    user: Driver, mailer: MemoryMailer
) -> None:
    staff = await consulta_taken(user, mailer)
    prompt = (await staff.tap("btn.desk_attend"))[-1]
    assert prompt.key == "mesa.atender"
    assert prompt.data["type"] == "consulta"
    assert "accesos" not in prompt.plain
    assert button_keys(prompt) == ["btn.desk_back"]
    refused = await staff.click_data(f"{staff.find('btn.desk_back')[0][:-4]}yes")
    assert refused[0].key == "common.stale_button"  # not offered: refused
    refused = await staff.sticker()
    assert refused[0].key == "mesa.atender_sin_respuesta"
    assert (await ticket_row(user))["state"] == "en_atencion"
    seen = len(user.screen.messages)
    answer = "Hola Ana: el error 500 era del servidor.\nYa puedes publicar el presupuesto."
    done = await staff.send(answer)
    assert done[0].key == "mesa.hecho_attend"
    assert done[0].data["number"] == NUMBER
    assert done[0].key == "mesa.hecho_attend"
    assert done[0].data["message"] is True
    notice = user.screen.messages[seen]
    assert notice.key == "aviso.estado"
    assert notice.data["state"] == "atendido"
    assert notice.data["type"] == "consulta"
    assert notice.data["message"] == answer
    assert "accesos" not in notice.plain
    assert "correo institucional" not in notice.plain
    assert "btn.notice_reply" in button_keys(notice)
    assert (await ticket_row(user))["state"] == "atendido"


async def test_an_access_request_is_attended_with_a_message(
    user: Driver, mailer: MemoryMailer
) -> None:
    staff = await taken(user, mailer)
    prompt = (await staff.tap("btn.desk_attend"))[-1]
    assert prompt.key == "mesa.atender"
    assert prompt.data["type"] == "accesos"
    seen = len(user.screen.messages)
    done = await staff.send("Te enviamos también el manual del usuario.")
    assert done[0].key == "mesa.hecho_attend"
    assert done[0].data["type"] == "accesos"
    notice = user.screen.messages[seen].plain
    assert "Mensaje de la mesa de ayuda: Te enviamos también el manual del usuario." in notice
    assert "Los accesos se enviaron a tu correo institucional" in notice


async def test_an_answer_to_the_desk_takes_a_screenshot(
    user: Driver, mailer: MemoryMailer
) -> None:
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_reply")
    await staff.send("¿Puedes enviarme una captura del error?")
    await user.tap("btn.notice_reply")
    received = await user.upload(tiny_png(), name="captura.png", mime="image/png", photo=True)
    assert received[-1].key == "respuesta.archivo"
    assert received[-1].data["count"] == 1
    assert received[-1].data["max"] == 10
    refused = await user.upload(b"MZ" + b"\x00" * 64, name="virus.exe", mime=None)
    assert refused[-1].key == "errors.attachment_file_type_not_allowed"  # checked as a consulta's
    seen = len(staff.screen.messages)
    done = await user.send("Esta es la pantalla que veo.")
    assert done[0].key == "respuesta.enviada"
    assert done[0].data["file_count"] == 1
    relayed, document = staff.screen.messages[seen : seen + 2]
    assert relayed.key == "mesa.respuesta_oficial"
    assert relayed.data["file_count"] == 1
    assert relayed.data["text"] == "Esta es la pantalla que veo."
    assert document.document is not None
    assert document.document["filename"] == f"Respuesta_01_{NUMBER}.png"
    await staff.send(f"/ticket {NUMBER}")
    files = await staff.tap("btn.desk_files")
    names = [f.document["filename"] for f in files if f.document]
    assert f"Respuesta_01_{NUMBER}.png" in names


async def test_files_alone_go_with_enviar(user: Driver, mailer: MemoryMailer) -> None:
    staff = await taken(user, mailer)
    await staff.tap("btn.desk_reply")
    await staff.send("¿Tienes la constancia?")
    await user.tap("btn.notice_reply")
    await user.upload(tiny_png(), name="constancia.png", mime="image/png")
    done = await user.tap("btn.reply_send")
    assert done[0].key == "respuesta.enviada"
    assert done[0].data["file_count"] == 1
    assert staff.screen.messages[-2].key == "mesa.respuesta_oficial"
    assert staff.screen.messages[-2].data["text"] == ""
