"""Property: for random small datasets and random filter trees, the compiled SQL gives every
contact the same true/false as an independent pure-Python reading of the filter language.

The reference below is written from the semantics in SPEC §2 and docs/segments.md, not from
the compiler. It also checks two-valued logic: the SQL predicate is selected as a column and
must be exactly true or false (never NULL) for every contact.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow.config import filters as f
from leadflow.segments import SharedEventCounts, compile_filter, contact_row
from tests.leadflow.segments.data import (
    FAMILY,
    PRODUCTS,
    TEST_RELATIONS,
    add_contacts,
    add_events,
    add_installations,
    parse_filter,
)

UTC = dt.UTC
MICROSECOND = dt.timedelta(microseconds=1)
CONTACT_IDS = ["c0", "c1", "c2", "c3", "c4"]
# Month ends and a leap day make calendar windows clamp.
AS_OFS = [dt.date(2025, 6, 30), dt.date(2025, 3, 31), dt.date(2024, 2, 29), dt.date(2025, 1, 31)]
WINDOWS = ["1d", "30d", "2w", "1m", "1y"]
RELATIVE_DATES = ["-30d", "-1m", "+0d", "2025-01-01", "+1y"]
DATE_PAIRS = [("-30d", "+0d"), ("-1m", "-1m"), ("+0d", "+1y"), ("2025-01-01", "+0d")]
INACTIVE_DAYS = [1, 30, 31]
EVENT_TYPES = [
    "email_open", "email_click", "download", "web_visit", "fair_visit", "form_submit",
    "email_sent", "purchase",
]  # fmt: skip
ACTIVITY = {
    "email_open", "email_click", "download", "form_submit", "web_visit", "fair_visit", "purchase",
}  # fmt: skip
URLS = [
    None,
    "https://x.de/produkte/hs3000",
    "https://x.de/preise?a=1",
    "/produkte/hs2000",
    "https://x.de",
    "https://x.de/50%_off",
    "https://x.de/50x_off",
]
URL_PATTERNS = ["/produkte/*", "*/preise*", "/", "*50%_off", "https://x.de*", "/produkte/hs2000"]

# --- the reference semantics -----------------------------------------------------------


def _months_later(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _shifted(day: dt.date, amount: int, unit: str) -> dt.date:
    if unit == "d":
        return day + dt.timedelta(days=amount)
    if unit == "w":
        return day + dt.timedelta(days=7 * amount)
    return _months_later(day, amount if unit == "m" else 12 * amount)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


def _resolve(relative: Any, as_of: dt.date) -> dt.date:
    if relative.absolute is not None:
        return relative.absolute
    return _shifted(as_of, relative.amount, relative.unit)


def _parse_relative(text: str, as_of: dt.date) -> dt.date:
    match = re.fullmatch(r"([+-])(\d+)([dwmy])", text)
    if match is None:
        return dt.date.fromisoformat(text)
    amount = int(match.group(2)) * (-1 if match.group(1) == "-" else 1)
    return _shifted(as_of, amount, match.group(3))


def _first_instant(as_of: dt.date, window: Any) -> dt.datetime:
    """Start of "within window": the day after as_of − window, 00:00 UTC."""
    return _midnight(_shifted(as_of, -window.amount, window.unit) + dt.timedelta(days=1))


@dataclass
class World:
    as_of: dt.date
    contacts: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    installations: list[dict[str, Any]] = field(default_factory=list)
    segments: dict[str, Any] = field(default_factory=dict)

    @property
    def cutoff(self) -> dt.datetime:
        return _midnight(self.as_of + dt.timedelta(days=1))


def _compare(op: str, actual: Any, wanted: Any) -> bool:
    if op == "=":
        return actual == wanted
    if op == "!=":
        return actual != wanted
    if op == "<":
        return actual < wanted
    if op == "<=":
        return actual <= wanted
    if op == ">":
        return actual > wanted
    if op == ">=":
        return actual >= wanted
    if op == "in":
        return actual in wanted
    if op == "not_in":
        return actual not in wanted
    if op == "between":
        return wanted[0] <= actual <= wanted[1]
    if op == "contains":
        return wanted.lower() in actual.lower()
    assert op == "starts_with"
    return actual.lower().startswith(wanted.lower())


def _field_holds(node: f.FieldCondition, contact: dict[str, Any], world: World) -> bool:
    kind = node.spec.type
    actual = contact.get(node.field)
    if kind == "text_array":
        if node.op == "is_null":
            return not actual
        if node.op == "is_not_null":
            return bool(actual)
        if actual is None:
            return False
        if node.op == "contains":
            return node.value in actual
        shares = any(item in actual for item in node.value)
        return shares if node.op == "in" else not shares
    if node.op == "is_null":
        return actual is None
    if node.op == "is_not_null":
        return actual is not None
    if actual is None:
        return False
    wanted = node.value
    if kind in ("date", "timestamp"):
        many = isinstance(wanted, list)
        wanted = [_resolve(item, world.as_of) for item in (wanted if many else [wanted])]
        wanted = wanted if many else wanted[0]
    if kind == "timestamp":
        actual = actual.astimezone(UTC).date()  # a timestamp compares by its UTC date
    if node.field == "email":
        wanted = [w.strip().lower() for w in wanted] if isinstance(wanted, list) else wanted
        wanted = wanted.strip().lower() if isinstance(wanted, str) else wanted
    return _compare(node.op, actual, wanted)


def _human_events(world, contact, types, window, keep=lambda event: True) -> list[dict]:
    start = None if window is None else _first_instant(world.as_of, window)
    return [
        event
        for event in world.events
        if event["contact_id"] == contact["contact_id"]
        and event["event_type"] in types
        and not event["is_machine"]
        and event["occurred_at"] < world.cutoff
        and (start is None or event["occurred_at"] >= start)
        and keep(event)
    ]


def _url_matches(url: str | None, pattern: str) -> bool:
    if url is None:
        return False
    target = url
    if pattern.startswith("/"):
        host = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*", url)
        target = (url[host.end() :] if host else url) or "/"
    regex = "".join(".*" if character == "*" else re.escape(character) for character in pattern)
    return re.fullmatch(regex, target, flags=re.DOTALL) is not None


def _order_has(order: dict, product: str | None, family: str | None) -> bool:
    if product is not None:
        return product in order["items"]
    if family is not None:
        return any(FAMILY[item] == family for item in order["items"])
    return True


def _won_orders(world: World, contact: dict) -> list[dict]:
    return [
        order
        for order in world.orders
        if order["contact_id"] == contact["contact_id"]
        and order["status"] == "won"
        and order["ordered_at"] < world.cutoff
    ]


def _purchased(spec: f.PurchasedSpec, contact: dict, world: World) -> bool:
    orders = [o for o in _won_orders(world, contact) if _order_has(o, spec.product, spec.family)]
    if spec.within is not None:
        start = _first_instant(world.as_of, spec.within)
        orders = [o for o in orders if o["ordered_at"] >= start]
    if spec.before is not None:
        end = _midnight(_resolve(spec.before, world.as_of))
        orders = [o for o in orders if o["ordered_at"] < end]
    if spec.after is not None:
        start = _midnight(_resolve(spec.after, world.as_of))
        orders = [o for o in orders if o["ordered_at"] >= start]
    return len({o["order_id"] for o in orders}) >= spec.min_count


def _last_purchase(spec: f.ProductRef, contact: dict, world: World) -> bool:
    orders = _won_orders(world, contact)
    if not orders:
        return False
    latest = max(order["ordered_at"] for order in orders)
    return any(
        _order_has(order, spec.product, spec.family)
        for order in orders
        if order["ordered_at"] == latest
    )


def _installations(world, contact, product, family) -> list[dict]:
    return [
        row
        for row in world.installations
        if (
            (contact.get("account_id") is not None and row["account_id"] == contact["account_id"])
            or row["contact_id"] == contact["contact_id"]
        )
        and row["installed_on"] <= world.as_of
        and (product is None or row["product_id"] == product)
        and (family is None or FAMILY[row["product_id"]] == family)
    ]


def holds(node: Any, contact: dict[str, Any], world: World) -> bool:
    """Does `contact` satisfy `node` in `world`? (the reference semantics)"""
    if isinstance(node, f.AllOf):
        return all(holds(child, contact, world) for child in node.conditions)
    if isinstance(node, f.AnyOf):
        return any(holds(child, contact, world) for child in node.conditions)
    if isinstance(node, f.Not):
        return not holds(node.condition, contact, world)
    if isinstance(node, f.InSegment):
        return holds(world.segments[node.segment], contact, world)
    if isinstance(node, f.FieldCondition):
        return _field_holds(node, contact, world)
    if isinstance(node, f.Purchased):
        return _purchased(node.purchased, contact, world)
    if isinstance(node, f.LastPurchase):
        return _last_purchase(node.last_purchase, contact, world)
    if isinstance(node, f.Owns):
        return bool(_installations(world, contact, node.owns.product, node.owns.family))
    if isinstance(node, f.MaintenanceDue):
        spec = node.maintenance_due
        low, high = (_resolve(bound, world.as_of) for bound in spec.between)
        rows = _installations(world, contact, spec.product, spec.family)
        return any(
            row["next_maintenance_date"] is not None and low <= row["next_maintenance_date"] <= high
            for row in rows
        )
    if isinstance(node, f.Opened):
        spec = node.opened
        return bool(
            _human_events(
                world,
                contact,
                {"email_open"},
                spec.within,
                lambda event: spec.mailing is None or event["mailing_id"] == spec.mailing,
            )
        )
    if isinstance(node, f.Clicked):
        spec = node.clicked

        def wanted_click(event: dict) -> bool:
            return (
                (spec.link is None or event["link_id"] == spec.link)
                and (spec.tag is None or event["link_tag"] == spec.tag)
                and (spec.mailing is None or event["mailing_id"] == spec.mailing)
            )

        return bool(_human_events(world, contact, {"email_click"}, spec.within, wanted_click))
    if isinstance(node, f.Downloaded):
        spec = node.downloaded
        return bool(
            _human_events(
                world,
                contact,
                {"download"},
                spec.within,
                lambda event: spec.asset is None or event["asset_id"] == spec.asset,
            )
        )
    if isinstance(node, f.Visited):
        spec = node.visited
        return bool(
            _human_events(
                world,
                contact,
                {"web_visit"},
                spec.within,
                lambda event: _url_matches(event["url"], spec.url_pattern),
            )
        )
    if isinstance(node, f.Events):
        spec = node.events
        return len(_human_events(world, contact, {spec.type}, spec.within)) >= spec.min_count
    if isinstance(node, f.Inactive):
        start = _midnight(world.as_of - dt.timedelta(days=node.inactive.days - 1))
        return not any(
            event["contact_id"] == contact["contact_id"]
            and event["event_type"] in ACTIVITY
            and not event["is_machine"]
            and start <= event["occurred_at"] < world.cutoff
            for event in world.events
        )
    raise AssertionError(f"no reference for {node!r}")


# --- random filters --------------------------------------------------------------------

FIELD_VALUES: dict[str, list[Any]] = {
    "country": ["DE", "AT", "FR", "de"],
    "first_name": ["ann", "AN", "a_b", "50%", "Hans", "x"],
    "email": ["C1@example.com", " c2@example.com "],
    "customer_status": ["lead", "new_customer", "existing_customer"],
    "order_count": [0, 1, 2, 3],
    "annual_revenue": [0, 2.5, 1000, 20000.5],
    "last_purchase_date": RELATIVE_DATES,
    "created_at": RELATIVE_DATES,
    "is_mql": [True, False],
    "tags": ["vip", "fair", "other"],
}
FIELD_TYPES = {
    "country": "text", "first_name": "text", "email": "text", "customer_status": "enum",
    "order_count": "integer", "annual_revenue": "numeric", "last_purchase_date": "date",
    "created_at": "timestamp", "is_mql": "boolean", "tags": "text_array",
}  # fmt: skip
OPERATORS = {
    "text": ["=", "!=", "in", "not_in", "contains", "starts_with", "is_null", "is_not_null"],
    "enum": ["=", "!=", "in", "not_in", "is_null", "is_not_null"],
    "integer": ["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "between", "is_null"],
    "numeric": ["=", "!=", "<", ">=", "in", "not_in", "between", "is_not_null"],
    "date": ["=", "!=", "<", "<=", ">", ">=", "between", "is_null"],
    "timestamp": ["=", "!=", "<", "<=", ">", ">=", "between", "is_not_null"],
    "boolean": ["=", "!=", "is_null", "is_not_null"],
    "text_array": ["contains", "in", "not_in", "is_null", "is_not_null"],
}
PRODUCT_IDS = [product for product, _ in PRODUCTS[:5]]
FAMILIES = sorted(set(FAMILY.values()))


@st.composite
def field_conditions(draw) -> dict:
    name = draw(st.sampled_from(sorted(FIELD_VALUES)))
    kind = FIELD_TYPES[name]
    op = draw(st.sampled_from(OPERATORS[kind]))
    condition: dict[str, Any] = {"field": name, "op": op}
    pool = FIELD_VALUES[name]
    if op in ("in", "not_in"):
        condition["value"] = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2))
    elif op == "between" and kind in ("date", "timestamp"):
        condition["value"] = list(draw(st.sampled_from(DATE_PAIRS)))
    elif op == "between":
        condition["value"] = sorted(draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2)))
    elif op not in ("is_null", "is_not_null"):
        condition["value"] = draw(st.sampled_from(pool))
    return condition


def _optional(strategy):
    return st.none() | strategy


def _spec(**parts) -> st.SearchStrategy[dict]:
    """A mapping strategy that leaves out the keys whose value came out None."""
    return st.fixed_dictionaries(parts).map(
        lambda drawn: {key: value for key, value in drawn.items() if value is not None}
    )


windows = _optional(st.sampled_from(WINDOWS))
product_refs = st.one_of(
    st.sampled_from(PRODUCT_IDS).map(lambda product: {"product": product}),
    st.sampled_from(FAMILIES).map(lambda family: {"family": family}),
)
purchase_specs = st.one_of(
    _spec(product=_optional(st.sampled_from(PRODUCT_IDS)), within=windows,
          min_count=st.integers(1, 2)),
    _spec(family=_optional(st.sampled_from(FAMILIES)),
          before=_optional(st.sampled_from(RELATIVE_DATES)),
          after=_optional(st.sampled_from(RELATIVE_DATES)),
          min_count=st.integers(1, 2)),
)  # fmt: skip


def leaves(segment_names: list[str]) -> st.SearchStrategy[dict]:
    kinds = [
        field_conditions(),
        field_conditions(),
        purchase_specs.map(lambda spec: {"purchased": spec}),
        product_refs.map(lambda ref: {"last_purchase": ref}),
        _spec(mailing=_optional(st.sampled_from(["m1", "m2"])), within=windows).map(
            lambda spec: {"opened": spec}
        ),
        st.one_of(
            _spec(link=_optional(st.sampled_from(["l1", "l2"]))),
            _spec(tag=_optional(st.sampled_from(["t1", "t2"]))),
        ).flatmap(
            lambda base: _spec(mailing=_optional(st.sampled_from(["m1"])), within=windows).map(
                lambda rest: {"clicked": {**base, **rest}}
            )
        ),
        _spec(asset=_optional(st.sampled_from(["ebook", "datasheet"])), within=windows).map(
            lambda spec: {"downloaded": spec}
        ),
        _spec(url_pattern=st.sampled_from(URL_PATTERNS), within=windows).map(
            lambda spec: {"visited": spec}
        ),
        _spec(type=st.sampled_from(EVENT_TYPES), min_count=st.integers(1, 3), within=windows).map(
            lambda spec: {"events": spec}
        ),
        st.sampled_from(INACTIVE_DAYS).map(lambda days: {"inactive": {"days": days}}),
        product_refs.map(lambda ref: {"owns": ref}),
        st.tuples(_optional(product_refs), st.sampled_from(DATE_PAIRS)).map(
            lambda drawn: {"maintenance_due": {**(drawn[0] or {}), "between": list(drawn[1])}}
        ),
    ]
    if segment_names:
        kinds.append(st.sampled_from(segment_names).map(lambda name: {"segment": name}))
    return st.one_of(kinds)


def filter_trees(segment_names: list[str]) -> st.SearchStrategy[dict]:
    return st.recursive(
        leaves(segment_names),
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda items: {"all": items}),
            st.lists(children, min_size=1, max_size=3).map(lambda items: {"any": items}),
            children.map(lambda child: {"not": child}),
        ),
        max_leaves=6,
    )


# --- random data -----------------------------------------------------------------------


def _instants(as_of: dt.date) -> list[dt.datetime]:
    """Moments on and next to every edge a filter can draw for `as_of`."""
    cutoff = _midnight(as_of + dt.timedelta(days=1))
    edges = [cutoff]
    for window in WINDOWS:
        amount, unit = int(window[:-1]), window[-1]
        edges.append(_midnight(_shifted(as_of, -amount, unit) + dt.timedelta(days=1)))
    edges += [_midnight(as_of - dt.timedelta(days=days - 1)) for days in INACTIVE_DAYS]
    edges += [_midnight(_parse_relative(text, as_of)) for text in RELATIVE_DATES]
    moments = {edge + delta for edge in edges for delta in (-MICROSECOND, dt.timedelta(0))}
    # Inside a day, so timestamps compared with a date tell "<= day" from "<= midnight".
    moments |= {edge + dt.timedelta(hours=12) for edge in edges}
    moments |= {cutoff - dt.timedelta(days=3, hours=12), cutoff + dt.timedelta(hours=1)}
    # The cut-off itself is the edge every behaviour and purchase condition has: draw it often.
    return sorted(moments) + [cutoff - MICROSECOND, cutoff] * 4


def _field_timestamps(as_of: dt.date) -> list[dt.datetime]:
    """Moments around the days a timestamp field is compared with (the relative dates)."""
    days = [_midnight(_parse_relative(text, as_of)) for text in RELATIVE_DATES]
    deltas = (-MICROSECOND, dt.timedelta(0), dt.timedelta(hours=12))
    return sorted({day + delta for day in days for delta in deltas})


def _dates(as_of: dt.date) -> list[dt.date]:
    days = {as_of + dt.timedelta(days=offset) for offset in (-400, -31, -30, -29, -1, 0, 1, 366)}
    for text in RELATIVE_DATES:
        day = _parse_relative(text, as_of)
        days |= {day - dt.timedelta(days=1), day, day + dt.timedelta(days=1)}
    return sorted(days)


@st.composite
def worlds(draw) -> World:
    as_of = draw(st.sampled_from(AS_OFS))
    instants, dates = st.sampled_from(_instants(as_of)), st.sampled_from(_dates(as_of))
    contacts = [
        {
            "contact_id": contact_id,
            "email": f"{contact_id}@example.com",
            "country": draw(st.sampled_from([None, "DE", "AT", "FR"])),
            "first_name": draw(
                st.sampled_from([None, "Anna", "JOHANNA", "a_b", "50% off", "Hans"])
            ),
            "customer_status": draw(
                st.sampled_from([None, "lead", "new_customer", "existing_customer"])
            ),
            "order_count": draw(st.sampled_from([None, 0, 1, 2, 3])),
            "annual_revenue": draw(
                st.sampled_from([None, Decimal("0"), Decimal("2.5"), Decimal("20000.50")])
            ),
            "last_purchase_date": draw(_optional(dates)),
            "created_at": draw(_optional(st.sampled_from(_field_timestamps(as_of)))),
            "is_mql": draw(st.sampled_from([None, True, False])),
            "tags": draw(st.sampled_from([None, [], ["vip"], ["fair"], ["vip", "fair"]])),
            "account_id": draw(st.sampled_from([None, "a0", "a1", "a2"])),
        }
        for contact_id in CONTACT_IDS
    ]
    # Mostly known contacts: an anonymous event or order belongs to nobody.
    someone = st.sampled_from([*CONTACT_IDS, *CONTACT_IDS, None])
    events = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "contact_id": someone,
                    "event_type": st.sampled_from(EVENT_TYPES),
                    "occurred_at": instants,
                    "is_machine": st.sampled_from([False, False, True]),
                    "mailing_id": st.sampled_from([None, "m1", "m2"]),
                    "link_id": st.sampled_from([None, "l1", "l2"]),
                    "link_tag": st.sampled_from([None, "t1", "t2"]),
                    "asset_id": st.sampled_from([None, "ebook", "datasheet"]),
                    "url": st.sampled_from(URLS),
                }
            ),
            min_size=8,
            max_size=30,
        )
    )
    orders = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "contact_id": someone,
                    "ordered_at": instants,
                    "status": st.sampled_from(["won", "won", "cancelled"]),
                    "items": st.lists(st.sampled_from(PRODUCT_IDS), max_size=2),
                }
            ),
            min_size=2,
            max_size=10,
        )
    )
    for number, order in enumerate(orders):
        order["order_id"] = f"o{number}"
    installations = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "account_id": st.sampled_from(["a0", "a1", "a2", "a9"]),
                    "contact_id": someone,
                    "product_id": st.sampled_from(PRODUCT_IDS),
                    "installed_on": dates,
                    "next_maintenance_date": _optional(dates),
                }
            ),
            min_size=1,
            max_size=8,
        )
    )
    return World(as_of, contacts, events, orders, installations)


FILTERS_PER_WORLD = 8


@st.composite
def cases(draw) -> tuple[World, list[Any]]:
    """A world and several filters to check on it (one database round per world)."""
    world = draw(worlds())
    # seg_a stands alone; seg_b may use seg_a; the filters may use both.
    world.segments = {"seg_a": parse_filter(draw(filter_trees([])))}
    world.segments["seg_b"] = parse_filter(draw(filter_trees(["seg_a"])))
    trees = st.lists(
        filter_trees(["seg_a", "seg_b"]), min_size=FILTERS_PER_WORLD, max_size=FILTERS_PER_WORLD
    )
    return world, [parse_filter(tree) for tree in draw(trees)]


def _load(connection, world: World) -> None:
    """The world's rows, a few statements in all (one executemany per table)."""
    add_contacts(connection, *world.contacts)
    if world.events:
        add_events(connection, *world.events)
    if world.orders:
        connection.execute(
            sa.text(
                "insert into raw.orders (order_id, contact_id, ordered_at, status, net_amount) "
                "values (:order_id, :contact_id, :ordered_at, :status, 1)"
            ),
            [{key: order[key] for key in ORDER_COLUMNS} for order in world.orders],
        )
    items = [
        {"order_id": order["order_id"], "line_no": line, "product_id": product}
        for order in world.orders
        for line, product in enumerate(order["items"], start=1)
    ]
    if items:
        connection.execute(
            sa.text(
                "insert into raw.order_items (order_id, line_no, product_id, quantity, net_amount) "
                "values (:order_id, :line_no, :product_id, 1, 1)"
            ),
            items,
        )
    if world.installations:
        add_installations(connection, *world.installations)


