"""Estado de mis trámites, and ticket numbers typed anywhere."""

from __future__ import annotations

import re

import pytest

from conversations.status import find_number
from tests.conftest import AppFactory
from tests.driver import Driver, FakeClock, MemoryMailer, button_keys, choices
from tests.walks import make_pdf, registered, to_attachments, who_asks


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("PTE-2026-000123", "PTE-2026-000123"),
        ("¿cómo va mi solicitud pte-2026-000123?", "PTE-2026-000123"),
        ("estado PTE 2026-123", "PTE-2026-000123"),
        ("mi número es PTE2026000001 gracias", "PTE-2026-000001"),
        ("hola", None),
    ],
)
def test_ticket_numbers_are_found_in_sentences(text: str, number: str | None) -> None:
    assert find_number(text) == number


async def test_no_tickets_offers_the_request(user: Driver) -> None:
    await user.send("/start")
    await user.tap("btn.accept")
    replies = await user.tap("menu.estado")
    assert replies[-1].key == "estado.none"
    assert button_keys(replies[-1]) == ["btn.start_request_short", "btn.menu"]


async def test_list_and_detail(user: Driver, mailer: MemoryMailer, clock: FakeClock) -> None:
    await registered(user, mailer)
    clock.advance(days=1)  # Thursday 3 Dec 2026
    replies = await user.send("/estado")
    assert choices(replies[-1])[0] == "t:PTE-2026-000001"
    detail = (await user.tap(choice="t:PTE-2026-000001"))[-1].plain
    assert "PTE-2026-000001 · Solicitud de accesos" in detail
    assert "Municipalidad de Pérez <Ruiz> & Cía (RUC 20131312955)" in detail
    assert "Registrado — la mesa de ayuda la recibió" in detail
    assert "viernes 11 de diciembre de 2026 (quedan 4 días hábiles)" in detail
    assert "Adjuntos: 2" in detail  # the resolution and the Formato, as on the desk's card


async def test_overdue_ticket_says_by_how_much(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    await registered(user, mailer)
    clock.advance(days=12)  # Monday 14 Dec 2026
    detail = (await user.send("¿y mi trámite PTE-2026-000001?"))[-1].plain
    assert "venció el viernes 11 de diciembre de 2026 (hace 1 día hábil)" in detail


async def test_typed_number_shows_nothing_to_another_user(
    make_app: AppFactory, mailer: MemoryMailer
) -> None:
    app = await make_app()
    owner = Driver(app, chat_id="2001")
    other = Driver(app, chat_id="2002")
    for driver in (owner, other):
        await driver.start()
    await registered(owner, mailer)
    await other.send("/start")
    await other.tap("btn.accept")
    theirs = (await other.send("estado PTE-2026-000001"))[-1].plain
    missing = (await other.send("estado PTE-2026-000999"))[-1].plain
    assert "No encuentro el trámite PTE-2026-000001 entre los tuyos" in theirs
    assert theirs.replace("000001", "000999") == missing
    assert "Pérez" not in theirs
    for driver in (owner, other):
        await driver.stop()


async def test_staff_can_see_any_ticket(make_app: AppFactory, mailer: MemoryMailer) -> None:
    app = await make_app()
    owner = Driver(app, chat_id="3001")
    staff = Driver(app, chat_id="9001")
    app.staff["test"] = frozenset({"9001"})
    for driver in (owner, staff):
        await driver.start()
    await registered(owner, mailer)
    await staff.send("/start")
    await staff.tap("btn.accept")
    detail = (await staff.send("PTE-2026-000001"))[-1].plain
    assert "Solicitud de accesos" in detail
    for driver in (owner, staff):
        await driver.stop()


async def test_typed_number_mid_request_keeps_the_draft(
    user: Driver, mailer: MemoryMailer
) -> None:
    await registered(user, mailer)
    await user.send("/solicitar")
    await user.send("20131312955")
    detail = (await user.send("PTE-2026-000001"))[-1].plain
    assert "Solicitud de accesos" in detail
    replies = await user.tap("btn.menu")
    assert replies[-1].key == "menu.main"
    assert [(d["flow"], d["k"]) for d in replies[-1].data["drafts"]] == [("solicitud", 2)]


# ------------------------------------------------------------- issue 16, point 14
async def test_detail_after_attended_shows_what_is_current(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    """The current state's message (not a stale observation), the desk's messages as
    messages, the card's file count, and the Formato again."""
    number = "PTE-2026-000001"
    await registered(user, mailer)
    staff = await user.peer("9001", staff=True)
    await staff.send("/start")
    await staff.tap("btn.accept")
    await staff.send(f"/ticket {number}")
    await staff.tap("btn.desk_take")
    await staff.tap("btn.desk_reply")
    await staff.send("Hola Ana: ¿el alcalde firmó la resolución?")
    await staff.tap("btn.desk_observe")
    await staff.tap("btn.desk_part_resolucion")
    await staff.send("El PDF enviado está en blanco.")
    observed = (await user.send(number))[-1].plain
    assert "Qué pide la mesa de ayuda: El PDF enviado está en blanco." in observed
    clock.advance(hours=1)
    await user.tap("btn.notice_fix")
    await user.send("Resolución de Alcaldía N.° 045-2026-MDSJL")
    await user.send("15/10/2026")
    await user.tap("btn.authority_alcalde")
    await user.upload(make_pdf(pages=3), name="firmada.pdf")
    await user.tap("btn.confirm_send")
    await staff.send(f"/ticket {number}")
    await staff.tap("btn.desk_attend")
    await staff.tap("btn.desk_attend_yes")
    card = (await staff.send(f"/ticket {number}"))[-1].plain
    detail = (await user.send(number))[-1]
    text = detail.plain
    assert "Estado: Atendido" in text
    assert "mensaje de la mesa de ayuda:" not in text.lower().split("historial")[0]
    assert text.count("El PDF enviado está en blanco.") == 1  # in the history only
    assert "• 02/12/2026 10:00 — Observado: El PDF enviado está en blanco." in text  # history
    assert (
        "• 02/12/2026 10:00 — mensaje de la mesa de ayuda:"
        " «Hola Ana: ¿el alcalde firmó la resolución?»" in text
    )
    assert "En atención: Hola Ana" not in text
    files = re.search(r"Adjuntos: (\d+)", card)
    assert files is not None
    assert files.group(1) == "4"  # resolution and Formato, each sent twice
    assert f"Adjuntos: {files.group(1)}" in text
    assert "btn.download_formato" in button_keys(detail)
    replies = await user.tap("btn.download_formato")
    assert replies[0].document is not None
    assert replies[0].document["filename"] == f"Formato_Perfiles_{number}_v2.xlsx"
    assert replies[-1].key == "estado.detail"  # and the detail again
    assert replies[-1].data["state"] == "atendido"


async def test_a_consulta_detail_has_its_answer_and_no_formato(
    user: Driver, mailer: MemoryMailer
) -> None:
    await to_attachments(user)
    await user.tap("btn.done")
    await who_asks(user, mailer)
    await user.tap("btn.confirm_send")
    staff = await user.peer("9001", staff=True)
    await staff.send("/start")
    await staff.tap("btn.accept")
    await staff.send("/ticket PTE-2026-000001")
    await staff.tap("btn.desk_take")
    await staff.tap("btn.desk_attend")
    await staff.send("El error 500 ya está corregido.")
    detail = (await user.send("PTE-2026-000001"))[-1]
    assert detail.key == "estado.detail"
    assert detail.data["state_message"] == "El error 500 ya está corregido."
    assert "revisa tu correo" not in detail.plain
    assert "btn.download_formato" not in button_keys(detail)
