"""The incremental activity state (leadflow.scoring.activity) on hand-made events.

Half-life 30 days. D = 2025-06-30, cut-off 2025-07-01 00:00 UTC. The points a contact has at
a cut-off are read back from the state as dbt reads them: S × 2^((epoch − cut-off) / h).
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from leadflow.scoring.activity import update_activity_state
from leadflow.scoring.snapshot import snapshot_config
from leadflow.segments.compiler import ACTIVITY_EVENT_TYPES
from leadflow.segments.compiler import url_matches as compiler_url_matches
from tests.leadflow.scoring.activity_reference import url_matches
from tests.leadflow.scoring.helpers import at, config_with, event, insert, rows

D = dt.date(2025, 6, 30)
JUST_NOW = "2025-06-30 23:59:59.999999"

SCORING = """
profile_rules:
  - {id: any_role, field: decision_role, op: is_not_null, points: 1}
activity_rules:
  - {id: open, event_type: email_open, points: 40}
  - {id: click_pricing, event_type: email_click, link_tag: pricing, points: 30}
  - {id: click, event_type: email_click, points: 5}
  - {id: ebook, event_type: download, asset: ebook_antriebslosigkeit, points: 20}
  - {id: mailing_open, event_type: email_open, mailing: m-1, points: 1.5}
  - {id: visit_products, event_type: web_visit, url_pattern: "/produkte/*", points: 8}
  - {id: visit_prices, event_type: web_visit, url_pattern: "*/preise*", points: 12}
  - {id: unsubscribe, event_type: unsubscribe, points: -30}
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return config_with(tmp_path_factory.mktemp("config"), scoring=SCORING)


@pytest.fixture
def engine(warehouse, config):
    snapshot_config(warehouse, config)
    return warehouse


def add(engine, *events):
    with engine.begin() as connection:
        insert(connection, "raw.events", events)


def points(engine) -> dict[str, float]:
    """Unclamped activity points per contact at the state's cut-off."""
    return dict(
        rows(
            engine,
            "select t.contact_id, t.weighted_sum * power(2.0::float8,"
            " (date_part('epoch', s.epoch) - date_part('epoch', s.cutoff))"
            " / (86400 * s.half_life_days))"
            " from ops.activity_totals as t cross join ops.activity_state as s",
        )
    )


def test_decay_at_zero_one_and_two_half_lives(engine, config):
    add(
        engine,
        event("e1", "c-now", "email_open", JUST_NOW),
        event("e2", "c-30d", "email_open", "2025-06-01 00:00:00"),
        event("e3", "c-60d", "email_open", "2025-05-02 00:00:00"),
    )
    update = update_activity_state(engine, config, D)
    assert update.mode == "full"
    found = points(engine)
    assert found["c-now"] == pytest.approx(40.0, rel=1e-12)
    assert found["c-30d"] == pytest.approx(20.0, rel=1e-12)
    assert found["c-60d"] == pytest.approx(10.0, rel=1e-12)


def test_rule_filters_tag_asset_mailing_and_url(engine, config):
    add(
        engine,
        event("e1", "c1", "email_click", JUST_NOW, link_tag="pricing"),  # 30 + 5
        event("e2", "c1", "email_click", JUST_NOW, link_tag="other"),  # 5
        event("e3", "c2", "download", JUST_NOW, asset_id="ebook_antriebslosigkeit"),  # 20
        event("e4", "c2", "download", JUST_NOW, asset_id="datasheet_hs3000"),  # 0
        event("e5", "c3", "email_open", JUST_NOW, mailing_id="m-1"),  # 40 + 1.5
        event("e6", "c4", "web_visit", JUST_NOW, url="https://x.de/produkte/hs3000"),  # 8
        event("e7", "c4", "web_visit", JUST_NOW, url="https://x.de/de/preise?x=1"),  # 12
        event("e8", "c4", "web_visit", JUST_NOW, url="https://x.de/blog/produkte/a"),  # 0
        event("e9", "c5", "unsubscribe", JUST_NOW),  # -30
    )
    update_activity_state(engine, config, D)
    found = points(engine)
    assert found == pytest.approx({"c1": 40.0, "c2": 20.0, "c3": 41.5, "c4": 20.0, "c5": -30.0})


