"""Triggers: which contacts a run enrols, on exactly which day, with which trigger key.

A run for as_of D happens at D + 1 day 00:00 UTC (`day(D)`) and sees the last 7 days.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from leadflow.campaigns import enrol
from tests.leadflow.campaigns.conftest import (
    add_people,
    at,
    day,
    person,
    rows,
    run,
    with_campaigns,
)
from tests.leadflow.segments.data import (
    TEST_RELATIONS,
    add_events,
    add_installations,
    add_order,
)

HELLO = [{"id": "hello", "send": {"message": "hello"}}]


def enrolments(engine) -> list[tuple[str, str]]:
    return rows(
        engine,
        "select contact_id, trigger_key from ops.campaign_enrolments order by contact_id, "
        "enrolment_id",
    )


def enrolled_on(engine, config, campaign_id: str, as_of: str) -> int:
    return enrol(engine, config, campaign_id, day(as_of), relations=TEST_RELATIONS).enrolled


def test_maintenance_date_fires_on_the_boundary_day_not_before(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "upsell",
            "trigger": {
                "date_relative": {
                    "field": "next_maintenance_date",
                    "offset_days": -180,
                    "product": "HS2000",
                }
            },
            "steps": HELLO,
        },
    )
    add_people(pool, person("a", account_id="acc-a"), person("b", account_id="acc-b"))
    with pool.begin() as connection:
        add_installations(
            connection,
            # 2026-09-30 − 180 days = 2026-04-03
            {
                "installation_id": "inst-a",
                "account_id": "acc-a",
                "product_id": "HS2000",
                "installed_on": dt.date(2020, 1, 1),
                "next_maintenance_date": dt.date(2026, 9, 30),
            },
            # the successor: not what the trigger asks for
            {
                "installation_id": "inst-b",
                "account_id": "acc-b",
                "product_id": "HS3000",
                "installed_on": dt.date(2020, 1, 1),
                "next_maintenance_date": dt.date(2026, 9, 30),
            },
        )
    assert dt.date(2026, 9, 30) - dt.timedelta(days=180) == dt.date(2026, 4, 3)
    assert enrolled_on(pool, config, "upsell", "2026-04-02") == 0
    assert enrolled_on(pool, config, "upsell", "2026-04-03") == 1
    assert enrolments(pool) == [("a", "date:inst-a:2026-09-30")]
    # the next days still see the day in their look-back: same key, nothing new
    assert enrolled_on(pool, config, "upsell", "2026-04-04") == 0
    assert enrolled_on(pool, config, "upsell", "2026-04-09") == 0


def test_date_trigger_catches_up_within_the_look_back_only(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "anniversary",
            "trigger": {"date_relative": {"field": "first_order_date", "offset_days": 30}},
            "steps": HELLO,
        },
    )
    # fire days: 2026-03-31 for a, 2026-03-24 for b
    add_people(
        pool,
        person("a", first_order_date=dt.date(2026, 3, 1)),
        person("b", first_order_date=dt.date(2026, 2, 22)),
    )
    # the first run is for as_of 03-31: its look-back (03-24, 03-31] has a's day, not b's
    assert enrolled_on(pool, config, "anniversary", "2026-03-31") == 1
    assert enrolments(pool) == [("a", "date:first_order_date:2026-03-01")]


def test_date_trigger_look_back_includes_six_days_back(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "anniversary",
            "trigger": {"date_relative": {"field": "first_order_date", "offset_days": 30}},
            "steps": HELLO,
        },
    )
    add_people(pool, person("b", first_order_date=dt.date(2026, 2, 22)))  # fires 03-24
    assert enrolled_on(pool, config, "anniversary", "2026-03-23") == 0
    assert enrolled_on(pool, config, "anniversary", "2026-03-30") == 1  # 03-24 in (03-23, 03-30]


def test_event_trigger_counts_human_events_of_the_asset_in_the_look_back(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "ebook",
            "trigger": {"event": {"type": "download", "asset": "ebook"}},
            "steps": HELLO,
        },
    )
    add_people(pool, *(person(name) for name in "abcde"))
    with pool.begin() as connection:
        add_events(
            connection,
            {
                "event_id": "ev-a",
                "contact_id": "a",
                "event_type": "download",
                "occurred_at": at("2026-03-01T10:00"),
                "asset_id": "ebook",
            },
            {
                "event_id": "ev-b",
                "contact_id": "b",
                "event_type": "download",
                "occurred_at": at("2026-03-01T10:00"),
                "asset_id": "ebook",
                "is_machine": True,
            },
            {
                "event_id": "ev-c",
                "contact_id": "c",
                "event_type": "download",
                "occurred_at": at("2026-03-01T10:00"),
                "asset_id": "datasheet",
            },
            # 2026-02-22 23:59 is before the look-back [02-23 00:00, 03-02 00:00)
            {
                "event_id": "ev-d",
                "contact_id": "d",
                "event_type": "download",
                "occurred_at": at("2026-02-22T23:59"),
                "asset_id": "ebook",
            },
            # after the run's moment: the next run's
            {
                "event_id": "ev-e",
                "contact_id": "e",
                "event_type": "download",
                "occurred_at": at("2026-03-02T00:00"),
                "asset_id": "ebook",
            },
        )
    assert enrolled_on(pool, config, "ebook", "2026-03-01") == 1
    assert enrolments(pool) == [("a", "event:ev-a")]
    assert enrolled_on(pool, config, "ebook", "2026-03-02") == 1
    assert enrolments(pool) == [("a", "event:ev-a"), ("e", "event:ev-e")]


def test_purchase_trigger_uses_won_orders_of_the_family(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "onboarding",
            "trigger": {"event": {"type": "purchase", "product_family": "hydrostat"}},
            "steps": HELLO,
        },
    )
    add_people(pool, person("a"), person("b"), person("c"))
    with pool.begin() as connection:
        add_order(connection, "a", at("2026-03-01T09:00"), ["HS2000", "CLN-10"], order_id="o-a")
        add_order(connection, "b", at("2026-03-01T09:00"), ["HS3000"], status="cancelled")
        add_order(connection, "c", at("2026-03-01T09:00"), ["CLN-10"])
    assert enrolled_on(pool, config, "onboarding", "2026-03-01") == 1
    assert enrolments(pool) == [("a", "order:o-a")]


def _materialize(engine, segment: str, as_of: str, *members: str) -> None:
    """Record the segment's members for a date as the nightly run stores them (as spans);
    the dates of a segment come in order."""
    date = {"as_of": dt.date.fromisoformat(as_of), "segment": segment, "members": list(members)}
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "insert into ops.segment_materializations (as_of, segment, members, sql_sha256) "
                "values (:as_of, :segment, cardinality(cast(:members as text[])), 'test')"
            ),
            date,
        )
        connection.execute(
            sa.text(
                "update ops.segment_member_spans set valid_to = :as_of where segment = :segment "
                "and valid_to is null and contact_id <> all(cast(:members as text[]))"
            ),
            date,
        )
        connection.execute(
            sa.text(
                "insert into ops.segment_member_spans (segment, contact_id, valid_from) "
                "select :segment, member, :as_of from unnest(cast(:members as text[])) as member "
                "on conflict (segment, contact_id) where valid_to is null do nothing"
            ),
            date,
        )


def test_segment_entry_enrols_new_members_of_the_latest_materialisation(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "loyalty",
            "trigger": {"segment_entry": {"segment": "loyal_customers"}},
            "steps": HELLO,
        },
    )
    add_people(pool, person("a"), person("b"), person("c"))
    _materialize(pool, "loyal_customers", "2026-03-01", "a", "b")
    _materialize(pool, "loyal_customers", "2026-03-03", "a", "b", "c")
    _materialize(pool, "other_segment", "2026-03-02", "c")
    assert enrolled_on(pool, config, "loyalty", "2026-02-28") == 0  # nothing materialised yet
    # the first materialisation: every member enters
    assert enrolled_on(pool, config, "loyalty", "2026-03-01") == 2
    assert enrolled_on(pool, config, "loyalty", "2026-03-02") == 0  # still 03-01's members
    assert enrolled_on(pool, config, "loyalty", "2026-03-03") == 1
    assert enrolments(pool) == [
        ("a", "segment:2026-03-01"),
        ("b", "segment:2026-03-01"),
        ("c", "segment:2026-03-03"),
    ]


def test_inactivity_fires_on_the_first_inactive_day(pool, base_config):
    config = with_campaigns(
        base_config,
        {"id": "winback", "trigger": {"inactivity": {"days": 30}}, "steps": HELLO},
    )
    add_people(
        pool,
        person("a"),
        person("b", created_at=at("2026-03-05T09:00")),
        person("c", created_at=at("2026-01-01T09:00")),
    )
    with pool.begin() as connection:
        add_events(
            connection,
            {"contact_id": "a", "event_type": "email_open", "occurred_at": at("2026-03-01T10:00")},
            # a machine open is no activity: c's last activity is its creation (01-01)
            {
                "contact_id": "c",
                "event_type": "email_open",
                "occurred_at": at("2026-03-10T10:00"),
                "is_machine": True,
            },
        )
    # a: last active 03-01, inactive for 30 days on 03-31 (`inactive: {days: 30}` holds then)
    assert enrolled_on(pool, config, "winback", "2026-03-30") == 0
    assert enrolled_on(pool, config, "winback", "2026-03-31") == 1
    # b: never active, created 03-05: 04-04
    assert enrolled_on(pool, config, "winback", "2026-04-03") == 0
    assert enrolled_on(pool, config, "winback", "2026-04-04") == 1
    assert enrolments(pool) == [("a", "inactive:2026-03-31"), ("b", "inactive:2026-04-04")]


def test_one_off_enrols_the_audience_of_the_tenants_once(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "fair_invite",
            "audience": {"not": {"field": "tags", "op": "contains", "value": "press"}},
            "trigger": {"one_off": {"at": "2026-05-01"}},
            "steps": HELLO,
        },
    )
    add_people(
        pool,
        person("a"),
        person("b", tenant="fr"),
        person("i", tenant="it"),  # not one of the campaign's tenants (hq, fr)
        person("p", tags=["press"]),  # not in the audience
    )
    assert enrolled_on(pool, config, "fair_invite", "2026-04-29") == 0  # now = 04-30 00:00
    report = enrol(pool, config, "fair_invite", day("2026-04-30"), relations=TEST_RELATIONS)
    assert (report.occurrences, report.in_audience, report.enrolled) == (4, 2, 2)
    assert enrolments(pool) == [("a", "one_off"), ("b", "one_off")]
    assert enrolled_on(pool, config, "fair_invite", "2026-05-01") == 0


def test_disabled_campaign_enrols_nobody(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "off",
            "enabled": False,
            "trigger": {"one_off": {"at": "2026-05-01"}},
            "steps": HELLO,
        },
    )
    add_people(pool, person("a"))
    enrolled, advanced = run(pool, config, "off", day("2026-05-01"))
    assert (enrolled.enrolled, advanced.advanced) == (0, 0)
