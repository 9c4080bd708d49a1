"""The send-time planner: when may a campaign mail go out (SPEC §2.6, send window + cap).

    moment = next_window_start(now, tenant.send_window, tenant.time_zone)
    moment = earliest_allowed(desired, existing, max_mails, per_days, within_window)
    summary = plan_send_times(connection, "send_batch", now, config)

Semantics (exactly as the tests check them)
- Send window: a weekly window of days and a daily [start, end) in the tenant's time zone
  (zoneinfo, so DST-correct: 08:00 Europe/Berlin is 07:00 UTC in winter, 06:00 UTC in
  summer). `next_window_start(moment, ...)` is `moment` itself when it lies inside the
  window, else the next window start; always returned in UTC. A wall-clock time that does
  not exist on a DST day (02:30 on the last Sunday of March) is read with the offset before
  the change, i.e. one hour later on the new clock (03:30), and a window left empty by that
  (02:00–03:00) has no moment that day; a time that exists twice (the last Sunday of
  October) is its first occurrence. A window without an end (a journey's
  `wait: until` may give only a start) lasts until midnight.
- Frequency cap: at most `max_mails` marketing mails per contact in any `per_days` days.
  A new mail at t is allowed when every half-open window [a, a + W) (W = per_days days) that
  contains t holds at most max_mails - 1 earlier-planned mails of that contact — sends in
  the future (deferred ones) count as well as past ones. Counted are ops.outbox rows with
  kind 'campaign_mail', category 'marketing' and a status other than cancelled, failed or
  suppressed, by scheduled_at, across all campaigns. Service mails ignore the cap but
  respect the window. A capped send is deferred, never dropped.
- `plan_send_times` fills a batch (a temporary table, one row per enrolment about to send)
  with scheduled_at = the earliest t >= now satisfying both, and deferred_reason:
  'send_window' when the window alone moves the send past now, 'frequency_cap' when the cap
  moves it past the window's start, both as 'send_window,frequency_cap', NULL when it goes
  at now. `plan_sends_into` does the same for rows it inserts into an empty batch itself,
  and `plan_capped` for a batch filled with `with_window_moments`.

Concurrency: planning takes a transaction-level advisory lock (CAP_LOCK), so two campaign
runs cannot both see room for one more mail and overfill a contact; the caller must insert
the planned ops.outbox rows in the same transaction (the lock is released at commit) and
before planning the next batch of that transaction.

Performance: the window is computed once per tenant in Python and set for every row in one
UPDATE — or as the rows are inserted (`with_window_moments`: one write per row, not two).
The cap is checked in SQL: a contact with fewer than max_mails counted sends scheduled in
(t - W, t + W) keeps t, since every window of W containing t lies inside that
interval (index ops.outbox (contact_id, scheduled_at) for marketing mail). Only the rest —
contacts who already got their share — are fetched (one query) and solved exactly with
`earliest_allowed`, and written back in one UPDATE from unnest(arrays).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import TableClause

from leadflow.config.base import WEEKDAYS
from leadflow.config.campaigns import WaitUntil
from leadflow.config.loader import Config
from leadflow.config.models import SendWindow
from leadflow.errors import LeadflowError
from leadflow.warehouse.tables import OUTBOX

UTC = dt.UTC
# pg_advisory_xact_lock(hashtext(CAP_LOCK)) serialises every planner across campaigns.
CAP_LOCK = "leadflow.campaigns.frequency_cap"
CAPPED_CATEGORY = "marketing"
CATEGORIES = ("marketing", "service")
# Outbox rows that will never be sent do not use up the cap.
UNCOUNTED_STATUSES = ("cancelled", "failed", "suppressed")
SEND_WINDOW = "send_window"
FREQUENCY_CAP = "frequency_cap"


class PlanningError(LeadflowError):
    """A send batch the planner cannot plan (a contact twice, an unknown tenant or category)."""


@dataclass(frozen=True)
class PlanSummary:
    """How a batch was planned: rows in it, and how many were deferred by each rule."""

    rows: int
    deferred_by_window: int
    deferred_by_cap: int


NOTHING_PLANNED = PlanSummary(rows=0, deferred_by_window=0, deferred_by_cap=0)


# --- the send window ---------------------------------------------------------------------


def next_window_start(moment: dt.datetime, window: SendWindow | WaitUntil, tz: str) -> dt.datetime:
    """`moment` if it lies inside the weekly window (in time zone `tz`), else the next start.

    `moment` must be aware; the result is in UTC.
    """
    zone = ZoneInfo(tz)
    moment = moment.astimezone(UTC)
    first_day = moment.astimezone(zone).date()
    # Eight days: the window's weekday may be today, but after today's end.
    for offset in range(8):
        day = first_day + dt.timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in window.days:
            continue
        start = _instant(day, window.start, zone)
        end = _instant(day + dt.timedelta(days=1), dt.time(0), zone)
        if window.end is not None:
            end = _instant(day, window.end, zone)
        if start >= end:
            continue  # the whole window falls into that day's DST gap
        if moment < start:
            return start
        if moment < end:
            return moment
    raise AssertionError(f"a weekly window with days {window.days} has no start in 8 days")


def _instant(day: dt.date, clock: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of wall-clock `clock` on `day` in `zone` (fold=0, see the docstring)."""
    return dt.datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


