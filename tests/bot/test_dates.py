from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from bot.dates import date_time, lima_date, long_date, short_date, to_lima


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (date(2026, 12, 11), "viernes 11 de diciembre de 2026"),
        (date(2026, 12, 2), "miércoles 2 de diciembre de 2026"),
        (date(2026, 1, 1), "jueves 1 de enero de 2026"),
        (date(2026, 9, 7), "lunes 7 de setiembre de 2026"),  # es_PE spelling
        (date(2026, 4, 5), "domingo 5 de abril de 2026"),
        (date(2026, 8, 1), "sábado 1 de agosto de 2026"),
    ],
)
def test_long_date(d: date, expected: str) -> None:
    assert long_date(d) == expected


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (date(2026, 12, 11), "11/12/2026"),
        (date(2026, 1, 2), "02/01/2026"),
        (date(2000, 1, 1), "01/01/2000"),
    ],
)
def test_short_date(d: date, expected: str) -> None:
    assert short_date(d) == expected


@pytest.mark.parametrize(
    ("dt", "expected"),
    [
        (datetime(2026, 12, 2, 20, 4, tzinfo=UTC), "02/12/2026 15:04"),
        (datetime(2026, 12, 2, 20, 4, 59, tzinfo=UTC), "02/12/2026 15:04"),
        # 03:30 UTC is still the previous evening in Lima.
        (datetime(2026, 12, 3, 3, 30, tzinfo=UTC), "02/12/2026 22:30"),
        (datetime(2026, 7, 1, 5, 0, tzinfo=UTC), "01/07/2026 00:00"),  # no DST in Peru
        (datetime(2026, 12, 2, 15, 4, tzinfo=timezone(timedelta(hours=-5))), "02/12/2026 15:04"),
    ],
)
def test_date_time(dt: datetime, expected: str) -> None:
    assert date_time(dt) == expected


def test_lima_date_crosses_midnight() -> None:
    assert lima_date(datetime(2026, 12, 3, 3, 30, tzinfo=UTC)) == date(2026, 12, 2)
    assert lima_date(datetime(2026, 12, 3, 5, 0, tzinfo=UTC)) == date(2026, 12, 3)


def test_naive_datetime_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        date_time(datetime(2026, 12, 2, 20, 4))
    with pytest.raises(ValueError, match="naive"):
        to_lima(datetime(2026, 12, 2, 20, 4))


def test_datetime_refused_where_date_expected() -> None:
    with pytest.raises(TypeError):
        long_date(datetime(2026, 12, 2, 20, 4, tzinfo=UTC))
    with pytest.raises(TypeError):
        short_date(datetime(2026, 12, 2, 20, 4, tzinfo=UTC))
