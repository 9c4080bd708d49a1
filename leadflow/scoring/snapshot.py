"""The configuration as data: personas, rules and thresholds in `ops.config_*` tables.

    snapshot_config(engine, config)

replaces, in one transaction, every row of the snapshot tables with the loaded configuration
(migration 0003_scoring describes them). The dbt models of personas and scores read these
tables and nothing else of the YAML, so a new persona or rule needs no new SQL.

Numbers that are summed or compared exactly (weights, points, thresholds) are written as
`numeric` from the number as written in the YAML (`Decimal(repr(x))`), as the filter compiler
binds them; activity points are `double precision`, since their decayed contributions are.
Two hashes identify the snapshot: `config_hash` of the whole configuration and
`activity_hash` of what activity scores depend on, which the incremental activity state is
valid for.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadflow.config import Config
from leadflow.config.filters import FieldCondition
from leadflow.segments.compiler import glob_to_like

# Children first: the order rows are deleted in (criteria reference personas).
SNAPSHOT_TABLES = (
    "ops.config_persona_criteria",
    "ops.config_personas",
    "ops.config_profile_rules",
    "ops.config_activity_rules",
    "ops.config_tenants",
    "ops.config_scoring",
    "ops.config_snapshot",
)


def exact(number: float | int) -> Decimal:
    """A YAML number as the decimal written in the file (0.1 stays 0.1, not 0.10000000000000001)."""
    return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_hash(config: Config) -> str:
    """sha256 of the whole configuration (every file, defaults filled in)."""
    return _digest(config.snapshot())


def activity_hash(config: Config) -> str:
    """sha256 of what activity scores depend on: the activity rules and the half-life.

    Rule ids and descriptions are left out: renaming a rule changes no score.
    """
    rules = [
        rule.model_dump(mode="json", exclude={"id", "description"})
        for rule in config.scoring.activity_rules
    ]
    return _digest({"rules": rules, "half_life_days": config.scoring.activity_half_life_days})


def condition_value(condition: FieldCondition) -> str | None:
    """The checked value of a condition as JSON text (relative dates as written: "-3y")."""
    value = condition.model_dump(mode="json")["value"]
    return None if value is None else json.dumps(value)


def snapshot_config(engine: Engine, config: Config) -> None:
    """Replace the configuration snapshot in `ops` with `config` (all or nothing)."""
    with engine.begin() as connection:
        for table in SNAPSHOT_TABLES:
            connection.execute(sa.text(f"delete from {table}"))  # noqa: S608 (constants)
        _insert(connection, "ops.config_snapshot", [_snapshot_row(config)])
        _insert(connection, "ops.config_scoring", [_scoring_row(config)])
        _insert(connection, "ops.config_tenants", _tenant_rows(config))
        _insert(connection, "ops.config_personas", _persona_rows(config))
        _insert(connection, "ops.config_persona_criteria", _criterion_rows(config))
        _insert(connection, "ops.config_profile_rules", _profile_rule_rows(config))
        _insert(connection, "ops.config_activity_rules", _activity_rule_rows(config))
        # Row counts for the planner: unanalysed, a one-row table is costed as hundreds of
        # rows, and every scoring model joins these.
        for table in SNAPSHOT_TABLES:
            connection.execute(sa.text(f"analyze {table}"))


def _insert(connection: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    values = ", ".join(
        f"cast(:{column} as jsonb)" if column in ("value", "config") else f":{column}"
        for column in columns
    )
    connection.execute(
        sa.text(f"insert into {table} ({', '.join(columns)}) values ({values})"),  # noqa: S608
        rows,
    )


def _snapshot_row(config: Config) -> dict[str, Any]:
    return {
        "config_hash": config_hash(config),
        "activity_hash": activity_hash(config),
        "config_dir": str(config.directory),
        "config": json.dumps(config.snapshot(), default=str),
    }


def _scoring_row(config: Config) -> dict[str, Any]:
    defaults = config.company.defaults
    scoring = config.scoring
    # The loader fills the scoring thresholds from company.yaml's defaults when omitted.
    assert scoring.grade_thresholds and scoring.band_thresholds and scoring.mql_cells
    grades, bands = scoring.grade_thresholds, scoring.band_thresholds
    return {
        "persona_threshold": exact(defaults.persona_threshold),
        "activity_half_life_days": float(scoring.activity_half_life_days or 0),
        "grade_a": exact(grades.A),
        "grade_b": exact(grades.B),
        "grade_c": exact(grades.C),
        "band_1": exact(bands.band_1),
        "band_2": exact(bands.band_2),
        "band_3": exact(bands.band_3),
        "mql_cells": list(scoring.mql_cells),
        "clv_retention": exact(defaults.clv.retention),
        "clv_horizon_years": defaults.clv.horizon_years,
        "new_customer_days": defaults.new_customer_days,
    }


def _tenant_rows(config: Config) -> list[dict[str, Any]]:
    return [
        {
            "tenant_code": tenant.code,
            "position": position,
            "name": tenant.name,
            "is_global": tenant.is_global,
        }
        for position, tenant in enumerate(config.tenants, start=1)
    ]


def _persona_rows(config: Config) -> list[dict[str, Any]]:
    default = config.company.defaults.persona_threshold
    return [
        {
            "persona_id": persona.id,
            "position": position,
            "name": persona.name,
            "threshold": exact(persona.threshold if persona.threshold is not None else default),
        }
        for position, persona in enumerate(config.personas, start=1)
    ]


def _condition_columns(condition: FieldCondition) -> dict[str, Any]:
    return {
        "field": condition.field,
        "field_type": condition.spec.type,
        "op": condition.op,
        "value": condition_value(condition),
    }


def _criterion_rows(config: Config) -> list[dict[str, Any]]:
    return [
        {
            "persona_id": persona.id,
            "position": position,
            **_condition_columns(criterion),
            "weight": exact(criterion.weight),
        }
        for persona in config.personas
        for position, criterion in enumerate(persona.criteria, start=1)
    ]


def _profile_rule_rows(config: Config) -> list[dict[str, Any]]:
    return [
        {
            "rule_id": rule.id,
            "position": position,
            **_condition_columns(rule),
            "points": exact(rule.points),
            "description": rule.description,
        }
        for position, rule in enumerate(config.scoring.profile_rules, start=1)
    ]


def _activity_rule_rows(config: Config) -> list[dict[str, Any]]:
    rows = []
    for position, rule in enumerate(config.scoring.activity_rules, start=1):
        pattern = rule.url_pattern
        rows.append(
            {
                "rule_id": rule.id,
                "position": position,
                "event_type": rule.event_type,
                "link_tag": rule.link_tag,
                "asset_id": rule.asset,
                "mailing_id": rule.mailing,
                "url_pattern": pattern,
                "url_like": None if pattern is None else glob_to_like(pattern),
                "url_is_path": None if pattern is None else pattern.startswith("/"),
                "points": float(rule.points),
                "description": rule.description,
            }
        )
    return rows
