"""Estado de mis trámites, and ticket numbers typed anywhere."""

from __future__ import annotations

import pytest

from conversations.status import find_number
from tests.conftest import AppFactory
from tests.conversations.test_access_request import to_step
from tests.driver import Driver, FakeClock, MemoryMailer


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


async def registered(user: Driver, mailer: MemoryMailer) -> None:
    await to_step(user, mailer, "resumen")
    await user.click("Confirmar y enviar")


async def test_no_tickets_offers_the_request(user: Driver) -> None:
    await user.send("/start")
    await user.click("Acepto")
    replies = await user.click("Estado de mis trámites")
    assert "Aún no tienes trámites" in replies[-1].plain
    assert [b.label for row in replies[-1].buttons for b in row] == ["Solicitar accesos", "Menú"]


async def test_list_and_detail(user: Driver, mailer: MemoryMailer, clock: FakeClock) -> None:
    await registered(user, mailer)
    clock.advance(days=1)  # Thursday 3 Dec 2026
    replies = await user.send("/estado")
    labels = [b.label for row in replies[-1].buttons for b in row]
    assert labels[0] == "PTE-2026-000001 · Accesos · Registrado"
    detail = (await user.click(labels[0]))[-1].plain
    assert "PTE-2026-000001 · Solicitud de accesos" in detail
    assert "Municipalidad de Pérez <Ruiz> & Cía (RUC 20131312955)" in detail
    assert "Registrado — la mesa de ayuda la recibió" in detail
    assert "viernes 11 de diciembre de 2026 (quedan 4 día(s) hábil(es))" in detail
    assert "Adjuntos: 1" in detail


async def test_overdue_ticket_says_by_how_much(
    user: Driver, mailer: MemoryMailer, clock: FakeClock
) -> None:
    await registered(user, mailer)
    clock.advance(days=12)  # Monday 14 Dec 2026
    detail = (await user.send("¿y mi trámite PTE-2026-000001?"))[-1].plain
    assert "venció el viernes 11 de diciembre de 2026 (hace 1 día(s) hábil(es))" in detail


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
    await other.click("Acepto")
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
    await staff.click("Acepto")
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
    replies = await user.click("Menú")
    assert "Tienes una solicitud de accesos al PTE en curso (paso 2 de 15)" in replies[-1].plain
