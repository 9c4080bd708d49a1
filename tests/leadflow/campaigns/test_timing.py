"""The send-time planner: send windows (tenant time zone, DST) and the frequency cap.

Every expected moment is worked out by hand in the comments. 2026 calendar: Jan 14 is a
Wednesday; DST in Europe/Berlin starts Sun Mar 29 (CET +1 → CEST +2) and ends Sun Oct 25.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection, Engine

from leadflow.campaigns.timing import (
    CAP_LOCK,
    PlanningError,
    PlanSummary,
    earliest_allowed,
    next_window_start,
    plan_send_times,
    plan_sends_into,
)
from leadflow.config import Config, load_config
from leadflow.config.base import WEEKDAYS
from leadflow.config.campaigns import WaitUntil
from leadflow.config.models import SendWindow
from leadflow.paths import PROJECT_ROOT

UTC = dt.UTC
BERLIN = "Europe/Berlin"
OFFICE_HOURS = SendWindow()  # mon–fri 08:00–18:00


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def anytime(moment: dt.datetime) -> dt.datetime:
    return moment


def berlin_office(moment: dt.datetime) -> dt.datetime:
    return next_window_start(moment, OFFICE_HOURS, BERLIN)


# --- next_window_start -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # Wed 11:00 CET: inside, unchanged.
        (utc(2026, 1, 14, 10, 0), utc(2026, 1, 14, 10, 0)),
        # Wed 08:00 CET exactly: the start belongs to the window.
        (utc(2026, 1, 14, 7, 0), utc(2026, 1, 14, 7, 0)),
        # Wed 07:30 CET: before the start → 08:00 CET = 07:00 UTC.
        (utc(2026, 1, 14, 6, 30), utc(2026, 1, 14, 7, 0)),
        # Fri 17:59 CET: still inside.
        (utc(2026, 1, 16, 16, 59), utc(2026, 1, 16, 16, 59)),
        # Fri 18:00 CET: the end is excluded → Mon 08:00 CET.
        (utc(2026, 1, 16, 17, 0), utc(2026, 1, 19, 7, 0)),
        # Sat noon → Mon 08:00 CET.
        (utc(2026, 1, 17, 12, 0), utc(2026, 1, 19, 7, 0)),
        # Tue 23:30 UTC is already Wed 00:30 CET → Wed 08:00 CET.
        (utc(2026, 1, 13, 23, 30), utc(2026, 1, 14, 7, 0)),
        # Summer: Wed 07:00 CEST → 08:00 CEST = 06:00 UTC.
        (utc(2026, 7, 15, 5, 0), utc(2026, 7, 15, 6, 0)),
        # Over the spring change: Fri Mar 27 18:00 CET → Mon Mar 30 08:00 CEST = 06:00 UTC.
        (utc(2026, 3, 27, 17, 0), utc(2026, 3, 30, 6, 0)),
        # Over the autumn change: Fri Oct 23 18:00 CEST → Mon Oct 26 08:00 CET = 07:00 UTC.
        (utc(2026, 10, 23, 16, 0), utc(2026, 10, 26, 7, 0)),
    ],
)
def test_next_window_start_in_berlin(moment: dt.datetime, expected: dt.datetime) -> None:
    result = next_window_start(moment, OFFICE_HOURS, BERLIN)
    assert result == expected
    assert result.utcoffset() == dt.timedelta(0)


def test_a_window_on_the_dst_sundays_themselves() -> None:
    sundays = SendWindow(days=["sun"], start="08:00", end="10:00")
    # Sun Mar 29 08:00 CEST (after the 02:00 → 03:00 jump) = 06:00 UTC.
    assert next_window_start(utc(2026, 3, 28, 12, 0), sundays, BERLIN) == utc(2026, 3, 29, 6, 0)
    # Sun Oct 25 08:00 CET (after 03:00 → 02:00) = 07:00 UTC; 06:30 UTC is 07:30 CET.
    assert next_window_start(utc(2026, 10, 25, 6, 30), sundays, BERLIN) == utc(2026, 10, 25, 7, 0)
    # 09:30 CET = 08:30 UTC is inside; 10:00 CET = 09:00 UTC is not → next Sunday (CET).
    assert next_window_start(utc(2026, 10, 25, 8, 30), sundays, BERLIN) == utc(2026, 10, 25, 8, 30)
    assert next_window_start(utc(2026, 10, 25, 9, 0), sundays, BERLIN) == utc(2026, 11, 1, 7, 0)


def test_a_start_inside_the_spring_gap_means_the_same_hour_later_or_none() -> None:
    # 02:30 does not exist on Mar 29 in Berlin: read with the offset before the change
    # (+01:00) it is 01:30 UTC = 03:30 CEST.
    night = SendWindow(days=["sun"], start="02:30", end="05:00")
    assert next_window_start(utc(2026, 3, 29, 0, 0), night, BERLIN) == utc(2026, 3, 29, 1, 30)
    # 02:00–03:00 has no moment that Sunday: the next one is Apr 5 02:00 CEST = 00:00 UTC.
    lost_hour = SendWindow(days=["sun"], start="02:00", end="03:00")
    assert next_window_start(utc(2026, 3, 29, 0, 0), lost_hour, BERLIN) == utc(2026, 4, 5, 0, 0)
    # Lisbon jumps from 01:00 WET to 02:00 WEST: a daily 01:00–02:00 skips Mar 29 and is
    # 00:00 UTC from Mar 30.
    daily = SendWindow(days=list(WEEKDAYS), start="01:00", end="02:00")
    lisbon = "Europe/Lisbon"
    assert next_window_start(utc(2026, 3, 28, 1, 30), daily, lisbon) == utc(2026, 3, 28, 1, 30)
    assert next_window_start(utc(2026, 3, 28, 2, 0), daily, lisbon) == utc(2026, 3, 30, 0, 0)


def test_the_same_moment_is_inside_in_lisbon_and_outside_in_berlin() -> None:
    # Winter: Lisbon is UTC+0, Berlin UTC+1.
    # Wed 07:30 UTC = 08:30 in Berlin (inside), 07:30 in Lisbon (before 08:00).
    morning = utc(2026, 1, 14, 7, 30)
    assert next_window_start(morning, OFFICE_HOURS, BERLIN) == morning
    assert next_window_start(morning, OFFICE_HOURS, "Europe/Lisbon") == utc(2026, 1, 14, 8, 0)
    # Wed 17:30 UTC = 18:30 in Berlin (after the end → Thu 07:00 UTC), 17:30 in Lisbon (inside).
    evening = utc(2026, 1, 14, 17, 30)
    assert next_window_start(evening, OFFICE_HOURS, BERLIN) == utc(2026, 1, 15, 7, 0)
    assert next_window_start(evening, OFFICE_HOURS, "Europe/Lisbon") == evening


def test_a_wait_until_window_without_end_lasts_until_midnight() -> None:
    tuesday_ten = WaitUntil(days=["tue"], start="10:00")
    # Tue Jan 13 23:30 CET = 22:30 UTC: inside; Wed 00:00 CET = Tue 23:00 UTC: next Tuesday.
    assert next_window_start(utc(2026, 1, 13, 22, 30), tuesday_ten, BERLIN) == utc(
        2026, 1, 13, 22, 30
    )
    assert next_window_start(utc(2026, 1, 13, 23, 0), tuesday_ten, BERLIN) == utc(2026, 1, 20, 9, 0)


def test_a_window_on_one_weekday_already_over_today_is_a_week_later() -> None:
    wednesdays = SendWindow(days=["wed"], start="08:00", end="09:00")
    assert next_window_start(utc(2026, 1, 14, 8, 0), wednesdays, BERLIN) == utc(2026, 1, 21, 7, 0)


# --- earliest_allowed --------------------------------------------------------------------


def test_the_third_mail_in_seven_days_waits_until_the_first_is_seven_days_old() -> None:
    first, second = utc(2026, 1, 12, 9, 0), utc(2026, 1, 13, 9, 0)
    # Wed Jan 14: [Jan 12 09:00, +7d) would hold three. At Jan 19 09:00 the first has left
    # every window containing it (half-open), only the second remains: 1 + 1 <= 2.
    moment = earliest_allowed(utc(2026, 1, 14, 9, 0), [second, first], 2, 7, anytime)
    assert moment == utc(2026, 1, 19, 9, 0)
    # Mon 09:00 UTC = 10:00 CET is inside office hours, so the window changes nothing.
    assert earliest_allowed(utc(2026, 1, 14, 9, 0), [first, second], 2, 7, berlin_office) == moment
    # A minute before, it is still capped; with room for three it goes at once.
    assert earliest_allowed(utc(2026, 1, 19, 8, 59), [first, second], 2, 7, anytime) == moment
    assert earliest_allowed(utc(2026, 1, 14, 9, 0), [first, second], 3, 7, anytime) == utc(
        2026, 1, 14, 9, 0
    )


def test_a_capped_mail_is_then_moved_into_the_window_across_the_dst_change() -> None:
    # First Mon Mar 23 16:30 UTC (17:30 CET), second Tue Mar 24 09:00 UTC. Wanted Wed Mar 25.
    # Free from Mon Mar 30 16:30 UTC = 18:30 CEST: after the window's end → Tue Mar 31
    # 08:00 CEST = 06:00 UTC, where only the second send shares a window: allowed.
    first, second = utc(2026, 3, 23, 16, 30), utc(2026, 3, 24, 9, 0)
    moment = earliest_allowed(utc(2026, 3, 25, 10, 0), [first, second], 2, 7, berlin_office)
    assert moment == utc(2026, 3, 31, 6, 0)


def test_a_deferred_send_in_the_future_counts() -> None:
    now = utc(2026, 1, 14, 9, 0)
    sent, deferred = now - dt.timedelta(days=1), now + dt.timedelta(days=3)
    # [now - 1d, now + 6d) holds both and now → capped until sent + 7d = now + 6d.
    assert earliest_allowed(now, [sent, deferred], 2, 7, anytime) == now + dt.timedelta(days=6)
    # Two deferred sends in 2 and 3 days: now shares a window with both; a mail fits only
    # once the first of them is 7 days back, at now + 9d.
    later = [now + dt.timedelta(days=2), now + dt.timedelta(days=3)]
    assert earliest_allowed(now, later, 2, 7, anytime) == now + dt.timedelta(days=9)
    # Deferred sends in 8 and 9 days leave room now (no window of 7 days holds all three).
    far = [now + dt.timedelta(days=8), now + dt.timedelta(days=9)]
    assert earliest_allowed(now, far, 2, 7, anytime) == now


def test_old_sends_do_not_count() -> None:
    now = utc(2026, 1, 14, 9, 0)
    old = [now - dt.timedelta(days=7), now - dt.timedelta(days=8)]
    assert earliest_allowed(now, old, 1, 7, anytime) == now


GRID_START = utc(2026, 3, 25, 0, 0)  # the grid spans the spring DST change
MINUTE = dt.timedelta(minutes=1)


@st.composite
def cap_cases(draw: st.DrawFn) -> tuple:
    days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True))
    start = draw(st.integers(0, 22 * 60))
    end = draw(st.integers(start + 1, 24 * 60 - 1))
    window = SendWindow(
        days=days, start=dt.time(start // 60, start % 60), end=dt.time(end // 60, end % 60)
    )
    zone = draw(st.sampled_from(["UTC", BERLIN, "Europe/Lisbon", "America/New_York"]))
    # Sends on a 10-minute grid within 3 days, clustered so the cap bites often.
    sends = draw(st.lists(st.integers(0, 3 * 144), max_size=6))
    desired = draw(st.integers(0, 3 * 1440))
    return (
        window,
        zone,
        [s * 10 for s in sends],
        desired,
        draw(st.integers(1, 3)),
        draw(st.integers(1, 2)),
    )


@settings(max_examples=60, deadline=None)
@given(cap_cases())
def test_earliest_allowed_matches_a_brute_force_search_over_minutes(case: tuple) -> None:
    window, zone, sends, desired, max_mails, per_days = case
    width = per_days * 1440
    horizon = 3 * 1440 + width + 8 * 1440  # last send + W, then at most a week to a window
    # Brute force on the minute grid: bad[a] = the window [a, a + W) already holds max_mails;
    # t is allowed when no a in (t - W, t] is bad. (All inputs are whole minutes, so the
    # window starts a on the grid are all that matter.)
    holding = [0] * (horizon + width + 1)
    for send in sends:
        for start in range(max(send - width + 1, 0), send + 1):
            holding[start] += 1
    bad_before = [0]  # bad_before[i] = bad starts in [0, i)
    for count in holding:
        bad_before.append(bad_before[-1] + (count >= max_mails))

    def allowed(t: int) -> bool:
        # Sends lie at >= 0, so windows starting before 0 hold no more than the one at 0.
        return bad_before[t + 1] - bad_before[max(t - width + 1, 0)] == 0

    def in_window(t: int) -> bool:
        moment = GRID_START + t * MINUTE
        return next_window_start(moment, window, zone) == moment

    expected = next(t for t in range(desired, horizon) if allowed(t) and in_window(t))
    result = earliest_allowed(
        GRID_START + desired * MINUTE,
        [GRID_START + send * MINUTE for send in sends],
        max_mails,
        per_days,
        lambda moment: next_window_start(moment, window, zone),
    )
    assert result == GRID_START + expected * MINUTE


# --- plan_send_times against the database ------------------------------------------------

BATCH_SQL = """
create temporary table send_batch (
  enrolment_id bigint, contact_id text, tenant_code text, category text,
  scheduled_at timestamptz, deferred_reason text) on commit drop
