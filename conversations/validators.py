"""Checks for what officers type: identifiers, contact data, dates and free text.

Every function takes the raw text and returns ``Valid(value)`` with the normalized value, or
``Invalid(code)`` with a short snake_case code that the locale turns into a message. Nothing
here raises on bad user input, reads the clock or touches the network.

Codes: ``ruc_not_digits``, ``ruc_length``, ``ruc_check_digit``, ``ruc_not_entity``,
``dni_format``, ``phone_format``, ``phone_not_mobile``, ``phone_not_peru``,
``email_syntax``, ``email_webmail``, ``date_format``, ``date_no_year``, ``date_invalid``,
``date_future``, ``date_too_old``, ``text_too_short``, ``text_too_long``, ``text_no_letters``,
``text_invalid_chars``, ``name_digits``, ``name_chars``, ``entity_one_word``,
``code_format``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Final, Generic, TypeAlias, TypeVar

from babel.dates import get_month_names

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Valid(Generic[T]):
    """The input was accepted; ``value`` is its normalized form."""

    value: T


@dataclass(frozen=True, slots=True)
class Invalid:
    """The input was refused; ``code`` names the reason (see the module docstring)."""

    code: str


Result: TypeAlias = Valid[T] | Invalid


# --- RUC ------------------------------------------------------------------------------------

_ID_SEPARATORS: Final = re.compile(r"[\s.\-]+")
_ASCII_DIGITS: Final = re.compile(r"[0-9]*")
_ENTITY_RUC_PREFIX: Final = "20"


def ruc(text: str) -> Result[str]:
    """An entity's RUC: 11 digits, valid check digit, legal person (starts with ``20``).

    Spaces, dots and dashes are ignored. Codes:

    - ``ruc_not_digits``: something other than digits is left;
    - ``ruc_length``: not exactly 11 digits;
    - ``ruc_check_digit``: a RUC-shaped number whose check digit is wrong (a typo);
    - ``ruc_not_entity``: a correct RUC of another kind (``10`` natural person, ``15``,
      ``17``), or a prefix no RUC uses at all; public entities are legal persons.
    """
    number = _ID_SEPARATORS.sub("", text)
    if not _ASCII_DIGITS.fullmatch(number):
        return Invalid("ruc_not_digits")
    if len(number) != 11:
        return Invalid("ruc_length")
    # Imported on first use: python-stdnum's package imports pydoc and pkgutil (issue 18).
    from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError
    from stdnum.pe import ruc as stdnum_ruc

    try:
        stdnum_ruc.validate(number)
    except InvalidComponent:  # a prefix that no kind of RUC uses
        return Invalid("ruc_not_entity")
    except InvalidChecksum:
        return Invalid("ruc_check_digit")
    except ValidationError:  # pragma: no cover - length and digits were checked above
        return Invalid("ruc_length")
    if not number.startswith(_ENTITY_RUC_PREFIX):
        return Invalid("ruc_not_entity")
    return Valid(number)


# --- DNI ------------------------------------------------------------------------------------

_DNI: Final = re.compile(r"([0-9]{8})-?([0-9A-Z])?")
_DNI_SEPARATORS: Final = re.compile(r"[\s.]+")


def dni(text: str) -> Result[str]:
    """A DNI number: 8 digits, spaces and dots ignored; returns the 8 digits.

    The check character printed on the card (``stdnum.pe.cui``: a digit or a letter, optionally
    after a dash, e.g. ``10117410-2``) is accepted only when it is right, and is dropped.
    Any other input gives ``dni_format``.
    """
    match = _DNI.fullmatch(_DNI_SEPARATORS.sub("", text).upper())
    if match is None:
        return Invalid("dni_format")
    number, check = match.groups()
    if check is None:
        return Valid(number)
    from stdnum.pe import cui as stdnum_cui  # on first use, as in ruc()

    if check not in stdnum_cui.calc_check_digits(number):
        return Invalid("dni_format")
    return Valid(number)


# --- Mobile phone ---------------------------------------------------------------------------

_PERU_REGION: Final = "PE"
_PERU_COUNTRY_CODE: Final = 51


def mobile(text: str) -> Result[str]:
    """A Peruvian mobile number, returned in E.164 (``+51987654321``).

    Accepts ``987654321``, ``987 654 321``, ``987-654-321``, ``51987654321``,
    ``+51 987 654 321`` and ``0051987654321``. Codes:

    - ``phone_format``: not a phone number, or not a valid Peruvian number (wrong length, a
      prefix no operator uses, a mobile with an extension...);
    - ``phone_not_peru``: a number with a country code other than +51;
    - ``phone_not_mobile``: a valid Peruvian number that is not a mobile, e.g. a landline
      such as ``(01) 426-1234`` (with or without anexo).
    """
    import phonenumbers  # imported on first use: a fifth of a second off every start

    mobile = {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }
    try:
        number = phonenumbers.parse(text, _PERU_REGION)
    except phonenumbers.NumberParseException:
        return Invalid("phone_format")
    if number.country_code != _PERU_COUNTRY_CODE:
        return Invalid("phone_not_peru")
    if not phonenumbers.is_valid_number_for_region(number, _PERU_REGION):
        return Invalid("phone_format")
    if phonenumbers.number_type(number) not in mobile:
        return Invalid("phone_not_mobile")
    if number.extension:
        return Invalid("phone_format")
    return Valid(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


# --- Institutional email --------------------------------------------------------------------

_INSTITUTIONAL_DOMAINS: Final = ("gob.pe", "edu.pe", "mil.pe", "sld.pe")
_COUNTRY_LABEL: Final = re.compile(r"[a-z]{2}")


@dataclass(frozen=True, slots=True)
class EmailCheck:
    """An accepted address; ``review_domain`` asks a specialist to look at the domain."""

    address: str
    review_domain: bool


@cache
def _webmail_domains() -> frozenset[str]:
    """The packaged list ``conversations/data/webmail_domains.txt`` (format described there)."""
    source = resources.files("conversations").joinpath("data", "webmail_domains.txt")
    entries = (
        line.split("#", 1)[0].strip().lower() for line in source.read_text("utf-8").splitlines()
    )
    return frozenset(entry for entry in entries if entry)


def _is_institutional(domain: str) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in _INSTITUTIONAL_DOMAINS)


def _is_webmail(domain: str) -> bool:
    webmail = _webmail_domains()
    if domain in webmail:
        return True
    base, _, last_label = domain.rpartition(".")
    return base in webmail and _COUNTRY_LABEL.fullmatch(last_label) is not None


def email(text: str) -> Result[EmailCheck]:
    """An institutional email address; surrounding spaces are ignored.

    Syntax is checked with ``email-validator`` without any network access; the address comes
    back normalized (domain lowercased, local part as typed). Domains under ``gob.pe``,
    ``edu.pe``, ``mil.pe`` or ``sld.pe`` pass silently; free webmail (the packaged list
    ``conversations/data/webmail_domains.txt``) is refused; any other domain passes with
    ``review_domain=True``. Codes: ``email_syntax``, ``email_webmail``.
    """
    # Imported on first use: its regular expressions take a fifth of a second to build.
    from email_validator import EmailNotValidError, validate_email

    try:
        parsed = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError:
        return Invalid("email_syntax")
    domain = parsed.ascii_domain.lower()
    if _is_institutional(domain):
        return Valid(EmailCheck(address=parsed.normalized, review_domain=False))
    if _is_webmail(domain):
        return Invalid("email_webmail")
    return Valid(EmailCheck(address=parsed.normalized, review_domain=True))


# --- Dates ----------------------------------------------------------------------------------

_DATE: Final = re.compile(r"([0-9]{1,2})([/.\-])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})")
_ISO_DATE: Final = re.compile(r"([0-9]{4})([/\-])([0-9]{1,2})\2([0-9]{1,2})")
_NO_YEAR: Final = re.compile(r"[0-9]{1,2}\s*[/.\-]\s*[0-9]{1,2}")
# "5 de octubre de 2026", "5 oct 2026", "lunes 5 de octubre del 2026", "5-oct-26", "1.º de…"
_WORDS_DATE: Final = re.compile(
    r"(?:[a-z]+,?\s+)?([0-9]{1,2})(?:ro|\.o|\.?°)?(?:\s+de)?[\s\-/.]*([a-z]+)\.?"
    r"(?:[\s\-/.,]+(?:de|del)?\s*([0-9]{4}|[0-9]{2}))?"
)
# Month names as Peruvians write them: Babel's Spanish names and abbreviations, plus the
# forms Babel does not give ("setiembre", Peru's spelling, and "set", "sep").
_EXTRA_MONTHS: Final = {"setiembre": 9, "set": 9, "sep": 9, "sept": 9}
OLDEST_DATE: Final = date(2000, 1, 1)


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def _months() -> dict[str, int]:
    months = dict(_EXTRA_MONTHS)
    for width in ("wide", "abbreviated"):
        for context in ("format", "stand-alone"):
            names = get_month_names(width, context, locale="es_PE")
            months.update(
                {_plain(str(name)).rstrip("."): number for number, name in names.items()}
            )
    return months


def _year(digits: str) -> int:
    """Two digits are this century's: "26" is 2026 (an older one is refused as too old)."""
    return 2000 + int(digits) if len(digits) == 2 else int(digits)


