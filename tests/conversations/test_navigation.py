"""Global commands and free text, in and out of flows."""

from __future__ import annotations

from conversations.events import Inbound, Kind
from tests.driver import Driver


async def consented(user: Driver) -> None:
    await user.send("/start")
    await user.click("Acepto")


async def test_cancelar_asks_first_and_can_be_declined(user: Driver) -> None:
    await consented(user)
    await user.send("/requisitos")
    await user.click("Siguiente")
    ask = (await user.send("/cancelar"))[-1]
    assert "¿Seguro que quieres cancelar?" in ask.plain
    replies = await user.click("No, continuar")
    assert "Paso 2 de 7" in replies[-1].plain


async def test_cancelar_confirmed_returns_to_the_menu(user: Driver) -> None:
    await consented(user)
    await user.send("/requisitos")
    await user.send("cancelar")
    replies = await user.click("Sí, cancelar")
    assert "cancelé el trámite" in replies[0].plain
    assert "¿Qué necesitas hacer?" in replies[-1].plain


async def test_cancelar_with_nothing_open(user: Driver) -> None:
    await consented(user)
    replies = await user.send("/cancelar")
    assert "No tienes nada en curso" in replies[0].plain


async def test_free_text_that_means_an_entry_starts_it(user: Driver) -> None:
    await consented(user)
    replies = await user.send("¿QUÉ NECESITO para empezar?")
    assert "Paso 1 de 7" in replies[-1].plain


async def test_unclear_text_shows_the_menu_with_a_hint(user: Driver) -> None:
    await consented(user)
    replies = await user.send("asdf qwer")
    assert "No entendí tu mensaje" in replies[-1].plain
    assert replies[-1].buttons


async def test_unknown_command_is_named(user: Driver) -> None:
    await consented(user)
    replies = await user.send("/foo")
    assert "No conozco el comando /foo" in replies[0].plain


async def test_ayuda_lists_commands_then_the_menu(user: Driver) -> None:
    await consented(user)
    replies = await user.send("/ayuda")
    assert "/requisitos" in replies[0].plain
    assert "¿Qué necesitas hacer?" in replies[-1].plain


async def test_unsupported_message_gets_an_answer(user: Driver) -> None:
    await consented(user)
    replies = await user.sticker()
    assert "no puedo usar ese tipo de mensaje" in replies[0].plain


async def test_redelivered_event_changes_nothing(user: Driver) -> None:
    await consented(user)
    event = Inbound("test", user.chat_id, "dup-1", Kind.COMMAND, "requisitos")
    first = await user.redeliver(event)
    assert "Paso 1 de 7" in first[-1].plain
    again = await user.redeliver(event)
    assert again == []
    async with user.app.store.reading() as conn:
        (count,) = next(
            iter(
                await conn.execute_fetchall(
                    "SELECT count(*) FROM processed_events WHERE event_id = 'dup-1'"
                )
            )
        )
    assert count == 1


async def test_user_values_are_escaped_for_telegram_html(user: Driver) -> None:
    rendered = user.app.texts.render("common.unknown_command", {"command": "Pérez <Ruiz> & Cía"})
    assert "Pérez &lt;Ruiz&gt; &amp; Cía" in rendered
