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
from tests.leadflow.scoring.helpers import rows
from tests.leadflow.segments.data import (
    TEST_RELATIONS,
    add_contacts,
    add_events,
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
    return rows(
        engine,
        "select as_of, segment, members from ops.segment_materializations order by as_of, segment",
    )


def spans(engine: Engine, segment: str) -> list[tuple]:
    return rows(
        engine,
        "select contact_id, valid_from, valid_to from ops.segment_member_spans "
        "where segment = :segment order by contact_id, valid_from",
        segment=segment,
    )


def move(engine: Engine, contact_id: str, country: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("update public.test_facts set country = :country where contact_id = :id"),
            {"country": country, "id": contact_id},
        )


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


def test_a_rerun_replaces_the_dates_membership_and_keeps_earlier_dates(pool, config):
    materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)
    yesterday = AS_OF - dt.timedelta(days=1)
    materialize_segments(pool, config, yesterday, relations=TEST_RELATIONS)
    move(pool, "c2", "FR")

    counts = materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)

    assert counts["germans"] == 1
    assert members(pool)["germans"] == {"c1"}
    assert members(pool, yesterday)["germans"] == {"c1", "c2"}  # that date keeps its members
    assert [row for row in materialized(pool) if row[1] == "germans"] == [
        (yesterday, "germans", 2),
        (AS_OF, "germans", 1),
    ]


def test_a_night_writes_only_the_memberships_that_changed(pool, config):
    day = [AS_OF + dt.timedelta(days=offset) for offset in range(4)]
    materialize_segments(pool, config, day[0], relations=TEST_RELATIONS)
    materialize_segments(pool, config, day[1], relations=TEST_RELATIONS)
    with pool.begin() as connection:  # c2 moves away, and back a day later
        connection.execute(
            sa.text("update public.test_facts set country = 'FR' where contact_id = 'c2'")
        )
    materialize_segments(pool, config, day[2], relations=TEST_RELATIONS)
    with pool.begin() as connection:
        connection.execute(
            sa.text("update public.test_facts set country = 'DE' where contact_id = 'c2'")
        )
    materialize_segments(pool, config, day[3], relations=TEST_RELATIONS)

    # Two unchanged nights added no rows; leaving closed c2's span, returning opened one.
    assert spans(pool, "germans") == [
        ("c1", day[0], None),
        ("c2", day[0], day[2]),
        ("c2", day[3], None),
    ]
    assert [members(pool, date).get("germans") for date in day] == [
        {"c1", "c2"},
        {"c1", "c2"},
        {"c1"},
        {"c1", "c2"},
    ]


def span_indexes(engine: Engine) -> dict[str, tuple[int, str]]:
    """The spans table's valid indexes: name → oid (a rebuilt index gets a new one) and
    definition."""
    found = rows(
        engine,
        "select index.relname, index.oid, pg_get_indexdef(index.oid) from pg_index "
        "join pg_class as index on index.oid = pg_index.indexrelid "
        "where pg_index.indrelid = 'ops.segment_member_spans'::regclass and pg_index.indisvalid",
    )
    return {name: (oid, definition) for name, oid, definition in found}


def test_the_first_night_builds_the_span_indexes_after_writing_and_later_nights_keep_them(
    pool, config
):
    before = span_indexes(pool)
    materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)
    first = span_indexes(pool)
    materialize_segments(pool, config, AS_OF + dt.timedelta(days=1), relations=TEST_RELATIONS)

    assert set(before) == set(first) == {"segment_member_spans_pkey", "segment_member_spans_open"}
    for name, (oid, definition) in before.items():
        rebuilt_oid, rebuilt_definition = first[name]
        assert rebuilt_oid != oid  # dropped and built again ...
        assert rebuilt_definition == definition  # ... as it was
    assert span_indexes(pool) == first
    # Rebuilt as unique as before: a second open span of a member is refused.
    refused = pytest.raises(sa.exc.IntegrityError, match="segment_member_spans_open")
    with refused, pool.begin() as connection:
        connection.execute(
            sa.text(
                "insert into ops.segment_member_spans (segment, contact_id, valid_from) "
                "values ('germans', 'c1', :day)"
            ),
            {"day": AS_OF + dt.timedelta(days=5)},
        )