def _date_parts(text: str) -> tuple[int, int, int] | Invalid:
    """(year, month, day) as typed, or why it cannot be read."""
    compact = _plain(text).strip()
    match = _DATE.fullmatch(compact)
    if match is not None:
        day, _, month, year = match.groups()
        return _year(year), int(month), int(day)
    match = _ISO_DATE.fullmatch(compact)
    if match is not None:
        year, _, month, day = match.groups()
        return int(year), int(month), int(day)
    if _NO_YEAR.fullmatch(compact):
        return Invalid("date_no_year")
    match = _WORDS_DATE.fullmatch(compact)
    if match is not None:
        day, name, year = match.groups()
        month = _months().get(name)
        if month is None:
            return Invalid("date_format")
        if year is None:
            return Invalid("date_no_year")
        return _year(year), month, int(day)
    return Invalid("date_format")


def past_date(text: str, today: date) -> Result[date]:
    """A date as people type it: ``15/03/2026``, ``5/3/26``, ``05-03-2026``, ``05.03.2026``,
    ``2026-03-05``, ``15 de marzo de 2026``, ``15 mar 2026``, ``lunes 15 de marzo del 2026``
    (accents and case do not matter; two-digit years are this century's).

    It must be between 01/01/2000 and ``today`` inclusive. Codes: ``date_format`` (none of
    those shapes, mixed separators, an unknown month), ``date_no_year`` (day and month only:
    which year is a guess), ``date_invalid`` (no such day, e.g. 31/02/2026), ``date_future``
    (after ``today``), ``date_too_old`` (before 01/01/2000).
    """
    parts = _date_parts(text)
    if isinstance(parts, Invalid):
        return parts
    year, month, day = parts
    try:
        value = date(year, month, day)
    except ValueError:
        return Invalid("date_invalid")
    if value > today:
        return Invalid("date_future")
    if value < OLDEST_DATE:
        return Invalid("date_too_old")
    return Valid(value)


