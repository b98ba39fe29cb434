"""Requisitos y pasos: cards with Siguiente / Anterior / Menú, and the final question."""

from __future__ import annotations

from tests.conftest import AppFactory
from tests.driver import Driver
from tests.walks import consented


async def test_walkthrough_goes_through_every_card_in_order(user: Driver) -> None:
    await consented(user)
    card = (await user.tap("menu.requisitos"))[-1]
    seen = [card.plain]
    for _ in range(6):
        card = (await user.tap("btn.next"))[-1]
        seen.append(card.plain)
    for k, title in enumerate(
        [
            "¿Quién pide los accesos?",
            "La resolución",
            "Formato de Registro de Perfiles",
            "Cómo se envía",
            "El plazo",
            "Tus accesos son personales",
        ],
        start=1,
    ):
        assert f"Paso {k} de 7" in seen[k - 1]
        assert title in seen[k - 1]
    assert "Registro de visitas" in seen[2]  # the sections come from the data file
    assert "5 días hábiles" in seen[4]
    assert "¿Tienes lista la resolución?" in seen[6]


async def test_card_buttons_edit_the_card_in_place(user: Driver) -> None:
    await consented(user)
    await user.tap("menu.requisitos")
    replies = await user.tap("btn.next")
    assert len(replies) == 1
    assert replies[0].edit_ref is not None


async def test_anterior_goes_back_one_card(user: Driver) -> None:
    await consented(user)
    await user.tap("menu.requisitos")
    await user.tap("btn.next")
    await user.tap("btn.next")
    card = (await user.tap("btn.previous"))[-1]
    assert card.progress == (2, 7)


async def test_atras_typed_goes_back(user: Driver) -> None:
    await consented(user)
    await user.tap("menu.requisitos")
    await user.tap("btn.next")
    card = (await user.send("atrás"))[-1]
    assert card.progress == (1, 7)
    replies = await user.send("/atras")
    assert replies[0].key == "common.at_first_step"


async def test_menu_button_leaves_the_walkthrough(user: Driver) -> None:
    await consented(user)
    await user.tap("menu.requisitos")
    menu = (await user.tap("btn.menu"))[-1]
    assert menu.key == "menu.main"


async def test_free_text_on_a_card_points_to_the_buttons(user: Driver) -> None:
    await consented(user)
    await user.tap("menu.requisitos")
    replies = await user.send("ok")
    assert replies[0].key == "requisitos.use_buttons"
    assert replies[-1].progress == (1, 7)


async def test_aun_no_explains_what_the_resolution_must_state(user: Driver) -> None:
    await consented(user)
    await user.send("/requisitos")
    for _ in range(6):
        await user.tap("btn.next")
    replies = await user.tap("btn.not_yet")
    assert replies[0].key == "requisitos.not_yet"


async def test_stale_button_is_refused_briefly_and_the_open_question_stays(
    user: Driver,
) -> None:
    await consented(user)
    await user.tap("menu.requisitos")
    first_next, _ = user.find("btn.next")
    await user.tap("btn.next")
    [refusal] = await user.click_data(first_next)  # one short message, not the card again
    assert refusal.key == "common.stale_button"
    replies = await user.tap("btn.next")  # the open card's button still works
    assert replies[-1].progress == (3, 7)


async def test_restart_mid_walkthrough_resumes_at_the_same_card(make_app: AppFactory) -> None:
    app = await make_app()
    user = Driver(app)
    await user.start()
    await consented(user)
    await user.tap("menu.requisitos")
    await user.tap("btn.next")
    await user.tap("btn.next")
    next_button, _ = user.find("btn.next")
    await user.stop()
    await app.close()

    again = Driver(await make_app())
    await again.start()
    replies = await again.click_data(next_button)  # the button on the card the user still sees
    assert replies[-1].progress == (4, 7)
    replies = await again.send("hola?")
    assert replies[-1].progress == (4, 7)
    await again.stop()
