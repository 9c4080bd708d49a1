"""Materialising segments: every configured segment's members for one `as_of`, written to ops.

The nightly run calls `materialize_segments` after dbt has built marts.dim_contacts (segments
may compare its derived fields: best_persona, matrix_cell, scores, is_mql ...) and before dbt
builds marts.segment_members, which selects the run's date from the view `ops.segment_members`.

Each segment is compiled by the one filter compiler and evaluated set-based, one parameterised
`INSERT ... SELECT` per segment into a temporary table of the date's members. Membership is
stored as spans (`ops.segment_member_spans`, migration 0011): the run closes the spans of
contacts that left a segment and opens one for each contact that joined, so a night writes
what changed, not every member again. All of it runs in one transaction: a run either
replaces the whole date or, when any segment fails, leaves the membership untouched. A
failing segment is named in the error. `ops.segment_materializations` keeps the member count
of every segment per date (a segment with no members too), which `leadflow segment list`
shows, and the view `ops.segment_members` lists the members of each of those dates.

Membership is a timeline, like the activity state: a run for a date before the latest
materialised one first rewinds it to that date, forgetting the later dates (their own runs
write them again).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.expression import Insert

from leadflow.config.filters import FilterNode
from leadflow.config.loader import Config
from leadflow.errors import LeadflowError
from leadflow.segments.compiler import FilterError, SharedEventCounts, compile_filter
from leadflow.segments.execute import SegmentQueryError, explained_errors, fields_used
from leadflow.segments.preview import segment_filters
from leadflow.segments.relations import DEFAULT_RELATIONS, Relations, contact_row

# Dates older than this (relative to the date being written) are pruned: enough history for
# "entered the segment since yesterday/last month".
RETENTION_DAYS = 62
# Memory per sort or hash of the run (PostgreSQL's work_mem, for its transaction only). At
# 1,000,000 contacts the comparison of the new members with the open spans hashes 1.9 million
# rows (115 MB); with the server's 64 MB it spilled to disk in two batches.
WORK_MEM = "256MB"
# The indexes of ops.segment_member_spans (migration 0011_segment_member_spans).
SPANS_KEY = "segment_member_spans_pkey"
SPANS_OPEN = "segment_member_spans_open"
# Serialises materialisations: two runs changing the same spans would collide on their keys.
LOCK_KEY = "leadflow.segments.materialize"

# The date's members while a run computes them; dropped when its transaction ends.
NEW_MEMBERS = sa.table(
    "segment_members_new",
    sa.column("segment", sa.Text()),
    sa.column("contact_id", sa.Text()),
)

logger = logging.getLogger(__name__)


class SegmentError(LeadflowError):
    """A segment could not be materialised; the message names the segment."""


@dataclass(frozen=True)
class _CompiledSegment:
    name: str
    statement: Insert
    sql_sha256: str
    fields: list[str]


def materialize_segments(
    engine: Engine,
    config: Config,
    as_of: dt.date,
    *,
    relations: Relations = DEFAULT_RELATIONS,
) -> dict[str, int]:
    """Write every configured segment's members for `as_of`; the member count per segment.

    Every segment is compiled before anything is written, so a filter error (an unknown or
    cyclic `segment:` reference) changes nothing either.
    """
    filters = segment_filters(config)
    event_counts = SharedEventCounts(relations)
    compiled = [
        _compile(name, filters, as_of, relations, engine, event_counts) for name in config.segments
    ]
    with engine.begin() as connection:
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(LOCK_KEY))))
        connection.execute(sa.select(sa.func.set_config("work_mem", WORK_MEM, True)))
        _rewind(connection, as_of)
        connection.execute(
            sa.text(
                "create temporary table segment_members_new "
                "(segment text not null, contact_id text not null) on commit drop"
            )
        )
        _count_events(connection, event_counts)
        counts = {segment.name: _insert(connection, segment, relations) for segment in compiled}
        _apply_changes(connection, as_of, list(counts))
        _record(connection, as_of, compiled, counts)
        _prune(connection, as_of)
    return counts


def _compile(
    name: str,
    filters: Mapping[str, FilterNode],
    as_of: dt.date,
    relations: Relations,
    engine: Engine,
    event_counts: SharedEventCounts,
) -> _CompiledSegment:
    def members(counts: SharedEventCounts | None) -> Insert:
        predicate = compile_filter(
            filters[name], as_of=as_of, relations=relations, segments=filters, event_counts=counts
        )
        selected = sa.select(sa.literal(name, sa.Text()), contact_row(relations).c.contact_id)
        return NEW_MEMBERS.insert().from_select(
            ["segment", "contact_id"], selected.where(predicate)
        )

    try:
        # The fingerprint is of the segment's own SQL, which reads the events itself; the
        # run reads the counts all segments share.
        standalone, statement = members(None), members(event_counts)
    except FilterError as error:
        raise SegmentError(f"segment {name!r} cannot be compiled: {error}") from None
    return _CompiledSegment(
        name=name,
        statement=statement,
        sql_sha256=_fingerprint(standalone, engine),
        fields=fields_used(filters[name], filters),
    )


def _fingerprint(statement: Insert, engine: Engine) -> str:
    """sha256 of the SQL text and its parameter values (the date parameters included)."""
    compiled = statement.compile(
        dialect=engine.dialect, compile_kwargs={"render_postcompile": True}
    )
    parameters = json.dumps(compiled.params, sort_keys=True, default=str)
    return hashlib.sha256(f"{compiled}\n{parameters}".encode()).hexdigest()


def _rewind(connection: Connection, as_of: dt.date) -> None:
    """Undo the materialisations of `as_of` and later dates: back to the state before them.

    Spans never overlap, so reopening those that ended on or after `as_of` leaves at most one
    open span per member: the membership at the latest date before `as_of`.
    """
    later = (
        connection.execute(
            sa.text(
                "select distinct as_of from ops.segment_materializations "
                "where as_of > :as_of order by as_of"
            ),
            {"as_of": as_of},
        )
        .scalars()
        .all()
    )
    if later:
        logger.warning(
            "segments were materialised up to %s: re-running %s forgets %d later date(s), "
            "which their own runs write again",
            later[-1],
            as_of,
            len(later),
        )
    for statement in (
        "delete from ops.segment_member_spans where valid_from >= :as_of",
        "update ops.segment_member_spans set valid_to = null where valid_to >= :as_of",
        "delete from ops.segment_materializations where as_of >= :as_of",
    ):
        connection.execute(sa.text(statement), {"as_of": as_of})


def _apply_changes(connection: Connection, as_of: dt.date, segments: list[str]) -> None:
    """Close the open spans of members who left; open one for each member who joined."""
    # A temporary table is never analysed on its own; without statistics the planner
    # takes a 2-million-row membership for a few rows and loops over it.
    connection.execute(sa.text("analyze segment_members_new"))
    first_spans = not connection.execute(
        sa.text("select exists (select from ops.segment_member_spans where valid_to is null)")
    ).scalar_one()
    changes = {"as_of": as_of, "segments": segments}
    # Who left and who joined, in one pass over the new members and the open spans (a full
    # join: 1.9 s at 1,000,000 contacts, against 3.2 s for one anti-join each way). They go
    # through a table of their own: an INSERT that anti-joined the spans it writes to ran for
    # more than five minutes at 1.9 million members, on the first night after a truncate,
    # before it was stopped (its plan presumably took the spans for empty and rescanned the
    # rows it had just added). A separate table cannot see its own rows.
    connection.execute(
        sa.text(
            "create temporary table segment_member_changes on commit drop as "
            "select coalesce(new.segment, span.segment) as segment, "
            "coalesce(new.contact_id, span.contact_id) as contact_id, "
            "new.contact_id is null as has_left "
            "from segment_members_new as new full join ("
            "select segment, contact_id from ops.segment_member_spans "
            "where valid_to is null and segment = any(:segments)) as span "
            "on new.segment = span.segment and new.contact_id = span.contact_id "
            "where new.contact_id is null or span.contact_id is null"
        ),
        changes,
    )
    connection.execute(sa.text("analyze segment_member_changes"))
    connection.execute(
        sa.text(
            "update ops.segment_member_spans as span set valid_to = :as_of "
            "from segment_member_changes as change "
            "where change.has_left and span.valid_to is null "
            "and span.segment = change.segment and span.contact_id = change.contact_id"
        ),
        changes,
    )
    insert_joiners = sa.text(
        "insert into ops.segment_member_spans (segment, contact_id, valid_from) "
        "select segment, contact_id, :as_of from segment_member_changes where not has_left "
        # In key order, both indexes are filled page by page instead of at random pages
        # (1.9 million spans into the indexed table at 1,000,000 contacts: 13.9 s instead of
        # 15.9 s).
        "order by segment, contact_id"
    )
    with _span_indexes_rebuilt(connection) if first_spans else nullcontext():
        connection.execute(insert_joiners, changes)


@contextmanager
def _span_indexes_rebuilt(connection: Connection) -> Iterator[None]:
    """Drop the spans' two indexes for the block, then build them again as they were (same
    transaction; the definitions are read from the database, so migrations stay their owner).

    For the first night, when every member opens a span: building an index over all the rows
    at once is cheaper than adding them to it one by one (1.9 million spans at 1,000,000 contacts:
    7.0 s instead of 9.7 s for the whole comparison and write; 12.6 s instead of 26.9 s when
    the first date is run again and its spans are deleted first). Dropping them locks the
    table until the run commits, which matters only while nothing reads memberships yet; a
    failed run rolls the drop back with the rest.
    """
    key = connection.execute(
        sa.text(
            "select pg_get_constraintdef(oid) from pg_constraint "
            "where conrelid = 'ops.segment_member_spans'::regclass and conname = :name"
        ),
        {"name": SPANS_KEY},
    ).scalar_one()
    open_spans = connection.execute(
        sa.text("select pg_get_indexdef(to_regclass(:name))"), {"name": f"ops.{SPANS_OPEN}"}
    ).scalar_one()
    connection.execute(sa.text(f"alter table ops.segment_member_spans drop constraint {SPANS_KEY}"))
    connection.execute(sa.text(f"drop index ops.{SPANS_OPEN}"))
    yield
    connection.execute(
        sa.text(f"alter table ops.segment_member_spans add constraint {SPANS_KEY} {key}")
    )
    connection.execute(sa.text(open_spans))


def _prune(connection: Connection, as_of: dt.date) -> None:
    """Forget dates older than the retention, and the spans only they needed."""
    oldest_kept = {"oldest_kept": as_of - dt.timedelta(days=RETENTION_DAYS)}
    for statement in (
        "delete from ops.segment_materializations where as_of < :oldest_kept",
        # A span ending on or before the oldest kept date covers no kept date.
        "delete from ops.segment_member_spans where valid_to <= :oldest_kept",
        # Segments no longer configured keep their spans only while a date of theirs is kept.
        "delete from ops.segment_member_spans as span where not exists "
        "(select from ops.segment_materializations as kept where kept.segment = span.segment)",
    ):
        connection.execute(sa.text(statement), oldest_kept)


def _count_events(connection: Connection, event_counts: SharedEventCounts) -> None:
    try:
        event_counts.create(connection)
    except sa.exc.DBAPIError as error:
        message = _first_line(error)
        raise SegmentError(
            f"the events the segments look for could not be counted: {message}"
        ) from None


def _insert(connection: Connection, segment: _CompiledSegment, relations: Relations) -> int:
    what = f"segment {segment.name!r}"
    try:
        with explained_errors(what, relations, segment.fields):
            # INSERT ... SELECT: its row count is the member count (SQLAlchemy keeps an
            # INSERT's rowcount only when asked to).
            inserted = connection.execute(
                segment.statement, execution_options={"preserve_rowcount": True}
            )
            return inserted.rowcount
    except SegmentQueryError as error:
        raise SegmentError(str(error)) from None
    except sa.exc.DBAPIError as error:
        # Anything else PostgreSQL refuses (a type error, a statement timeout ...).
        raise SegmentError(f"{what} failed: {_first_line(error)}") from None


def _first_line(error: sa.exc.DBAPIError) -> str:
    return str(error.orig).strip().splitlines()[0] if error.orig else str(error)


def _record(
    connection: Connection,
    as_of: dt.date,
    compiled: list[_CompiledSegment],
    counts: Mapping[str, int],
) -> None:
    connection.execute(
        sa.text(
            "insert into ops.segment_materializations (as_of, segment, members, sql_sha256) "
            "values (:as_of, :segment, :members, :sql_sha256)"
        ),
        [
            {
                "as_of": as_of,
                "segment": segment.name,
                "members": counts[segment.name],
                "sql_sha256": segment.sql_sha256,
            }
            for segment in compiled
        ],
    )


# --- reading back ------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentSize:
    """A configured segment and its members at its latest materialisation (None: never)."""

    name: str
    description: str
    tenant: str | None
    members: int | None
    as_of: dt.date | None
    materialized_at: dt.datetime | None


def segment_sizes(engine: Engine, config: Config) -> list[SegmentSize]:
    """Every configured segment in configuration order, with its latest member count."""
    with engine.connect() as connection:
        latest = {
            row.segment: row
            for row in connection.execute(
                sa.text(
                    "select distinct on (segment) segment, as_of, members, materialized_at "
                    "from ops.segment_materializations "
                    "order by segment, as_of desc, materialized_at desc"
                )
            )
        }
    sizes = []
    for name, segment in config.segments.items():
        row = latest.get(name)
        sizes.append(
            SegmentSize(
                name=name,
                description=" ".join(segment.description.split()),
                tenant=segment.tenant,
                members=row.members if row else None,
                as_of=row.as_of if row else None,
                materialized_at=row.materialized_at if row else None,
            )
        )
    return sizes


def marts_as_of(engine: Engine) -> dt.date | None:
    """The date marts.dim_contacts was last built for; None if it was never built."""
    with engine.connect() as connection:
        if connection.execute(sa.text("select to_regclass('marts.dim_contacts')")).scalar() is None:
            return None
        return connection.execute(sa.text("select max(as_of) from marts.dim_contacts")).scalar()
