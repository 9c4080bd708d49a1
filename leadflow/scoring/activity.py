"""Incremental activity scoring: the per-contact state a nightly run updates cheaply.

SPEC §2.4: activity_score(C) = clamp(Σ points × 0.5^(age_days / h), 0, 100) over the human
events before the cut-off C, age_days measured from the event to C. Written with a fixed
`epoch` E instead of C,

    Σ points × 0.5^((C − t) / h) = 2^((E − C) / h) × S,   S = Σ points × 2^((t − E) / h),

so S does not change as time passes: a run for a later cut-off only multiplies by a new
factor (dbt does that: int_contacts_activity_scored), and new events only add to S. The state
(migration 0003_scoring) holds S per contact in `ops.activity_totals`, and E, the cut-off, the
event_seq watermark and the activity-rules hash in `ops.activity_state`.

An update for cut-off C reads only
- the events that arrived since the last update (event_seq in (watermark, W], W the last
  sequence value when the update starts): their contributions are added to S, and contacts
  with such events at/after C are remembered in `ops.activity_pending`;
- the contacts that must be recomputed: those whose events were updated or deleted
  (`ops.activity_changes`, filled by triggers on raw.events) and those whose pending events
  are now before C. Their S is recomputed from all their events (an index range scan each).

It falls back to a full rebuild (E = C, every event read once) when there is no state, the
activity rules or half-life changed (hash), the cut-off moves backwards, or `full=True`.
When C − E exceeds REBASE_AFTER_HALF_LIVES half-lives, S is rescaled to E = C so the powers of
two stay far from overflow. Which rules an event matches is defined once, in the view
`ops.activity_event_points`, which dbt reads too.

Consistency: the update waits until no transaction is writing raw.events (a SHARE lock held
only while its REPEATABLE READ snapshot is taken, then released), so every event with
event_seq ≤ W is in its snapshot and every later change is logged with a higher change_id.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadflow.config import Config
from leadflow.scoring.snapshot import activity_hash
from leadflow.segments.timing import cutoff as cutoff_for

SECONDS_PER_DAY = 86_400.0
# 2^64 ≈ 1.8e19: far from double overflow (~1e308), and exact relative precision throughout.
REBASE_AFTER_HALF_LIVES = 64
# Serialises state updates (two nightly runs must not interleave their reads and writes).
_ADVISORY_LOCK_KEY = "leadflow.scoring.activity_state"

Mode = Literal["full", "incremental"]


@dataclass(frozen=True)
class ActivityUpdate:
    """What one state update did."""

    mode: Mode
    reason: str
    cutoff: dt.datetime
    epoch: dt.datetime
    # event_seq range read: (previous_watermark, watermark]; a full rebuild reads everything.
    previous_watermark: int
    watermark: int
    contacts_added_to: int
    contacts_recomputed: int
    rebased: bool
    seconds: float

    def describe(self) -> str:
        if self.mode == "full":
            return (
                f"activity state rebuilt ({self.reason}) up to event_seq {self.watermark}: "
                f"{self.contacts_added_to:,} contacts with activity, {self.seconds:.1f} s"
            )
        return (
            f"activity state updated with event_seq {self.previous_watermark + 1}.."
            f"{self.watermark}: {self.contacts_added_to:,} contacts added to, "
            f"{self.contacts_recomputed:,} recomputed"
            f"{', rebased' if self.rebased else ''}, {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class _State:
    activity_hash: str
    half_life_days: float
    epoch: dt.datetime
    cutoff: dt.datetime
    event_watermark: int


@dataclass(frozen=True)
class _Run:
    """The parameters every statement of one update binds."""

    cutoff: dt.datetime
    epoch: dt.datetime
    half_life_days: float
    previous_watermark: int
    watermark: int
    change_watermark: int

    def params(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff,
            "epoch_seconds": self.epoch.timestamp(),
            "half_life_seconds": self.half_life_days * SECONDS_PER_DAY,
            "previous_watermark": self.previous_watermark,
            "watermark": self.watermark,
            "change_watermark": self.change_watermark,
        }


# --- SQL ---------------------------------------------------------------------------------

# Per contact, over the rows of ops.activity_event_points in `source`: S (relative to the
# epoch), the latest activity and the earliest event not yet seen (at/after the cut-off).
_AGGREGATE = """
select
    points.contact_id,
    sum(points.points * power(2.0::float8,
        (date_part('epoch', points.occurred_at) - :epoch_seconds) / :half_life_seconds))
        filter (where points.occurred_at < :cutoff) as weighted_sum,
    max(points.occurred_at) filter (where points.occurred_at < :cutoff and points.is_activity)
        as last_activity_at,
    min(points.occurred_at) filter (where points.occurred_at >= :cutoff) as next_at