# --- the frequency cap -------------------------------------------------------------------


def earliest_allowed(
    desired: dt.datetime,
    existing: Sequence[dt.datetime],
    max_mails: int,
    per_days: int,
    within_window: Callable[[dt.datetime], dt.datetime],
) -> dt.datetime:
    """The earliest t >= desired with within_window(t) == t where one more mail at t keeps
    every window [a, a + per_days days) containing t at <= max_mails mails.

    `existing` are the contact's other planned marketing sends (past or future, any order);
    `within_window(t)` returns t when t is inside the send window, else the next window start.
    """
    width = dt.timedelta(days=per_days)
    sends = sorted(existing)
    # Why these candidates suffice: the cap blocks t exactly when max_mails existing sends and
    # t fit in a span shorter than W; for sends s_1 <= ... <= s_k that is the open interval
    # (s_k - W, s_1 + W). So the allowed times form closed-open stretches that begin at
    # `desired` or at some s + W (where a run of sends stops blocking: the window is
    # half-open), and the answer is the first window moment of the first stretch that has one
    # — within_window of a stretch's beginning. Candidates are tried in ascending order;
    # within_window is monotone, so the first allowed one is the earliest.
    candidates = sorted({desired, *(send + width for send in sends if send + width > desired)})
    for candidate in candidates:
        moment = within_window(candidate)
        if not _capped(moment, sends, max_mails, width):
            return moment
    # Unreachable: after the last send + W no window containing t holds any send.
    raise AssertionError("the frequency cap left no allowed time")


def _capped(
    moment: dt.datetime, sends: list[dt.datetime], max_mails: int, width: dt.timedelta
) -> bool:
    """Whether max_mails of the (sorted) sends and `moment` fit in one window of `width`.

    Among k sorted sends, consecutive ones span the least, so checking every run of
    max_mails consecutive sends is enough.
    """
    for first in range(len(sends) - max_mails + 1):
        run = sends[first : first + max_mails]
        if max(run[-1], moment) - min(run[0], moment) < width:
            return True
    return False


# --- planning a batch --------------------------------------------------------------------


def plan_send_times(
    connection: Connection, batch_table: str, now: dt.datetime, config: Config
) -> PlanSummary:
    """Fill scheduled_at and deferred_reason of every row of `batch_table` (see the module
    docstring); the batch has columns (enrolment_id, contact_id, tenant_code, category,
    scheduled_at, deferred_reason) and holds each contact at most once."""
    batch = _batch(batch_table)
    windows = _locked_tenant_windows(connection, batch, config)
    if not windows:
        return NOTHING_PLANNED
    _set_window_starts(connection, batch, now, {code: fn(now) for code, fn in windows.items()})
    return _apply_cap(connection, batch, now, config, windows)


def plan_sends_into(
    connection: Connection, batch_table: str, rows: sa.Select, now: dt.datetime, config: Config
) -> PlanSummary:
    """Insert `rows` (enrolment_id, contact_id, tenant_code, category, in that order) into the
    empty `batch_table` and plan them: the same result as inserting them and calling
    `plan_send_times`, but every row is written once, already at its window moment."""
    batch = _batch(batch_table)
    sending = rows.subquery("sending")
    enrolment_id, contact_id, tenant_code, category = sending.c
    connection.execute(
        batch.insert().from_select(
            [*_PLANNED_COLUMNS],
            with_window_moments(
                sa.select(enrolment_id, contact_id, tenant_code, category),
                tenant_code,
                now,
                config,
            ),
        )
    )
    return plan_capped(connection, batch_table, now, config)


def with_window_moments(
    rows: sa.Select, tenant_code: sa.ColumnElement[str], now: dt.datetime, config: Config
) -> sa.Select:
    """`rows` with two more columns: `scheduled_at`, the send-window moment for `now` of the
    row's tenant (`tenant_code`), and `deferred_reason`, 'send_window' when that is later
    than now — what a batch row holds before `plan_capped` applies the cap. A row of an
    unknown tenant gets none (and `plan_capped` names its tenant)."""
    # Every configured tenant's moment, computed here once (a few tenants).
    starts = _window_values(
        {tenant.code: _tenant_window_fn(config, tenant.code)(now) for tenant in config.tenants}
    )
    return rows.add_columns(
        starts.c.starts_at.label("scheduled_at"),
        sa.case((starts.c.starts_at > now, SEND_WINDOW), else_=sa.null()).label("deferred_reason"),
    ).outerjoin(starts, starts.c.tenant_code == tenant_code)


