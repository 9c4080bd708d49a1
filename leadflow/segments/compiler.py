"""The one filter compiler: a filter tree (config/filters.py) → a boolean SQL expression.

Segments, campaign audiences, goals, branches, triggers and tenant pool-alias views all use
this module, so a filter means the same thing everywhere (SPEC §2.5). The result is an
SQLAlchemy Core expression over the contact facts relation aliased `contact` (one row per
contact; see relations.py); every value from the configuration is a bound parameter, never
text pasted into SQL. `segment_query` wraps it in `SELECT contact_id`; `render_sql` and
`literal_sql` (render.py) print it.

Semantics (SPEC §2, exactly as the tests check them)
- Time: `as_of` is a date D; the cut-off is D + 1 day 00:00 UTC and only rows before it count.
  "within N" (d, w, m, y) is a date in (D − N, D], for timestamps [that first day 00:00 UTC,
  cut-off) (timing.py). Relative dates (`-3y`) resolve against D.
- Two-valued logic: every condition is true or false, never NULL. A comparison with a NULL
  field is false (so `!=` and `not_in` on NULL are false too), and `not: X` means "X is not
  satisfied". Comparisons are wrapped in `coalesce(..., false)`; EXISTS is never NULL.
- Field comparisons (fields.py types): `=`/`!=`/`in`/`not_in` on text are exact and
  case-sensitive, except `email`, whose value is compared trimmed and lower-cased (the facts
  relation stores it so); `contains`/`starts_with` are case-insensitive (ILIKE), with `%`, `_`
  in the value matched literally. Dates compare as dates; a timestamp field compared with a
  date compares its UTC calendar date (`created_at < -90d`: before that day 00:00 UTC).
  `between` is inclusive. Arrays: `contains X` = X is an element, `in` = shares an element
  with the list, `not_in` = shares none (NULL array: false), `is_null` = NULL or empty,
  `is_not_null` = at least one element.
- Behaviour (opened, clicked, downloaded, visited, events, inactive) counts only human
  events (`is_machine = false`) before the cut-off. `inactive: {days: N}` = no human event of
  the activity kinds (ACTIVITY_EVENT_TYPES) within the last N days; none ever = inactive.
  `visited.url_pattern` is a glob (`*` = any text, everything else literal, case-sensitive):
  a pattern starting with `/` matches the URL's path (what follows `scheme://host`, query
  included; an empty path is `/`), any other pattern the whole URL.
- Purchases count only won orders (status 'won') of the contact before the cut-off.
  `purchased` counts distinct orders containing the product (any item of the family, or any
  order at all); `before: X` = ordered before X 00:00 UTC, `after: X` = on or after X 00:00 UTC.
  `last_purchase` = one of the contact's latest won orders (latest `ordered_at`) contains it.
- Installed base: an installation belongs to a contact when it is installed at the contact's
  account (`account_id`) or names the contact (`contact_id`), and `installed_on <= D`.
  `maintenance_due.between: [a, b]` = next_maintenance_date in [a, b], both ends included.
- Nested segments are inlined (the referenced segment's filter compiled in place); a cycle or
  a reference deeper than MAX_SEGMENT_DEPTH is an error.

Performance: behaviour, purchase and installed-base conditions are correlated EXISTS keyed
on the contact (for `min_count` > 1: EXISTS over the contacts grouped with HAVING), which
PostgreSQL turns into semi-/anti-joins at the top level and hashed or index-probed subplans
under OR (indexes: migration 0002). Compiled with a `SharedEventCounts`, the behaviour
conditions of many filters instead read one aggregate over the events (the nightly
materialisation of all segments). docs/segments.md shows the SQL and the measurements.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BooleanClauseList, ColumnElement
from sqlalchemy.sql.expression import Alias, FromClause, Select

from leadflow.config.base import did_you_mean
from leadflow.config.dates import Duration, RelativeDate
from leadflow.config.fields import FieldSpec
from leadflow.config.filters import (
    AllOf,
    AnyOf,
    Clicked,
    ClickedSpec,
    Downloaded,
    DownloadedSpec,
    Events,
    EventsSpec,
    FieldCondition,
    FilterNode,
    Inactive,
    InSegment,
    LastPurchase,
    MaintenanceDue,
    Not,
    Opened,
    OpenedSpec,
    Owns,
    Purchased,
    Visited,
    VisitedSpec,
)
from leadflow.errors import LeadflowError
from leadflow.segments.relations import (
    DEFAULT_RELATIONS,
    RAW_RELATIONS,
    Relations,
    Tables,
    contact_row,
    tables,
)
from leadflow.segments.render import execute_literal_sql, literal_sql, render_sql
from leadflow.segments.timing import cutoff, start_of_day, window_start

# The human events that count as activity for `inactive` (SPEC §2.2/§2.6).
ACTIVITY_EVENT_TYPES = (
    "email_open",
    "email_click",
    "download",
    "form_submit",
    "web_visit",
    "fair_visit",
    "purchase",
)
MAX_SEGMENT_DEPTH = 16
# Far deeper than any hand-written filter; stops a runaway before Python's recursion limit.
MAX_FILTER_DEPTH = 100

# scheme://host at the start of a URL; what follows is the path a `/...` pattern matches.
_SCHEME_AND_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*"
_LIKE_ESCAPE = "\\"


class FilterError(LeadflowError):
    """A filter cannot be compiled: an unknown or cyclic segment reference, or too deep."""


@dataclass(frozen=True)
class _Context:
    as_of: dt.date
    tables: Tables
    segments: Mapping[str, FilterNode]
    # Segments being inlined, outermost first (for cycle and depth errors).
    trail: tuple[str, ...] = ()
    depth: int = 0
    # Behaviour conditions read their counts from here instead of the events (see the class).
    event_counts: SharedEventCounts | None = None

    @property
    def contact(self) -> Alias:
        return self.tables.contact

    @property
    def cutoff(self) -> dt.datetime:
        return cutoff(self.as_of)


def compile_filter(
    filter: FilterNode,
    *,
    as_of: dt.date,
    relations: Relations = DEFAULT_RELATIONS,
    segments: Mapping[str, FilterNode] | None = None,
    event_counts: SharedEventCounts | None = None,
) -> ColumnElement[bool]:
    """`filter` as a two-valued boolean SQL expression over `contact_row(relations)`.

    `segments` maps segment names to their filters, for `segment:` references. With
    `event_counts`, behaviour conditions read the table it fills (one pass over the events
    for every filter compiled with it) instead of the events.
    """
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise TypeError(f"as_of must be a date, got {as_of!r}")
    context = _Context(
        as_of=as_of,
        tables=tables(relations),
        segments=segments or {},
        event_counts=event_counts,
    )
    return _compile(filter, context)


class SharedEventCounts:
    """One pass over the events for the behaviour conditions of many filters.

    Compiled with an instance, each behaviour condition (`opened`, `clicked`, `downloaded`,
    `visited`, `events`, `inactive`, and the merged single events of an `any`) becomes a
    column of a temporary table: per contact, how many human events match it. The condition
    reads `contact_id IN (SELECT contact_id FROM <table> WHERE <column> >= N)`; `create` fills
    the table with one aggregate over the events, every column a `count(*) FILTER (WHERE ...)`
    of the same WHERE the condition has on its own, so both forms select the same contacts.
    Identical conditions share a column.

    The nightly materialisation compiles all segments with one instance: 14 segments read the
    events once instead of once per behaviour condition. The table lives until the
    transaction that created it ends.
    """

    TABLE = "segment_event_counts"

    def __init__(self, relations: Relations = DEFAULT_RELATIONS) -> None:
        self._event = tables(relations).events.alias("event")
        self._columns: dict[str, ColumnElement[bool]] = {}
        self._names: dict[str, str] = {}

    def at_least(
        self, minimum: int, condition: ColumnElement[bool], context: _Context
    ) -> ColumnElement[bool]:
        """At least `minimum` events of the contact meet `condition` (over `self.event`)."""
        name = self._column_for(condition)
        counts = sa.table(self.TABLE, sa.column("contact_id", sa.Text()), sa.column(name))
        # IN, not a correlated EXISTS: a semi-join at the top level, and a hashed subplan
        # under OR/NOT, where an EXISTS would probe the (unindexed) table contact by contact.
        # Never NULL: contact_id is the contacts relation's key, and the table holds no NULL.
        having = sa.select(counts.c.contact_id).where(counts.c[name] >= minimum)
        return context.contact.c.contact_id.in_(having)

    @property
    def event(self) -> Alias:
        """The events alias the conditions handed to `at_least` are written over."""
        return self._event

    def _column_for(self, condition: ColumnElement[bool]) -> str:
        compiled = condition.compile(dialect=postgresql.dialect())
        key = f"{compiled}\n{sorted(compiled.params.items())!r}"
        if key not in self._names:
            self._names[key] = f"matches_{len(self._names)}"
            self._columns[self._names[key]] = condition
        return self._names[key]

    def create(self, connection: Connection) -> None:
        """Create and fill the table the compiled conditions read (none: nothing to do)."""
        if not self._columns:
            return
        event = self._event
        aggregate = (
            sa.select(
                event.c.contact_id,
                *(
                    sa.func.count().filter(where).label(name)
                    for name, where in self._columns.items()
                ),
            )
            .where(event.c.contact_id.is_not(None), sa.or_(*self._columns.values()))
            .group_by(event.c.contact_id)
        )
        compiled = aggregate.compile(
            dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
        )
        # CREATE TABLE AS, not INSERT ... SELECT: PostgreSQL reads the events with parallel
        # workers only for the former (at 1,000,000 contacts: 6.6–8.0 s against 13.2 s).
        connection.exec_driver_sql(
            f"create temporary table {self.TABLE} on commit drop as {compiled}", compiled.params
        )
        # Temporary tables are never analysed automatically; the IN lookups need row counts.
        connection.execute(sa.text(f"analyze {self.TABLE}"))


def segment_query(
    filter: FilterNode,
    as_of: dt.date,
    *,
    relations: Relations = DEFAULT_RELATIONS,
    segments: Mapping[str, FilterNode] | None = None,
) -> Select:
    """`SELECT contact.contact_id FROM <contacts> AS contact WHERE <filter>`."""
    contact = contact_row(relations)
    predicate = compile_filter(filter, as_of=as_of, relations=relations, segments=segments)
    return sa.select(contact.c.contact_id).where(predicate)


def _compile(node: FilterNode, context: _Context) -> ColumnElement[bool]:
    if context.depth > MAX_FILTER_DEPTH:
        raise FilterError(f"filter is nested more than {MAX_FILTER_DEPTH} levels deep")
    # By class hierarchy: persona criteria and profile rules are FieldConditions too.
    kind = next((cls for cls in type(node).__mro__ if cls in _COMPILERS), None)
    if kind is None:
        raise TypeError(f"not a filter node: {node!r}")
    return _COMPILERS[kind](node, replace(context, depth=context.depth + 1))


# --- composition -----------------------------------------------------------------------


def _all(node: AllOf, context: _Context) -> ColumnElement[bool]:
    return sa.and_(*(_compile(child, context) for child in node.conditions))


def _any(node: AnyOf, context: _Context) -> ColumnElement[bool]:
    """OR of the children; the single human events among them in one EXISTS.

    `any: [clicked …, visited …, downloaded …]` as one EXISTS over the events with the
    three matches OR'ed inside (exact: "some event matches A, or some matches B" is "some
    event matches A or B"): PostgreSQL reads the events once instead of once per condition.
    """
    matches = [_single_event(child) for child in node.conditions]
    merged = [match for match in matches if match is not None]
    if len(merged) < 2:
        return sa.or_(*(_compile(child, context) for child in node.conditions))
    others = [child for child, match in zip(node.conditions, matches, strict=True) if match is None]
    return sa.or_(
        _any_human_event(context, merged), *(_compile(child, context) for child in others)
    )


def _not(node: Not, context: _Context) -> ColumnElement[bool]:
    # Children are never NULL, so SQL NOT is "not satisfied".
    return _negated(_compile(node.condition, context))


def _negated(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """NOT, pushed through an OR: `not (a or b)` as `not a and not b` (exact, as conditions
    are never NULL). PostgreSQL turns each `NOT EXISTS` of a top-level AND into an anti-join
    but leaves `NOT (EXISTS … OR EXISTS …)` — e.g. `not: {owns: …}`, one EXISTS per owner —
    a filter run contact by contact (about 20 % slower on the hs2000_upsell segment)."""
    if isinstance(condition, BooleanClauseList) and condition.operator is operators.or_:
        return sa.and_(*(sa.not_(clause) for clause in condition.clauses))
    return sa.not_(condition)


def _in_segment(node: InSegment, context: _Context) -> ColumnElement[bool]:
    name = node.segment
    if name in context.trail:
        chain = " → ".join([*context.trail[context.trail.index(name) :], name])
        raise FilterError(f"segments form a cycle: {chain}")
    if len(context.trail) >= MAX_SEGMENT_DEPTH:
        raise FilterError(
            f"segment references nest more than {MAX_SEGMENT_DEPTH} deep: "
            f"{' → '.join([*context.trail, name])}"
        )
    if name not in context.segments:
        known = ", ".join(sorted(context.segments)) or "none"
        raise FilterError(
            f"unknown segment {name!r}{did_you_mean(name, context.segments)} (known: {known})"
        )
    return _compile(context.segments[name], replace(context, trail=(*context.trail, name)))


# --- field comparisons -----------------------------------------------------------------


def _never_null(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """NULL (a comparison with a NULL field) → false: the two-valued logic of filters."""
    return sa.func.coalesce(condition, sa.false())


def _resolved(value: Any, as_of: dt.date) -> Any:
    if isinstance(value, list):
        return [_resolved(item, as_of) for item in value]
    return value.resolve(as_of) if isinstance(value, RelativeDate) else value


def _normalized(spec: FieldSpec, value: Any) -> Any:
    # The pool compares e-mail addresses trimmed and case-insensitive (SPEC §2.1); the facts
    # relation holds them normalised, so the value is normalised the same way.
    if spec.name == "email" and isinstance(value, list):
        return [item.strip().lower() for item in value]
    if spec.name == "email" and isinstance(value, str):
        return value.strip().lower()
    return value


_SCALAR_OPERATORS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda column, values: column.in_(values),
    "not_in": lambda column, values: column.not_in(values),
    "between": lambda column, bounds: column.between(bounds[0], bounds[1]),
    "contains": lambda column, text: column.icontains(text, autoescape=True),
    "starts_with": lambda column, text: column.istartswith(text, autoescape=True),
}


def _field(node: FieldCondition, context: _Context) -> ColumnElement[bool]:
    spec = node.spec
    column = context.contact.c[spec.name]
    if spec.type == "text_array":
        return _array_comparison(column, node.op, node.value)
    if node.op == "is_null":
        return column.is_(None)
    if node.op == "is_not_null":
        return column.is_not(None)
    value = _normalized(spec, _resolved(node.value, context.as_of))
    if spec.type == "timestamp":
        return _never_null(_timestamp_comparison(column, node.op, value))
    return _never_null(_SCALAR_OPERATORS[node.op](column, _bound(column, node.op, value)))


def _bound(column: Any, op: str, value: Any) -> Any:
    """The value as bind parameters typed like the column.

    Without the column's type SQLAlchemy types a bind by its Python value, and `IN (1, 2.5)`
    on a numeric column would send 2.5 as an INTEGER (3).
    """
    if op in ("contains", "starts_with"):
        return value  # icontains/istartswith escape the text themselves

    def bind(item: Any) -> Any:
        if isinstance(item, float):
            item = Decimal(repr(item))  # exactly the number written in the YAML
        return sa.bindparam(column.name, item, type_=column.type, unique=True)

    return [bind(item) for item in value] if isinstance(value, list) else bind(value)


def _timestamp_comparison(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    """A timestamp against a date, by its UTC calendar date, as ranges on the raw column."""
    if op == "between":
        low, high = value
        return sa.and_(column >= start_of_day(low), column < _next_day(high))
    day_start, next_day = start_of_day(value), _next_day(value)
    comparisons = {
        "=": lambda: sa.and_(column >= day_start, column < next_day),
        "!=": lambda: sa.or_(column < day_start, column >= next_day),
        "<": lambda: column < day_start,
        "<=": lambda: column < next_day,
        ">": lambda: column >= next_day,
        ">=": lambda: column >= day_start,
    }
    return comparisons[op]()


def _next_day(day: dt.date) -> dt.datetime:
    return start_of_day(day + dt.timedelta(days=1))


def _text_array(values: Sequence[str]) -> ColumnElement[Any]:
    # The driver types each element as varchar; text[] && varchar[] has no operator.
    return sa.cast(postgresql.array(list(values), type_=sa.Text()), postgresql.ARRAY(sa.Text()))


def _array_comparison(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "is_null":
        return sa.or_(column.is_(None), sa.func.cardinality(column) == 0)
    if op == "is_not_null":
        return sa.and_(column.is_not(None), sa.func.cardinality(column) > 0)
    if op == "contains":
        return _never_null(sa.literal(value, sa.Text()) == sa.any_(column))
    overlaps = column.overlap(_text_array(value))
    return _never_null(overlaps if op == "in" else sa.not_(overlaps))


# --- shared subquery pieces ------------------------------------------------------------


def _exists(from_: FromClause, where: Sequence[Any], context: _Context) -> ColumnElement[bool]:
    query = sa.select(sa.literal_column("1")).select_from(from_).where(*where)
    return query.correlate(context.contact).exists()


def _at_least(
    minimum: int,
    count: ColumnElement[int],
    from_: FromClause,
    owner: Any,
    where: Sequence[Any],
    context: _Context,
) -> ColumnElement[bool]:
    """At least `minimum` of the rows (`count` counts them) whose `owner` is the contact.

    One: a correlated EXISTS. More: EXISTS over the owners grouped with HAVING, so that
    PostgreSQL aggregates once and semi-joins at the top level, and pushes the contact into
    the grouped subquery (an index probe) under OR/NOT; a correlated count(*) would be
    evaluated contact by contact (measured ~3x slower on 100 000 contacts).
    """
    if minimum == 1:
        return _exists(from_, [owner == context.contact.c.contact_id, *where], context)
    owners = (
        sa.select(owner.label("owner"))
        .select_from(from_)
        .where(*where)
        .group_by(owner)
        .having(count >= minimum)
        .subquery("counted")
    )
    return _exists(owners, [owners.c.owner == context.contact.c.contact_id], context)


def _since(column: Any, within: Duration | None, context: _Context) -> list[Any]:
    """`column` before the cut-off, and inside the window when there is one."""
    conditions = [column < context.cutoff]
    if within is not None:
        conditions.append(column >= window_start(context.as_of, within))
    return conditions


# --- behaviour -------------------------------------------------------------------------


@dataclass(frozen=True)
class _EventMatch:
    """Which human events a behaviour condition looks for, and how many it needs."""

    event_types: tuple[str, ...]
    within: Duration | None
    narrowed_by: Callable[[Any], list[Any]] = lambda event: []
    min_count: int = 1


def _event_where(match: _EventMatch, event: Any, context: _Context) -> list[Any]:
    """The human events of `match` before the cut-off (and in its window)."""
    types = match.event_types
    by_type = event.c.event_type == types[0] if len(types) == 1 else event.c.event_type.in_(types)
    return [
        by_type,
        *_since(event.c.occurred_at, match.within, context),
        event.c.is_machine == sa.false(),
        *match.narrowed_by(event),
    ]


def _events_meeting(
    minimum: int, condition: Callable[[Alias], ColumnElement[bool]], context: _Context
) -> ColumnElement[bool]:
    """At least `minimum` events of the contact meet `condition` (built over an events alias):
    counted in the shared table when compiling for one, else read from the events."""
    if context.event_counts is not None:
        shared = context.event_counts
        return shared.at_least(minimum, condition(shared.event), context)
    event = context.tables.events.alias("event")
    count = sa.func.count()
    return _at_least(minimum, count, event, event.c.contact_id, [condition(event)], context)


def _human_events(match: _EventMatch, context: _Context) -> ColumnElement[bool]:
    """At least `min_count` human events of the match."""

    def matching(event: Alias) -> ColumnElement[bool]:
        return sa.and_(*_event_where(match, event, context))

    return _events_meeting(match.min_count, matching, context)


def _any_human_event(context: _Context, matches: Sequence[_EventMatch]) -> ColumnElement[bool]:
    """One human event of any of the matches (each needing one)."""

    def either(event: Alias) -> ColumnElement[bool]:
        return sa.or_(*(sa.and_(*_event_where(match, event, context)) for match in matches))

    return _events_meeting(1, either, context)


def _opened_match(spec: OpenedSpec) -> _EventMatch:
    def narrowed(event: Any) -> list[Any]:
        return [] if spec.mailing is None else [event.c.mailing_id == spec.mailing]

    return _EventMatch(("email_open",), spec.within, narrowed)


def _clicked_match(spec: ClickedSpec) -> _EventMatch:
    def narrowed(event: Any) -> list[Any]:
        conditions = []
        if spec.link is not None:
            conditions.append(event.c.link_id == spec.link)
        if spec.tag is not None:
            conditions.append(event.c.link_tag == spec.tag)
        if spec.mailing is not None:
            conditions.append(event.c.mailing_id == spec.mailing)
        return conditions

    return _EventMatch(("email_click",), spec.within, narrowed)


def _downloaded_match(spec: DownloadedSpec) -> _EventMatch:
    def narrowed(event: Any) -> list[Any]:
        return [] if spec.asset is None else [event.c.asset_id == spec.asset]

    return _EventMatch(("download",), spec.within, narrowed)


def _visited_match(spec: VisitedSpec) -> _EventMatch:
    return _EventMatch(
        ("web_visit",), spec.within, lambda event: [url_matches(event.c.url, spec.url_pattern)]
    )


def _events_match(spec: EventsSpec) -> _EventMatch:
    return _EventMatch((spec.type,), spec.within, min_count=spec.min_count)


def _event_match(node: FilterNode) -> _EventMatch | None:
    """The events a behaviour condition looks for; None for any other condition."""
    if isinstance(node, Opened):
        return _opened_match(node.opened)
    if isinstance(node, Clicked):
        return _clicked_match(node.clicked)
    if isinstance(node, Downloaded):
        return _downloaded_match(node.downloaded)
    if isinstance(node, Visited):
        return _visited_match(node.visited)
    if isinstance(node, Events):
        return _events_match(node.events)
    return None


def _single_event(node: FilterNode) -> _EventMatch | None:
    """The match of a condition that one human event satisfies; None otherwise."""
    match = _event_match(node)
    return match if match is not None and match.min_count == 1 else None


def _behaviour(node: FilterNode, context: _Context) -> ColumnElement[bool]:
    match = _event_match(node)
    if match is None:  # registered for the behaviour conditions only
        raise TypeError(f"not a behaviour condition: {node!r}")
    return _human_events(match, context)


def glob_to_like(pattern: str) -> str:
    """A `*` glob as a LIKE pattern with `\\` as the escape: `%`, `_`, `\\` stay literal."""
    escaped = []
    for character in pattern:
        if character == "*":
            escaped.append("%")
        elif character in ("%", "_", _LIKE_ESCAPE):
            escaped.append(_LIKE_ESCAPE + character)
        else:
            escaped.append(character)
    return "".join(escaped)


def url_matches(url: Any, pattern: str) -> ColumnElement[bool]:
    """`url` (a column) matches the glob `pattern`: by path if it starts with `/`."""
    like = glob_to_like(pattern)
    if not pattern.startswith("/"):
        return sa.and_(url.is_not(None), url.like(like, escape=_LIKE_ESCAPE))
    conditions = [url.is_not(None)]
    # The path is the end of the URL, or `/` when nothing follows the host: unless the pattern
    # matches `/`, a URL whose path matches also matches `%` + pattern, a test much cheaper
    # than the regular expression that cuts the path out (migration 0012 does the same).
    if pattern.replace("*", "") != "/":
        conditions.append(url.like("%" + like, escape=_LIKE_ESCAPE))
    path = sa.func.regexp_replace(url, _SCHEME_AND_HOST, "")
    conditions.append(
        sa.func.coalesce(sa.func.nullif(path, ""), "/").like(like, escape=_LIKE_ESCAPE)
    )
    return sa.and_(*conditions)


def _inactive(node: Inactive, context: _Context) -> ColumnElement[bool]:
    window = Duration(amount=node.inactive.days, unit="d")
    return sa.not_(_human_events(_EventMatch(ACTIVITY_EVENT_TYPES, window), context))


# --- purchases -------------------------------------------------------------------------


def _won(order: Any, context: _Context) -> list[Any]:
    return [order.c.status == "won", order.c.ordered_at < context.cutoff]


def _won_orders(order: Any, context: _Context) -> list[Any]:
    """The contact's won orders before the cut-off."""
    return [order.c.contact_id == context.contact.c.contact_id, *_won(order, context)]


