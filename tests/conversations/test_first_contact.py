"""First contact: greeting, the Ley 29733 notice, and what consent opens."""

from __future__ import annotations

from tests.conftest import AppFactory
from tests.driver import Driver


def texts(messages: list) -> str:  # type: ignore[type-arg]
    return "\n".join(m.plain for m in messages)


async def test_first_message_greets_and_asks_for_consent(user: Driver) -> None:
    replies = await user.send("hola")
    assert "Soy el Asistente PTE" in texts(replies)
    notice = replies[-1]
    assert "Ley 29733" in notice.plain
    for fact in ("Quién los trata", "Para qué", "Qué datos", "Quién los recibe",
                 "Cuánto tiempo", "fuera del Perú", "ARCO"):  # fmt: skip
        assert fact in notice.plain
    assert [b.label for b in notice.buttons[0]] == ["Acepto", "No acepto"]


async def test_accepting_records_time_and_version_and_opens_the_menu(user: Driver) -> None:
    await user.send("/start")
    replies = await user.click("Acepto")
    menu = replies[-1]
    assert "¿Qué necesitas hacer?" in menu.plain
    labels = [b.label for row in menu.buttons for b in row]
    assert "📋 Requisitos y pasos" in labels
    assert "❓ Ayuda" in labels
    async with user.app.store.reading() as conn:
        rows = list(
            await conn.execute_fetchall("SELECT notice_version, accepted, at FROM consents")
        )
    assert rows == [("2026-11", 1, "2026-12-02T15:00:00.000000+00:00")]


async def test_consent_is_asked_before_anything_else(user: Driver) -> None:
    replies = await user.send("/requisitos")
    assert "¿Aceptas?" in replies[-1].plain


async def test_typed_label_counts_as_a_tap(user: Driver) -> None:
    await user.send("/start")
    replies = await user.send("acepto")
    assert "Guardé tu aceptación" in texts(replies)


async def test_other_text_during_the_notice_asks_again(user: Driver) -> None:
    await user.send("/start")
    replies = await user.send("qué es esto")
    assert "Elige «Acepto» o «No acepto»" in replies[0].plain
    assert "¿Aceptas?" in replies[-1].plain


async def test_declining_still_allows_reading_the_requirements(user: Driver) -> None:
    await user.send("/start")
    replies = await user.click("No acepto")
    assert "no guardaré datos tuyos" in texts(replies)
    menu = replies[-1]
    labels = [b.label for row in menu.buttons for b in row]
    assert labels == ["📋 Requisitos y pasos", "❓ Ayuda", "Aviso de privacidad"]
    card = (await user.click("📋 Requisitos y pasos"))[-1]
    assert "Paso 1 de 7" in card.plain
    async with user.app.store.reading() as conn:
        rows = list(await conn.execute_fetchall("SELECT accepted FROM consents"))
    assert rows == [(0,)]


async def test_declined_person_can_accept_later_from_privacidad(user: Driver) -> None:
    await user.send("/start")
    await user.click("No acepto")
    notice = (await user.send("/privacidad"))[-1]
    assert "¿Aceptas?" in notice.plain
    replies = await user.click("Acepto")
    assert "¿Qué necesitas hacer?" in replies[-1].plain


async def test_privacidad_after_accepting_shows_the_version(user: Driver) -> None:
    await user.send("/start")
    await user.click("Acepto")
    replies = await user.send("/privacidad")
    assert "Aceptaste el aviso de privacidad (versión 2026-11)" in replies[-1].plain


async def test_new_notice_version_asks_again(make_app: AppFactory) -> None:
    app = await make_app()
    user = Driver(app)
    await user.start()
    await user.send("/start")
    await user.click("Acepto")
    app.engine.services.notice_version = "2027-01"
    replies = await user.send("menú")
    assert "Aviso versión 2027-01" in replies[-1].plain
    await user.stop()
