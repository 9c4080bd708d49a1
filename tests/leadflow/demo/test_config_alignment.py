"""The generated company is the one the shipped configuration describes.

The generator keeps its world as plain data (leadflow/demo/vocabulary.py) so it runs without
a configuration; these tests fail when include/config and that data drift apart, because
then the demo's scores, personas, segments, routing and fair ROI would find nothing.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest
from ruamel.yaml import YAML

from leadflow import paths
from leadflow.config import Config, load_config
from leadflow.demo import vocabulary as v
from leadflow.demo.copytext import day_number
from leadflow.demo.timeline import Timeline

SHIPPED = paths.PROJECT_ROOT / "include" / "config"


@cache
def shipped() -> Config:
    return load_config(SHIPPED)


def _values(node, key: str):
    """Every value of `key` anywhere in a parsed YAML tree."""
    if isinstance(node, dict):
        for name, child in node.items():
            if name == key:
                yield child
            yield from _values(child, key)
    elif isinstance(node, list):
        for child in node:
            yield from _values(child, key)


def test_products_match_products_yaml():
    configured = {p.id: p for p in shipped().products}
    assert set(configured) == {p.product_id for p in v.PRODUCTS}
    for product in v.PRODUCTS:
        expected = configured[product.product_id]
        assert product.sku == expected.sku
        assert product.name == expected.name
        assert product.family == expected.family
        assert product.list_price_cents == round(expected.list_price * 100)
        assert product.unit_cost_cents == round(expected.unit_cost * 100)
        assert product.maintenance_interval_months == expected.maintenance_interval_months


def test_owners_are_the_sales_teams_of_routing_yaml():
    teams = {
        team.id: tuple(member.name for member in team.members) for team in shipped().routing.teams
    }
    assert teams == v.SALES_TEAMS


def test_website_assets_and_honeypot_match_company_yaml():
    company = shipped().company
    assert v.WEBSITE["de"] == company.website.rstrip("/")
    assert {asset for asset, _ in v.ASSETS} <= {asset.id for asset in company.assets}
    assert company.tracking.machine_traffic.honeypot_link_tag == v.HONEYPOT_LINK_TAG


def test_machine_traffic_is_recognisable_by_the_configured_rules():
    traffic = shipped().company.tracking.machine_traffic
    patterns = [p.lower() for p in traffic.user_agents.patterns]
    for agent in v.MACHINE_AGENTS:
        assert any(p in agent.lower() for p in patterns), agent
    for agent in v.MAIL_CLIENT_AGENTS + v.BROWSER_AGENTS:
        assert not any(p in agent.lower() for p in patterns), agent
    assert v.MACHINE_DELAY_SECONDS[1] <= traffic.min_seconds_after_delivery
    assert traffic.min_seconds_after_delivery < v.HUMAN_MIN_DELAY_SECONDS


def test_campaign_steps_are_send_steps_of_the_campaign_files():
    from leadflow.config import step_kind

    campaigns = shipped().campaigns
    for campaign in v.CAMPAIGNS:
        assert campaign.campaign_id in campaigns
        steps = campaigns[campaign.campaign_id].steps
        sends = [step.id for step in steps if step_kind(step) == "send"]
        assert [s for s in sends if s in campaign.steps] == list(campaign.steps), campaign


def test_every_link_tag_a_campaign_branches_on_can_be_clicked():
    yaml = YAML(typ="safe")
    branched = set()
    for path in sorted((SHIPPED / "campaigns").glob("*.yaml")):
        branched |= set(_values(yaml.load(path.read_text(encoding="utf-8")), "link_tag"))
    clickable = set(v.NEWSLETTER_LINK_TAGS).union(*(c.link_tags for c in v.CAMPAIGNS))
    assert branched
    assert branched <= clickable


def test_persona_and_scoring_values_occur_in_the_data():
    config = shipped()
    for persona in config.personas:
        for criterion in persona.criteria:
            if criterion.field == "interests":
                values = criterion.value if isinstance(criterion.value, list) else [criterion.value]
                assert set(values) <= set(v.INTERESTS), persona.id
    for rule in config.scoring.profile_rules:
        if rule.field == "tags":
            assert set(rule.value) <= set(v.TAGS), rule.id
    assets = {asset for asset, _ in v.ASSETS}
    for rule in config.scoring.activity_rules:
        if rule.asset:
            assert rule.asset in assets, rule.id


@pytest.mark.parametrize("fair", [f.name for f in v.FAIRS])
def test_fair_editions_match_costs_yaml(fair):
    """Every fair edition with costs is one the generator holds, on the same days."""
    editions = [f for f in shipped().costs.fairs if f.name.rsplit(" ", 1)[0] == fair]
    assert editions, f"no costs for {fair}"
    for edition in editions:
        year = int(edition.name.rsplit(" ", 1)[1])
        timeline = Timeline(dt.date(year, 12, 31), 6)
        held = [o for o in timeline.fair_occurrences if o.name == edition.name]
        assert len(held) == 1, edition.name
        assert held[0].first_day == day_number(edition.date)
        assert held[0].last_day == day_number(edition.end_date or edition.date)
