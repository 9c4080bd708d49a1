"""The time rules of SPEC §2 as the filter compiler applies them.

A run for the date D (`as_of`) sees everything before the **cut-off**, D + 1 day 00:00 UTC.
"Within N units" means a date in (D − N, D]: the window starts at the day after D moved back
by N units (calendar months and years, day of month clamped: see `dates.add_months`), and for
timestamps it is [that day 00:00 UTC, cut-off). For days and weeks this start is exactly
cut-off − N; for months and years it is the same calendar rule the dates follow, so an event
and its UTC calendar date are always on the same side of a window's edge.

Dates compare with timestamps as UTC calendar days: "created_at < 2025-06-01" means before
2025-06-01 00:00 UTC, "created_at <= 2025-06-01" means before 2025-06-02 00:00 UTC.
"""

from __future__ import annotations

import datetime as dt

from leadflow.config.dates import Duration

ONE_DAY = dt.timedelta(days=1)


def start_of_day(day: dt.date) -> dt.datetime:
    """00:00 UTC of a calendar date: the first instant whose UTC date is `day`."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def cutoff(as_of: dt.date) -> dt.datetime:
    """The first instant a run for `as_of` does not see: as_of + 1 day, 00:00 UTC."""
    return start_of_day(as_of + ONE_DAY)


def window_start_date(as_of: dt.date, window: Duration) -> dt.date:
    """The first date of "within `window`": the day after as_of − window, i.e. (D − N, D]."""
    return window.before(as_of) + ONE_DAY


def window_start(as_of: dt.date, window: Duration) -> dt.datetime:
    """The first instant of "within `window`" (timestamps in [this, cut-off) are inside)."""
    return start_of_day(window_start_date(as_of, window))
