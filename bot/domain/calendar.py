"""Business days (días hábiles) for the help desk's terms, per Ley 27444 (TUO).

A business day is a weekday that is neither a national holiday (``holidays`` package, country
``PE``) nor a public-sector non-working day declared by decreto supremo (packaged
``bot/domain/data/dias_no_laborables.toml`` plus optional operator files in the same format).

Counting rules (Ley 27444): a term of N business days starts counting on the business day
after reception, and something received on a non-business day counts as received on the next
business day. So a request received on Saturday is received on Monday, and its day 1 is
Tuesday. Dates only: the caller decides which calendar day something was received on (in
America/Lima); nothing here reads the clock.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

COUNTRY: Final = "PE"
HOLIDAY_NAMES_LANGUAGE: Final = "es"
NON_WORKING_DAYS_FILE: Final = "dias_no_laborables.toml"
"""File name of the packaged list, and of the operator's list in the data directory."""

_ONE_DAY: Final = timedelta(days=1)
_SATURDAY: Final = 5
_ENTRY_KEYS: Final = frozenset({"fecha", "norma"})


class NonWorkingDaysFileError(ValueError):
    """A non-working-days file is malformed (the message names the file and the entry)."""


@dataclass(frozen=True, slots=True)
class NonWorkingDay:
    """A public-sector non-working day and the norm that declared it."""

    day: date
    norma: str


