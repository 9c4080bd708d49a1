"""Filters and segments (SPEC §2.5): the one filter compiler and what runs its SQL.

    from leadflow.segments import compile_filter, segment_query, render_sql, literal_sql
    query = segment_query(config.segments["hs2000_upsell"].filter, as_of,
                          segments=segment_filters(config))

See compiler.py for the semantics and docs/segments.md for the language.
"""

from leadflow.segments.compiler import (
    ACTIVITY_EVENT_TYPES,
    FilterError,
    SharedEventCounts,
    compile_filter,
    segment_query,
)
from leadflow.segments.execute import SegmentQueryError, fields_used, member_ids
from leadflow.segments.preview import (
    Preview,
    PreviewContact,
    preview,
    segment_filter,
    segment_filters,
)
from leadflow.segments.relations import DEFAULT_RELATIONS, RAW_RELATIONS, Relations, contact_row
from leadflow.segments.render import execute_literal_sql, literal_sql, render_sql
from leadflow.segments.timing import cutoff, window_start, window_start_date

__all__ = [
    "ACTIVITY_EVENT_TYPES",
    "DEFAULT_RELATIONS",
    "RAW_RELATIONS",
    "FilterError",
    "Preview",
    "PreviewContact",
    "Relations",
    "SegmentQueryError",
    "SharedEventCounts",
    "compile_filter",
    "contact_row",
    "cutoff",
    "execute_literal_sql",
    "fields_used",
    "literal_sql",
    "member_ids",
    "preview",
    "render_sql",
    "segment_filter",
    "segment_filters",
    "segment_query",
    "window_start",
    "window_start_date",
]