"""


@pytest.fixture(scope="module")
def config() -> Config:
    # hq: Europe/Berlin mon–fri 08:00–18:00; fr: Europe/Paris mon–fri 09:00–17:30; cap 2 in 7d.
    return load_config(PROJECT_ROOT / "include" / "config")


def add_sends(connection: Connection, rows: list[tuple]) -> None:
    """rows: (contact_id, scheduled_at, kind, category, status) — ops.outbox rows of one
    journey per contact (in another campaign, the cap counts across campaigns)."""
    contacts = sorted({row[0] for row in rows})
    enrolment_ids = dict(
        connection.execute(
            sa.text(
                "insert into ops.campaign_enrolments"
                " (campaign_id, contact_id, tenant_code, trigger_key, enrolled_at, step_id)"
                " select 'other', contact_id, 'hq', 'one_off', '2026-01-01', 'mail'"
                " from unnest(cast(:contacts as text[])) as contact_id"
                " returning contact_id, enrolment_id"
            ),
            {"contacts": contacts},
        ).all()
    )
    connection.execute(
        sa.text(
            "insert into ops.outbox (kind, campaign_id, step_id, enrolment_id, step_seq,"
            " contact_id, tenant_code, message, category, requested_at, scheduled_at, status)"
            " values (:kind, 'other', 'mail', :enrolment_id, :step_seq, :contact_id, 'hq',"
            " 'm', :category, :scheduled_at, :scheduled_at, :status)"
        ),
        [
            {
                "contact_id": contact_id,
                "scheduled_at": scheduled_at,
                "kind": kind,
                "category": category,
                "status": status,
                "enrolment_id": enrolment_ids[contact_id],
                "step_seq": step_seq,
            }
            for step_seq, (contact_id, scheduled_at, kind, category, status) in enumerate(rows)
        ],
    )


SOURCE_SQL = """
create temporary table send_source (
  enrolment_id bigint, contact_id text, tenant_code text, category text) on commit drop