def test_an_earlier_date_rewinds_the_later_ones(pool, config, caplog):
    before, later = AS_OF - dt.timedelta(days=1), AS_OF + dt.timedelta(days=1)
    materialize_segments(pool, config, before, relations=TEST_RELATIONS)  # c1, c2
    move(pool, "c2", "FR")
    materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)  # c1
    move(pool, "c2", "DE")
    materialize_segments(pool, config, later, relations=TEST_RELATIONS)  # c1, c2
    move(pool, "c1", "FR")

    materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)

    assert "re-running 2026-11-27 forgets 1 later date(s)" in caplog.text
    assert sorted({row[0] for row in materialized(pool)}) == [before, AS_OF]
    assert members(pool, later) == {}
    assert members(pool)["germans"] == {"c2"}
    assert members(pool, before)["germans"] == {"c1", "c2"}
    assert spans(pool, "germans") == [("c1", before, AS_OF), ("c2", before, None)]


def test_a_segment_no_longer_configured_keeps_its_spans_and_dates(pool, config):
    materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)
    without_germans = config_with_segments(
        {name: spec for name, spec in SEGMENTS.items() if name in ("hs2000_old", "nobody")}
    )
    move(pool, "c2", "FR")  # would leave `germans`, were it still materialised

    materialize_segments(
        pool, without_germans, AS_OF + dt.timedelta(days=1), relations=TEST_RELATIONS
    )

    # Its spans are not closed as if every member had left; its date reads as it was.
    assert spans(pool, "germans") == [("c1", AS_OF, None), ("c2", AS_OF, None)]
    assert members(pool)["germans"] == {"c1", "c2"}
    assert "germans" not in members(pool, AS_OF + dt.timedelta(days=1))


def test_dates_older_than_the_retention_are_pruned(pool, config):
    old = AS_OF - dt.timedelta(days=RETENTION_DAYS + 1)
    kept = AS_OF - dt.timedelta(days=RETENTION_DAYS)
    materialize_segments(pool, config, old, relations=TEST_RELATIONS)
    move(pool, "c2", "FR")
    materialize_segments(pool, config, kept, relations=TEST_RELATIONS)

    materialize_segments(pool, config, AS_OF, relations=TEST_RELATIONS)

    assert sorted({row[0] for row in materialized(pool)}) == [kept, AS_OF]
    assert members(pool, old) == {}
    # c2 left on the oldest kept date: its span covered only pruned dates.
    assert spans(pool, "germans") == [("c1", old, None)]
    assert members(pool, kept)["germans"] == {"c1"}


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


def test_behaviour_segments_count_exactly_in_the_shared_pass_over_the_events(pool, config):
    behaviour = config_with_segments(
        {
            **SEGMENTS,
            "two_opens": {
                "description": "At least two human opens.",
                "filter": {"events": {"type": "email_open", "min_count": 2}},
            },
            "opened_or_german": {
                "description": "An open, or in Germany.",
                "filter": {
                    "any": [
                        {"opened": {}},
                        {"field": "country", "op": "=", "value": "DE"},
                    ]
                },
            },
            "quiet": {
                "description": "No activity for 30 days.",
                "filter": {"inactive": {"days": 30}},
            },
        }
    )

    def opened(contact_id: str, when: str, **more) -> dict:
        return {
            "contact_id": contact_id,
            "event_type": "email_open",
            "occurred_at": at(when),
            **more,
        }

    with pool.begin() as connection:
        add_events(
            connection,
            opened("c3", "2026-11-20 10:00"),
            opened("c3", "2026-11-21 10:00"),
            opened("c4", "2026-11-21 10:00"),
            opened("c4", "2026-11-22 10:00", is_machine=True),  # a machine open does not count
            opened("c1", "2026-11-28 00:00"),  # after the cut-off
        )

    counts = materialize_segments(pool, behaviour, AS_OF, relations=TEST_RELATIONS)

    assert members(pool)["two_opens"] == {"c3"}
    assert members(pool)["opened_or_german"] == {"c1", "c2", "c3", "c4"}
    assert members(pool)["quiet"] == {"c1", "c2"}
    assert counts["two_opens"] == 1


def test_events_that_cannot_be_counted_are_reported_and_nothing_is_written(pool, config):
    behaviour = config_with_segments(
        {
            **SEGMENTS,
            "clicked_offer": {
                "description": "Clicked an offer link.",
                "filter": {"clicked": {"tag": "offer"}},
            },
        }
    )
    with pool.begin() as connection:  # events without the link tag
        connection.execute(
            sa.text(
                "create table public.untagged_events as select event_id, contact_id, "
                "event_type, occurred_at, is_machine, mailing_id, link_id from raw.events"
            )
        )
    untagged = dataclasses.replace(TEST_RELATIONS, events="public.untagged_events")

    with pytest.raises(SegmentError) as failed:
        materialize_segments(pool, behaviour, AS_OF, relations=untagged)

    assert str(failed.value).startswith(
        "the events the segments look for could not be counted: column event.link_tag"
    )
    assert materialized(pool) == []


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
