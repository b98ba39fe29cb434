"""conversations.json_text writes what json.dumps wrote, and refuses what it refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest

from conversations import json_text


def reference(value: Any, default: Any = None) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)


@pytest.mark.parametrize(
    "value",
    [
        {"key": "requisitos.plazo", "data": {"sections": ["Personal", "Presupuesto"]}, "qid": 7},
        {"nombre": "Pérez <Ruiz> & Cía", "emoji": "📋", "salto": "a\nb\u2028c", "nulo": None},
        {"orden": 1, "alfa": [True, False], "anidado": {"z": {}, "a": []}},
        {"grande": 2**63 - 1, "negativo": -(2**63)},
        # What orjson refuses on its own and the standard library writes:
        {1: "clave numérica"},
        {"suelto": "\ud83d"},
    ],
)
def test_same_text_as_the_standard_library(value: Any) -> None:
    text = json_text.dumps(value)
    assert text == reference(value)
    assert json_text.loads(text) == json.loads(text)


def iso(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__}")


def test_datetimes_go_to_default_as_with_the_standard_library() -> None:
    value = {
        "at": datetime(2026, 11, 30, 9, 5, 1, 250, tzinfo=UTC),
        "d": date(2026, 12, 1),
    }
    assert json_text.dumps(value, default=iso) == reference(value, iso)
    with pytest.raises(TypeError):
        json_text.dumps({"at": datetime(2026, 11, 30)})


@dataclass
class Answer:
    value: str


@pytest.mark.parametrize("value", [{"a": Answer("x")}, {"s": {1, 2}}, {"b": b"bytes"}])
def test_what_cannot_be_stored_is_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        json_text.dumps(value)
    with pytest.raises(TypeError):
        reference(value)


def test_text_that_is_not_json_is_refused_as_before() -> None:
    with pytest.raises(json.JSONDecodeError):
        json_text.loads("{no es json")


@pytest.mark.parametrize("wide", [2**64, 2**70 + 1, -(2**63) - 1])
def test_an_integer_that_would_come_back_a_float_is_refused(wide: int) -> None:
    assert json_text.loads(json_text.dumps({"n": 2**64 - 1})) == {"n": 2**64 - 1}
    assert json_text.loads(json_text.dumps([-(2**63)])) == [-(2**63)]
    with pytest.raises(TypeError):
        json_text.dumps({"n": wide})
    with pytest.raises(TypeError):
        json_text.dumps({"lista": [1, {"n": wide}], "texto": "\ud83d"})
