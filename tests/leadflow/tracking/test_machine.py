"""Machine-traffic rules, one at a time, and the shipped defaults."""

from __future__ import annotations

import datetime as dt

import pytest

from leadflow.tracking.machine import MachineRules
from tests.leadflow.tracking.data import BROWSER

SENT = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
RULES = MachineRules.build(
    user_agents=["GoogleImageProxy", "Barracuda"],
    ip_ranges=["17.0.0.0/8", "2001:db8::/32"],
    min_seconds_after_delivery=10,
    honeypot_link_tag="honeypot",
)


def person(**overrides):
    values = {"user_agent": BROWSER, "ip": "203.0.113.7", "sent_at": SENT}
    values["occurred_at"] = SENT + dt.timedelta(minutes=5)
    values.update(overrides)
    return values


def test_a_person_is_not_a_machine():
    assert RULES.reason("open", **person()) is None
    assert RULES.reason("click", link_tag="product", **person()) is None


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("Mozilla/5.0 (via ggpht.com GoogleImageProxy)", "user_agent"),
        ("barracuda link protection", "user_agent"),  # case-insensitive
        ("Mozilla/5.0 Barracud", None),
        (None, None),
    ],
)
def test_user_agent_rule(agent, expected):
    assert RULES.reason("open", **person(user_agent=agent)) == expected


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("17.58.1.2", "ip_range"),
        ("18.0.0.1", None),
        ("2001:db8:1::5", "ip_range"),
        ("2001:db9::1", None),
        ("not-an-address", None),
        (None, None),
    ],
)
def test_ip_range_rule(ip, expected):
    assert RULES.reason("open", **person(ip=ip)) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"), [(0, "too_fast"), (9.9, "too_fast"), (10, None), (3600, None)]
)
def test_clicks_right_after_delivery_are_machines(seconds, expected):
    occurred = SENT + dt.timedelta(seconds=seconds)
    assert RULES.reason("click", **person(occurred_at=occurred)) == expected


def test_the_delivery_rule_is_for_clicks_only_and_needs_a_send_time():
    assert RULES.reason("open", **person(occurred_at=SENT)) is None
    assert RULES.reason("click", **person(occurred_at=SENT, sent_at=None)) is None


def test_honeypot_rule():
    assert RULES.reason("click", link_tag="honeypot", **person()) == "honeypot"
    assert RULES.reason("open", link_tag="honeypot", **person()) is None
    no_honeypot = MachineRules.build(honeypot_link_tag=None)
    assert no_honeypot.reason("click", link_tag="honeypot", **person()) is None


def test_the_shipped_defaults(config):
    rules = MachineRules.from_config(config)
    assert len(rules.user_agents) == 16 and len(rules.networks) == 4
    assert rules.min_seconds_after_delivery == 10 and rules.honeypot_link_tag == "honeypot"
    assert rules.reason("open", **person(ip="17.1.2.3")) == "ip_range"
    assert rules.reason("open", **person(user_agent="Microsoft Office Protection")) == "user_agent"
    assert rules.reason("open", **person()) is None


def test_cached_answers_belong_to_their_rule_set():
    scanner = "Mozilla/5.0 (compatible; Barracuda Sentinel)"
    others = MachineRules.build(user_agents=["Proofpoint"], ip_ranges=["203.0.113.0/24"])
    for _ in range(3):  # answered again from each rule set's cache
        assert RULES.reason("open", **person(user_agent=scanner)) == "user_agent"
        assert others.reason("open", **person(user_agent=scanner, ip="18.0.0.1")) is None
        assert RULES.reason("open", **person()) is None
        assert others.reason("open", **person()) == "ip_range"
