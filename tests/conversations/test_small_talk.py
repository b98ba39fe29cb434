"""Small talk, a way to a person, the help and the menu (issue 17, point 5)."""

from __future__ import annotations

import re

from conversations.help import commands
from tests.driver import Driver, button_keys
from tests.walks import consented


async def test_hola_greets_and_shows_the_menu(user: Driver) -> None:
    await consented(user)
    replies = await user.send("hola")
    assert replies[0].key == "common.welcome_back"
    assert replies[-1].key == "menu.main"


async def test_gracias_is_answered_at_the_menu_and_during_a_question(user: Driver) -> None:
    await consented(user)
    assert "¡Con gusto!" in (await user.send("gracias"))[-1].plain
    await user.send("/consulta")
    replies = await user.send("muchas gracias")
    assert replies[0].key == "faq.gracias"
    assert replies[-1].key == "consulta.entidad"  # the open question comes again


async def test_a_way_to_a_person_is_said_plainly(user: Driver) -> None:
    await consented(user)
    answer = (await user.send("quiero hablar con una persona"))[-1]
    assert answer.key == "faq.persona"
    assert button_keys(answer) == ["menu.consulta", "btn.menu"]
    replies = await user.tap("menu.consulta")
    assert replies[-1].key == "consulta.entidad"


async def test_a_faq_asked_during_a_question_keeps_its_button(user: Driver) -> None:
    await consented(user)
    await user.send("/consulta")
    answer, question = await user.send("quiero cambiar al responsable de presupuesto")
    assert "menu.perfiles" in button_keys(answer)
    assert question.key == "consulta.entidad"


async def test_every_faq_that_points_to_a_flow_has_its_button(user: Driver) -> None:
    await consented(user)
    for key, entry in user.app.texts.faq.items():
        if not entry.get("flujo"):
            continue
        replies = await user.send(entry["frases"][0])
        labels = [b.label for row in replies[-1].buttons for b in row]
        assert len(labels) == 2, (key, labels)  # the flow's entry, then Menú


async def test_ayuda_lists_every_command_the_person_can_use(user: Driver) -> None:
    await consented(user)
    help_text = (await user.send("/ayuda"))[-2].plain
    listed = set(re.findall(r"/([a-z_]+) —", help_text))
    assert set(user.app.engine.commands()) <= listed
    assert "/perfiles" in help_text
    assert "/pendientes" not in help_text  # staff only


async def test_ayuda_for_staff_lists_the_desk_commands_too(user: Driver) -> None:
    staff = await user.peer("9001", staff=True)
    await staff.send("/start")
    await staff.tap("btn.accept")
    help_text = (await staff.send("/ayuda"))[-2].plain
    for command in user.app.engine.staff_commands():
        assert f"/{command} —" in help_text


async def test_the_menu_is_consistent_about_emoji(user: Driver) -> None:
    await consented(user)
    menu = (await user.send("/menu"))[-1]
    labels = [b.label for row in menu.buttons for b in row]
    starts_with_emoji = {not label[0].isalpha() for label in labels}
    assert len(starts_with_emoji) == 1, labels


def test_help_lists_what_the_engine_offers(user: Driver) -> None:
    from conversations.flow import Ctx, Person

    ctx = Ctx({}, Person(1, True), None, None, user.app.engine.flows)  # type: ignore[arg-type]
    public, _staff = commands(ctx)
    assert set(public) == set(user.app.engine.commands())
