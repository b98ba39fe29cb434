"""Spotting a password typed into the chat, so the bot can delete it and warn.

``looks_like_credentials(text)`` says whether a message *seems* to carry a password, or a user
and password pair. It is a heuristic: it stays quiet on questions and complaints about
passwords ("olvidé mi contraseña", "¿cómo cambio mi clave?", "me dice contraseña incorrecta")
and speaks up when a value follows the keyword ("clave: Abc123$", "mi contraseña es perrito").
Pure and dependency-free (standard library and :func:`conversations.text.normalize` only).

How a message is read
---------------------
1. **Folding.** Accents and other combining marks are stripped (``contraseña`` →
   ``contrasena``), invisible format characters (bidi marks, zero-width joiners) are dropped,
   full-width characters become ASCII; *case and symbols are kept*, because they tell a secret
   apart. The text is split on whitespace, newlines included, so ``"Contraseña:\\nLima2026!"``
   is a keyword followed by a value. An assignment mark glued to a keyword is peeled off
   (``clave:Abc123`` → ``clave`` ``:`` ``Abc123``); WhatsApp ``*bold*``/``_italics_``,
   quotes and brackets around a token are ignored.
2. **Keywords** (:data:`KEYWORDS`, matched on the normalized token): ``contraseña`` and its
   usual typos (contrasena, contrasenia, contraceña, contrseña…), ``clave``, ``password`` and
   its short forms and typos (pass, passwd, pwd, psw, pw, pasword…), ``pin``. The *weak*
   keywords ``contra`` and ``key`` only count when an assignment mark or a copula follows
   ("contra: Abc123"), since "contra" is mostly "against". ``clave`` used as an adjective
   ("palabra clave", "punto clave", "es clave") is not a keyword.
3. **Values.** A token after a keyword is classified as
   * *mixed*: 4+ characters mixing letters with digits or symbols (``Lima2026!``,
     ``PTE#2026``, ``Muni_2025``, ``X9!kq2``) – looks like a secret on its own;
   * *digits*: 4+ digits, maybe with separators (``12345678``, a DNI used as password);
   * *word*: 4+ letters that are not a keyword, not an adverb or superlative (``-mente``,
     ``-ísima``) and not in the small list of words that follow the keyword in questions and
     complaints (``incorrecta``, ``nueva``, ``caducó``, ``funciona``, ``que``, ``DNI``,
     ``correo``, ``hola``… see ``_NOT_A_SECRET``; plurals are reduced);
   * nothing: shorter tokens, listed words, dates, times, ordinals (``2do``), ``N°045``,
     ticket and resolution numbers (``PTE-2026-000123``, ``045-2026-MDSJL``).
   E-mail addresses, links, emoji and lone punctuation are skipped like fillers.
   A value *stands alone* when it ends its clause, its line or the message, or is followed
   by a mark, an emoji, another keyword or ``y``/``pero``/``gracias``… – as a password does,
   and as "ayúdenme" in "contraseña: ayúdenme por favor" does not.
4. **Keyword rule.** From a keyword, look at up to ``_WINDOW`` following tokens, stopping at
   clause punctuation (``, . ; ? !`` ending a token), at another password keyword, or at a
   user keyword (unless it reads "la contraseña *del usuario* jperez es …"). Assignment marks
   (``: = -> => → - 👉``) and copulas (``es``, ``era``, ``será``, ``fue``, ``son``, ``ser``,
   ``queda``, ``como``) make the value *assigned*; fillers (``de``, ``del``, ``mi``,
   ``portal``, ``SOL``, ``nueva``, ``a``, ``por``…) are skipped. The first other token is
   *the value*, and the message has credentials when it is
   * mixed – anywhere ("usuario jperez contraseña jperez2026", "la clave del portal Muni_2025");
   * digits – assigned ("pwd: 12345678", "la clave es 123456"), or right after the keyword
     and standing alone ("pin 4589"); not "la contraseña del 2024", "la clave 2024 no sirve";
   * word – right after a mark or copula and standing alone ("clave: perrito",
     "mi contraseña es perrito"; never "mi contraseña caducó", "¿mi clave es la de la SUNAT?").
   Past the value, a mixed or digits token right after a mark or copula still counts
   ("la contraseña que me dieron es Ab12cd", "… vence el 15/03 y la nueva es Abc123").
5. **Pair rule.** A user keyword (usuario, user, usr, login…) with a value X, followed by at
   most two connectors (``y``, ``/``, ``,``, ``con``, ``mi``…) and then a password keyword
   whose value Y is digits, mixed, or a word standing alone – even without a mark:
   "usuario admin contraseña admin", "user jperez / pass perrito". A user name alone
   ("mi usuario es jperez") is not a credential.

Known trade-offs (pinned in the tests):
* false positives – an unlisted word right after a mark or copula ("la clave es Lima",
  "mi contraseña es rara"), a mixed token after a keyword even when it is not a secret
  ("contraseña de Windows10", "una contraseña segura ej: Abc123$"), a password the person
  only *plans* to use ("¿mi clave puede ser Lima2026?" – deleting it is still wise);
* false negatives – passwords shorter than 4 characters ("clave: abc"), a plain word with no
  mark ("mi contraseña perrito", "password\nqwerty"), a password with spaces
  ("contraseña = \"Lima 2026\""), a word followed by more prose ("clave: perrito por favor"),
  the reversed pair ("contraseña perrito usuario jperez"), a ticket-shaped password
  ("mi clave es PTE-2026-000123"), one-time codes ("el código es 123456") and keywords in other
  languages than Spanish/English.

This module holds the two rules (steps 4 and 5) and :func:`looks_like_credentials`; a message's
tokens and what each one is are :mod:`conversations.password_tokens`'s (steps 1 and 3), the
words and shapes they are matched against :mod:`conversations.password_words`'s (steps 2 to 4).
"""

