"""JSON text for what a turn stores: a conversation's state and an outbox payload.

A turn encodes its state and every reply and the outbox decodes each payload again: with
the standard library that was about 5 us an object. orjson does the same in well under one.
The text is the standard library's (``json.dumps(value, ensure_ascii=False,
separators=(",", ":"))``): compact, UTF-8 characters as they are, keys in insertion order.

Whatever orjson refuses goes through the standard library, which either writes it (a key
that is not a string, an integer over 64 bits, a lone surrogate in a user's text) or
refuses it loudly, as before. Dataclasses and datetimes are not written by orjson on its
own: they go to ``default`` (or fail) as they would with ``json.dumps``. One difference is
left: NaN and infinity, which ``json.dumps`` writes as invalid JSON, orjson writes as null.
Nothing a turn stores is a float.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as compact JSON text, non-ASCII characters kept."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)


def loads(text: str | bytes) -> Any:
    """The value of JSON text (``json.JSONDecodeError`` when it is not JSON)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
