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
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from conversations.text import normalize

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

# --- keywords, on normalized tokens (lowercase, no accents) ----------------------------------

_PASSWORD_WORD = re.compile(
    r"""
      contr?a?[sc]+e?(?:nh|ni|n)i?as?   # contrasena(s), contrasenia, contrasenha, contrsena,
                                        # contasena, contracena, contrasna
    | claves?
    | pass | pas?s?w(?:or|ro)?ds?       # pass, passwd, paswd, password(s), pasword, passwrod
    | pwd? | psw                        # pw, pwd, psw
    | pin
    """,
    re.VERBOSE,
)
_WEAK_PASSWORD_WORD = re.compile(r"contra|key")
_USER_WORD = re.compile(r"usuari[oa]s?|usario|usuaro|usurio|user(?:name)?|usr|login")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# "palabra clave", "es clave", "punto clave": the adjective, not the password.
_CLAVE_AS_ADJECTIVE_AFTER = _words(
    """
    palabra palabras punto puntos es son era fue sera seria muy tan mas tema temas dato datos
    pieza piezas factor factores elemento elementos momento momentos fecha fechas rol papel
    aspecto aspectos idea ideas pregunta preguntas concepto conceptos actor actores paso pasos
    indicador indicadores
    """
)

# --- what sits between a keyword and its value -----------------------------------------------

# Copulas: "mi contraseña ES …" makes what follows an assignment.
_COPULAS = _words("es era sera seria fue son eran ser sea is queda quedo quedaria como")

# Skipped between the keyword and the value: "la contraseña DEL PORTAL es …", "clave SOL: …".
_FILLERS = _words(
    """
    de del a al la el lo las los mi mis tu tus su sus para por en the my
    actual nueva nuevo temporal provisional secreta sol web virtual acceso ingreso portal pte
    sistema correo cuenta email institucional ahora entonces
    """
)

# Connectors between "usuario X" and "contraseña Y" in the pair rule.
_CONNECTORS = _words("y e con and mi su tu la el")

# Words (normalized; plurals are reduced) that follow "contraseña"/"clave" in questions and
# complaints, so they are never taken for the password itself.
_NOT_A_SECRET = _words(
    """
    que cual cuales como donde cuando quien quienes cuanto cuanta porque pq xq para por
    pero sino solo aun todavia siempre nunca ahora hoy ayer bien mal asi aqui alli ahi
    tambien tampoco muy mas menos tan igual igualito algo nada nadie alguna alguno ninguna
    ninguno cada otra otro misma mismo toda todo esta este esto esa ese eso estas estos esas
    esos aquel aquella aquello una unos unas ella ellos usted ustedes nosotros ellas
    correcta correcto incorrecta incorrecto valida valido invalida invalido errada errado
    erronea erroneo equivocada equivocado nueva nuevo antigua antiguo anterior vieja viejo
    actual temporal provisional provisoria vencida vencido caducada caducado expirada expirado
    bloqueada bloqueado desbloqueada desbloqueado inactiva inactivo activa activo olvidada
    olvidado cambiada cambiado reseteada reseteado restablecida restablecido recuperada
    recuperado generada generado asignada asignado enviada enviado distinta distinto diferente
    segura seguro insegura inseguro debil fuerte larga largo corta corto facil dificil
    complicada complicado sencilla sencillo simple secreta secreto personal intransferible
    privada privado confidencial obligatoria obligatorio necesaria necesario requerida
    requerido importante sensible unica unico propia propio institucional siguiente mala malo
    buena bueno demasiado demasiada bastante minimo minima maximo maxima caracter caracteres
    digito numero letra mayuscula minuscula simbolo espacio
    funciona funcionaba sirve servia falla fallo existe aparece sale salio dice decia entra
    entro vence vencio expira expiro caduca caduco cambia cambio tiene tenia tengo esta estan
    estaba queda quedo pide pedia llega llego acepta aceptaba reconoce figura debe deberia
    puede podria necesito necesita olvide olvido perdi recuerdo acuerdo desconozco cambie
    puse pusieron dieron enviaron mandaron ingrese ingreso ingresar entrar cambiar recuperar
    restablecer resetear actualizar crear generar poner usar escribir distingue incluye
    contiene lleva
    dni ruc documento correo email mail gmail hotmail nombre apellido fecha celular telefono
    usuario cuenta sistema portal pagina link enlace acceso codigo mensaje error problema
    ayuda favor porfa porfavor gracias soporte hola buenas buenos dias tardes noches
    """
)

# Adverbs and superlatives ("rápidamente", "sencillísima") describe, they are not passwords.
_PROSE_ENDING = re.compile(r"(?:mente|isim[oa]s?)$")

# What may follow a plain-word value that stands alone: "clave: perrito y usuario jperez".
_PHRASE_BREAKS = _words("y e o u pero gracias ok okey porfa xfa saludos atte")

# --- shapes of a value, on the folded token (case kept) --------------------------------------

_ADDRESS = re.compile(
    r"""
      [^@\s]+@[^@\s]+\.[^\W\d_]{2,}          # jperez@munilima.gob.pe
    | (?:https?://|www\.)\S+                  # links
    | [\w-]+(?:\.[\w-]+)*\.(?:gob|com|org|net|edu)(?:\.pe)?(?:/\S*)?   # transparencia.gob.pe
    """,
    re.VERBOSE | re.IGNORECASE,
)
_NOT_A_SECRET_SHAPE = re.compile(
    r"""
      \d{1,4}[/.-]\d{1,2}(?:[/.-]\d{1,4})?   # dates: 15/03/2026, 2026-03-15, 15.03
    | \d{1,2}[:h]\d{2}(?:am|pm|hrs?|h)?       # times: 10:30, 9h30
    | \d{1,2}(?:am|pm|hrs?)                   # 10am, 8hrs
    | \d+(?:ro|ra|do|da|er|to|ta|vo|va|no|na|mo|ma|°|o)\.?   # ordinals: 2do, 1ra, 3er, 5to
    | (?:n|nro|num)[.°o]*\d+                  # N°045, nro.12
    | \d+(?:kb|mb|gb|km|kg|min|seg)           # units
    | (?:[a-z]+-)?\d+-(?:19|20)\d{2}(?:-[a-z0-9]+)+   # resolutions: 045-2026-MDSJL
    | [a-z]+-(?:19|20)\d{2}-\d+               # tickets: PTE-2026-000123
    """,
    re.VERBOSE,
)
# Symbols that make a token look like a secret; ". - '" also join ordinary words and names.
_SYMBOLS = frozenset(string.punctuation) - frozenset(".-'")

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