def parse_non_working_days(text: str, source: str) -> list[NonWorkingDay]:
    """Parses the TOML format of ``dias_no_laborables.toml``; ``source`` names it in errors.

    Expected shape: an array of tables ``[[dia]]``, each with ``fecha`` (a TOML date, not a
    date-time) and ``norma`` (non-empty string). Anything else raises
    :class:`NonWorkingDaysFileError`.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NonWorkingDaysFileError(f"{source}: invalid TOML: {exc}") from exc
    unknown = set(document) - {"dia"}
    if unknown:
        raise NonWorkingDaysFileError(f"{source}: unexpected keys {sorted(unknown)}")
    entries: Any = document.get("dia", [])
    if not isinstance(entries, list):
        raise NonWorkingDaysFileError(f"{source}: 'dia' must be an array of tables [[dia]]")
    return [_parse_entry(entry, f"{source}: dia #{i}") for i, entry in enumerate(entries, 1)]


def _parse_entry(entry: Any, where: str) -> NonWorkingDay:
    if not isinstance(entry, dict):
        raise NonWorkingDaysFileError(f"{where}: must be a table")
    keys = set(entry)
    if keys != _ENTRY_KEYS:
        raise NonWorkingDaysFileError(
            f"{where}: expected keys {sorted(_ENTRY_KEYS)}, found {sorted(keys)}"
        )
    day, norma = entry["fecha"], entry["norma"]
    if not isinstance(day, date) or isinstance(day, datetime):
        raise NonWorkingDaysFileError(f"{where}: 'fecha' must be a date like 2026-01-02")
    if not isinstance(norma, str) or not norma.strip():
        raise NonWorkingDaysFileError(f"{where}: 'norma' must be a non-empty string")
    return NonWorkingDay(day=day, norma=norma.strip())


def packaged_non_working_days() -> list[NonWorkingDay]:
    """The list shipped in ``bot/domain/data/dias_no_laborables.toml``."""
    source = resources.files("bot.domain").joinpath("data", NON_WORKING_DAYS_FILE)
    return parse_non_working_days(
        source.read_text("utf-8"), f"bot/domain/data/{NON_WORKING_DAYS_FILE}"
    )


def read_non_working_days(path: Path) -> list[NonWorkingDay]:
    """An operator file in the same format as the packaged one."""
    return parse_non_working_days(path.read_text("utf-8"), str(path))


class BusinessCalendar:
    """National holidays (loaded lazily, one year at a time) plus non-working days.

    ``extra_files`` are operator files in the format of ``dias_no_laborables.toml``; they must
    exist (use :meth:`from_data_dir` for an optional one). Their days add to the packaged list.
    """

    def __init__(self, extra_files: Sequence[Path] = ()) -> None:
        days = packaged_non_working_days()
        for path in extra_files:
            days.extend(read_non_working_days(path))
        self._non_working: dict[date, str] = {}
        for entry in days:
            self._non_working.setdefault(entry.day, entry.norma)
        self._holidays_by_year: dict[int, Mapping[date, str]] = {}

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> BusinessCalendar:
        """Packaged days plus ``<data_dir>/dias_no_laborables.toml`` when that file exists."""
        operator_file = data_dir / NON_WORKING_DAYS_FILE
        return cls(extra_files=[operator_file] if operator_file.is_file() else [])

    # --- what is and is not a business day --------------------------------------------------

    def national_holidays(self, year: int) -> Mapping[date, str]:
        """The ``holidays`` package's national holidays for ``year``, with Spanish names."""
        cached = self._holidays_by_year.get(year)
        if cached is None:
            # Imported here: the package loads every country's calendars (start-up, issue 18).
            import holidays

            loaded = holidays.country_holidays(
                COUNTRY, years=year, language=HOLIDAY_NAMES_LANGUAGE
            )
            cached = MappingProxyType(dict(sorted(loaded.items())))
            self._holidays_by_year[year] = cached
        return cached

    def non_working_days(self) -> Mapping[date, str]:
        """Declared public-sector non-working days (date → norma), from all loaded files."""
        return MappingProxyType(dict(sorted(self._non_working.items())))

    def is_business_day(self, d: date) -> bool:
        """Monday to Friday, not a national holiday, not a declared non-working day."""
        _require_date(d)
        return (
            d.weekday() < _SATURDAY
            and d not in self._non_working
            and d not in self.national_holidays(d.year)
        )

    def next_business_day(self, d: date) -> date:
        """``d`` itself if it is a business day, otherwise the first business day after it."""
        _require_date(d)
        while not self.is_business_day(d):
            d += _ONE_DAY
        return d

    def reception_day(self, received: date) -> date:
        """The day something counts as received: the next business day if ``received`` is not
        one (Ley 27444). Same as :meth:`next_business_day`."""
        return self.next_business_day(received)

    # --- terms --------------------------------------------------------------------------------

    def add_business_days(self, received: date, n: int) -> date:
        """The last day of a term of ``n`` business days for something received on ``received``.

        Day 1 is the business day after :meth:`reception_day`. ``n == 0`` gives the reception
        day itself. Example: received Wed 2 Dec 2026, n=5 → Fri 11 Dec 2026 (8 and 9 Dec are
        holidays); received Sat 5 Dec 2026 → counts as Mon 7 Dec, n=5 → Wed 16 Dec 2026.
        """
        if n < 0:
            raise ValueError(f"a term cannot be negative: {n}")
        d = self.reception_day(received)
        for _ in range(n):
            d = self.next_business_day(d + _ONE_DAY)
        return d

    def business_days_between(self, start: date, end: date) -> int:
        """Business days in ``(start, end]`` when ``end >= start``; minus those in
        ``(end, start]`` when ``end < start``. Antisymmetric: ``f(a, b) == -f(b, a)``.

        With ``start`` = today and ``end`` = due date:

        - positive N → "quedan N días hábiles" (the due day counts; due tomorrow → 1);
        - 0 → due today, or no business day lies between the two dates (e.g. due Friday, seen
          on Saturday or Sunday): decide "vence hoy" vs "vencido" by comparing the dates;
        - negative → overdue by ``-N`` business days (due Fri 11 Dec 2026, today Mon 14 Dec →
          -1, "vencido hace 1 día hábil").

        Inverse of :meth:`add_business_days` when ``start`` is the reception day:
        ``business_days_between(reception_day(r), add_business_days(r, n)) == n``.
        """
        if end < start:
            return -self.business_days_between(end, start)
        _require_date(start)
        return sum(1 for d in _days_in(start + _ONE_DAY, end) if self.is_business_day(d))

    def shift_business_days(self, d: date, n: int) -> date:
        """The ``n``-th business day after ``d`` (``d`` itself when ``n == 0``), so that
        ``business_days_between(d, result) == n``."""
        if n < 0:
            raise ValueError(f"cannot shift by a negative number of days: {n}")
        _require_date(d)
        for _ in range(n):
            d = self.next_business_day(d + _ONE_DAY)
        return d

    # --- the pause while a ticket is Observado ------------------------------------------------

    def paused_business_days(self, observed_on: date, resumed_on: date) -> int:
        """Business days spent Observado: those in ``(observed_on, resumed_on]``.

        The day of the observation was the help desk's (it worked the ticket); the day of the
        answer is not (it arrived then). Observed and answered on the same day, or across a
        weekend or holidays only: 0.
        """
        return max(0, self.business_days_between(observed_on, resumed_on))

    def due_after_pause(self, due: date, observed_on: date, resumed_on: date) -> date:
        """THE pause rule: the due date moves later by exactly the business days spent
        Observado (:meth:`paused_business_days`), and nothing else changes. It never moves
        earlier, and a pause that spans no business day leaves it where it was.
        """
        return self.shift_business_days(due, self.paused_business_days(observed_on, resumed_on))


def _days_in(first: date, last: date) -> Iterable[date]:
    d = first
    while d <= last:
        yield d
        d += _ONE_DAY


def _require_date(d: date) -> None:
    # A datetime is a date subclass; its calendar day depends on the time zone, which the
    # caller must resolve (America/Lima) before asking about business days.
    if isinstance(d, datetime):
        raise TypeError("pass a date (the day in America/Lima), not a datetime")
