"""Values from the configuration are data: bound parameters in queries, literals escaped by
SQLAlchemy in view definitions. Each hostile value matches exactly what it should, both ways,
and nothing else happens to the database."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from leadflow.segments import execute_literal_sql, literal_sql, segment_query
from tests.leadflow.segments.data import (
    TEST_RELATIONS,
    add_contacts,
    add_events,
    at,
    members,
    parse_filter,
)

D = dt.date(2025, 6, 30)
HOSTILE = [
    "O'Brien",
    "'; drop table raw.contacts; --",
    "' OR '1'='1",
    "back\\slash",
    "\\'",
    "\\",
    "100%",
    "%",
    "a_b",
    "_",
    "%(name)s",
    "%s",
    ":name",
    "$1",
    "$$dollar$$",
    '"double"',
    "E'\\x41'",
    "line\nbreak",
    "Ünïcødé",
    "🚀 rocket 👩‍🔧",
]
# Near misses: what a wildcard or a lost escape would wrongly match.
DISTRACTORS = ["O'Brian", "100x", "aXb", "backXslash", "anything", "x"]


@pytest.fixture
def hostile(db):
    names = {f"h{index}": value for index, value in enumerate(HOSTILE)}
    names |= {f"d{index}": value for index, value in enumerate(DISTRACTORS)}
    add_contacts(
        db,
        *(
            {"contact_id": key, "first_name": value, "tags": [value]}
            for key, value in names.items()
        ),
    )
    add_events(
        db,
        *(
            {
                "contact_id": key,
                "event_type": event_type,
                "occurred_at": at("2025-06-01"),
                "mailing_id": value,
                "link_tag": value,
                "url": value,
            }
            for key, value in names.items()
            for event_type in ("email_open", "email_click", "web_visit")
        ),
    )
    return db, names


def _via_view(connection, filter) -> set[str]:
    """Members through a view whose definition holds the values as literals."""
    query = segment_query(parse_filter(filter), D, relations=TEST_RELATIONS)
    execute_literal_sql(connection, f"create view public.hostile_view as {literal_sql(query)}")
    found = set(connection.exec_driver_sql("select contact_id from public.hostile_view").scalars())
    connection.exec_driver_sql("drop view public.hostile_view")
    return found


def _conditions(value: str) -> list[dict]:
    return [
        {"field": "first_name", "op": "=", "value": value},
        {"field": "first_name", "op": "in", "value": [value]},
        {"field": "tags", "op": "contains", "value": value},
        {"field": "tags", "op": "in", "value": [value]},
        {"opened": {"mailing": value}},
        {"clicked": {"tag": value}},
        {"visited": {"url_pattern": value}},  # no `*`: the whole URL, exactly
    ]


@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_hostile_values_match_exactly_themselves(hostile, index):
    db, _names = hostile
    value = HOSTILE[index]
    for condition in _conditions(value):
        assert members(db, condition, D) == {f"h{index}"}, condition
        assert _via_view(db, condition) == {f"h{index}"}, condition


@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_hostile_values_in_contains_and_starts_with(hostile, index):
    db, names = hostile
    value = HOSTILE[index]
    for op, matches in (("contains", str.__contains__), ("starts_with", str.startswith)):
        expected = {key for key, name in names.items() if matches(name.lower(), value.lower())}
        condition = {"field": "first_name", "op": op, "value": value}
        assert members(db, condition, D) == expected, condition
        assert _via_view(db, condition) == expected, condition


def test_the_database_is_untouched(hostile):
    db, names = hostile
    for value in HOSTILE:
        members(db, {"field": "first_name", "op": "=", "value": value}, D)
        _via_view(db, {"field": "first_name", "op": "contains", "value": value})
    assert db.exec_driver_sql("select to_regclass('raw.contacts') is not null").scalar()
    assert db.execute(sa.text("select count(*) from public.test_facts")).scalar() == len(names)
