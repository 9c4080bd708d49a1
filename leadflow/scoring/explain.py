"""Why a contact has its persona, scores and cell: the audit trail of SPEC §2.4 "Explain".

    explanation = explain(engine, "c-000123" or "peter@huber.example", as_of=None, config)
    print_explanation(explanation, console)

Everything is read from what the last nightly run built, so the numbers are the marts'
numbers: the persona criteria met (int_persona_criteria_evaluated), the profile rules that
fired (int_profile_rules_evaluated), each event's decayed contribution per activity rule
(int_activity_rule_hits) and the resulting match_pct, scores, grade, band, cell and MQL flag
(marts.persona_matches, marts.lead_scores). The dbt views evaluate the very predicates the
scoring models use, for this one contact.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadflow.config import Config
from leadflow.errors import LeadflowError
from leadflow.scoring.snapshot import config_hash

TOP_CONTRIBUTIONS = 10


@dataclass(frozen=True)
class CriterionCheck:
    """One persona criterion for this contact."""

    position: int
    field: str
    op: str
    value: Any
    weight: Decimal
    is_met: bool
    field_value: str | None

    @property
    def condition(self) -> str:
        return describe_condition(self.field, self.op, self.value)


@dataclass(frozen=True)
class PersonaMatch:
    persona_id: str
    name: str
    position: int
    threshold: Decimal
    match_pct: Decimal
    is_match: bool
    criteria: list[CriterionCheck]

    @property
    def weight_met(self) -> Decimal:
        return sum((c.weight for c in self.criteria if c.is_met), Decimal(0))

    @property
    def weight_total(self) -> Decimal:
        return sum((c.weight for c in self.criteria), Decimal(0))


@dataclass(frozen=True)
class RuleCheck:
    """One profile rule for this contact."""

    rule_id: str
    position: int
    field: str
    op: str
    value: Any
    points: Decimal
    is_met: bool
    field_value: str | None
    description: str | None

    @property
    def condition(self) -> str:
        return describe_condition(self.field, self.op, self.value)


@dataclass(frozen=True)
class ActivityHit:
    """One event matched by one activity rule: points × 0.5^(age_days / half-life)."""

    event_id: str
    event_type: str
    occurred_at: dt.datetime
    rule_id: str
    points: float
    age_days: float
    decay: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    contact_id: str
    email: str
    name: str
    tenant_code: str
    as_of: dt.date
    # personas (SPEC §2.3)
    personas: list[PersonaMatch]
    best_persona: str | None
    # profile score (fit)
    profile_rules: list[RuleCheck]
    profile_points: Decimal
    profile_score: Decimal
    grade: str
    grade_thresholds: tuple[Decimal, Decimal, Decimal]
    # activity score (engagement), hits by contribution, largest first
    half_life_days: float
    activity_hits: list[ActivityHit]
    activity_points: float
    activity_score: Decimal
    band: int
    band_thresholds: tuple[Decimal, Decimal, Decimal]
    # the result
    matrix_cell: str
    mql_cells: list[str]
    is_mql: bool
    lifecycle_stage: str
    warnings: list[str] = field(default_factory=list)

    @property
    def profile_rules_fired(self) -> list[RuleCheck]:
        return [rule for rule in self.profile_rules if rule.is_met]

    def top_contributions(self, count: int = TOP_CONTRIBUTIONS) -> list[ActivityHit]:
        return self.activity_hits[:count]

    @property
    def activity_points_listed(self) -> float:
        """Σ of every event's contribution (what the unclamped activity score is)."""
        return sum(hit.contribution for hit in self.activity_hits)


def describe_condition(field_name: str, op: str, value: Any) -> str:
    """`industry in [machine_tools, automotive]`, `best_persona is_not_null`."""
    if value is None:
        return f"{field_name} {op}"
    if isinstance(value, list):
        shown = "[" + ", ".join(str(item) for item in value) + "]"
    else:
        shown = str(value)
    return f"{field_name} {op} {shown}"


