"""A message as :mod:`conversations.password_guard` reads it (steps 1 and 3 of its
docstring): folded and split into tokens (:class:`_Token`), assignment marks peeled off and
glued ones split; then what one token is (a keyword, an assignment, a filler) and what a
value looks like (:class:`_Kind`: mixed, digits, a word, an address), and whether it stands
alone. The words and shapes behind each answer are :mod:`conversations.password_words`'s.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from conversations.password_words import (
    _ADDRESS,
    _CLAVE_AS_ADJECTIVE_AFTER,
    _COPULAS,
    _FILLERS,
    _NOT_A_SECRET,
    _NOT_A_SECRET_SHAPE,
    _PASSWORD_WORD,
    _PHRASE_BREAKS,
    _PROSE_ENDING,
    _SYMBOLS,
    _USER_WORD,
    _WEAK_PASSWORD_WORD,
)
from conversations.text import normalize

# --- tokens ----------------------------------------------------------------------------------

# An assignment mark standing alone: "clave : x", "pass -> x", "clave 👉 x".
_MARK = re.compile(r"[:=]+|-+>|=+>|[-–—]+|→|➡|👉")
# A mark glued between a keyword and its value ("clave:Abc123"), or before a value (":Abc123").
_GLUED = re.compile(r"(?P<head>[^\W\d_]+)(?P<mark>[:=]+|-+>|=+>|→)(?P<tail>.*)", re.DOTALL)
_LEADING = re.compile(r"(?P<mark>[:=]+|-+>|=+>|→)(?P<tail>.+)", re.DOTALL)

_WRAPPERS = "\"'`\u00b4“”\u2018\u2019«»()[]{}<>*_~"  # quotes, brackets, WhatsApp *_~
_CLAUSE_END = ",.;?!…"


@dataclass(frozen=True, slots=True)
class _Token:
    core: str  # the folded token without wrappers or closing punctuation; case kept
    word: str  # normalize(core), for list look-ups
    mark: bool = False  # an assignment mark (":", "=", "->"…)
    end: str = ""  # the closing punctuation the token carried, e.g. "," or "?"
    line_end: bool = False  # the last token of its line

    @property
    def closes(self) -> bool:
        return bool(self.end)


_MARK_TOKEN = _Token(core=":", word="", mark=True)


class _Kind(Enum):
    MIXED = "mixed"
    DIGITS = "digits"
    WORD = "word"
    ADDRESS = "address"


def _fold(text: str) -> str:
    """Accents, combining and invisible format characters out; case and symbols kept."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Cf"))


def _word_token(chunk: str) -> _Token:
    inner = chunk.lstrip(_WRAPPERS + "¿¡")
    core = inner.rstrip(_WRAPPERS + _CLAUSE_END)
    tail = inner[len(core) :]
    end = "".join(ch for ch in tail if ch in _CLAUSE_END)
    return _Token(core=core, word=normalize(core), end=end)


def _splits_on_mark(head: str) -> bool:
    word = normalize(head)
    return _is_keyword_word(word) or word in _COPULAS


def _chunk_tokens(chunk: str) -> list[_Token]:
    tokens: list[_Token] = []
    while chunk:
        if _MARK.fullmatch(chunk):
            return [*tokens, _MARK_TOKEN]
        glued = _GLUED.fullmatch(chunk)
        if glued and _splits_on_mark(glued["head"]):
            tokens += [_word_token(glued["head"]), _MARK_TOKEN]
            chunk = glued["tail"]
            continue
        leading = _LEADING.fullmatch(chunk)
        if leading:
            tokens.append(_MARK_TOKEN)
            chunk = leading["tail"]
            continue
        unwrapped = chunk.rstrip(_WRAPPERS)
        head = unwrapped.rstrip(":=")
        if head and head != unwrapped:  # "clave:", "es=", "*Usuario:*"
            return [*tokens, _word_token(head), _MARK_TOKEN]
        return [*tokens, _word_token(chunk)]
    return tokens