"""


def plan_batch(
    connection: Connection, config: Config, now: dt.datetime, rows: list[tuple], way: str
) -> tuple:
    """Plan rows (contact_id, tenant_code, category); (summary, {contact: (time, reason)}).

    `way` "plan_send_times": the rows are inserted into the batch, then planned there;
    "plan_sends_into": the planner inserts them from another table itself.
    """
    connection.exec_driver_sql(BATCH_SQL)
    connection.exec_driver_sql(SOURCE_SQL)
    table = "send_batch" if way == "plan_send_times" else "send_source"
    if rows:
        connection.execute(
            sa.text(
                f"insert into {table} (enrolment_id, contact_id, tenant_code, category)"
                " values (:enrolment_id, :contact_id, :tenant_code, :category)"
            ),
            [
                {"enrolment_id": number, "contact_id": c, "tenant_code": t, "category": k}
                for number, (c, t, k) in enumerate(rows)
            ],
        )
    if way == "plan_send_times":
        summary = plan_send_times(connection, "send_batch", now, config)
    else:
        source = sa.table("send_source", *(sa.column(name) for name in SOURCE_COLUMNS))
        rows_query = sa.select(*(source.c[name] for name in SOURCE_COLUMNS))
        summary = plan_sends_into(connection, "send_batch", rows_query, now, config)
    planned = connection.execute(
        sa.text("select contact_id, scheduled_at, deferred_reason from send_batch")
    ).all()
    return summary, {contact: (moment, reason) for contact, moment, reason in planned}


SOURCE_COLUMNS = ("enrolment_id", "contact_id", "tenant_code", "category")


@pytest.fixture(params=["plan_send_times", "plan_sends_into"])
def plan(request: pytest.FixtureRequest) -> Callable[..., tuple]:
    """Both ways of planning a batch: each test's expectations hold for either."""
    return functools.partial(plan_batch, way=request.param)


