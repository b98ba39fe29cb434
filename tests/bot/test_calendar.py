from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.calendar import (
    BusinessCalendar,
    NonWorkingDay,
    NonWorkingDaysFileError,
    packaged_non_working_days,
    parse_non_working_days,
)
from tests.bot.harness import calendar_with

# domain.md: "2026 has 16" national holidays.
HOLIDAYS_2026 = {
    date(2026, 1, 1),
    date(2026, 4, 2),
    date(2026, 4, 3),
    date(2026, 5, 1),
    date(2026, 6, 7),
    date(2026, 6, 29),
    date(2026, 7, 23),
    date(2026, 7, 28),
    date(2026, 7, 29),
    date(2026, 8, 6),
    date(2026, 8, 30),
    date(2026, 10, 8),
    date(2026, 11, 1),
    date(2026, 12, 8),
    date(2026, 12, 9),
    date(2026, 12, 25),
}
EASTER_SUNDAY_2026 = date(2026, 4, 5)


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar()


# --- holidays and non-working days ----------------------------------------------------------


def test_2026_national_holidays_match_domain_brief(cal: BusinessCalendar) -> None:
    library = set(cal.national_holidays(2026))
    assert len(HOLIDAYS_2026) == 16
    # The library also lists Domingo de Resurrección (a Sunday, so it never changes a count).
    assert library == HOLIDAYS_2026 | {EASTER_SUNDAY_2026}
    assert EASTER_SUNDAY_2026.weekday() == 6
    assert cal.national_holidays(2026)[date(2026, 7, 23)] == "Día de la Fuerza Aérea del Perú"


def test_recent_holidays_present(cal: BusinessCalendar) -> None:
    # holidays < 0.77 lacked these two.
    assert not cal.is_business_day(date(2025, 7, 23))
    assert date(2025, 6, 7) in cal.national_holidays(2025)


def test_packaged_non_working_days() -> None:
    assert packaged_non_working_days() == [
        NonWorkingDay(date(2025, 5, 2), "DS 042-2025-PCM"),
        NonWorkingDay(date(2025, 12, 26), "DS 042-2025-PCM"),
        NonWorkingDay(date(2026, 1, 2), "DS 042-2025-PCM"),
    ]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 12, 2), True),  # Wednesday
        (date(2026, 12, 5), False),  # Saturday
        (date(2026, 12, 6), False),  # Sunday
        (date(2026, 12, 8), False),  # Inmaculada Concepción
        (date(2026, 12, 9), False),  # Batalla de Ayacucho
        (date(2026, 1, 2), False),  # DS 042-2025-PCM
        (date(2025, 12, 26), False),  # DS 042-2025-PCM
        (date(2026, 4, 2), False),  # Jueves Santo
        (date(2026, 4, 3), False),  # Viernes Santo
        (date(2026, 4, 6), True),
    ],
)
def test_is_business_day(cal: BusinessCalendar, day: date, expected: bool) -> None:
    assert cal.is_business_day(day) is expected


def test_datetime_is_refused(cal: BusinessCalendar) -> None:
    with pytest.raises(TypeError):
        cal.is_business_day(datetime(2026, 12, 2, 10, 0))