ORDER_COLUMNS = ("order_id", "contact_id", "ordered_at", "status")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_sql_agrees_with_the_reference_semantics(segments_engine, case):
    _check_against_the_reference(segments_engine, case, event_counts=None)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_one_shared_pass_over_the_events_agrees_too(segments_engine, case):
    # The nightly materialisation's form: every behaviour condition of all the filters
    # counted in one aggregate over the events (SharedEventCounts).
    _check_against_the_reference(
        segments_engine, case, event_counts=SharedEventCounts(TEST_RELATIONS)
    )


def _check_against_the_reference(segments_engine, case, event_counts):
    world, nodes = case
    contact = contact_row(TEST_RELATIONS)
    predicates = [
        compile_filter(
            node,
            as_of=world.as_of,
            relations=TEST_RELATIONS,
            segments=world.segments,
            event_counts=event_counts,
        )
        for node in nodes
    ]
    # Each filter's predicate as a column: true or false per contact, never NULL.
    query = sa.select(
        contact.c.contact_id, *(p.label(f"f{index}") for index, p in enumerate(predicates))
    )
    with segments_engine.connect() as connection:
        transaction = connection.begin()
        try:
            _load(connection, world)
            if event_counts is not None:
                event_counts.create(connection)
            rows = {row[0]: list(row[1:]) for row in connection.execute(query)}
        finally:
            transaction.rollback()
    for index, node in enumerate(nodes):
        verdicts = {contact_id: values[index] for contact_id, values in rows.items()}
        expected = {person["contact_id"]: holds(node, person, world) for person in world.contacts}
        assert verdicts == expected, f"filter {index}: {node!r}"