def plan_capped(
    connection: Connection, batch_table: str, now: dt.datetime, config: Config
) -> PlanSummary:
    """Plan `batch_table` whose rows hold their window moment already (`with_window_moments`):
    the same checks and cap as `plan_send_times`, without writing every row again."""
    batch = _batch(batch_table)
    windows = _locked_tenant_windows(connection, batch, config)
    if not windows:
        return NOTHING_PLANNED
    return _apply_cap(connection, batch, now, config, windows)


def _locked_tenant_windows(
    connection: Connection, batch: TableClause, config: Config
) -> dict[str, Callable[[dt.datetime], dt.datetime]]:
    """The send-window function of each tenant in the batch, under the planner's lock."""
    _lock_planner(connection)
    tenant_codes = _checked_tenant_codes(connection, batch)
    return {code: _tenant_window_fn(config, code) for code in tenant_codes}


_PLANNED_COLUMNS = (
    "enrolment_id",
    "contact_id",
    "tenant_code",
    "category",
    "scheduled_at",
    "deferred_reason",
)


def _lock_planner(connection: Connection) -> None:
    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(CAP_LOCK))))


def _apply_cap(
    connection: Connection,
    batch: TableClause,
    now: dt.datetime,
    config: Config,
    windows: dict[str, Callable[[dt.datetime], dt.datetime]],
) -> PlanSummary:
    """Defer the batch's marketing rows the frequency cap holds back (rows at their window
    moment already), exactly, and summarise the batch."""
    cap = config.company.defaults.frequency_cap
    width = dt.timedelta(days=cap.per_days)
    capped = connection.execute(_capped_rows(batch, cap.max_mails, width)).all()
    if capped:
        existing = _existing_sends(connection, [row.contact_id for row in capped], now - width)
        planned = []
        for row in capped:
            moment = earliest_allowed(
                now, existing[row.contact_id], cap.max_mails, cap.per_days, windows[row.tenant_code]
            )
            planned.append((row.contact_id, moment, _reason(now, row.start, moment)))
        _set_planned(connection, batch, planned)
    return _summary(connection, batch)


def _batch(name: str) -> TableClause:
    schema, _, table = name.rpartition(".")
    return sa.table(
        table,
        sa.column("enrolment_id", sa.BigInteger),
        sa.column("contact_id", sa.Text),
        sa.column("tenant_code", sa.Text),
        sa.column("category", sa.Text),
        sa.column("scheduled_at", sa.DateTime(timezone=True)),
        sa.column("deferred_reason", sa.Text),
        schema=schema or None,
    )


def _checked_tenant_codes(connection: Connection, batch: TableClause) -> list[str]:
    """The batch's tenant codes; refuse a contact twice or an unknown category.

    One contact twice in a batch would be planned twice against the same existing sends
    and could overfill the cap; a campaign has one active enrolment per contact, so a
    batch never needs it.
    """
    doubled = connection.execute(
        sa.select(batch.c.contact_id)
        .group_by(batch.c.contact_id)
        .having(sa.func.count() > 1)
        .order_by(batch.c.contact_id)
        .limit(3)
    ).scalars()
    doubled = list(doubled)
    if doubled:
        raise PlanningError(
            f"a send batch holds contact(s) {', '.join(map(repr, doubled))} more than once; "
            "plan one send per contact at a time"
        )
    pairs = connection.execute(sa.select(batch.c.tenant_code, batch.c.category).distinct()).all()
    for tenant_code, category in pairs:
        if category not in CATEGORIES:
            raise PlanningError(f"a send batch has category {category!r}, expected {CATEGORIES}")
        if tenant_code is None:
            raise PlanningError("a send batch has a row without tenant_code")
    return sorted({tenant_code for tenant_code, _category in pairs})


def _tenant_window_fn(config: Config, code: str) -> Callable[[dt.datetime], dt.datetime]:
    try:
        tenant = config.tenant(code)
    except KeyError:
        raise PlanningError(f"a send batch has tenant {code!r}, which is not configured") from None
    return lambda moment: next_window_start(moment, tenant.send_window, tenant.time_zone)


