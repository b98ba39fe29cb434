"""Global commands and free text, in and out of flows."""

from __future__ import annotations

from conversations.events import Inbound, Kind
from tests.driver import Driver
from tests.walks import consented


async def test_cancelar_asks_first_and_can_be_declined(user: Driver) -> None:
    await consented(user)
    await user.send("/requisitos")
    await user.tap("btn.next")
    ask = (await user.send("/cancelar"))[-1]
    assert "¿Seguro que quieres cancelar?" in ask.plain
    replies = await user.tap("btn.cancel_no")
    assert "Paso 2 de 7" in replies[-1].plain


async def test_cancelar_confirmed_returns_to_the_menu(user: Driver) -> None:
    await consented(user)
    await user.send("/requisitos")
    await user.send("cancelar")
    replies = await user.tap("btn.cancel_yes")
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


async def test_an_old_menu_entry_opens_its_flow_from_any_question(user: Driver) -> None:
    """Channels that cannot edit (WhatsApp) leave every menu in the chat: its entries work
    from any message, on every channel; an old answer to a closed question does not."""
    await consented(user)
    old_menu_entry, _ = user.find("menu.consulta")
    await user.tap("menu.requisitos")
    old_next, _ = user.find("btn.next")
    await user.tap("btn.next")
    replies = await user.click_data(old_menu_entry)
    assert "Paso 1 de 5" in replies[-1].plain  # the consulta, not "Ese botón..."
    [refusal] = await user.click_data(old_next)  # an answer to a closed question: briefly
    assert "Ese botón es de una pregunta anterior" in refusal.plain
    assert refusal.buttons == []


async def test_a_kept_drafts_continuar_works_from_an_old_offer(user: Driver) -> None:
    await consented(user)
    await user.tap("menu.consulta")
    await user.send("20131312955")
    await user.send("/menu")
    offer = await user.tap("menu.consulta")
    assert "Tienes una consulta en curso" in offer[-1].plain
    continuar, _ = user.find("btn.draft_continue")
    await user.send("/menu")  # another question opens; the offer's Continuar stays good
    replies = await user.click_data(continuar)
    assert "nombre completo de la entidad" in replies[-1].plain


async def test_text_that_reopens_a_closed_conversation_is_not_an_answer(user: Driver) -> None:
    """A channel marks the first message after it closed the conversation (WhatsApp's
    24-hour window): it greets or answers the call-back, it does not answer the question."""
    await consented(user)
    await user.tap("menu.consulta")
    await user.send("20131312955")
    await user.send("Municipalidad de Prueba")
    await user.tap("btn.topic_other")
    reopening = user._event(Kind.TEXT, "Hola, ¿qué novedades hay?", reopens=True)
    [offer] = await user._push(reopening)
    assert "no tomé tu mensaje como respuesta" in offer.plain
    assert "paso 3 de 5" in offer.plain
    replies = await user.tap("btn.draft_continue")
    assert "Paso 3 de 5" in replies[-1].plain
