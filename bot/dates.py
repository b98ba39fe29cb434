"""Dates as shown to officers: Spanish (Babel, locale ``es_PE``) and Lima time.

Peru writes "setiembre" (es_PE), not "septiembre" (es_ES). Nothing here reads the clock.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date, format_datetime

LOCALE: Final = Locale.parse("es_PE")
LONG_DATE_PATTERN: Final = "EEEE d 'de' MMMM 'de' y"
SHORT_DATE_PATTERN: Final = "dd/MM/y"
DATE_TIME_PATTERN: Final = "dd/MM/y HH:mm"


def _lima() -> tzinfo:
    try:
        return ZoneInfo("America/Lima")
    except (
        ZoneInfoNotFoundError
    ):  # pragma: no cover - no tz database (e.g. Windows without tzdata)
        # Peru has kept UTC-5 without daylight saving time since 1994.
        return timezone(timedelta(hours=-5), "America/Lima")


LIMA: Final = _lima()


def long_date(d: date) -> str:
    """``date(2026, 12, 11)`` → ``"viernes 11 de diciembre de 2026"``."""
    return format_date(_plain_date(d), LONG_DATE_PATTERN, locale=LOCALE)


def short_date(d: date) -> str:
    """``date(2026, 12, 11)`` → ``"11/12/2026"``."""
    return format_date(_plain_date(d), SHORT_DATE_PATTERN, locale=LOCALE)


def date_time(dt: datetime | str) -> str:
    """An aware datetime (normally UTC), or a stored ISO stamp, as people read it: Lima time,
    ``"02/12/2026 10:04"``. Every time shown to a person (chat, card, Formato, CSV, mail) goes
    through here."""
    moment = datetime.fromisoformat(dt) if isinstance(dt, str) else dt
    return format_datetime(to_lima(moment), DATE_TIME_PATTERN, locale=LOCALE)


def to_lima(dt: datetime) -> datetime:
    """The same instant in America/Lima; naive datetimes are refused (ambiguous)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("naive datetime: pass a timezone-aware datetime (UTC)")
    return dt.astimezone(LIMA)


def lima_date(dt: datetime) -> date:
    """The calendar day in Lima of an aware datetime (e.g. to count business days)."""
    return to_lima(dt).date()


def _plain_date(d: date) -> date:
    # A datetime is a date; formatting its date part would silently use its own zone.
    if isinstance(d, datetime):
        raise TypeError("pass a date; for a datetime use lima_date() first")
    return d
