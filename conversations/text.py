"""Comparing what people type: accent-, case- and punctuation-insensitive."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

_NOT_WORD = re.compile(r"[^\w]+")
# "Alcalde(sa)", "Ministro(a)", "trámite(s)", "director/a": the forms people write to cover
# both genders or numbers, dropped so that what is left matches the plain word.
_GENDER_MARK = re.compile(r"\(\s*(?:a|as|o|os|s|es|sa|esa)\s*\)|/(?:a|as|sa|esa)\b", re.IGNORECASE)


def normalize(text: str) -> str:
    """``"¿Cómo va  mi SOLICITUD?"`` → ``"como va mi solicitud"``; emoji and signs drop out."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_WORD.sub(" ", bare.casefold()).replace("_", " ").strip()


def normalize_label(text: str) -> str:
    """A typed label compared as :func:`normalize` does, without a "(sa)" or "(a)"."""
    return normalize(_GENDER_MARK.sub("", text))


class IntentMatcher:
    """Finds which entry a free text clearly means, from phrases kept in the locale.

    A phrase matches when all its words appear in the text as whole words, in order; the
    longest matching phrase wins, so "estado de mi solicitud" beats "solicitud".
    """

    def __init__(self, phrases: Mapping[str, Iterable[str]]) -> None:
        self._phrases = sorted(
            ((normalize(p), intent) for intent, ps in phrases.items() for p in ps),
            key=lambda item: -len(item[0]),
        )

    def match(self, text: str, allowed: Iterable[str] | None = None) -> str | None:
        padded = f" {normalize(text)} "
        permitted = None if allowed is None else set(allowed)
        for phrase, intent in self._phrases:
            if permitted is not None and intent not in permitted:
                continue
            if phrase and _contains_in_order(padded, phrase.split()):
                return intent
        return None


def _contains_in_order(padded: str, words: list[str]) -> bool:
    position = 0
    for word in words:
        found = padded.find(f" {word} ", position)
        if found < 0:
            return False
        position = found + len(word) + 1
    return True