# --- add_business_days ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "n", "due"),
    [
        # domain.md example: Thu 3, Fri 4, Mon 7, (8, 9 holidays), Thu 10, Fri 11.
        (date(2026, 12, 2), 5, date(2026, 12, 11)),
        (date(2026, 12, 2), 1, date(2026, 12, 3)),
        (date(2026, 12, 2), 0, date(2026, 12, 2)),
        # Received Saturday → received Monday 7 → day 1 Thu 10 (8, 9 holidays) ... day 5 Wed 16.
        (date(2026, 12, 5), 0, date(2026, 12, 7)),
        (date(2026, 12, 5), 1, date(2026, 12, 10)),
        (date(2026, 12, 5), 5, date(2026, 12, 16)),
        (date(2026, 12, 6), 5, date(2026, 12, 16)),  # Sunday, same as Saturday
        # Wed 31 Dec 2025: Thu 1 holiday, Fri 2 non-working day, so day 1 is Mon 5 Jan.
        (date(2025, 12, 31), 1, date(2026, 1, 5)),
        (date(2025, 12, 31), 5, date(2026, 1, 9)),
        # Received on Good Friday 3 Apr 2026 → received Mon 6 Apr → day 1 Tue 7 ... Mon 13.
        (date(2026, 4, 3), 0, date(2026, 4, 6)),
        (date(2026, 4, 3), 5, date(2026, 4, 13)),
        # Received Wed 1 Apr: Thu 2 and Fri 3 are holidays, day 1 is Mon 6.
        (date(2026, 4, 1), 1, date(2026, 4, 6)),
        # Fiestas Patrias: received Mon 27 Jul 2026; Tue 28, Wed 29 holidays.
        (date(2026, 7, 27), 1, date(2026, 7, 30)),
    ],
)
def test_add_business_days(cal: BusinessCalendar, received: date, n: int, due: date) -> None:
    assert cal.add_business_days(received, n) == due


def test_add_business_days_rejects_negative(cal: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match="negative"):
        cal.add_business_days(date(2026, 12, 2), -1)


# --- business_days_between ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 12, 2), date(2026, 12, 2), 0),
        (date(2026, 12, 2), date(2026, 12, 3), 1),
        (date(2026, 12, 2), date(2026, 12, 11), 5),
        (date(2026, 12, 4), date(2026, 12, 7), 1),  # over a weekend
        (date(2026, 12, 7), date(2026, 12, 9), 0),  # only holidays in between
        (date(2026, 12, 5), date(2026, 12, 6), 0),  # Saturday → Sunday
        (date(2026, 12, 11), date(2026, 12, 12), 0),  # due Friday, seen Saturday
        (date(2026, 12, 14), date(2026, 12, 11), -1),  # overdue since Friday
        (date(2026, 12, 11), date(2026, 12, 2), -5),
        # 25 Dec, 1 Jan holidays; 26 Dec, 2 Jan declared: counts 29, 30, 31 Dec and 5 Jan.
        (date(2025, 12, 24), date(2026, 1, 5), 4),
    ],
)
def test_business_days_between(
    cal: BusinessCalendar, start: date, end: date, expected: int
) -> None:
    assert cal.business_days_between(start, end) == expected
    assert cal.business_days_between(end, start) == -expected


def test_between_inverts_add() -> None:
    cal = BusinessCalendar()
    received = date(2026, 1, 1)
    for offset in range(0, 400, 3):
        r = received + timedelta(days=offset)
        for n in (0, 1, 5, 12):
            due = cal.add_business_days(r, n)
            assert cal.is_business_day(due)
            assert cal.business_days_between(cal.reception_day(r), due) == n


# --- paused clock ---------------------------------------------------------------------------


def test_pause_counts_only_the_business_days_spent_observado(cal: BusinessCalendar) -> None:
    due = cal.add_business_days(date(2026, 12, 2), 5)  # Fri 11 Dec
    observed_on = date(2026, 12, 4)  # Fri 4 Dec
    # Answered Mon 14: Mon 7, Thu 10, Fri 11, Mon 14 were spent Observado → Thu 17.
    assert cal.paused_business_days(observed_on, date(2026, 12, 14)) == 4
    assert cal.due_after_pause(due, observed_on, date(2026, 12, 14)) == date(2026, 12, 17)
    # Answered Sat 19: the 8 business days up to Fri 18 → Wed 23 (no new reception day).
    assert cal.due_after_pause(due, observed_on, date(2026, 12, 19)) == date(2026, 12, 23)
    # Observed and answered the same day, or over a weekend and holidays only: unchanged.
    assert cal.due_after_pause(due, observed_on, observed_on) == due
    assert cal.due_after_pause(due, date(2026, 12, 7), date(2026, 12, 9)) == due  # holidays


def test_issue_16_sunday_registration_observed_and_answered_at_once(
    cal: BusinessCalendar,
) -> None:
    sunday = date(2026, 11, 29)
    due = cal.add_business_days(sunday, 5)
    assert due == date(2026, 12, 7)
    assert cal.business_days_between(sunday, due) == 6
    assert cal.due_after_pause(due, sunday, sunday) == due  # was Thu 10 Dec


