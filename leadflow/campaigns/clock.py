"""The campaign clock: a run happens at a moment `now`; its filters see the last complete day.

Every engine call takes `now`, an aware datetime (the run's moment, in UTC). Filters,
audiences and triggers are evaluated for `as_of = date(now) − 1 day` in UTC: the last
complete day, the one the nightly build made the marts for (SPEC §2: a run for the date D
sees everything before D + 1 day 00:00 UTC). `leadflow campaign run ID --as-of D` runs at
`now_for(D)` = D + 1 day 00:00 UTC, the cut-off, so `as_of_for(now_for(D)) == D`.
"""

from __future__ import annotations

import datetime as dt

from leadflow.segments.timing import cutoff

ONE_DAY = dt.timedelta(days=1)


def checked_now(now: dt.datetime) -> dt.datetime:
    """`now` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if not isinstance(now, dt.datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise TypeError(f"now must be an aware datetime, got {now!r}")
    return now.astimezone(dt.UTC)


def as_of_for(now: dt.datetime) -> dt.date:
    """The last complete UTC day before `now`: the date the run's filters are evaluated for."""
    return checked_now(now).date() - ONE_DAY


def now_for(as_of: dt.date) -> dt.datetime:
    """The moment of a run for `as_of`: its cut-off, as_of + 1 day 00:00 UTC."""
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise TypeError(f"as_of must be a date, got {as_of!r}")
    return cutoff(as_of)


__all__ = ["as_of_for", "checked_now", "now_for"]
