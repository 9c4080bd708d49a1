"""all / any / not, nested segments, and the errors a filter can raise at compile time."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from leadflow.config.filters import Clicked, ClickedSpec, FieldCondition
from leadflow.config.models import ProfileRule
from leadflow.errors import LeadflowError
from leadflow.segments import FilterError, compile_filter, segment_query
from leadflow.segments.compiler import MAX_SEGMENT_DEPTH
from tests.leadflow.segments.data import (
    TEST_RELATIONS,
    add_contacts,
    add_events,
    at,
    members,
    parse_filter,
)

D = dt.date(2025, 6, 30)


@pytest.fixture
def pool(db):
    add_contacts(
        db,
        {"contact_id": "de_lead", "country": "DE", "customer_status": "lead"},
        {"contact_id": "de_customer", "country": "DE", "customer_status": "existing_customer"},
        {"contact_id": "fr_lead", "country": "FR", "customer_status": "lead"},
        {"contact_id": "unknown", "country": None, "customer_status": None},
    )
    add_events(
        db, {"contact_id": "fr_lead", "event_type": "email_open", "occurred_at": at("2025-06-01")}
    )
    return db


DE = {"field": "country", "op": "=", "value": "DE"}
LEAD = {"field": "customer_status", "op": "=", "value": "lead"}
OPENED = {"opened": {}}


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"all": [DE, LEAD]}, {"de_lead"}),
        ({"any": [DE, OPENED]}, {"de_lead", "de_customer", "fr_lead"}),
        ({"not": OPENED}, {"de_lead", "de_customer", "unknown"}),
        # NOT (DE AND lead): the NULL country does not satisfy DE, so it is in.
        ({"not": {"all": [DE, LEAD]}}, {"de_customer", "fr_lead", "unknown"}),
        ({"not": {"any": [DE, LEAD]}}, {"unknown"}),
        ({"not": {"not": DE}}, {"de_lead", "de_customer"}),
        ({"all": [{"not": DE}, {"not": OPENED}]}, {"unknown"}),
        ({"any": [{"all": [DE, LEAD]}, {"all": [OPENED, LEAD]}]}, {"de_lead", "fr_lead"}),
    ],
)
def test_composition(pool, filter, expected):
    assert members(pool, filter, D) == expected


def test_nested_segments_are_inlined(pool):
    segments = {
        "dach": {"field": "country", "op": "in", "value": ["DE", "AT", "CH"]},
        "dach_leads": {"all": [{"segment": "dach"}, LEAD]},
    }
    assert members(pool, {"segment": "dach_leads"}, D, segments) == {"de_lead"}
    assert members(pool, {"not": {"segment": "dach"}}, D, segments) == {"fr_lead", "unknown"}


def _compile(filter, segments=None):
    nested = {name: parse_filter(value) for name, value in (segments or {}).items()}
    return compile_filter(parse_filter(filter), as_of=D, relations=TEST_RELATIONS, segments=nested)


def test_segment_cycle_is_an_error():
    segments = {"a": {"segment": "b"}, "b": {"any": [DE, {"segment": "a"}]}}
    with pytest.raises(FilterError, match="segments form a cycle: a → b → a"):
        _compile({"segment": "a"}, segments)


def test_unknown_segment_is_an_error_with_a_suggestion():
    with pytest.raises(FilterError, match=r"unknown segment 'custmers' \(did you mean 'customers'"):
        _compile({"segment": "custmers"}, {"customers": LEAD})
    assert issubclass(FilterError, LeadflowError)


def _chain(length):
    """Segments s1 → s2 → ... → s<length>, the last one a field comparison."""
    chain = {f"s{level}": {"segment": f"s{level + 1}"} for level in range(1, length)}
    chain[f"s{length}"] = DE
    return chain


def test_segment_depth_is_bounded():
    # Inlining MAX_SEGMENT_DEPTH segments along one chain is fine, one more is not.
    _compile({"segment": "s1"}, _chain(MAX_SEGMENT_DEPTH))
    with pytest.raises(FilterError, match=f"nest more than {MAX_SEGMENT_DEPTH} deep"):
        _compile({"segment": "s1"}, _chain(MAX_SEGMENT_DEPTH + 1))


def test_as_of_must_be_a_date():
    with pytest.raises(TypeError, match="as_of must be a date"):
        compile_filter(parse_filter(DE), as_of=dt.datetime(2025, 6, 30), relations=TEST_RELATIONS)


def test_filter_nodes_built_in_code_and_field_condition_subclasses_compile(pool):
    node = Clicked(clicked=ClickedSpec(tag="pricing"))
    assert members(pool, node, D) == set()
    rule = ProfileRule(field="country", op="=", value="FR", points=10)
    assert isinstance(rule, FieldCondition)
    assert members(pool, rule, D) == {"fr_lead"}


def test_not_over_any_is_one_not_exists_per_condition(pool):
    # NOT (EXISTS … OR EXISTS …) is a filter PostgreSQL runs contact by contact; each
    # NOT EXISTS of a top-level AND it can run as an anti-join.
    filter = {"not": {"owns": {"product": "HS3000"}}}
    sql = str(_compile(filter).compile(dialect=postgresql.dialect()))
    assert " OR " not in sql
    assert sql.count("NOT (EXISTS") == 2
    query = segment_query(parse_filter(filter), D, relations=TEST_RELATIONS)
    literal = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    plan = "\n".join(row[0] for row in pool.execute(sa.text(f"explain {literal}")))
    assert "Anti Join" in plan


def test_any_of_single_events_reads_the_events_once(pool):
    # Each contact matches exactly one branch; a machine click and a visit outside the
    # window match none. A count condition (2 opens) stays its own subquery.
    add_contacts(
        pool,
        *({"contact_id": name, "country": "DE"} for name in ("clicker", "visitor", "reader")),
        *({"contact_id": name, "country": "DE"} for name in ("bot", "old_visit", "opener")),
    )
    june = at("2025-06-10")
    add_events(
        pool,
        {
            "contact_id": "clicker",
            "event_type": "email_click",
            "link_tag": "hs3000",
            "occurred_at": june,
        },
        {
            "contact_id": "visitor",
            "event_type": "web_visit",
            "url": "https://x.example/hs3000/a",
            "occurred_at": june,
        },
        {
            "contact_id": "reader",
            "event_type": "download",
            "asset_id": "sheet",
            "occurred_at": june,
        },
        {
            "contact_id": "bot",
            "event_type": "email_click",
            "link_tag": "hs3000",
            "occurred_at": june,
            "is_machine": True,
        },
        {
            "contact_id": "old_visit",
            "event_type": "web_visit",
            "url": "https://x.example/hs3000/a",
            "occurred_at": at("2025-01-10"),
        },
        {"contact_id": "opener", "event_type": "email_open", "occurred_at": june},
        {"contact_id": "opener", "event_type": "email_open", "occurred_at": june},
    )
    filter = {
        "any": [
            {"clicked": {"tag": "hs3000", "within": "90d"}},
            {"visited": {"url_pattern": "/hs3000/*", "within": "90d"}},
            {"downloaded": {"asset": "sheet", "within": "90d"}},
            {"events": {"type": "email_open", "min_count": 2}},
            {"field": "customer_status", "op": "=", "value": "existing_customer"},
        ]
    }
    sql = str(_compile(filter).compile(dialect=postgresql.dialect()))
    assert sql.count("FROM raw.events") == 2  # the three single events, and the count
    assert members(pool, parse_filter(filter), D) == {
        "clicker",
        "visitor",
        "reader",
        "opener",
        "de_customer",
    }
    # under a not: one NOT EXISTS for the three, one for the count (anti-joins)
    negated = {"all": [DE, {"not": filter}]}
    assert str(_compile(negated).compile(dialect=postgresql.dialect())).count("NOT (EXISTS") == 2
    assert members(pool, parse_filter(negated), D) == {"de_lead", "bot", "old_visit"}
