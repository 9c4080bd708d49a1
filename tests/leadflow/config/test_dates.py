"""Relative dates and durations: parsing, resolving against as_of, calendar edge cases."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadflow.config.dates import Duration, RelativeDate, add_months

AS_OF = dt.date(2026, 3, 31)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-3y", dt.date(2023, 3, 31)),
        ("+1y", dt.date(2027, 3, 31)),
        ("-6m", dt.date(2025, 9, 30)),  # 31 September does not exist: clamped
        ("-1m", dt.date(2026, 2, 28)),
        ("-2w", dt.date(2026, 3, 17)),
        ("-30d", dt.date(2026, 3, 1)),
        ("+0d", AS_OF),
        ("2024-01-01", dt.date(2024, 1, 1)),
    ],
)
def test_relative_dates_resolve_against_as_of(text, expected):
    assert RelativeDate.parse(text).resolve(AS_OF) == expected


def test_leap_day_moves_to_the_end_of_february():
    assert RelativeDate.parse("+1y").resolve(dt.date(2024, 2, 29)) == dt.date(2025, 2, 28)
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)


def test_a_yaml_date_is_an_absolute_relative_date():
    fixed = RelativeDate.parse(dt.date(2025, 6, 1))

    assert not fixed.is_relative
    assert str(fixed) == "2025-06-01"
    assert fixed.resolve(AS_OF) == dt.date(2025, 6, 1)


@pytest.mark.parametrize("bad", ["3y", "-3x", "last year", "", 30, None, dt.datetime(2026, 1, 1)])
def test_bad_relative_dates_are_rejected(bad):
    with pytest.raises(ValueError, match="like -3y, \\+1y"):
        RelativeDate.parse(bad)


@given(amount=st.integers(-2000, 2000), unit=st.sampled_from("dwmy"))
def test_relative_date_text_round_trips(amount, unit):
    text = f"{'-' if amount < 0 else '+'}{abs(amount)}{unit}"
    parsed = RelativeDate.parse(text)

    assert str(parsed) == text
    assert RelativeDate.parse(str(parsed)) == parsed


@given(days=st.integers(-5000, 5000), as_of=st.dates(dt.date(1990, 1, 1), dt.date(2090, 1, 1)))
def test_day_offsets_are_plain_day_arithmetic(days, as_of):
    text = f"{'-' if days < 0 else '+'}{abs(days)}d"
    assert RelativeDate.parse(text).resolve(as_of) == as_of + dt.timedelta(days=days)


def test_durations():
    assert (Duration.parse("30d").days, Duration.parse("2w").days) == (30, 14)
    assert (Duration.parse("6m").months, Duration.parse("1y").years) == (6, 1)
    assert Duration.parse("12h").hours == 12
    assert Duration.parse("6m").before(dt.date(2026, 8, 31)) == dt.date(2026, 2, 28)
    assert Duration.parse("1y").after(dt.date(2026, 1, 15)) == dt.date(2027, 1, 15)
    noon = dt.datetime(2026, 3, 2, 12, 0)
    assert Duration.parse("12h").after(noon) == dt.datetime(2026, 3, 3, 0, 0)
    assert str(Duration.parse("2w")) == "2w"


@pytest.mark.parametrize("bad", ["0d", "30", "-30d", "3 days", 30, None])
def test_bad_durations_are_rejected(bad):
    with pytest.raises(ValueError, match="duration"):
        Duration.parse(bad)


def test_an_hour_duration_needs_a_time_of_day():
    with pytest.raises(TypeError, match="needs a datetime"):
        Duration.parse("12h").before(dt.date(2026, 3, 2))