def display_date(iso: str) -> str:
    """A stored date (ISO) as a person typed it: dd/mm/aaaa."""
    return date.fromisoformat(iso).strftime("%d/%m/%Y")


# --- Free text ------------------------------------------------------------------------------

_SPACES: Final = re.compile(r"\s+")
_INLINE_SPACES: Final = re.compile(r"[^\S\n]+")
_BLANK_LINES: Final = re.compile(r"\n{3,}")
_ZERO_WIDTH_JOINER: Final = "\u200d"  # joins emoji sequences; harmless in messages
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})

NAME_MIN_LEN: Final = 2
NAME_MAX_LEN: Final = 80


def free_text(text: str, min_len: int, max_len: int, *, multiline: bool = False) -> Result[str]:
    """Free text between ``min_len`` and ``max_len`` characters after normalization.

    The text is NFC-normalized and trimmed. With ``multiline=False`` every run of whitespace
    (line breaks included) becomes one space; with ``multiline=True`` line breaks are kept
    (``\\r\\n`` becomes ``\\n``, at most one blank line in a row, spaces collapsed within each
    line). Lengths are counted in characters of the normalized text. Codes, in order:
    ``text_invalid_chars`` (control, format, private-use or unassigned characters; the emoji
    zero-width joiner is allowed), ``text_too_short``, ``text_too_long``, ``text_no_letters``.
    """
    if not 0 <= min_len <= max_len:
        raise ValueError(f"invalid length bounds: {min_len}..{max_len}")
    normalized = unicodedata.normalize("NFC", text)
    if multiline:
        lines = normalized.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        cleaned = "\n".join(_INLINE_SPACES.sub(" ", line).strip() for line in lines)
        cleaned = _BLANK_LINES.sub("\n\n", cleaned).strip()
    else:
        cleaned = _SPACES.sub(" ", normalized).strip()
    if any(_is_refused_char(ch, multiline) for ch in cleaned):
        return Invalid("text_invalid_chars")
    if len(cleaned) < min_len:
        return Invalid("text_too_short")
    if len(cleaned) > max_len:
        return Invalid("text_too_long")
    if not any(ch.isalpha() for ch in cleaned):
        return Invalid("text_no_letters")
    return Valid(cleaned)


