"""Segment materialisation: every configured segment's exact members for one as_of, written
set-based into ops in one transaction; a failing segment is named and changes nothing.

The contacts relation is the hand-made `test_facts` table (data.py), events/orders/installed
base the raw tables, as in the compiler's tests. D = 2026-11-27, so `-3y` is 2023-11-27.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadflow.config import Segment
from leadflow.config.loader import Config, load_config
from leadflow.paths import PROJECT_ROOT
from leadflow.segments.materialize import (
    RETENTION_DAYS,
    SegmentError,
    materialize_segments,
    segment_sizes,
)
from tests.leadflow.segments.data import (
    TEST_RELATIONS,
    add_contacts,
    add_order,
    at,
    create_facts_table,
    insert_products,
)

AS_OF = dt.date(2026, 11, 27)

SEGMENTS = {
    "germans": {
        "description": "Contacts in Germany.",
        "filter": {"field": "country", "op": "=", "value": "DE"},
    },
    "german_mqls": {
        "description": "MQLs among the Germans (nested segment).",
        "filter": {"all": [{"segment": "germans"}, {"field": "is_mql", "op": "=", "value": True}]},
    },
    "hs2000_old": {
        "description": "Bought a HydroStat 2000 more than 3 years ago.",
        "filter": {"purchased": {"product": "HS2000", "before": "-3y"}},
    },
    "nobody": {
        "description": "Matches no contact.",
        "filter": {"field": "country", "op": "=", "value": "XX"},
    },
}
EXPECTED = {
    "germans": {"c1", "c2"},
    "german_mqls": {"c1"},
    "hs2000_old": {"c3"},
    "nobody": set(),
}


def config_with_segments(segments: dict) -> Config:
    example = load_config(PROJECT_ROOT / "include" / "config")
    parsed = {name: Segment.model_validate(spec) for name, spec in segments.items()}
    return dataclasses.replace(example, segments=parsed)


@pytest.fixture(scope="module")
def config() -> Config:
    return config_with_segments(SEGMENTS)


@pytest.fixture
def pool(warehouse: Engine) -> Engine:
    with warehouse.begin() as connection:
        create_facts_table(connection)
        insert_products(connection)
        add_contacts(
            connection,
            {"contact_id": "c1", "country": "DE", "is_mql": True},
            {"contact_id": "c2", "country": "DE", "is_mql": False},
            {"contact_id": "c3", "country": "FR", "is_mql": True},
            {"contact_id": "c4", "country": "AT", "is_mql": None},
        )
        add_order(connection, "c3", at("2022-01-10 09:00"), ["HS2000"])
        add_order(connection, "c1", at("2024-05-01 09:00"), ["HS2000"])  # within 3 years
    return warehouse


def members(engine: Engine, as_of: dt.date = AS_OF) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    with engine.connect() as connection:
        for segment, contact_id in connection.execute(
            sa.text("select segment, contact_id from ops.segment_members where as_of = :as_of"),
            {"as_of": as_of},
        ):
            found.setdefault(segment, set()).add(contact_id)
    return found


def materialized(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.text(
                    "select as_of, segment, members from ops.segment_materializations "
                    "order by as_of, segment"
                )
            )
        ]


def test_every_segment_gets_its_exact_members(pool, config):
    counts = materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)

    assert counts == {"germans": 2, "german_mqls": 1, "hs2000_old": 1, "nobody": 0}
    assert members(pool) == {name: ids for name, ids in EXPECTED.items() if ids}
    # Every segment has a count, the empty one too.
    assert materialized(pool) == [
        (AS_OF, "german_mqls", 1),
        (AS_OF, "germans", 2),
        (AS_OF, "hs2000_old", 1),
        (AS_OF, "nobody", 0),
    ]


def test_relative_dates_resolve_against_the_runs_date(pool, config):
    # On 2027-05-02 the HydroStat bought on 2024-05-01 is more than 3 years old too.
    materialize_segments(pool, config, dt.date(2027, 5, 2), relations=TEST_RELATIONS)
    assert members(pool, dt.date(2027, 5, 2))["hs2000_old"] == {"c1", "c3"}


def test_a_rerun_replaces_the_dates_membership_and_keeps_other_dates(pool, config):
    materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)
    yesterday = AS_OF - dt.timedelta(days=1)
    materialize_segments(pool, config, yesterday, relations=TEST_RELATIONS)
    with pool.begin() as connection:
        connection.execute(
            sa.text("update public.test_facts set country = 'FR' where contact_id = 'c2'")
        )

    counts = materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)

    assert counts["germans"] == 1
    assert members(pool)["germans"] == {"c1"}
    assert members(pool, yesterday)["germans"] == {"c1", "c2"}  # that date keeps its members
    assert [row for row in materialized(pool) if row[1] == "germans"] == [
        (yesterday, "germans", 2),
        (AS_OF, "germans", 1),
    ]


def test_dates_older_than_the_retention_are_pruned(pool, config):
    old = AS_OF - dt.timedelta(days=RETENTION_DAYS + 1)
    kept = AS_OF - dt.timedelta(days=RETENTION_DAYS)
    for day in (old, kept):
        materialize_segments(pool, config, day, relations=TEST_RELATIONS)

    materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)

    assert sorted({row[0] for row in materialized(pool)}) == [kept, AS_OF]
    assert members(pool, old) == {}


def test_a_segment_on_a_missing_column_is_named_and_nothing_is_written(pool, config):
    materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)
    before = (members(pool), materialized(pool))
    failing = config_with_segments(
        {
            **SEGMENTS,
            "munich_area": {
                "description": "Postcodes starting with 8.",
                "filter": {"field": "postcode", "op": "starts_with", "value": "8"},
            },
        }
    )
    with pool.begin() as connection:
        connection.execute(sa.text("alter table public.test_facts drop column postcode"))

    with pytest.raises(SegmentError) as failed:
        materialize_segments(pool, failing, AS_OF, relations=TEST_RELATIONS)

    message = str(failed.value)
    assert message.startswith("segment 'munich_area' cannot run: column contact.postcode does")
    assert "public.test_facts must have a column per field the filter uses (postcode)" in message
    assert (members(pool), materialized(pool)) == before


def test_a_segment_postgresql_refuses_is_named(pool, config):
    failing = config_with_segments(
        {
            "big_companies": {
                "description": "More than 500 employees.",
                "filter": {"field": "employee_count", "op": ">", "value": 500},
            },
            **SEGMENTS,
        }
    )
    with pool.begin() as connection:
        connection.execute(
            sa.text("alter table public.test_facts alter column employee_count type text")
        )

    with pytest.raises(SegmentError, match=r"^segment 'big_companies' failed: operator does not "):
        materialize_segments(pool, failing, AS_OF, relations=TEST_RELATIONS)

    assert members(pool) == {} and materialized(pool) == []


def test_a_segment_that_cannot_be_compiled_is_named_before_anything_runs(pool):
    cyclic = config_with_segments(
        {
            "a": {"description": "A.", "filter": {"segment": "b"}},
            "b": {"description": "B.", "filter": {"segment": "a"}},
        }
    )

    with pytest.raises(
        SegmentError, match=r"^segment 'a' cannot be compiled: segments form a cycle"
    ):
        materialize_segments(pool, cyclic, AS_OF, relations=TEST_RELATIONS)

    assert materialized(pool) == []


def test_segment_sizes_show_the_latest_materialisation(pool, config):
    assert [(size.name, size.members) for size in segment_sizes(pool, config)] == [
        ("germans", None),
        ("german_mqls", None),
        ("hs2000_old", None),
        ("nobody", None),
    ]
    materialize_segments(pool, config, AS_OF - dt.timedelta(days=1), relations=TEST_RELATIONS)
    with pool.begin() as connection:
        connection.execute(sa.text("update public.test_facts set is_mql = true"))
    materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)

    sizes = segment_sizes(pool, config)

    assert [(size.name, size.members, size.as_of) for size in sizes] == [
        ("germans", 2, AS_OF),
        ("german_mqls", 2, AS_OF),
        ("hs2000_old", 1, AS_OF),
        ("nobody", 0, AS_OF),
    ]
    assert sizes[1].description == "MQLs among the Germans (nested segment)."
