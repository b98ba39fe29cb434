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
    assert ask.key == "common.cancel_confirm"
    replies = await user.tap("btn.cancel_no")
    assert replies[-1].progress == (2, 7)


async def test_cancelar_confirmed_returns_to_the_menu(user: Driver) -> None:
    await consented(user)
    await user.send("/requisitos")
    await user.send("cancelar")
    replies = await user.tap("btn.cancel_yes")
    assert replies[0].key == "common.cancelled"
    assert replies[-1].key == "menu.main"


async def test_cancelar_with_nothing_open(user: Driver) -> None:
    await consented(user)
    replies = await user.send("/cancelar")
    assert replies[0].key == "common.nothing_to_cancel"


async def test_free_text_that_means_an_entry_starts_it(user: Driver) -> None:
    await consented(user)
    replies = await user.send("¿QUÉ NECESITO para empezar?")
    assert replies[-1].progress == (1, 7)


async def test_unclear_text_shows_the_menu_with_a_hint(user: Driver) -> None:
    await consented(user)
    replies = await user.send("asdf qwer")
    assert replies[-1].key == "menu.hint"
    assert replies[-1].buttons


async def test_unknown_command_is_named(user: Driver) -> None:
    await consented(user)
    replies = await user.send("/foo")
    assert replies[0].key == "common.unknown_command"
    assert replies[0].data["command"] == "foo"


async def test_ayuda_lists_commands_then_the_menu(user: Driver) -> None:
    await consented(user)
    replies = await user.send("/ayuda")
    assert replies[0].key == "ayuda.main"
    assert "requisitos" in replies[0].data["commands"]
    assert replies[-1].key == "menu.main"


async def test_unsupported_message_gets_an_answer(user: Driver) -> None:
    await consented(user)
    replies = await user.sticker()
    assert replies[0].key == "common.unsupported_here"


async def test_redelivered_event_changes_nothing(user: Driver) -> None:
    await consented(user)
    event = Inbound("test", user.chat_id, "dup-1", Kind.COMMAND, "requisitos")
    first = await user.redeliver(event)
    assert first[-1].progress == (1, 7)
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
    assert replies[-1].progress == (1, 11)  # the consulta, not "Ese botón..."
    [refusal] = await user.click_data(old_next)  # an answer to a closed question: briefly
    assert refusal.key == "common.stale_button"
    assert refusal.buttons == []


async def test_a_kept_drafts_continuar_works_from_an_old_offer(user: Driver) -> None:
    await consented(user)
    await user.tap("menu.consulta")
    await user.send("20131312955")
    await user.send("/menu")
    offer = await user.tap("menu.consulta")
    assert offer[-1].key == "common.draft_found"
    assert offer[-1].data["flow"] == "consulta"
    continuar, _ = user.find("btn.draft_continue")
    await user.send("/menu")  # another question opens; the offer's Continuar stays good
    replies = await user.click_data(continuar)
    assert replies[-1].key == "consulta.entidad_nombre"


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
    assert offer.key == "common.draft_paused"
    assert offer.data["k"] == 3
    assert offer.data["n"] == 11
    replies = await user.tap("btn.draft_continue")
    assert replies[-1].progress == (3, 11)
