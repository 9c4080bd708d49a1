"""Property: nightly incremental updates of the activity state give the numbers of a full
rebuild, whatever arrives when.

Random nights: events arrive (on time, late with old timestamps, ahead of the cut-off, exactly
at it, anonymous, machine-generated), earlier events are attached to contacts, re-flagged,
moved or erased, and as_of advances by 0-3 days. After every night the incremental state must
equal the pure-Python reading of SPEC §2.4 (activity_reference.py) over the events as they
are then; after the last night, a full rebuild must give the same totals (unrounded to 1e-9
relative, rounded scores equal) and the same latest activity.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow.scoring.activity import update_activity_state
from leadflow.scoring.snapshot import snapshot_config
from tests.leadflow.scoring.activity_reference import activity_points
from tests.leadflow.scoring.helpers import config_with, event, insert

START = dt.date(2025, 6, 30)
UTC = dt.UTC
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
  - {id: visit_prices, event_type: web_visit, url_pattern: "*/preise*", points: 12.5}
  - {id: form, event_type: form_submit, points: 25}
  - {id: unsubscribe, event_type: unsubscribe, points: -30}
"""
CONTACTS = ["c0", "c1", "c2", None]
EVENT_TYPES = [
    "email_open", "email_click", "download", "web_visit", "form_submit", "unsubscribe",
    "email_sent", "purchase",
]  # fmt: skip

new_events = st.fixed_dictionaries(
    {
        "contact_id": st.sampled_from(CONTACTS),
        "event_type": st.sampled_from(EVENT_TYPES),
        "link_tag": st.sampled_from([None, "pricing", "other"]),
        "asset_id": st.sampled_from([None, "ebook_antriebslosigkeit", "datasheet_hs3000"]),
        "mailing_id": st.sampled_from([None, "m-1", "m-2"]),
        "url": st.sampled_from(
            [None, "https://x.de/produkte/a", "https://x.de/de/preise?p=1", "https://x.de/blog"]
        ),
        "is_machine": st.booleans(),
        # days relative to the night's as_of D: -200 (long before) … +3 (ahead of the cut-off);
        # +1 day at second 0 is exactly the cut-off
        "day": st.integers(-200, 3),
        "second": st.one_of(st.just(0), st.integers(0, 86_399)),
    }
)
changes = st.tuples(
    st.sampled_from(["attach", "detach", "machine", "human", "move", "delete"]),
    st.integers(0, 1_000),
    st.sampled_from(CONTACTS[:-1]),
    st.integers(-40, 3),
)
nights = st.lists(
    st.tuples(
        st.lists(new_events, max_size=6),
        st.lists(changes, max_size=2),
        st.integers(0, 3),  # days as_of advances after the night
    ),
    min_size=1,
    max_size=5,
)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return config_with(tmp_path_factory.mktemp("config"), scoring=SCORING)


def _cutoff(as_of: dt.date) -> dt.datetime:
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(0), tzinfo=UTC)


def _reset(engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("truncate raw.events"))  # the trigger drops the state
        connection.execute(
            sa.text("truncate ops.activity_totals, ops.activity_pending, ops.activity_changes")
        )


def _apply_change(connection, change, event_ids, as_of) -> None:
    kind, index, contact_id, day = change
    if not event_ids:
        return
    event_id = event_ids[index % len(event_ids)]
    statements = {
        "attach": ("update raw.events set contact_id = :contact where event_id = :id", {}),
        "detach": ("update raw.events set contact_id = null where event_id = :id", {}),
        "machine": ("update raw.events set is_machine = true where event_id = :id", {}),
        "human": ("update raw.events set is_machine = false where event_id = :id", {}),
        "move": (
            "update raw.events set occurred_at = :moment where event_id = :id",
            {"moment": _cutoff(as_of) + dt.timedelta(days=day - 1, hours=7)},
        ),
        "delete": ("delete from raw.events where event_id = :id", {}),
    }
    sql, extra = statements[kind]
    connection.execute(sa.text(sql), {"id": event_id, "contact": contact_id, **extra})


def _events(engine) -> list[dict]:
    with engine.connect() as connection:
        return [
            dict(row)
            for row in connection.execute(
                sa.text(
                    "select contact_id, event_type, occurred_at, is_machine, link_tag,"
                    " asset_id, mailing_id, url from raw.events"
                )
            ).mappings()
        ]


def _state(engine) -> tuple[dict[str, float], dict[str, dt.datetime | None]]:
    with engine.connect() as connection:
        found = connection.execute(
            sa.text(
                "select t.contact_id, t.weighted_sum * power(2.0::float8,"
                " (date_part('epoch', s.epoch) - date_part('epoch', s.cutoff))"
                " / (86400 * s.half_life_days)), t.last_activity_at"
                " from ops.activity_totals as t cross join ops.activity_state as s"
            )
        ).all()
    return {c: points for c, points, _ in found}, {c: last for c, _, last in found}


def _score(points: float) -> Decimal:
    """As lead_scores: clamp, then 15 significant digits (float → numeric), then 2 decimals."""
    clamped = min(max(points, 0.0), 100.0)
    return Decimal(f"{clamped:.15g}").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _assert_same(found: dict[str, float], expected: dict[str, float]) -> None:
    for contact_id in set(found) | set(expected):
        got, want = found.get(contact_id, 0.0), expected.get(contact_id, 0.0)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9), contact_id
        # Rounded scores agree, unless the two sit on either side of a rounding edge.
        if _score(got) != _score(want):
            assert abs(_score(got) - _score(want)) == Decimal("0.01")
            assert abs(got - want) < 1e-9


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(nights=nights)
def test_incremental_updates_equal_a_full_rebuild(warehouse, config, nights):
    _reset(warehouse)
    snapshot_config(warehouse, config)
    rules, half_life = config.scoring.activity_rules, config.scoring.activity_half_life_days
    ids = (f"e{n}" for n in itertools.count())
    event_ids: list[str] = []
    as_of = START
    for arrivals, night_changes, advance in nights:
        with warehouse.begin() as connection:
            rows = []
            for drawn in arrivals:
                moment = _cutoff(as_of) + dt.timedelta(
                    days=drawn["day"] - 1, seconds=drawn["second"]
                )
                fields = {k: v for k, v in drawn.items() if k not in ("day", "second")}
                contact_id, event_type = fields.pop("contact_id"), fields.pop("event_type")
                rows.append(event(next(ids), contact_id, event_type, moment, **fields))
            insert(connection, "raw.events", rows)
            event_ids += [row["event_id"] for row in rows]
            for change in night_changes:
                _apply_change(connection, change, event_ids, as_of)
        update_activity_state(warehouse, config, as_of)
        found, _ = _state(warehouse)
        _assert_same(found, activity_points(_events(warehouse), rules, _cutoff(as_of), half_life))
        as_of += dt.timedelta(days=advance)

    as_of -= dt.timedelta(days=nights[-1][2])
    incremental, incremental_last = _state(warehouse)
    update = update_activity_state(warehouse, config, as_of, full=True)
    assert update.mode == "full"
    rebuilt, rebuilt_last = _state(warehouse)
    _assert_same(incremental, rebuilt)
    assert incremental_last == rebuilt_last