def _set_window_starts(
    connection: Connection, batch: TableClause, now: dt.datetime, starts: dict[str, dt.datetime]
) -> None:
    """Every row: scheduled_at = its tenant's next window moment, 'send_window' if after now."""
    window = _window_values(starts)
    connection.execute(
        sa.update(batch)
        .where(batch.c.tenant_code == window.c.tenant_code)
        .values(
            scheduled_at=window.c.starts_at,
            deferred_reason=sa.case((window.c.starts_at > now, SEND_WINDOW), else_=sa.null()),
        )
    )


def _window_values(starts: dict[str, dt.datetime]) -> sa.Values:
    return sa.values(
        sa.column("tenant_code", sa.Text),
        sa.column("starts_at", sa.DateTime(timezone=True)),
        name="window_start",
    ).data(list(starts.items()))


def _counted() -> sa.ColumnElement[bool]:
    """The outbox rows the cap counts (matching the partial index on marketing mail)."""
    return sa.and_(
        OUTBOX.c.kind == "campaign_mail",
        OUTBOX.c.category == CAPPED_CATEGORY,
        OUTBOX.c.status.not_in(UNCOUNTED_STATUSES),
    )


def _capped_rows(batch: TableClause, max_mails: int, width: dt.timedelta) -> sa.Select:
    """Marketing rows whose window moment t has >= max_mails counted sends in (t - W, t + W):
    the only ones the cap might defer (the fast path keeps every other row's t)."""
    near = (
        sa.select(sa.func.count())
        .select_from(OUTBOX)
        .where(
            _counted(),
            OUTBOX.c.contact_id == batch.c.contact_id,
            OUTBOX.c.scheduled_at > batch.c.scheduled_at - width,
            OUTBOX.c.scheduled_at < batch.c.scheduled_at + width,
        )
        .scalar_subquery()
    )
    return (
        sa.select(batch.c.contact_id, batch.c.tenant_code, batch.c.scheduled_at.label("start"))
        .where(batch.c.category == CAPPED_CATEGORY, near >= max_mails)
        .order_by(batch.c.contact_id)
    )


def _existing_sends(
    connection: Connection, contact_ids: list[str], since: dt.datetime
) -> dict[str, list[dt.datetime]]:
    """Counted sends of these contacts after `since` (= now - W: earlier ones cannot share a
    window with a time >= now)."""
    rows = connection.execute(
        sa.select(OUTBOX.c.contact_id, OUTBOX.c.scheduled_at).where(
            _counted(),
            OUTBOX.c.contact_id == sa.any_(sa.literal(contact_ids, sa.ARRAY(sa.Text))),
            OUTBOX.c.scheduled_at > since,
        )
    )
    sends: dict[str, list[dt.datetime]] = defaultdict(list)
    for contact_id, scheduled_at in rows:
        sends[contact_id].append(scheduled_at)
    return sends


def _set_planned(
    connection: Connection, batch: TableClause, planned: list[tuple[str, dt.datetime, str | None]]
) -> None:
    """Write (contact_id, scheduled_at, deferred_reason) into the batch in one statement: the
    batch has no index, so one UPDATE per row would scan it once per row."""
    contact_ids, moments, reasons = (list(column) for column in zip(*planned, strict=True))
    rows = (
        sa.func.unnest(
            sa.literal(contact_ids, sa.ARRAY(sa.Text)),
            sa.literal(moments, sa.ARRAY(sa.DateTime(timezone=True))),
            sa.literal(reasons, sa.ARRAY(sa.Text)),
        )
        .table_valued(
            sa.column("contact_id", sa.Text),
            sa.column("moment", sa.DateTime(timezone=True)),
            sa.column("reason", sa.Text),
        )
        .render_derived(name="planned", with_types=False)
    )
    connection.execute(
        sa.update(batch)
        .where(batch.c.contact_id == rows.c.contact_id)
        .values(scheduled_at=rows.c.moment, deferred_reason=rows.c.reason)
    )


def _reason(now: dt.datetime, window_start: dt.datetime, moment: dt.datetime) -> str | None:
    reasons = []
    if window_start > now:
        reasons.append(SEND_WINDOW)
    if moment > window_start:
        reasons.append(FREQUENCY_CAP)
    return ",".join(reasons) or None


def _summary(connection: Connection, batch: TableClause) -> PlanSummary:
    reason = sa.func.coalesce(batch.c.deferred_reason, "")
    rows, by_window, by_cap = connection.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(reason.contains(SEND_WINDOW)),
            sa.func.count().filter(reason.contains(FREQUENCY_CAP)),
        ).select_from(batch)
    ).one()
    return PlanSummary(rows=rows, deferred_by_window=by_window, deferred_by_cap=by_cap)


__all__ = [
    "CAP_LOCK",
    "PlanSummary",
    "PlanningError",
    "earliest_allowed",
    "next_window_start",
    "plan_capped",
    "plan_send_times",
    "plan_sends_into",
    "with_window_moments",
]
