"""Materialising segments: every configured segment's members for one `as_of`, written to ops.

The nightly run calls `materialize_segments` after dbt has built marts.dim_contacts (segments
may compare its derived fields: best_persona, matrix_cell, scores, is_mql ...) and before dbt
builds marts.segment_members, which selects the run's date from `ops.segment_members`.

Each segment is compiled by the one filter compiler and written set-based, one parameterised
`INSERT INTO ops.segment_members SELECT ...` per segment, all in one transaction that first
removes that date's previous membership: a run either replaces the whole date or, when any
segment fails, leaves the previous membership untouched. A failing segment is named in the
error. `ops.segment_materializations` keeps the member count of every segment per date (a
segment with no members too), which `leadflow segment list` shows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.expression import Insert

from leadflow.config.filters import FilterNode
from leadflow.config.loader import Config
from leadflow.errors import LeadflowError
from leadflow.segments.compiler import FilterError, compile_filter
from leadflow.segments.execute import SegmentQueryError, explained_errors, fields_used
from leadflow.segments.preview import segment_filters
from leadflow.segments.relations import DEFAULT_RELATIONS, Relations, contact_row

# Older dates are pruned when a newer one is written: enough history for "entered the
# segment since yesterday/last month" without growing by a full copy every night forever.
RETENTION_DAYS = 62
# Serialises materialisations: two runs replacing the same date would collide on its keys.
LOCK_KEY = "leadflow.segments.materialize"

MEMBERS = sa.table(
    "segment_members",
    sa.column("as_of", sa.Date()),
    sa.column("segment", sa.Text()),
    sa.column("contact_id", sa.Text()),
    schema="ops",
)


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
    compiled = [_compile(name, filters, as_of, relations, engine) for name in config.segments]
    with engine.begin() as connection:
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(LOCK_KEY))))
        _clear(connection, as_of)
        counts = {segment.name: _insert(connection, segment, relations) for segment in compiled}
        _record(connection, as_of, compiled, counts)
    return counts


def _compile(
    name: str,
    filters: Mapping[str, FilterNode],
    as_of: dt.date,
    relations: Relations,
    engine: Engine,
) -> _CompiledSegment:
    contact = contact_row(relations)
    try:
        predicate = compile_filter(
            filters[name], as_of=as_of, relations=relations, segments=filters
        )
    except FilterError as error:
        raise SegmentError(f"segment {name!r} cannot be compiled: {error}") from None
    members = sa.select(
        sa.literal(as_of, sa.Date()), sa.literal(name, sa.Text()), contact.c.contact_id
    ).where(predicate)
    statement = MEMBERS.insert().from_select(["as_of", "segment", "contact_id"], members)
    return _CompiledSegment(
        name=name,
        statement=statement,
        sql_sha256=_fingerprint(statement, engine),
        fields=fields_used(filters[name], filters),
    )


def _fingerprint(statement: Insert, engine: Engine) -> str:
    """sha256 of the SQL text and its parameter values (the date parameters included)."""
    compiled = statement.compile(
        dialect=engine.dialect, compile_kwargs={"render_postcompile": True}
    )
    parameters = json.dumps(compiled.params, sort_keys=True, default=str)
    return hashlib.sha256(f"{compiled}\n{parameters}".encode()).hexdigest()


def _clear(connection: Connection, as_of: dt.date) -> None:
    """Remove the date's previous membership and dates older than the retention."""
    oldest_kept = as_of - dt.timedelta(days=RETENTION_DAYS)
    dates = {"as_of": as_of, "oldest_kept": oldest_kept}
    connection.execute(
        sa.text("delete from ops.segment_members where as_of = :as_of or as_of < :oldest_kept"),
        dates,
    )
    connection.execute(
        sa.text(
            "delete from ops.segment_materializations where as_of = :as_of or as_of < :oldest_kept"
        ),
        dates,
    )


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
        message = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise SegmentError(f"{what} failed: {message}") from None


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
