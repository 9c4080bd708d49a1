"""`leadflow segment preview NAME`: how many contacts a segment selects, a few of them, its SQL.

The preview runs the same compiled query the nightly build runs, so what it shows is what the
segment will contain for that `as_of`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadflow.config.base import did_you_mean
from leadflow.config.filters import FilterNode
from leadflow.config.loader import Config
from leadflow.errors import LeadflowError
from leadflow.segments.compiler import segment_query
from leadflow.segments.execute import explained_errors, fields_used
from leadflow.segments.relations import DEFAULT_RELATIONS, Relations, contact_row
from leadflow.segments.render import render_sql


class PreviewContact(NamedTuple):
    contact_id: str
    email: str | None
    country: str | None
    customer_status: str | None


@dataclass(frozen=True)
class Preview:
    """A segment's size, a sample of its members (by contact_id) and its SQL."""

    segment: str
    as_of: dt.date
    count: int
    sample: list[PreviewContact]
    sql: str
    # The values of the SQL's placeholders, by name.
    parameters: dict[str, Any]


def segment_filters(config: Config) -> dict[str, FilterNode]:
    """Every segment's filter by name: what `segment:` references resolve to."""
    return {name: segment.filter for name, segment in config.segments.items()}


def segment_filter(config: Config, name: str) -> FilterNode:
    """The filter of the segment `name`; an unknown name is a LeadflowError listing the known."""
    if name not in config.segments:
        known = ", ".join(sorted(config.segments)) or "none"
        raise LeadflowError(
            f"unknown segment {name!r}{did_you_mean(name, config.segments)}; segments: {known}"
        )
    return config.segments[name].filter


def preview(
    engine: Engine,
    name: str,
    as_of: dt.date,
    config: Config,
    limit: int = 10,
    *,
    relations: Relations = DEFAULT_RELATIONS,
) -> Preview:
    """Count the segment's members for `as_of` and list the first `limit` by contact_id."""
    if limit < 0:
        raise ValueError(f"limit must be zero or more, got {limit}")
    filter, segments = segment_filter(config, name), segment_filters(config)
    members = segment_query(filter, as_of, relations=relations, segments=segments)
    contact = contact_row(relations)
    sample_query = (
        members.with_only_columns(
            contact.c.contact_id, contact.c.email, contact.c.country, contact.c.customer_status
        )
        .order_by(contact.c.contact_id)
        .limit(limit)
    )
    count_query = sa.select(sa.func.count()).select_from(members.subquery())
    with (
        explained_errors(f"segment {name!r}", relations, fields_used(filter, segments)),
        engine.connect() as connection,
    ):
        count = connection.execute(count_query).scalar_one()
        sample = [PreviewContact(*row) for row in connection.execute(sample_query)]
    compiled = members.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    return Preview(
        segment=name,
        as_of=as_of,
        count=count,
        sample=sample,
        sql=render_sql(members, engine),
        parameters=dict(compiled.params),
    )