def _with_product(
    order: Any, product: str | None, family: str | None, context: _Context
) -> tuple[FromClause, list[Any]]:
    """Orders joined to the items (and products) that narrow them to a product or family."""
    if product is None and family is None:
        return order, []
    item = context.tables.order_items.alias("item")
    joined = order.join(item, item.c.order_id == order.c.order_id)
    if product is not None:
        return joined, [item.c.product_id == product]
    catalogue = context.tables.products.alias("product")
    joined = joined.join(catalogue, catalogue.c.product_id == item.c.product_id)
    return joined, [catalogue.c[context.tables.product_family_column] == family]


def _purchased(node: Purchased, context: _Context) -> ColumnElement[bool]:
    spec = node.purchased
    order = context.tables.orders.alias("purchase_order")
    from_, narrowing = _with_product(order, spec.product, spec.family, context)
    where = [*_won(order, context), *narrowing]
    if spec.within is not None:
        where.append(order.c.ordered_at >= window_start(context.as_of, spec.within))
    if spec.before is not None:
        where.append(order.c.ordered_at < start_of_day(spec.before.resolve(context.as_of)))
    if spec.after is not None:
        where.append(order.c.ordered_at >= start_of_day(spec.after.resolve(context.as_of)))
    orders = sa.func.count(sa.distinct(order.c.order_id))
    return _at_least(spec.min_count, orders, from_, order.c.contact_id, where, context)