MAIL, NOTE = "campaign_mail", "owner_notification"


def test_plan_inside_the_window(
    warehouse: Engine, config: Config, plan: Callable[..., tuple]
) -> None:
    now = utc(2026, 1, 14, 9, 30)  # Wed 10:30 in Berlin and Paris: inside both windows
    mon, tue = utc(2026, 1, 12, 9, 0), utc(2026, 1, 13, 9, 0)
    with warehouse.begin() as connection:
        add_sends(
            connection,
            [
                ("one_sent", tue, MAIL, "marketing", "sent"),
                ("two_sent", mon, MAIL, "marketing", "sent"),
                ("two_sent", tue, MAIL, "marketing", "sent"),
                ("service_only", mon, MAIL, "marketing", "sent"),
                ("service_only", tue, MAIL, "marketing", "sent"),
                ("one_cancelled", mon, MAIL, "marketing", "cancelled"),
                ("one_cancelled", tue, MAIL, "marketing", "sent"),
                ("other_kinds", mon, NOTE, "service", "pending"),
                ("other_kinds", tue, MAIL, "service", "sent"),
                ("other_kinds", tue, MAIL, "marketing", "failed"),
                ("other_kinds", tue, MAIL, "marketing", "suppressed"),
                ("deferred_ahead", mon, MAIL, "marketing", "sent"),
                ("deferred_ahead", utc(2026, 1, 16, 8, 0), MAIL, "marketing", "pending"),
                ("week_old", utc(2026, 1, 7, 9, 30), MAIL, "marketing", "sent"),
                ("week_old", utc(2026, 1, 7, 9, 0), MAIL, "marketing", "sent"),
            ],
        )
        summary, planned = plan(
            connection,
            config,
            now,
            [
                ("fresh", "hq", "marketing"),
                ("one_sent", "hq", "marketing"),
                ("two_sent", "hq", "marketing"),
                ("service_only", "fr", "service"),
                ("one_cancelled", "hq", "marketing"),
                ("other_kinds", "hq", "marketing"),
                ("deferred_ahead", "fr", "marketing"),
                ("week_old", "hq", "marketing"),
            ],
        )
    assert planned == {
        "fresh": (now, None),
        "one_sent": (now, None),
        # Mon 09:00 + 7d = Mon Jan 19 09:00 UTC (10:00 CET, inside).
        "two_sent": (utc(2026, 1, 19, 9, 0), "frequency_cap"),
        "service_only": (now, None),
        "one_cancelled": (now, None),
        "other_kinds": (now, None),
        # Mon 09:00 + 7d = Jan 19 09:00 UTC = 10:00 CET, inside Paris 09:00–17:30.
        "deferred_ahead": (utc(2026, 1, 19, 9, 0), "frequency_cap"),
        # Jan 7 09:30 + 7d = now: the half-open window has let it go.
        "week_old": (now, None),
    }
    assert summary == PlanSummary(rows=8, deferred_by_window=0, deferred_by_cap=2)