# A registration between 2025 and 2028 (every national holiday of those years is within
# reach), decreed non-working days drawn near it, and up to three observations, each
# answered some days later (0 = within the same day).
_REGISTERED = st.dates(date(2025, 1, 1), date(2028, 6, 30))
_DECREED = st.lists(st.integers(-5, 80), max_size=6)
_SPANS = st.lists(st.tuples(st.integers(0, 15), st.integers(0, 20)), min_size=1, max_size=3)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(registered=_REGISTERED, decreed=_DECREED, spans=_SPANS)
def test_property_due_moves_by_exactly_the_days_spent_observado(
    registered: date, decreed: list[int], spans: list[tuple[int, int]]
) -> None:
    cal = calendar_with(sorted({registered + timedelta(days=d) for d in decreed}))
    due = cal.add_business_days(registered, 5)
    today = registered
    for wait, length in spans:
        observed_on = today + timedelta(days=wait)
        resumed_on = observed_on + timedelta(days=length)
        spent = sum(
            1 for k in range(1, length + 1) if cal.is_business_day(observed_on + timedelta(days=k))
        )
        moved = cal.due_after_pause(due, observed_on, resumed_on)
        assert moved >= due
        assert cal.business_days_between(due, moved) == spent
        assert cal.is_business_day(moved)
        if spent == 0:
            assert moved == due
        due, today = moved, resumed_on


# --- operator files -------------------------------------------------------------------------

OPERATOR_FILE = """\
[[dia]]
fecha = 2026-12-07
norma = "DS 999-2026-PCM"
"""


def test_extra_operator_file_adds_a_day(tmp_path: Path) -> None:
    extra = tmp_path / "dias_no_laborables.toml"
    extra.write_text(OPERATOR_FILE, encoding="utf-8")
    cal = BusinessCalendar(extra_files=[extra])
    assert not cal.is_business_day(date(2026, 12, 7))
    assert cal.non_working_days()[date(2026, 12, 7)] == "DS 999-2026-PCM"
    assert date(2026, 1, 2) in cal.non_working_days()  # packaged days are kept
    # Wed 2 Dec + 5: Thu 3, Fri 4, (Mon 7 declared), (8, 9 holidays), Thu 10, Fri 11, Mon 14.
    assert cal.add_business_days(date(2026, 12, 2), 5) == date(2026, 12, 14)
    assert BusinessCalendar.from_data_dir(tmp_path).non_working_days() == cal.non_working_days()


def test_from_data_dir_without_operator_file(tmp_path: Path) -> None:
    cal = BusinessCalendar.from_data_dir(tmp_path)
    assert set(cal.non_working_days()) == {d.day for d in packaged_non_working_days()}


def test_missing_explicit_extra_file_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        BusinessCalendar(extra_files=[tmp_path / "nope.toml"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[dia]]\nfecha = 2026-12-07\n", "expected keys"),
        ('[[dia]]\nfecha = "2026-12-07"\nnorma = "DS"\n', "'fecha' must be a date"),
        ('[[dia]]\nfecha = 2026-12-07T00:00:00\nnorma = "DS"\n', "'fecha' must be a date"),
        ("[[dia]]\nfecha = 2026-12-07\nnorma = ''\n", "'norma' must be"),
        ('[[dia]]\nfecha = 2026-12-07\nnorma = "DS"\nnota = "x"\n', "expected keys"),
        ('dia = "2026-12-07"\n', "array of tables"),
        ('[[dias]]\nfecha = 2026-12-07\nnorma = "DS"\n', "unexpected keys"),
        ("[[dia]\n", "invalid TOML"),
    ],
)
def test_malformed_operator_file(text: str, message: str) -> None:
    with pytest.raises(NonWorkingDaysFileError, match=message):
        parse_non_working_days(text, "operator.toml")


def test_empty_operator_file_is_fine() -> None:
    assert parse_non_working_days("# nothing yet\n", "operator.toml") == []
