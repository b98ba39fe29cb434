"""A rendered message says what it was rendered from, so tests need not read its wording."""

from __future__ import annotations

from bot.delivery.payload import encode, join, render
from bot.texts import Texts
from conversations.events import Choice, Outbound, rows
from tests.driver import button_keys, choices

TEXTS = Texts()


def test_a_message_carries_its_key_data_step_and_current_answer() -> None:
    question = Outbound("solicitud.cargo", {}, progress=(6, 15), current="Jefa de TI")
    shown = render(TEXTS, encode(question, 7, None))
    assert shown.key == "solicitud.cargo"
    assert shown.data == {}
    assert shown.progress == (6, 15)
    assert shown.current == "Jefa de TI"
    assert shown.leads == ()
    # The same facts, in words (the step counter, the answer kept with "Mantener").
    assert shown.plain.startswith(TEXTS.plain("common.paso", {"k": 6, "n": 15}))
    assert TEXTS.plain("common.current", {"value": "Jefa de TI"}) in shown.plain


def test_buttons_carry_their_label_key_data_and_choice() -> None:
    person = Choice("p0", "btn.person", {"name": "Luis Quispe Mamani"})
    question = Outbound("perfiles.modo", {}, rows(Choice("me", "btn.me"), person))
    shown = render(TEXTS, encode(question, 7, None))
    assert button_keys(shown) == ["btn.me", "btn.person"]
    assert choices(shown) == ["me", "p0"]
    assert shown.buttons[1][0].args == {"name": "Luis Quispe Mamani"}
    assert shown.buttons[1][0].data == "7:p0"  # the callback data is unchanged


def test_a_joined_message_names_the_texts_in_front_of_it() -> None:
    thanks = encode(Outbound("consent.accepted"), 3, None)
    menu = encode(Outbound("menu.main", {"consented": True, "drafts": []}), 4, None)
    joined = join(thanks, menu)
    assert joined is not None
    shown = render(TEXTS, joined)
    assert (shown.key, shown.leads) == ("menu.main", ("consent.accepted",))
