"""Journeys over a sequence of days: waits, branches, goals, exits, unsubscribes, re-entry,
the effects of update / notify_owner / crm_task steps, and idempotent re-runs.

2026 calendar: 2026-03-07 is a Saturday; Paris is on CET (UTC+1) until 2026-03-29.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from leadflow.campaigns import UnknownCampaignError, advance, enrol
from tests.leadflow.campaigns.conftest import (
    add_mail_events,
    add_people,
    at,
    day,
    dump,
    history,
    journeys,
    outbox,
    person,
    rows,
    run,
    with_campaigns,
)
from tests.leadflow.segments.data import TEST_RELATIONS, add_events, add_order

DOWNLOAD = {"event": {"type": "download", "asset": "ebook"}}


def downloads(engine, *contact_ids: str, when: str = "2026-03-01T10:00") -> None:
    with engine.begin() as connection:
        add_events(
            connection,
            *(
                {
                    "contact_id": contact_id,
                    "event_type": "download",
                    "occurred_at": at(when),
                    "asset_id": "ebook",
                }
                for contact_id in contact_ids
            ),
        )


def run_and_rerun(engine, config, campaign_id: str, as_of: str):
    """Run for as_of, then again at the same moment: the second run must change nothing."""
    reports = run(engine, config, campaign_id, day(as_of))
    before = dump(engine)
    again = run(engine, config, campaign_id, day(as_of))
    assert (again[0].enrolled, again[1].advanced, again[1].ended) == (0, 0, {})
    assert dump(engine) == before
    return reports


def test_a_three_day_wait_is_due_exactly_three_days_later(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "nurture",
            "trigger": DOWNLOAD,
            "steps": [
                {"id": "hello", "send": {"message": "hello"}},
                {"id": "pause", "wait": {"duration": "3d"}},
                {"id": "again", "send": {"message": "again"}},
            ],
        },
    )
    add_people(pool, person("a"))
    downloads(pool, "a")
    run_and_rerun(pool, config, "nurture", "2026-03-01")  # now 03-02 00:00
    assert journeys(pool)["a"] == ("active", "pause", 1, at("2026-03-05T00:00"), None)
    run_and_rerun(pool, config, "nurture", "2026-03-03")  # now 03-04 00:00: not yet
    assert journeys(pool)["a"][1:3] == ("pause", 1)
    run_and_rerun(pool, config, "nurture", "2026-03-04")  # now 03-05 00:00: due
    assert journeys(pool)["a"] == ("completed", None, 3, at("2026-03-05T00:00"), "end")
    assert history(pool, "a") == [
        (0, "hello", "next", at("2026-03-02T00:00")),
        (1, "pause", "next", at("2026-03-05T00:00")),
        (2, "again", "end", at("2026-03-05T00:00")),
    ]
    assert outbox(pool) == [
        ("a", "hello", "campaign_mail", at("2026-03-02T00:00"), None, "pending"),
        ("a", "again", "campaign_mail", at("2026-03-05T00:00"), None, "pending"),
    ]


CROSS_SELL = {
    "id": "cross",
    "trigger": DOWNLOAD,
    "steps": [
        {"id": "intro", "send": {"message": "intro"}},
        {"id": "pause", "wait": {"duration": "2d"}},
        {
            "id": "clicked_cleaning",
            "branch": {
                "on": "clicked",
                "since_step": "intro",
                "link_tag": "cleaning",
                "then": "guide",
                "else": "other",
            },
        },
        {"id": "guide", "update": {"set": {"tag": "cleaning"}}, "next": "done"},
        {"id": "other", "update": {"set": {"tag": "undecided"}}},
        {"id": "done", "exit": {}},
    ],
}


def test_branch_on_a_click_that_did_or_did_not_happen(pool, base_config):
    config = with_campaigns(base_config, CROSS_SELL)
    add_people(pool, *(person(name) for name in "abcde"))
    downloads(pool, *"abcde")
    run_and_rerun(pool, config, "cross", "2026-03-01")  # intro at 03-02 00:00
    clicked = at("2026-03-02T10:00")
    add_mail_events(
        pool,
        "cross",
        ("a", "email_click", "intro", clicked, {"link_tag": "cleaning"}),
        # a machine click (security scanner) does not count
        ("b", "email_click", "intro", clicked, {"link_tag": "cleaning", "is_machine": True}),
        # another link of the mail
        ("c", "email_click", "intro", clicked, {"link_tag": "software"}),
        # the same tag in another campaign's mail
        ("d", "email_click", "intro", clicked, {"link_tag": "cleaning", "campaign_id": "x"}),
        # after the branch ran (03-04 00:00): too late for it
        ("e", "email_click", "intro", at("2026-03-04T00:00"), {"link_tag": "cleaning"}),
    )
    run_and_rerun(pool, config, "cross", "2026-03-03")  # now 03-04 00:00: wait over, branch
    outcomes = {
        contact: [step_outcome[1:3] for step_outcome in history(pool, contact)]
        for contact in "abcde"
    }
    assert outcomes["a"] == [
        ("intro", "next"),
        ("pause", "next"),
        ("clicked_cleaning", "then"),
        ("guide", "next"),
        ("done", "exit"),
    ]
    for contact in "bcde":
        assert outcomes[contact] == [
            ("intro", "next"),
            ("pause", "next"),
            ("clicked_cleaning", "else"),
            ("other", "next"),
            ("done", "exit"),
        ]
    tags = dict(rows(pool, "select contact_id, tags from raw.contacts order by contact_id"))
    assert tags == {"a": ["cleaning"], **{c: ["undecided"] for c in "bcde"}}


def test_goal_converts_and_names_the_last_step(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "upsell",
            "trigger": DOWNLOAD,
            "steps": [
                {"id": "hello", "send": {"message": "hello"}},
                {"id": "pause", "wait": {"duration": "10d"}},
                {"id": "offer", "send": {"message": "offer"}},
            ],
            "goal": {"event": {"type": "purchase", "product": "HS3000"}},
        },
    )
    add_people(pool, person("a"), person("b"))
    downloads(pool, "a", "b")
    with pool.begin() as connection:
        # b bought before the journey began: no conversion
        add_order(connection, "b", at("2026-02-25T09:00"), ["HS3000"])
    run_and_rerun(pool, config, "upsell", "2026-03-01")
    with pool.begin() as connection:
        add_order(connection, "a", at("2026-03-05T09:00"), ["HS3000"])
    run_and_rerun(pool, config, "upsell", "2026-03-05")  # now 03-06 00:00
    assert rows(
        pool,
        "select contact_id, status, end_reason, converted_step, ended_at "
        "from ops.campaign_enrolments order by contact_id",
    ) == [
        ("a", "converted", "goal", "hello", at("2026-03-06T00:00")),
        ("b", "active", None, None, None),
    ]
    assert history(pool, "a")[-1] == (1, "pause", "converted", at("2026-03-06T00:00"))


def test_exit_rule_and_leaving_the_audience_end_the_journey(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "nurture",
            "audience": {"not": {"field": "tags", "op": "contains", "value": "press"}},
            "trigger": DOWNLOAD,
            "steps": [
                {"id": "hello", "send": {"message": "hello"}},
                {"id": "pause", "wait": {"duration": "7d"}},
                {"id": "again", "send": {"message": "again"}},
            ],
            "exit_rules": [
                {"id": "blocked", "filter": {"field": "tags", "op": "contains", "value": "blocked"}}
            ],
        },
    )
    add_people(pool, person("a"), person("b"), person("c"), person("d", tenant="fr"))
    downloads(pool, "a", "b", "c", "d")
    run_and_rerun(pool, config, "nurture", "2026-03-01")
    with pool.begin() as connection:
        connection.exec_driver_sql(
            "update public.test_facts set tags = case contact_id "
            "when 'a' then array['blocked'] when 'b' then array['press'] else tags end, "
            "tenant_code = case contact_id when 'd' then 'it' else tenant_code end"
        )
    run_and_rerun(pool, config, "nurture", "2026-03-02")
    ended = rows(
        pool,
        "select contact_id, status, end_reason from ops.campaign_enrolments order by contact_id",
    )
    assert ended == [
        ("a", "exited", "blocked"),
        ("b", "exited", "left_audience"),
        ("c", "active", None),
        ("d", "exited", "left_audience"),  # its tenant is no longer one of the campaign's
    ]


def test_unsubscribe_ends_the_journey_and_cancels_the_deferred_mail(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "nurture",
            "trigger": DOWNLOAD,
            "steps": [
                {"id": "hello", "send": {"message": "hello"}},
                {"id": "pause", "wait": {"duration": "3d"}},
                {"id": "again", "send": {"message": "again"}},
            ],
        },
    )
    add_people(pool, person("a", tenant="fr"), person("b", tenant="fr"), person("c", tenant="fr"))
    downloads(pool, "a", "b", "c", when="2026-03-06T10:00")
    # now = Sat 2026-03-07 00:00 UTC: Paris office hours open Mon 09:00 CET = 08:00 UTC
    run_and_rerun(pool, config, "nurture", "2026-03-06")
    monday = at("2026-03-09T08:00")
    assert [row[3:5] for row in outbox(pool)] == [(monday, "send_window")] * 3
    assert journeys(pool)["a"][1:4] == ("pause", 1, monday + dt.timedelta(days=3))
    with pool.begin() as connection:
        add_events(
            connection,
            {"contact_id": "a", "event_type": "unsubscribe", "occurred_at": at("2026-03-08T12:00")},
        )
        connection.exec_driver_sql(
            "update public.test_facts set consent_status = 'objected' where contact_id = 'b'"
        )
    run_and_rerun(pool, config, "nurture", "2026-03-08")  # now Mon 03-09 00:00
    assert rows(
        pool,
        "select contact_id, status, status_reason from ops.outbox order by contact_id",
    ) == [
        ("a", "cancelled", "journey exited: unsubscribed"),
        ("b", "cancelled", "journey exited: unsubscribed"),
        ("c", "pending", None),
    ]
    states = journeys(pool)
    assert (states["a"][0], states["a"][4]) == ("exited", "unsubscribed")
    assert (states["b"][0], states["b"][4]) == ("exited", "unsubscribed")
    run_and_rerun(pool, config, "nurture", "2026-03-12")  # c's second mail; nothing for a, b
    assert [row[:2] for row in outbox(pool)] == [
        ("a", "hello"),
        ("b", "hello"),
        ("c", "hello"),
        ("c", "again"),
    ]


def _re_entry_config(base_config, policy):
    return with_campaigns(
        base_config,
        {
            "id": "again",
            "category": "service",
            "trigger": DOWNLOAD,
            "steps": [{"id": "hello", "send": {"message": "hello"}}],
            "re_entry": policy,
        },
    )


def _journeys_of(engine, contact_id: str) -> list[tuple]:
    return rows(
        engine,
        "select trigger_key, enrolled_at from ops.campaign_enrolments "
        "where contact_id = :contact_id order by enrolment_id",
        contact_id=contact_id,
    )


def test_re_entry_never(pool, base_config):
    config = _re_entry_config(base_config, "never")
    add_people(pool, person("a"))
    downloads(pool, "a", when="2026-03-01T10:00")
    run_and_rerun(pool, config, "again", "2026-03-01")
    downloads(pool, "a", when="2026-03-20T10:00")
    run_and_rerun(pool, config, "again", "2026-03-20")
    assert len(_journeys_of(pool, "a")) == 1


def test_re_entry_lockout_enrols_again_exactly_after_the_lockout(pool, base_config):
    config = _re_entry_config(base_config, {"lockout_days": 10})
    add_people(pool, person("a"))
    downloads(pool, "a", when="2026-03-01T10:00")
    run_and_rerun(pool, config, "again", "2026-03-01")  # enrolled and ended 03-02 00:00
    downloads(pool, "a", when="2026-03-05T10:00")  # in the look-back until 03-12 00:00
    for as_of in ("2026-03-05", "2026-03-09", "2026-03-10"):  # up to now = 03-11 00:00
        run_and_rerun(pool, config, "again", as_of)
        assert len(_journeys_of(pool, "a")) == 1
    run_and_rerun(pool, config, "again", "2026-03-11")  # now 03-12 00:00 = ended + 10 days
    assert [key for key, _ in _journeys_of(pool, "a")][1:] == [
        rows(pool, "select 'event:' || event_id from raw.events order by occurred_at desc")[0][0]
    ]
    assert _journeys_of(pool, "a")[1][1] == at("2026-03-12T00:00")


def test_re_entry_always_enrols_each_new_occurrence_once(pool, base_config):
    config = _re_entry_config(base_config, "always")
    add_people(pool, person("a"))
    downloads(pool, "a", when="2026-02-28T10:00")
    downloads(pool, "a", when="2026-03-01T10:00")
    run_and_rerun(pool, config, "again", "2026-03-01")  # the earlier one enrols
    # the 03-01 download was seen by that run: it does not enrol once the journey is over
    run_and_rerun(pool, config, "again", "2026-03-02")
    assert len(_journeys_of(pool, "a")) == 1
    downloads(pool, "a", when="2026-03-05T10:00")
    run_and_rerun(pool, config, "again", "2026-03-05")
    assert [enrolled for _, enrolled in _journeys_of(pool, "a")] == [
        at("2026-03-02T00:00"),
        at("2026-03-06T00:00"),
    ]


def test_update_notify_owner_and_crm_task_effects(pool, base_config):
    config = with_campaigns(
        base_config,
        {
            "id": "handover",
            "trigger": DOWNLOAD,
            "steps": [
                {
                    "id": "mark",
                    "update": {"set": {"tag": "vip", "remove_tag": "cold", "stage": "sql"}},
                },
                {"id": "tell", "notify_owner": {"message": "owner_note"}},
                {"id": "call", "crm_task": {"subject": "Call", "type": "call", "due_in_days": 2}},
                {"id": "done", "exit": {"reason": "handed over"}},
            ],
        },
    )
    add_people(
        pool,
        person("a", owner="Jana Krüger", tags=["cold", "x"]),
        person("b", owner="rep@example.com"),
        person("c"),
        person("d", owner="Nobody Known"),
    )
    downloads(pool, *"abcd")
    run_and_rerun(pool, config, "handover", "2026-03-01")
    now = at("2026-03-02T00:00")
    assert rows(
        pool, "select contact_id, tags, lifecycle_stage from raw.contacts order by contact_id"
    ) == [
        ("a", ["x", "vip"], "sql"),
        ("b", ["vip"], "sql"),
        ("c", ["vip"], "sql"),
        ("d", ["vip"], "sql"),
    ]
    assert rows(
        pool, "select tags, lifecycle_stage from public.test_facts where contact_id = 'a'"
    ) == [(["x", "vip"], "sql")]
    changes = rows(
        pool,
        "select contact_id, step_id, step_seq, change, changed_at "
        "from ops.contact_changes order by contact_id",
    )
    change = {"add_tag": "vip", "remove_tag": "cold", "lifecycle_stage": "sql"}
    assert changes == [(c, "mark", 0, change, now) for c in "abcd"]
    assert rows(
        pool,
        "select contact_id, kind, category, recipient_email, message, scheduled_at, step_seq "
        "from ops.outbox order by contact_id",
    ) == [
        (
            "a",
            "owner_notification",
            "service",
            "jana.krueger@steinhoff-hydraulik.example",
            "owner_note",
            now,
            1,
        ),
        ("b", "owner_notification", "service", "rep@example.com", "owner_note", now, 1),
    ]
    assert [history(pool, c)[1][2] for c in "abcd"] == [
        "next",
        "next",
        "skipped_no_owner",
        "skipped_unknown_owner",
    ]
    tasks = rows(pool, "select entity, entity_id, payload from ops.crm_outbox order by outbox_id")
    enrolment = dict(rows(pool, "select contact_id, enrolment_id from ops.campaign_enrolments"))
    assert len(tasks) == 4
    entity, entity_id, payload = tasks[0]
    contact = payload["contact_id"]
    assert (entity, entity_id) == ("task", f"handover:{enrolment[contact]}:2")
    assert payload == {
        "contact_id": contact,
        "subject": "Call",
        "type": "call",
        "due_date": "2026-03-04",
        "description": None,
        "campaign_id": "handover",
        "step_id": "call",
        "enrolment_id": enrolment[contact],
        "step_seq": 2,
    }
    assert set(rows(pool, "select status, end_reason from ops.campaign_enrolments")) == {
        ("completed", "handed over")
    }
    json.dumps(payload)  # the CRM sync sends it as it is


def test_advance_one_step_only(pool, base_config):
    config = with_campaigns(base_config, CROSS_SELL)
    add_people(pool, person("a"))
    downloads(pool, "a")
    enrol(pool, config, "cross", day("2026-03-01"), relations=TEST_RELATIONS)
    report = advance(
        pool, config, "cross", day("2026-03-01"), relations=TEST_RELATIONS, step_id="pause"
    )
    assert report.advanced == 0  # nobody at the wait yet
    report = advance(
        pool, config, "cross", day("2026-03-01"), relations=TEST_RELATIONS, step_id="intro"
    )
    assert (report.moved, journeys(pool)["a"][1]) == ({"intro": 1}, "pause")


def test_unknown_campaign_names_the_known_ones(pool, base_config):
    config = with_campaigns(base_config, CROSS_SELL)
    with pytest.raises(UnknownCampaignError, match=r"unknown campaign 'crosss'.*cross"):
        enrol(pool, config, "crosss", day("2026-03-01"), relations=TEST_RELATIONS)