# "usuario:jperez,clave:Abc123" typed without spaces: a space after the comma before a keyword.
_KEYWORD_AFTER_COMMA = re.compile(
    rf"(?<=[,;|/])(?=(?:{_PASSWORD_WORD.pattern}|{_USER_WORD.pattern})\s*[:=])",
    re.VERBOSE | re.IGNORECASE,
)


def _tokens(text: str) -> list[_Token]:
    spaced = _KEYWORD_AFTER_COMMA.sub(" ", _fold(text))
    tokens: list[_Token] = []
    for line in spaced.splitlines():
        found = [token for chunk in line.split() for token in _chunk_tokens(chunk)]
        if found:
            found[-1] = replace(found[-1], line_end=True)
        tokens += found
    return tokens


# --- reading tokens --------------------------------------------------------------------------


def _listed(word: str) -> bool:
    """Whether a normalized word (or its singular) is in ``_NOT_A_SECRET``."""
    candidates = {word}
    if word.endswith("es"):
        candidates.add(word[:-2])
    if word.endswith("s"):
        candidates.add(word[:-1])
    return not candidates.isdisjoint(_NOT_A_SECRET)


def _kind(token: _Token) -> _Kind | None:
    """What a value token looks like; ``None`` when it cannot be a secret."""
    core = token.core
    if token.mark or not core:
        return None
    if _ADDRESS.fullmatch(core):
        return _Kind.ADDRESS
    if _NOT_A_SECRET_SHAPE.fullmatch(core.casefold()):
        return None
    letters = sum(ch.isalpha() for ch in core)
    digits = sum(ch.isdigit() for ch in core)
    symbols = sum(ch in _SYMBOLS for ch in core)
    if letters + digits + symbols < 4:
        return None
    if letters and (digits or symbols):
        return _Kind.MIXED
    if not letters:
        return _Kind.DIGITS if digits >= 4 else None
    if _is_keyword_word(token.word) or _PROSE_ENDING.search(token.word):
        return None
    if any(_listed(part) for part in token.word.split()):
        return None
    return _Kind.WORD


def _is_keyword_word(word: str) -> bool:
    return any(
        pattern.fullmatch(word) for pattern in (_PASSWORD_WORD, _WEAK_PASSWORD_WORD, _USER_WORD)
    )


def _ends_phrase(tokens: Sequence[_Token], position: int) -> bool:
    """Whether a value stands alone: "clave: perrito", not "clave: ayúdenme por favor"."""
    token = tokens[position]
    if token.closes or token.line_end or position + 1 == len(tokens):
        return True
    following = tokens[position + 1]
    return (
        following.mark
        or not following.word  # emoji, "/", "…"
        or following.word in _PHRASE_BREAKS
        or _is_keyword_word(following.word)
    )


def _is_password_keyword(tokens: Sequence[_Token], index: int) -> bool:
    word = tokens[index].word
    if not _PASSWORD_WORD.fullmatch(word):
        return False
    if word.startswith("clave") and index > 0:
        return tokens[index - 1].word not in _CLAVE_AS_ADJECTIVE_AFTER
    return True


def _is_weak_keyword(tokens: Sequence[_Token], index: int) -> bool:
    if not _WEAK_PASSWORD_WORD.fullmatch(tokens[index].word) or tokens[index].closes:
        return False
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    return following is not None and (following.mark or following.word in _COPULAS)


def _is_user_keyword(token: _Token) -> bool:
    return bool(_USER_WORD.fullmatch(token.word))


def _assigns(token: _Token) -> bool:
    return token.mark or token.word in _COPULAS


def _is_filler(token: _Token) -> bool:
    # Emoji and lone punctuation ("/", "…") normalize to nothing and are skipped too.
    return token.word in _FILLERS or not token.word or _kind(token) is _Kind.ADDRESS
