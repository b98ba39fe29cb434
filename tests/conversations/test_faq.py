"""Common questions typed as free text are answered from the locale's FAQ."""

from __future__ import annotations

import pytest

from tests.driver import Driver, button_keys


@pytest.mark.parametrize(
    ("text", "answer", "button"),
    [
        ("¿Cuánto DEMORA la respuesta?", "faq.plazo", "menu.estado"),
        ("que es el formato de registro?", "faq.formato", "menu.solicitud"),
        (
            "quiero cambiar al responsable de presupuesto",
            "faq.cambiar_responsable",
            "menu.perfiles",
        ),
        ("Quiero hablar con una persona", "faq.persona", "menu.consulta"),
        ("no entiendo", "faq.no_entiendo", "menu.ayuda"),
        ("Olvidé mi clave", "faq.olvide_contrasena", "menu.consulta"),
        ("¿ya me respondieron?", "faq.ya_respondieron", "menu.estado"),
    ],
)
async def test_faq_answers(user: Driver, text: str, answer: str, button: str) -> None:
    await user.send("/start")
    await user.tap("btn.accept")
    replies = await user.send(text)
    assert replies[-1].key == answer
    assert button_keys(replies[-1]) == [button, "btn.menu"]


async def test_faq_button_needs_consent(user: Driver) -> None:
    await user.send("/start")
    await user.tap("btn.decline")
    replies = await user.send("olvidé mi contraseña")
    assert button_keys(replies[-1]) == ["btn.menu"]