def _is_refused_char(ch: str, multiline: bool) -> bool:
    if ch == _ZERO_WIDTH_JOINER or (multiline and ch == "\n"):
        return False
    return unicodedata.category(ch) in _REFUSED_CATEGORIES


def name(text: str) -> Result[str]:
    """Nombres, apellidos, cargo, unidad orgánica: one line of 2 to 80 characters.

    Same rules and codes as :func:`free_text` on a single line, except that the emoji
    zero-width joiner is refused too (it has no place in a name).
    """
    if _ZERO_WIDTH_JOINER in text:
        return Invalid("text_invalid_chars")
    return free_text(text, NAME_MIN_LEN, NAME_MAX_LEN)


_NAME_SIGNS: Final = frozenset(" '\u2019-.")  # space, apostrophes, hyphen, dot


def person_name(text: str) -> Result[str]:
    """Nombres or apellidos: :func:`name`, and only letters, spaces, apostrophes, hyphens
    and dots ("María-José", "D'Angelo", "Ma. del Pilar"). Codes: those of :func:`name`,
    ``name_digits`` (a digit: "Ana123"), ``name_chars`` (any other sign: "Ana_María", "@")."""
    result = name(text)
    if isinstance(result, Invalid):
        return result
    if any(ch.isdigit() for ch in result.value):
        return Invalid("name_digits")
    if any(not (ch.isalpha() or ch in _NAME_SIGNS) for ch in result.value):
        return Invalid("name_chars")
    return result


ENTITY_MIN_LEN: Final = 3
ENTITY_MAX_LEN: Final = 200
_LONG_WORD: Final = 5  # letters of a word that is more than an abbreviation ("Muni", "SJL")


def entity_name(text: str) -> Result[str]:
    """An entity's full name: more than one word, one of them a real word (five letters or
    more), e.g. "Municipalidad Distrital de San Juan de Lurigancho", or an acronym followed
    by its name ("SUNAT Superintendencia Nacional..."). Codes: those of :func:`free_text`,
    ``entity_one_word`` (one word or only abbreviations: "Muni", "MDSJL", "Muni SJL")."""
    result = free_text(text, ENTITY_MIN_LEN, ENTITY_MAX_LEN)
    if isinstance(result, Invalid):
        return result
    words = [w for w in re.split(r"[\s,;]+", result.value) if any(ch.isalpha() for ch in w)]
    longest = max((sum(ch.isalpha() for ch in w) for w in words), default=0)
    if len(words) < 2 or longest < _LONG_WORD:
        return Invalid("entity_one_word")
    return result


# --- Verification code ----------------------------------------------------------------------

_CODE: Final = re.compile(r"[0-9]{6}")
_CODE_SEPARATORS: Final = re.compile(r"[\s\-]+")


def verification_code(text: str) -> Result[str]:
    """The 6-digit code sent by email; spaces (and dashes) are ignored. Code: ``code_format``."""
    compact = _CODE_SEPARATORS.sub("", text)
    if _CODE.fullmatch(compact) is None:
        return Invalid("code_format")
    return Valid(compact)