from {source}
group by points.contact_id
"""

_CREATE_AGGREGATE = "create temp table activity_aggregate on commit drop as " + _AGGREGATE

# Replace (full rebuild, recomputed contacts) or add (new events) the aggregate's numbers.
_STORE_TOTALS = """
insert into ops.activity_totals (contact_id, weighted_sum, last_activity_at)
select contact_id, coalesce(weighted_sum, 0), last_activity_at
from activity_aggregate
where weighted_sum is not null or last_activity_at is not null
"""
_ADD_TO_TOTALS = (
    _STORE_TOTALS
    + """
on conflict (contact_id) do update set
    weighted_sum = ops.activity_totals.weighted_sum + excluded.weighted_sum,
    last_activity_at = greatest(ops.activity_totals.last_activity_at, excluded.last_activity_at)
"""
)
_STORE_PENDING = """
insert into ops.activity_pending (contact_id, next_at)
select contact_id, next_at from activity_aggregate where next_at is not null
on conflict (contact_id) do update set
    next_at = least(ops.activity_pending.next_at, excluded.next_at)
"""

_DIRTY_CONTACTS = """
create temp table activity_dirty on commit drop as
select contact_id from ops.activity_changes where change_id <= :change_watermark
union
select contact_id from ops.activity_pending where next_at < :cutoff
"""


# --- the update --------------------------------------------------------------------------


def update_activity_state(
    engine: Engine, config: Config, as_of: dt.date, *, full: bool = False
) -> ActivityUpdate:
    """Bring the activity state up to the cut-off of `as_of` (incremental where valid)."""
    started = time.monotonic()
    cutoff = cutoff_for(as_of)
    rules_hash = activity_hash(config)
    half_life = float(config.scoring.activity_half_life_days or 0)
    with _consistent_snapshot(engine) as (connection, watermark):
        state = _read_state(connection)
        change_watermark = connection.execute(
            sa.text("select coalesce(max(change_id), 0) from ops.activity_changes")
        ).scalar_one()
        reason = _full_rebuild_reason(state, rules_hash, cutoff, full)
        if reason is not None or state is None:
            run = _Run(cutoff, cutoff, half_life, 0, watermark, change_watermark)
            added = _rebuild(connection, run)
            recomputed, rebased, mode = 0, False, "full"
        else:
            run = _Run(
                cutoff, state.epoch, half_life, state.event_watermark, watermark, change_watermark
            )
            run, rebased = _rebase_if_needed(connection, run)
            recomputed = _recompute_dirty_contacts(connection, run)
            added = _add_new_events(connection, run)
            reason, mode = "state valid", "incremental"
        _consume_changes(connection, run)
        _write_state(connection, run, rules_hash, rebuilt=mode == "full")
    return ActivityUpdate(
        mode=mode,
        reason=reason,
        cutoff=cutoff,
        epoch=run.epoch,
        previous_watermark=run.previous_watermark,
        watermark=watermark,
        contacts_added_to=added,
        contacts_recomputed=recomputed,
        rebased=rebased,
        seconds=time.monotonic() - started,
    )


def reset_activity_state(engine: Engine) -> None:
    """Forget the state: the next update is a full rebuild."""
    with engine.begin() as connection:
        connection.execute(sa.text("delete from ops.activity_state"))


@contextmanager
def _consistent_snapshot(engine: Engine) -> Iterator[tuple[Connection, int]]:
    """A REPEATABLE READ transaction whose snapshot holds every event up to the watermark.

    A second connection takes a SHARE lock on raw.events, which waits for every transaction
    writing it and holds off new ones; meanwhile the work transaction takes its snapshot and
    reads the identity sequence; then the lock is released. Events inserted afterwards get
    higher event_seq values, and their updates/deletes land in ops.activity_changes with
    higher change_ids.
    """
    with _exclusive_updater(engine), engine.connect() as work:
        work = work.execution_options(isolation_level="REPEATABLE READ")
        with work.begin():
            with engine.connect() as barrier, barrier.begin():
                barrier.execute(sa.text("lock table raw.events in share mode"))
                # The work transaction's first statement fixes its snapshot: while no one
                # writes raw.events, so the sequence's last value is the watermark.
                watermark = work.execute(
                    sa.text(
                        "select coalesce(pg_sequence_last_value("
                        "pg_get_serial_sequence('raw.events', 'event_seq')), 0)"
                    )
                ).scalar_one()
            yield work, watermark


@contextmanager
def _exclusive_updater(engine: Engine) -> Iterator[None]:
    """One state update at a time (a session advisory lock on its own connection)."""
    with engine.connect() as guard:
        guard = guard.execution_options(isolation_level="AUTOCOMMIT")
        key = {"key": _ADVISORY_LOCK_KEY}
        guard.execute(sa.text("select pg_advisory_lock(hashtext(:key))"), key)
        try:
            yield
        finally:
            guard.execute(sa.text("select pg_advisory_unlock(hashtext(:key))"), key)


def _read_state(connection: Connection) -> _State | None:
    row = connection.execute(
        sa.text(
            "select activity_hash, half_life_days, epoch, cutoff, event_watermark "
            "from ops.activity_state"
        )
    ).one_or_none()
    return None if row is None else _State(*row)


def _full_rebuild_reason(
    state: _State | None, rules_hash: str, cutoff: dt.datetime, full: bool
) -> str | None:
    if full:
        return "full rebuild requested"
    if state is None:
        return "no activity state yet"
    if state.activity_hash != rules_hash:
        return "activity rules or half-life changed"
    if cutoff < state.cutoff:
        return f"as_of moved backwards (state is for the cut-off {state.cutoff:%Y-%m-%d %H:%M})"
    return None


def _rebuild(connection: Connection, run: _Run) -> int:
    """Every event, once: S with the epoch at the cut-off (so S is the unclamped score)."""
    params = run.params()
    connection.execute(sa.text("delete from ops.activity_totals"))
    connection.execute(sa.text("delete from ops.activity_pending"))
    source = "ops.activity_event_points as points"
    connection.execute(sa.text(_CREATE_AGGREGATE.format(source=source)), params)
    added = connection.execute(sa.text(_STORE_TOTALS), params).rowcount
    connection.execute(sa.text(_STORE_PENDING), params)
    connection.execute(sa.text("drop table activity_aggregate"))
    connection.execute(sa.text("analyze ops.activity_totals, ops.activity_pending"))
    return added


def _rebase_if_needed(connection: Connection, run: _Run) -> tuple[_Run, bool]:
    half_lives = (run.cutoff - run.epoch).total_seconds() / (run.half_life_days * SECONDS_PER_DAY)
    if half_lives <= REBASE_AFTER_HALF_LIVES:
        return run, False
    connection.execute(
        sa.text("update ops.activity_totals set weighted_sum = weighted_sum * power(2.0, :shift)"),
        {"shift": -half_lives},
    )
    return _Run(
        run.cutoff,
        run.cutoff,
        run.half_life_days,
        run.previous_watermark,
        run.watermark,
        run.change_watermark,
    ), True


def _recompute_dirty_contacts(connection: Connection, run: _Run) -> int:
    """Contacts with changed events or pending events now due: S from all their events."""
    params = run.params()
    connection.execute(sa.text(_DIRTY_CONTACTS), params)
    connection.execute(sa.text("analyze activity_dirty"))
    for table in ("ops.activity_totals", "ops.activity_pending"):
        connection.execute(
            sa.text(
                f"delete from {table} as target using activity_dirty as dirty "  # noqa: S608
                "where target.contact_id = dirty.contact_id"
            )
        )
    source = (
        "ops.activity_event_points as points "
        "join activity_dirty as dirty on dirty.contact_id = points.contact_id"
    )
    connection.execute(sa.text(_CREATE_AGGREGATE.format(source=source)), params)
    connection.execute(sa.text(_STORE_TOTALS), params)
    connection.execute(sa.text(_STORE_PENDING), params)
    connection.execute(sa.text("drop table activity_aggregate"))
    return connection.execute(sa.text("select count(*) from activity_dirty")).scalar_one()


def _add_new_events(connection: Connection, run: _Run) -> int:
    """The events since the watermark, of contacts not recomputed above: added to S."""
    params = run.params()
    source = (
        "ops.activity_event_points as points "
        "where points.event_seq > :previous_watermark and points.event_seq <= :watermark "
        "and not exists (select 1 from activity_dirty as dirty "
        "where dirty.contact_id = points.contact_id)"
    )
    connection.execute(sa.text(_CREATE_AGGREGATE.format(source=source)), params)
    added = connection.execute(sa.text(_ADD_TO_TOTALS), params).rowcount
    connection.execute(sa.text(_STORE_PENDING), params)
    connection.execute(sa.text("drop table activity_aggregate"))
    connection.execute(sa.text("drop table activity_dirty"))
    return added


def _consume_changes(connection: Connection, run: _Run) -> None:
    connection.execute(
        sa.text("delete from ops.activity_changes where change_id <= :change_watermark"),
        run.params(),
    )


def _write_state(connection: Connection, run: _Run, rules_hash: str, *, rebuilt: bool) -> None:
    connection.execute(
        sa.text(
            """
            insert into ops.activity_state as state (
                activity_hash, half_life_days, epoch, cutoff, event_watermark, rebuilt_at,
                updated_at
            )
            values (:hash, :half_life, :epoch, :cutoff, :watermark, now(), now())
            on conflict (singleton) do update set
                activity_hash = excluded.activity_hash,
                half_life_days = excluded.half_life_days,
                epoch = excluded.epoch,
                cutoff = excluded.cutoff,
                event_watermark = excluded.event_watermark,
                rebuilt_at = case when :rebuilt then now() else state.rebuilt_at end,
                updated_at = now()
            """
        ),
        {
            "hash": rules_hash,
            "half_life": run.half_life_days,
            "epoch": run.epoch,
            "cutoff": run.cutoff,
            "watermark": run.watermark,
            "rebuilt": rebuilt,
        },
    )