def _last_purchase(node: LastPurchase, context: _Context) -> ColumnElement[bool]:
    spec = node.last_purchase
    latest_order = context.tables.orders.alias("latest_order")
    latest = (
        sa.select(sa.func.max(latest_order.c.ordered_at))
        .where(*_won_orders(latest_order, context))
        .correlate(context.contact)
        .scalar_subquery()
    )
    order = context.tables.orders.alias("purchase_order")
    from_, narrowing = _with_product(order, spec.product, spec.family, context)
    where = [*_won_orders(order, context), order.c.ordered_at == latest, *narrowing]
    return _exists(from_, where, context)


# --- installed base --------------------------------------------------------------------


def _installed(
    context: _Context,
    product: str | None,
    family: str | None,
    narrowed_by: Callable[[Any], list[Any]] = lambda installation: [],
) -> ColumnElement[bool]:
    """An installation of the contact's account or naming the contact, installed by D."""

    def belonging(owner: Callable[[Any], Any]) -> ColumnElement[bool]:
        installation = context.tables.installed_base.alias("installation")
        from_: FromClause = installation
        where = [
            owner(installation),
            installation.c.installed_on <= context.as_of,
            *narrowed_by(installation),
        ]
        if product is not None:
            where.append(installation.c.product_id == product)
        if family is not None:
            catalogue = context.tables.products.alias("product")
            from_ = installation.join(
                catalogue, catalogue.c.product_id == installation.c.product_id
            )
            where.append(catalogue.c[context.tables.product_family_column] == family)
        return _exists(from_, where, context)

    contact = context.contact
    # Two EXISTS, each served by its own index (account_id, contact_id), rather than one
    # EXISTS with an OR inside that no single index serves.
    return sa.or_(
        belonging(lambda installation: installation.c.account_id == contact.c.account_id),
        belonging(lambda installation: installation.c.contact_id == contact.c.contact_id),
    )