def explain(
    engine: Engine, contact: str, as_of: dt.date | None, config: Config | None = None
) -> Explanation:
    """The explanation for `contact` (its id, or its e-mail address in any case/spacing).

    `as_of` must be the date the marts were last built for (None: that date); `config`, when
    given, is compared with the snapshot the marts were built from, and a difference is
    reported in `warnings`.
    """
    with engine.connect() as connection:
        _require_built(connection)
        row = _contact_row(connection, contact)
        if as_of is not None and as_of != row["as_of"]:
            raise LeadflowError(
                f"the marts are built for {row['as_of']}; to explain {as_of}, run "
                f"`leadflow build --as-of {as_of}` first"
            )
        contact_id = row["contact_id"]
        settings = _settings(connection)
        personas = _personas(connection, contact_id)
        activity = _one(
            connection,
            "select activity_points from intermediate.int_contacts_activity_scored "
            "where contact_id = :contact_id",
            contact_id,
        )
        warnings = _warnings(connection, config)
        rules = _profile_rules(connection, contact_id)
        return Explanation(
            contact_id=contact_id,
            email=row["email"],
            name=" ".join(part for part in (row["first_name"], row["last_name"]) if part),
            tenant_code=row["tenant_code"],
            as_of=row["as_of"],
            personas=personas,
            best_persona=row["best_persona"],
            profile_rules=rules,
            profile_points=sum((rule.points for rule in rules if rule.is_met), Decimal(0)),
            profile_score=row["profile_score"],
            grade=row["grade"],
            grade_thresholds=(settings["grade_a"], settings["grade_b"], settings["grade_c"]),
            half_life_days=settings["activity_half_life_days"],
            activity_hits=_activity_hits(connection, contact_id),
            activity_points=activity["activity_points"] if activity else 0.0,
            activity_score=row["activity_score"],
            band=row["band"],
            band_thresholds=(settings["band_1"], settings["band_2"], settings["band_3"]),
            matrix_cell=row["matrix_cell"],
            mql_cells=list(settings["mql_cells"]),
            is_mql=row["is_mql"],
            lifecycle_stage=row["lifecycle_stage"],
            warnings=warnings,
        )


# --- reading -----------------------------------------------------------------------------

_REQUIRED = (
    "marts.dim_contacts",
    "marts.persona_matches",
    "intermediate.int_persona_criteria_evaluated",
    "intermediate.int_profile_rules_evaluated",
    "intermediate.int_activity_rule_hits",
)


def _require_built(connection: Connection) -> None:
    for name in _REQUIRED:
        if (
            connection.execute(sa.text("select to_regclass(:name)"), {"name": name}).scalar()
            is None
        ):
            raise LeadflowError(f"{name} not built yet: run `leadflow build --as-of DATE` first")


def _contact_row(connection: Connection, contact: str) -> dict[str, Any]:
    rows = (
        connection.execute(
            sa.text(
                "select contact_id, email, first_name, last_name, tenant_code, as_of, "
                "best_persona, profile_score, grade, activity_score, band, matrix_cell, is_mql, "
                "lifecycle_stage from marts.dim_contacts "
                "where contact_id = :contact or email = lower(btrim(:contact)) "
                "order by contact_id = :contact desc limit 1"
            ),
            {"contact": contact},
        )
        .mappings()
        .all()
    )
    if not rows:
        raise LeadflowError(f"no contact with the id or e-mail address {contact!r}")
    return dict(rows[0])


def _one(connection: Connection, sql: str, contact_id: str) -> dict[str, Any] | None:
    row = connection.execute(sa.text(sql), {"contact_id": contact_id}).mappings().one_or_none()
    return dict(row) if row else None


def _settings(connection: Connection) -> dict[str, Any]:
    return dict(
        connection.execute(sa.text("select * from intermediate.int_scoring_settings"))
        .mappings()
        .one()
    )


def _personas(connection: Connection, contact_id: str) -> list[PersonaMatch]:
    criteria: dict[str, list[CriterionCheck]] = {}
    for row in connection.execute(
        sa.text(
            """
            select evaluated.persona_id, evaluated.criterion_position, criteria.field,
                   criteria.op, cast(criteria.value as text) as value, criteria.weight,
                   evaluated.is_met, evaluated.field_value
            from intermediate.int_persona_criteria_evaluated as evaluated
            join ops.config_persona_criteria as criteria
              on criteria.persona_id = evaluated.persona_id
             and criteria.position = evaluated.criterion_position
            where evaluated.contact_id = :contact_id
            order by evaluated.persona_id, evaluated.criterion_position
            """
        ),
        {"contact_id": contact_id},
    ).mappings():
        criteria.setdefault(row["persona_id"], []).append(
            CriterionCheck(
                position=row["criterion_position"],
                field=row["field"],
                op=row["op"],
                value=_json(row["value"]),
                weight=row["weight"],
                is_met=row["is_met"],
                field_value=row["field_value"],
            )
        )
    matches = connection.execute(
        sa.text(
            "select persona, persona_name, persona_position, threshold, match_pct, is_match "
            "from marts.persona_matches where contact_id = :contact_id order by persona_position"
        ),
        {"contact_id": contact_id},
    ).all()
    return [
        PersonaMatch(persona, name, position, threshold, pct, is_match, criteria.get(persona, []))
        for persona, name, position, threshold, pct, is_match in matches
    ]


def _profile_rules(connection: Connection, contact_id: str) -> list[RuleCheck]:
    rows = connection.execute(
        sa.text(
            """
            select evaluated.rule_id, evaluated.rule_position, rules.field, rules.op,
                   cast(rules.value as text) as value, rules.points, evaluated.is_met,
                   evaluated.field_value, rules.description
            from intermediate.int_profile_rules_evaluated as evaluated
            join ops.config_profile_rules as rules on rules.rule_id = evaluated.rule_id
            where evaluated.contact_id = :contact_id
            order by evaluated.rule_position
            """
        ),
        {"contact_id": contact_id},
    ).all()
    return [
        RuleCheck(rule_id, position, field_name, op, _json(value), points, met, shown, text)
        for rule_id, position, field_name, op, value, points, met, shown, text in rows
    ]