def test_plan_outside_the_window(
    warehouse: Engine, config: Config, plan: Callable[..., tuple]
) -> None:
    now = utc(2026, 1, 17, 12, 0)  # Saturday
    with warehouse.begin() as connection:
        add_sends(
            connection,
            [
                # Free on Mon Jan 19 07:30 UTC: before Paris opens (08:00 UTC) → the window.
                ("fr_capped_early", utc(2026, 1, 12, 7, 30), MAIL, "marketing", "sent"),
                ("fr_capped_early", utc(2026, 1, 13, 9, 0), MAIL, "marketing", "sent"),
                # Free on Tue Jan 20 10:00 UTC (11:00 CET): after Monday's opening.
                ("hq_capped_late", utc(2026, 1, 13, 10, 0), MAIL, "marketing", "sent"),
                ("hq_capped_late", utc(2026, 1, 14, 10, 0), MAIL, "marketing", "sent"),
            ],
        )
        summary, planned = plan(
            connection,
            config,
            now,
            [
                ("hq_fresh", "hq", "marketing"),
                ("fr_fresh", "fr", "service"),
                ("fr_capped_early", "fr", "marketing"),
                ("hq_capped_late", "hq", "marketing"),
            ],
        )
    assert planned == {
        "hq_fresh": (utc(2026, 1, 19, 7, 0), "send_window"),  # Mon 08:00 CET
        "fr_fresh": (utc(2026, 1, 19, 8, 0), "send_window"),  # Mon 09:00 CET
        "fr_capped_early": (utc(2026, 1, 19, 8, 0), "send_window"),
        "hq_capped_late": (utc(2026, 1, 20, 10, 0), "send_window,frequency_cap"),
    }
    assert summary == PlanSummary(rows=4, deferred_by_window=4, deferred_by_cap=1)