def _owns(node: Owns, context: _Context) -> ColumnElement[bool]:
    return _installed(context, node.owns.product, node.owns.family)


def _maintenance_due(node: MaintenanceDue, context: _Context) -> ColumnElement[bool]:
    spec = node.maintenance_due
    low, high = (bound.resolve(context.as_of) for bound in spec.between)

    def due(installation: Any) -> list[Any]:
        return [installation.c.next_maintenance_date.between(low, high)]

    return _installed(context, spec.product, spec.family, due)


_COMPILERS: dict[type, Callable[[Any, _Context], ColumnElement[bool]]] = {
    AllOf: _all,
    AnyOf: _any,
    Not: _not,
    InSegment: _in_segment,
    FieldCondition: _field,
    Purchased: _purchased,
    LastPurchase: _last_purchase,
    Opened: _behaviour,
    Clicked: _behaviour,
    Downloaded: _behaviour,
    Visited: _behaviour,
    Events: _behaviour,
    Inactive: _inactive,
    Owns: _owns,
    MaintenanceDue: _maintenance_due,
}

__all__ = [
    "ACTIVITY_EVENT_TYPES",
    "DEFAULT_RELATIONS",
    "MAX_SEGMENT_DEPTH",
    "RAW_RELATIONS",
    "FilterError",
    "Relations",
    "compile_filter",
    "contact_row",
    "execute_literal_sql",
    "glob_to_like",
    "literal_sql",
    "render_sql",
    "segment_query",
    "url_matches",
]