def test_machine_and_anonymous_events_and_the_cutoff_do_not_count(engine, config):
    add(
        engine,
        event("e1", "c1", "email_open", JUST_NOW, is_machine=True),
        event("e2", None, "email_open", JUST_NOW),
        event("e3", "c2", "email_open", "2025-07-01 00:00:00"),  # at the cut-off
    )
    update_activity_state(engine, config, D)
    assert points(engine) == {}
    assert rows(engine, "select contact_id, next_at from ops.activity_pending") == [
        ("c2", at("2025-07-01 00:00:00"))
    ]


def test_an_event_at_the_cutoff_counts_the_next_night(engine, config):
    add(engine, event("e1", "c1", "email_open", "2025-07-01 00:00:00"))
    update_activity_state(engine, config, D)
    update = update_activity_state(engine, config, D + dt.timedelta(days=1))
    assert (update.mode, update.contacts_recomputed) == ("incremental", 1)
    assert points(engine)["c1"] == pytest.approx(40 * 0.5 ** (1 / 30), rel=1e-12)
    assert rows(engine, "select count(*) from ops.activity_pending") == [(0,)]


def test_late_arrivals_are_added_with_their_own_age(engine, config):
    add(engine, event("e1", "c1", "email_open", JUST_NOW))
    update_activity_state(engine, config, D)
    # Arrives the next day, but happened 30 days before D's cut-off.
    add(engine, event("e2", "c1", "email_open", "2025-06-01 00:00:00"))
    update = update_activity_state(engine, config, D + dt.timedelta(days=1))
    assert (update.mode, update.contacts_added_to, update.contacts_recomputed) == (
        "incremental",
        1,
        0,
    )
    expected = 40 * 0.5 ** ((1 + 1e-6 / 86400) / 30) + 40 * 0.5 ** (31 / 30)
    assert points(engine)["c1"] == pytest.approx(expected, rel=1e-12)


def test_attaching_a_visitors_events_recomputes_the_contact(engine, config):
    add(engine, event("e1", None, "email_open", JUST_NOW))
    update_activity_state(engine, config, D)
    with engine.begin() as connection:
        connection.execute(sa.text("update raw.events set contact_id = 'c1' where event_id = 'e1'"))
    update = update_activity_state(engine, config, D)
    assert (update.mode, update.contacts_recomputed) == ("incremental", 1)
    assert points(engine)["c1"] == pytest.approx(40.0, rel=1e-12)


def test_erasing_events_and_reflagging_machines_recompute(engine, config):
    add(
        engine,
        event("e1", "c1", "email_open", JUST_NOW),
        event("e2", "c2", "email_open", JUST_NOW),
        event("e3", "c2", "email_click", JUST_NOW),
    )
    update_activity_state(engine, config, D)
    with engine.begin() as connection:
        connection.execute(sa.text("delete from raw.events where contact_id = 'c1'"))
        connection.execute(sa.text("update raw.events set is_machine = true where event_id = 'e2'"))
    update_activity_state(engine, config, D)
    assert points(engine) == pytest.approx({"c2": 5.0})
    assert rows(engine, "select count(*) from ops.activity_changes") == [(0,)]


def test_irrelevant_updates_are_not_logged(engine, config):
    add(engine, event("e1", "c1", "email_open", JUST_NOW))
    with engine.begin() as connection:
        connection.execute(sa.text('update raw.events set properties = \'{"ip": "1"}\''))
    assert rows(engine, "select count(*) from ops.activity_changes") == [(0,)]


def test_truncating_events_forces_a_full_rebuild(engine, config):
    add(engine, event("e1", "c1", "email_open", JUST_NOW))
    update_activity_state(engine, config, D)
    with engine.begin() as connection:
        connection.execute(sa.text("truncate raw.events"))
    update = update_activity_state(engine, config, D)
    assert (update.mode, update.reason) == ("full", "no activity state yet")
    assert points(engine) == {}


def test_changed_rules_force_a_full_rebuild(engine, tmp_path):
    add(engine, event("e1", "c1", "email_open", JUST_NOW))
    first = config_with(tmp_path / "a", scoring=SCORING)
    update_activity_state(engine, first, D)
    halved = config_with(tmp_path / "b", scoring=SCORING.replace("points: 40}", "points: 20}"))
    snapshot_config(engine, halved)
    update = update_activity_state(engine, halved, D)
    assert (update.mode, update.reason) == ("full", "activity rules or half-life changed")
    assert points(engine)["c1"] == pytest.approx(20.0, rel=1e-12)


