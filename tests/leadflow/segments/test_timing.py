"""The cut-off and window rules (SPEC §2) the compiler applies."""

from __future__ import annotations

import datetime as dt

import pytest

from leadflow.config.dates import Duration
from leadflow.segments import Relations, cutoff, window_start, window_start_date

UTC = dt.UTC


def test_cutoff_is_the_next_midnight_utc():
    assert cutoff(dt.date(2025, 6, 30)) == dt.datetime(2025, 7, 1, tzinfo=UTC)
    assert cutoff(dt.date(2024, 12, 31)) == dt.datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("as_of", "window", "first_date"),
    [
        (dt.date(2025, 6, 30), "30d", dt.date(2025, 6, 1)),  # (D − 30, D]
        (dt.date(2025, 6, 30), "1d", dt.date(2025, 6, 30)),  # only D itself
        (dt.date(2025, 6, 30), "1w", dt.date(2025, 6, 24)),
        (dt.date(2025, 6, 15), "1m", dt.date(2025, 5, 16)),
        (dt.date(2025, 3, 31), "1m", dt.date(2025, 3, 1)),  # 31 Mar − 1m = 28 Feb
        (dt.date(2025, 3, 1), "1y", dt.date(2024, 3, 2)),
        (dt.date(2024, 2, 29), "1y", dt.date(2023, 3, 1)),
    ],
)
def test_window_start(as_of, window, first_date):
    duration = Duration.parse(window)
    assert window_start_date(as_of, duration) == first_date
    assert window_start(as_of, duration) == dt.datetime.combine(first_date, dt.time(), UTC)


def test_days_and_weeks_start_exactly_n_before_the_cutoff():
    as_of = dt.date(2025, 6, 30)
    for window in ("1d", "30d", "90d", "2w"):
        duration = Duration.parse(window)
        length = dt.timedelta(days=duration.days)
        assert window_start(as_of, duration) == cutoff(as_of) - length


@pytest.mark.parametrize(
    "bad", [{"contacts": "marts.dim_contacts; drop"}, {"events": "a.b.c"}, {"contacts": ""}]
)
def test_relation_names_must_be_plain_identifiers(bad):
    with pytest.raises(ValueError, match=r"must be 'schema\.table' or 'table'"):
        Relations(**bad)


def test_product_family_column_must_be_an_identifier():
    with pytest.raises(ValueError, match="product_family_column"):
        Relations(product_family_column="family; drop")