def _activity_hits(connection: Connection, contact_id: str) -> list[ActivityHit]:
    rows = connection.execute(
        sa.text(
            "select event_id, event_type, occurred_at, rule_id, points, age_days, decay, "
            "contribution from intermediate.int_activity_rule_hits "
            "where contact_id = :contact_id "
            "order by contribution desc, occurred_at desc, event_id, rule_id"
        ),
        {"contact_id": contact_id},
    ).all()
    return [ActivityHit(*row) for row in rows]


def _warnings(connection: Connection, config: Config | None) -> list[str]:
    snapshot = connection.execute(
        sa.text("select config_hash, taken_at from ops.config_snapshot")
    ).one_or_none()
    if snapshot is None:
        return ["no configuration snapshot: the marts were built with no personas or rules"]
    if config is not None and config_hash(config) != snapshot[0]:
        taken = f"{snapshot[1]:%Y-%m-%d %H:%M}"
        return [
            f"the configuration changed since the marts were built ({taken}); "
            "this explains the numbers of the last build"
        ]
    return []


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# --- printing ----------------------------------------------------------------------------


def print_explanation(explanation: Explanation, console: Any) -> None:
    """Print the explanation with rich (tables for personas, rules and activity).

    Everything that comes from data (names, values, rule ids) is escaped: `[a, b]` is a list
    here, not rich markup.
    """
    from rich.markup import escape
    from rich.table import Table

    e = explanation
    console.print(
        f"[bold]{escape(e.name or e.email)}[/] <{escape(e.email)}> ({escape(e.contact_id)}), "
        f"tenant {escape(e.tenant_code)}, as of {e.as_of}",
        highlight=False,
    )
    for warning in e.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)

    for persona in e.personas:
        verdict = "[green]match[/]" if persona.is_match else "no match"
        table = Table(
            title=f"persona {escape(persona.persona_id)} ({escape(persona.name)}): "
            f"{persona.match_pct} % (threshold {persona.threshold} %) {verdict}",
            title_justify="left",
        )
        for column in ("criterion", "weight", "met", "contact's value"):
            table.add_column(column)
        for criterion in persona.criteria:
            table.add_row(
                escape(criterion.condition),
                str(criterion.weight),
                "yes" if criterion.is_met else "no",
                escape(_shown(criterion.field_value)),
            )
        table.caption = f"{persona.weight_met} of {persona.weight_total} weight met"
        console.print(table)
    console.print(f"best persona: [bold]{escape(e.best_persona or 'none')}[/]", highlight=False)

    rules = Table(title="profile rules", title_justify="left")
    for column in ("rule", "condition", "points", "fired", "contact's value"):
        rules.add_column(column)
    for rule in e.profile_rules:
        rules.add_row(
            escape(rule.rule_id),
            escape(rule.condition),
            str(rule.points),
            "yes" if rule.is_met else "no",
            escape(_shown(rule.field_value)),
        )
    a, b, c = e.grade_thresholds
    rules.caption = (
        f"Σ points {e.profile_points} → clamp(0, 100) → profile score {e.profile_score} → "
        f"grade {e.grade} (A ≥ {a}, B ≥ {b}, C ≥ {c})"
    )
    console.print(rules)

    hits = Table(
        title=f"activity: {len(e.activity_hits)} rule hits, half-life {e.half_life_days:g} days",
        title_justify="left",
    )
    for column in ("occurred at", "event", "rule", "points", "age (days)", "decay", "contribution"):
        hits.add_column(column)
    for hit in e.top_contributions():
        hits.add_row(
            f"{hit.occurred_at:%Y-%m-%d %H:%M}",
            escape(hit.event_type),
            escape(hit.rule_id),
            f"{hit.points:g}",
            f"{hit.age_days:.2f}",
            f"{hit.decay:.4f}",
            f"{hit.contribution:.4f}",
        )
    shown = min(len(e.activity_hits), TOP_CONTRIBUTIONS)
    b1, b2, b3 = e.band_thresholds
    hits.caption = (
        f"top {shown} of {len(e.activity_hits)}; Σ contributions {e.activity_points:.4f} → "
        f"clamp(0, 100) → activity score {e.activity_score} → band {e.band} "
        f"(1 ≥ {b1}, 2 ≥ {b2}, 3 ≥ {b3})"
    )
    console.print(hits)

    mql = "yes" if e.is_mql else "no"
    console.print(
        f"matrix cell [bold]{e.matrix_cell}[/] (MQL cells {', '.join(e.mql_cells)}): MQL {mql}; "
        f"lifecycle stage {e.lifecycle_stage}",
        highlight=False,
    )


def _shown(value: str | None) -> str:
    return "NULL" if value is None else value