def test_renaming_a_rule_keeps_the_state(engine, tmp_path):
    add(engine, event("e1", "c1", "email_open", JUST_NOW))
    update_activity_state(engine, config_with(tmp_path / "a", scoring=SCORING), D)
    renamed = config_with(tmp_path / "b", scoring=SCORING.replace("id: open,", "id: opened,"))
    assert update_activity_state(engine, renamed, D).mode == "incremental"


def test_as_of_moving_backwards_forces_a_full_rebuild(engine, config):
    add(engine, event("e1", "c1", "email_open", "2025-06-15 00:00:00"))
    update_activity_state(engine, config, D)
    update = update_activity_state(engine, config, D - dt.timedelta(days=1))
    assert update.mode == "full"
    assert update.reason.startswith("as_of moved backwards")
    assert points(engine)["c1"] == pytest.approx(40 * 0.5 ** (15 / 30), rel=1e-12)


def test_full_rebuild_on_request(engine, config):
    update_activity_state(engine, config, D)
    update = update_activity_state(engine, config, D, full=True)
    assert (update.mode, update.reason) == ("full", "full rebuild requested")


def test_rebase_after_many_half_lives_keeps_the_numbers(engine, config):
    add(engine, event("e1", "c1", "email_open", "2025-06-15 00:00:00"))
    update_activity_state(engine, config, D)
    later = D + dt.timedelta(days=30 * 65)  # 65 half-lives
    add(engine, event("e2", "c1", "email_open", f"{later.isoformat()} 12:00:00"))
    update = update_activity_state(engine, config, later)
    assert (update.mode, update.rebased) == ("incremental", True)
    expected = 40 * 0.5 ** ((30 * 65 + 16) / 30) + 40 * 0.5 ** (0.5 / 30)
    assert points(engine)["c1"] == pytest.approx(expected, rel=1e-12)
    state = rows(engine, "select epoch, cutoff from ops.activity_state")
    assert state == [(at(f"{later + dt.timedelta(days=1)} 00:00:00"),) * 2]


def test_the_view_counts_the_compilers_activity_kinds(warehouse):
    """last_activity_at uses the event kinds the filter compiler's `inactive` looks at."""
    types = [
        "email_sent", "email_delivered", "email_bounced", "email_open", "email_click",
        "unsubscribe", "download", "form_submit", "web_visit", "purchase", "fair_visit",
    ]  # fmt: skip
    add(warehouse, *(event(f"e-{kind}", "c1", kind, JUST_NOW) for kind in types))
    counted = rows(warehouse, "select event_type from ops.activity_event_points where is_activity")
    assert sorted(kind for (kind,) in counted) == sorted(ACTIVITY_EVENT_TYPES)


URLS = [
    "https://x.de/produkte/hs3000",
    "https://x.de/preise?a=1",
    "/produkte/hs2000",
    "https://x.de",
    "https://x.de/50%_off",
    "https://x.de/50x_off",
    "HTTPS://X.DE/Produkte/a",
    "mailto:someone@x.de",
    # the path tested first on the whole URL: these contain /produkte/ but not as their path
    "https://x.de/blog/produkte/a",
    "https://x.de?next=/produkte/a",
]
PATTERNS = ["/produkte/*", "*/preise*", "/", "*50%_off", "https://x.de*", "/produkte/hs2000", "*"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_url_patterns_match_like_the_compilers_visited(warehouse, tmp_path, pattern):
    scoring = SCORING.replace('"/produkte/*"', f'"{pattern}"')
    config = config_with(tmp_path, scoring=scoring)
    snapshot_config(warehouse, config)
    add(
        warehouse, *(event(f"e{i}", "c1", "web_visit", JUST_NOW, url=u) for i, u in enumerate(URLS))
    )
    matched = {
        url
        for (url,) in rows(
            warehouse,
            "select e.url from ops.activity_event_points p join raw.events e using (event_id)"
            " where p.rule_id = 'visit_products'",
        )
    }
    with warehouse.connect() as connection:
        by_compiler = {
            url
            for url in URLS
            if connection.execute(
                sa.select(compiler_url_matches(sa.literal(url), pattern))
            ).scalar()
        }
    assert matched == by_compiler == {url for url in URLS if url_matches(url, pattern)}
