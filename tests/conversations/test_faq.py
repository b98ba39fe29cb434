"""Common questions typed as free text are answered from the locale's FAQ."""

from __future__ import annotations

import pytest

from tests.driver import Driver, button_keys


@pytest.mark.parametrize(
    ("text", "answer", "button"),
    [
        ("¿Cuánto DEMORA la respuesta?", "5 días hábiles", "Estado de mis trámites"),
        (
            "que es el formato de registro?",
            "Formato de Registro de Perfiles",
            "Solicitar accesos al PTE",
        ),
        (
            "quiero cambiar al responsable de presupuesto",
            "responsable del PTE",
            "Actualizar perfiles",
        ),
        ("Quiero hablar con una persona", "mesadeayuda@", "Hacer una consulta"),
        ("no entiendo", "Puedes tocar los botones", "Ayuda"),
        ("Olvidé mi clave", "Acceso o contraseña", "Hacer una consulta"),
        ("¿ya me respondieron?", "correo institucional", "Estado de mis trámites"),
    ],
)
async def test_faq_answers(user: Driver, text: str, answer: str, button: str | None) -> None:
    await user.send("/start")
    await user.tap("btn.accept")
    replies = await user.send(text)
    assert answer in replies[-1].plain
    labels = [b.label for row in replies[-1].buttons for b in row]
    assert labels == ([button] if button else []) + ["Menú"]


async def test_faq_button_needs_consent(user: Driver) -> None:
    await user.send("/start")
    await user.tap("btn.decline")
    replies = await user.send("olvidé mi contraseña")
    assert button_keys(replies[-1]) == ["btn.menu"]
