"""Running segment queries, with errors a user can act on.

The compiler does not look at the database, so a filter naming a field the contact facts
relation lacks (or a relation dbt has not built yet) fails here, when the query runs; this
module turns PostgreSQL's message into one that names the segment and the relation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg.errors
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadflow.config.filters import FieldCondition, FilterNode, InSegment, walk
from leadflow.errors import LeadflowError
from leadflow.segments.compiler import segment_query
from leadflow.segments.relations import DEFAULT_RELATIONS, Relations


class SegmentQueryError(LeadflowError):
    """A compiled filter cannot run against the warehouse as it is."""


def fields_used(filter: FilterNode, segments: Mapping[str, FilterNode] | None = None) -> list[str]:
    """The catalogue fields a filter compares, nested segments included, sorted."""
    segments = segments or {}
    found: set[str] = set()
    pending, seen = [filter], set()
    while pending:
        for _path, node in walk(pending.pop()):
            if isinstance(node, FieldCondition):
                found.add(node.field)
            elif isinstance(node, InSegment) and node.segment not in seen:
                seen.add(node.segment)
                if node.segment in segments:
                    pending.append(segments[node.segment])
    return sorted(found)


@contextmanager
def explained_errors(what: str, relations: Relations, fields: list[str]) -> Iterator[None]:
    """Re-raise a missing column or relation as a SegmentQueryError about `what`."""
    try:
        yield
    except sa.exc.ProgrammingError as error:
        cause = error.orig
        if isinstance(cause, psycopg.errors.UndefinedColumn):
            raise SegmentQueryError(
                f"{what} cannot run: {cause.diag.message_primary} — the contact relation "
                f"{relations.contacts} must have a column per field the filter uses "
                f"({', '.join(fields) or 'none'}) and account_id"
            ) from None
        if isinstance(cause, psycopg.errors.UndefinedTable):
            raise SegmentQueryError(
                f"{what} cannot run: {cause.diag.message_primary} — build the warehouse "
                "first (`leadflow build --as-of DATE`)"
            ) from None
        raise


def member_ids(
    connection: Connection,
    filter: FilterNode,
    as_of: dt.date,
    *,
    relations: Relations = DEFAULT_RELATIONS,
    segments: Mapping[str, FilterNode] | None = None,
    what: str = "the filter",
) -> list[str]:
    """The contact ids the filter selects for `as_of`, sorted."""
    query = segment_query(filter, as_of, relations=relations, segments=segments)
    query = query.order_by(query.selected_columns.contact_id)
    with explained_errors(what, relations, fields_used(filter, segments)):
        return list(connection.execute(query).scalars())
