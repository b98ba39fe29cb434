"""JSON text for what a turn stores: a conversation's state and an outbox payload.

A turn encodes its state and every reply and the outbox decodes each payload again: with
the standard library that was about 5 us an object. orjson does the same in well under one.
The text is the standard library's (``json.dumps(value, ensure_ascii=False,
separators=(",", ":"))``): compact, UTF-8 characters as they are, keys in insertion order.

Whatever orjson refuses goes through the standard library, which either writes it (a key
that is not a string, a lone surrogate in a user's text) or refuses it loudly, as before.
Dataclasses and datetimes are not written by orjson on its own: they go to ``default`` (or
fail) as they would with ``json.dumps``.

Where the two differ, and why it does not matter here:

* an integer over 64 bits is refused (``TypeError``): orjson would read it back as a
  float, losing digits; the standard library wrote it;
* a plain ``Enum`` and a ``UUID`` are written (by value, and as text), where ``json.dumps``
  refused them; the project's enums are ``StrEnum``, written the same by both;
* NaN and infinity are written as null (``json.dumps`` wrote invalid JSON), and a float's
  exponent is written without padding (``1e-7``, not ``1e-07``).

Nothing a turn stores is a float, a plain ``Enum``, a ``UUID`` or a 20-digit integer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
_LOWEST, _HIGHEST = -(2**63), 2**64 - 1  # the integers orjson writes and reads back


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as compact JSON text, non-ASCII characters kept."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        _refuse_wide_integers(value)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)


def loads(text: str | bytes) -> Any:
    """The value of JSON text (``json.JSONDecodeError`` when it is not JSON)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _refuse_wide_integers(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        if not _LOWEST <= value <= _HIGHEST:
            raise TypeError(f"cannot store an integer over 64 bits: {value}")
    elif isinstance(value, dict):
        for item in value.values():
            _refuse_wide_integers(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_wide_integers(item)