from __future__ import annotations

from collections.abc import Sequence

from conversations.password_tokens import (
    _assigns,
    _ends_phrase,
    _is_filler,
    _is_password_keyword,
    _is_user_keyword,
    _is_weak_keyword,
    _Kind,
    _kind,
    _Token,
    _tokens,
)
from conversations.password_words import _CONNECTORS, _FILLERS

__all__ = ["KEYWORDS", "USER_KEYWORDS", "looks_like_credentials"]

#: Canonical spellings of the words that announce a password (typos are matched too).
KEYWORDS: tuple[str, ...] = (
    "contraseña",
    "clave",
    "password",
    "passwd",
    "pass",
    "pwd",
    "psw",
    "pw",
    "pin",
    "contra",  # weak: needs ":"/"="/"es" after it
    "key",  # weak
)

#: Canonical spellings of the words that announce a user name (for the pair rule).
USER_KEYWORDS: tuple[str, ...] = ("usuario", "user", "username", "usr", "login")

# How many tokens after a keyword may hold its value.
_WINDOW = 10


# --- the two rules ---------------------------------------------------------------------------


def _value_follows(tokens: Sequence[_Token], index: int) -> bool:
    """The keyword rule: does the password keyword at ``index`` have a secret after it?"""
    if tokens[index].closes:
        return False
    assigned = after_mark = False
    first = True
    for position in range(index + 1, min(len(tokens), index + 1 + _WINDOW)):
        token = tokens[position]
        if _assigns(token):
            assigned = after_mark = True
        elif _is_password_keyword(tokens, position) or (
            _is_user_keyword(token) and tokens[position - 1].word not in ("de", "del")
        ):
            return False
        elif not _is_filler(token):
            kind = _kind(token)
            if first:
                adjacent = position == index + 1
                if kind is _Kind.MIXED:
                    return True
                alone = _ends_phrase(tokens, position)
                if kind is _Kind.DIGITS and (assigned or (adjacent and alone)):
                    return True
                if kind is _Kind.WORD and _assigns(tokens[position - 1]) and alone:
                    return True
            elif after_mark and kind in (_Kind.MIXED, _Kind.DIGITS):
                return True
            first = after_mark = False
        if token.closes:
            return False
    return False


def _pair_at(tokens: Sequence[_Token], index: int) -> bool:
    """The pair rule: "usuario X [y|/|,] contraseña Y" starting at the user keyword."""
    count = len(tokens)
    position = index + 1
    while position < count and (_assigns(tokens[position]) or tokens[position].word in _FILLERS):
        if tokens[position].closes or position - index > 3:
            return False
        position += 1
    if tokens[index].closes or position >= count or _kind(tokens[position]) is None:
        return False
    if set(tokens[position].end) - set(",.;"):
        return False
    position += 1
    for _ in range(2):
        if position < count and (
            tokens[position].word in _CONNECTORS
            or _assigns(tokens[position])
            or not tokens[position].word
        ):
            position += 1
    if position >= count or not _is_password_keyword(tokens, position):
        return False
    if tokens[position].closes:
        return False
    position += 1
    while position < count and _assigns(tokens[position]):
        position += 1
    if position >= count:
        return False
    kind = _kind(tokens[position])
    return kind in (_Kind.DIGITS, _Kind.MIXED) or (
        kind is _Kind.WORD and _ends_phrase(tokens, position)
    )


def looks_like_credentials(text: str) -> bool:
    """Whether ``text`` seems to contain a password or a user and password pair.

    ``"usuario: jperez clave: Abc123$"`` → ``True``; ``"olvidé mi contraseña"`` → ``False``.
    The rules are in the module docstring.
    """
    tokens = _tokens(text)
    for index, token in enumerate(tokens):
        if _is_password_keyword(tokens, index) or _is_weak_keyword(tokens, index):
            if _value_follows(tokens, index):
                return True
        elif _is_user_keyword(token) and _pair_at(tokens, index):
            return True
    return False
