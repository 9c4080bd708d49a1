"""The configuration snapshot in ops (leadflow.scoring.snapshot) and what keeps it in step
with the rest: the dbt defaults, the dbt field list, the hashes."""

from __future__ import annotations

import ast
from decimal import Decimal

import pytest
import sqlalchemy as sa
from ruamel.yaml import YAML

from leadflow.config.fields import FIELDS
from leadflow.config.models import Defaults
from leadflow.paths import PROJECT_ROOT
from leadflow.scoring import snapshot as snapshot_module
from leadflow.scoring.snapshot import activity_hash, config_hash, snapshot_config
from tests.leadflow.scoring.helpers import config_with, rows

DBT = PROJECT_ROOT / "dbt_project"

PERSONAS = """
personas:
  - id: second_listed_first
    name: Zweite
    criteria:
      - {field: decision_role, op: "=", value: purchaser, weight: 0.1}
      - {field: created_at, op: ">=", value: -30d, weight: 2}
  - id: alpha
    name: Alpha
    threshold: 65.5
    criteria:
      - {field: employee_count, op: between, value: [50, 500], weight: 15}
"""


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return config_with(tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    return config_with(tmp_path_factory.mktemp("custom"), personas=PERSONAS)


def test_personas_criteria_and_order(warehouse, custom):
    snapshot_config(warehouse, custom)
    assert rows(warehouse, "select * from ops.config_personas order by position") == [
        ("second_listed_first", 1, "Zweite", Decimal("70")),  # company default threshold
        ("alpha", 2, "Alpha", Decimal("65.5")),
    ]
    assert rows(
        warehouse,
        "select persona_id, position, field, field_type, op, cast(value as text), weight"
        " from ops.config_persona_criteria order by persona_id, position",
    ) == [
        ("alpha", 1, "employee_count", "integer", "between", "[50, 500]", Decimal("15.0")),
        ("second_listed_first", 1, "decision_role", "enum", "=", '"purchaser"', Decimal("0.1")),
        ("second_listed_first", 2, "created_at", "timestamp", ">=", '"-30d"', Decimal("2")),
    ]


def test_rules_thresholds_and_tenants(warehouse, example):
    snapshot_config(warehouse, example)
    profile = rows(
        warehouse,
        "select rule_id, position, field, op, cast(value as text), points"
        " from ops.config_profile_rules order by position",
    )
    assert profile[0] == (
        "role_production_manager", 1, "decision_role", "=", '"production_manager"', Decimal("30"),
    )  # fmt: skip
    assert profile[-1] == (
        "student_or_press", 10, "tags", "in", '["student", "press", "competitor"]', Decimal("-50"),
    )  # fmt: skip
    assert rows(
        warehouse,
        "select rule_id, event_type, link_tag, asset_id, url_pattern, url_like, url_is_path,"
        " points from ops.config_activity_rules where rule_id in"
        " ('click_pricing', 'ebook', 'visit_hs3000', 'visit_pricing') order by position",
    ) == [
        ("click_pricing", "email_click", "pricing", None, None, None, None, 15.0),
        ("ebook", "download", None, "ebook_antriebslosigkeit", None, None, None, 20.0),
        ("visit_hs3000", "web_visit", None, None, "/produkte/hydrostat-3000*",
         "/produkte/hydrostat-3000%", True, 8.0),
        ("visit_pricing", "web_visit", None, None, "*/preise*", "%/preise%", False, 12.0),
    ]  # fmt: skip
    assert rows(
        warehouse,
        "select persona_threshold, activity_half_life_days, grade_a, grade_b, grade_c, band_1,"
        " band_2, band_3, mql_cells, clv_retention, clv_horizon_years, new_customer_days"
        " from ops.config_scoring",
    ) == [
        (Decimal("70.0"), 30.0, Decimal("75.0"), Decimal("50.0"), Decimal("25.0"),
         Decimal("75.0"), Decimal("50.0"), Decimal("25.0"), ["A1", "A2", "B1"], Decimal("0.8"),
         5, 365),
    ]  # fmt: skip
    assert rows(warehouse, "select tenant_code, position from ops.config_tenants order by 2") == [
        ("hq", 1),
        ("fr", 2),
        ("it", 3),
        ("es", 4),
    ]
    ((hash_, activity, config_json),) = rows(
        warehouse, "select config_hash, activity_hash, config from ops.config_snapshot"
    )
    assert (hash_, activity) == (config_hash(example), activity_hash(example))
    assert config_json["personas"][0]["id"] == "production_manager"


def test_a_new_snapshot_replaces_the_old_one(warehouse, example, custom):
    snapshot_config(warehouse, example)
    snapshot_config(warehouse, custom)
    assert rows(warehouse, "select persona_id from ops.config_personas order by 1") == [
        ("alpha",),
        ("second_listed_first",),
    ]
    assert rows(warehouse, "select count(*) from ops.config_snapshot") == [(1,)]
    assert rows(warehouse, "select config_hash from ops.config_snapshot") == [
        (config_hash(custom),)
    ]


def test_a_failed_snapshot_leaves_the_previous_one(warehouse, example, custom, monkeypatch):
    snapshot_config(warehouse, example)
    before = rows(warehouse, "select persona_id from ops.config_personas order by 1")
    original = snapshot_module._insert

    def failing(connection, table, table_rows):
        if table == "ops.config_profile_rules":
            raise sa.exc.OperationalError("insert", {}, Exception("connection lost"))
        original(connection, table, table_rows)

    monkeypatch.setattr(snapshot_module, "_insert", failing)
    with pytest.raises(sa.exc.OperationalError):
        snapshot_config(warehouse, custom)
    assert rows(warehouse, "select persona_id from ops.config_personas order by 1") == before
    assert rows(warehouse, "select config_hash from ops.config_snapshot") == [
        (config_hash(example),)
    ]


def test_hashes_follow_what_changed(example, custom, tmp_path):
    # Personas are not part of the activity hash: the activity state stays valid.
    assert config_hash(example) != config_hash(custom)
    assert activity_hash(example) == activity_hash(custom)
    scoring = (example.directory / "scoring.yaml").read_text(encoding="utf-8")
    longer = config_with(tmp_path, scoring=scoring + "activity_half_life_days: 45\n")
    assert activity_hash(longer) != activity_hash(example)


def test_dbt_defaults_are_company_defaults():
    """Without a snapshot dbt uses var `scoring_defaults`: the same as company.yaml's."""
    variables = YAML(typ="safe").load((DBT / "dbt_project.yml").read_text())["vars"]
    defaults = Defaults()
    assert variables["scoring_defaults"] == {
        "persona_threshold": defaults.persona_threshold,
        "activity_half_life_days": defaults.activity_half_life_days,
        "grade_a": defaults.grade_thresholds.A,
        "grade_b": defaults.grade_thresholds.B,
        "grade_c": defaults.grade_thresholds.C,
        "band_1": defaults.band_thresholds.band_1,
        "band_2": defaults.band_thresholds.band_2,
        "band_3": defaults.band_thresholds.band_3,
        "mql_cells": defaults.mql_cells,
        "clv_retention": defaults.clv.retention,
        "clv_horizon_years": defaults.clv.horizon_years,
    }
    assert variables["new_customer_days"] == defaults.new_customer_days


def test_dbt_knows_every_field_a_condition_may_name():
    """macros/scoring/conditions.sql lists the fields (and types) of the field catalogue that
    persona criteria and profile rules may compare."""
    text = (DBT / "macros" / "scoring" / "conditions.sql").read_text(encoding="utf-8")
    start = text.index("{{- return({", text.index("macro condition_fields"))
    listed = ast.literal_eval(text[start + len("{{- return(") : text.index("})", start) + 1])
    expected = {name: spec.type for name, spec in FIELDS.items() if not spec.from_scoring}
    assert listed == expected