def test_plan_holds_the_cap_lock_until_commit(
    warehouse: Engine, config: Config, plan: Callable[..., tuple]
) -> None:
    with warehouse.begin() as connection:
        plan(connection, config, utc(2026, 1, 14, 9, 30), [("a", "hq", "marketing")])
        held = connection.execute(
            sa.text(
                "select count(*) from pg_locks where locktype = 'advisory'"
                " and pid = pg_backend_pid() and objid::int = hashtext(:key)"
            ),
            {"key": CAP_LOCK},
        ).scalar_one()
    assert held == 1


def test_an_empty_batch_plans_nothing(
    warehouse: Engine, config: Config, plan: Callable[..., tuple]
) -> None:
    with warehouse.begin() as connection:
        summary, planned = plan(connection, config, utc(2026, 1, 14, 9, 30), [])
    assert (summary, planned) == (PlanSummary(0, 0, 0), {})


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("a", "hq", "marketing"), ("a", "fr", "marketing")], "contact(s) 'a' more than once"),
        ([("a", "xx", "marketing")], "tenant 'xx', which is not configured"),
        ([("a", "hq", "newsletter")], "category 'newsletter'"),
        ([("a", None, "marketing")], "without tenant_code"),
    ],
)
def test_a_batch_it_cannot_plan_is_refused(
    warehouse: Engine,
    config: Config,
    plan: Callable[..., tuple],
    rows: list[tuple],
    message: str,
) -> None:
    with warehouse.begin() as connection, pytest.raises(PlanningError, match=re.escape(message)):
        plan(connection, config, utc(2026, 1, 14, 9, 30), rows)


@pytest.mark.parametrize("now", [utc(2026, 3, 25, 9, 0), utc(2026, 3, 28, 20, 0)])
def test_fast_and_slow_paths_give_the_times_of_earliest_allowed(
    warehouse: Engine, config: Config, plan: Callable[..., tuple], now: dt.datetime
) -> None:
    # 60 contacts with 0–4 sends each within 8 days around now (some deferred into the
    # future, some cancelled), planned as one batch; each time must be the pure answer.
    chance = random.Random(20260325)
    sends, batch, counted = [], [], {}
    for number in range(60):
        contact = f"c{number:02d}"
        tenant = chance.choice(["hq", "fr"])
        category = chance.choice(["marketing", "marketing", "marketing", "service"])
        batch.append((contact, tenant, category))
        counted[contact] = []
        for _ in range(chance.randint(0, 4)):
            moment = now + dt.timedelta(minutes=chance.randint(-8 * 1440, 5 * 1440))
            status = chance.choice(["sent", "pending", "pending", "cancelled"])
            sends.append((contact, moment, MAIL, "marketing", status))
            if status != "cancelled":
                counted[contact].append(moment)
    with warehouse.begin() as connection:
        add_sends(connection, sends)
        summary, planned = plan(connection, config, now, batch)
    capped = 0
    for contact, tenant_code, category in batch:
        tenant = config.tenant(tenant_code)

        def window(moment: dt.datetime, tenant=tenant) -> dt.datetime:
            return next_window_start(moment, tenant.send_window, tenant.time_zone)

        existing = counted[contact] if category == "marketing" else []
        expected = earliest_allowed(now, existing, 2, 7, window)
        assert planned[contact][0] == expected, contact
        capped += expected > window(now)
    assert summary.rows == 60
    assert summary.deferred_by_cap == capped
    assert 5 <= capped < 50  # both paths ran
