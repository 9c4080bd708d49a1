"""status, simulate and run_campaign (recorded runs, dry runs that leave no trace)."""

from __future__ import annotations

import datetime as dt

from leadflow.campaigns import run_campaign, simulate, status
from tests.leadflow.campaigns.conftest import (
    add_mail_events,
    add_people,
    at,
    day,
    dump,
    person,
    rows,
    run,
    with_campaigns,
)
from tests.leadflow.campaigns.test_journeys import CROSS_SELL, downloads
from tests.leadflow.segments.data import TEST_RELATIONS, add_events


def _three_downloads(pool, base_config):
    config = with_campaigns(base_config, CROSS_SELL)
    add_people(pool, person("a"), person("b"), person("c"))
    downloads(pool, "a", "b", "c")
    return config


def test_status_counts_journeys_per_step_pending_sends_and_ended(pool, base_config):
    config = _three_downloads(pool, base_config)
    run(pool, config, "cross", day("2026-03-01"))
    report = status(pool, config, "cross", day("2026-03-01"))
    counts = {step.step_id: (step.active, step.due, step.waiting) for step in report.steps}
    assert counts["pause"] == (3, 0, 3)
    assert sum(active for active, _, _ in counts.values()) == 3
    assert (report.pending_due, report.pending_deferred) == (3, 0)
    # c unsubscribes; two days later the wait is over for a and b
    with pool.begin() as connection:
        add_events(
            connection,
            {"contact_id": "c", "event_type": "unsubscribe", "occurred_at": at("2026-03-02T08:00")},
        )
    run(pool, config, "cross", day("2026-03-03"))
    report = status(pool, config, "cross", day("2026-03-03"))
    assert report.active == 0
    assert report.ended == {("completed", "exit"): 2, ("exited", "unsubscribed"): 1}
    assert (report.count("completed"), report.count("exited"), report.count("converted")) == (
        2,
        1,
        0,
    )
    assert (report.pending_due, report.pending_deferred) == (2, 0)
    text = report.describe()
    assert "0 active, 2 completed, 1 exited, 0 converted" in text
    assert "exited     unsubscribed         1" in text


def test_simulate_counts_paths_and_persists_nothing(pool, base_config):
    config = _three_downloads(pool, base_config)
    add_mail_events(
        pool,
        "cross",
        ("a", "email_click", "intro", at("2026-03-02T10:00"), {"link_tag": "cleaning"}),
    )
    before = dump(pool)
    report = simulate(pool, config, "cross", dt.date(2026, 3, 1), 4, relations=TEST_RELATIONS)
    assert dump(pool) == before
    assert [(d.as_of.isoformat(), d.enrolled, d.steps_taken, d.ended) for d in report.days] == [
        ("2026-03-01", 3, 3, 0),  # intro sent
        ("2026-03-02", 0, 0, 0),
        ("2026-03-03", 0, 12, 0),  # wait over: pause, branch, update, exit
        ("2026-03-04", 0, 0, 0),
    ]
    paths = {(p.step_id, p.outcome, p.next_step): p.journeys for p in report.paths}
    assert paths == {
        ("intro", "next", "pause"): 3,
        ("pause", "next", "clicked_cleaning"): 3,
        ("clicked_cleaning", "then", "guide"): 1,
        ("clicked_cleaning", "else", "other"): 2,
        ("guide", "next", "done"): 1,
        ("other", "next", "done"): 2,
        ("done", "exit", "(ended)"): 3,
    }
    assert report.final == {"completed": 3}
    assert "clicked_cleaning  else     other" in report.describe()


def test_dry_run_reports_the_run_and_leaves_no_trace(pool, base_config):
    config = _three_downloads(pool, base_config)
    before = dump(pool)
    report = run_campaign(
        pool, config, "cross", day("2026-03-01"), dry_run=True, relations=TEST_RELATIONS
    )
    assert (report.enrol.enrolled, report.advance.moved, report.outbox) == (
        3,
        {"intro": 3},
        {"campaign_mail": 3},
    )
    assert dump(pool) == before
    assert rows(pool, "select dry_run, enrolled, advanced from ops.campaign_runs") == [(True, 3, 3)]
    real = run_campaign(pool, config, "cross", day("2026-03-01"), relations=TEST_RELATIONS)
    assert (real.enrol.enrolled, real.advance.advanced, real.outbox) == (3, 3, {"campaign_mail": 3})
    assert rows(pool, "select count(*) from ops.outbox") == [(3,)]
    assert rows(
        pool, "select dry_run, enrolled, advanced, as_of from ops.campaign_runs order by run_id"
    ) == [(True, 3, 3, dt.date(2026, 3, 1)), (False, 3, 3, dt.date(2026, 3, 1))]
    assert "run 2" in real.describe() and "dry run" in report.describe()
