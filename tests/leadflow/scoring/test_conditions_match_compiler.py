"""Property: persona criteria and profile rules, evaluated by the generic dbt models, mean
exactly what the filter compiler's field comparisons mean (leadflow/segments/compiler.py).

A seeded random batch of criteria over every contact, account and derived field of the
catalogue and every operator that applies (NULLs, case, LIKE wildcards and quotes in values,
relative dates, timestamps at day edges, arrays), written as YAML and loaded like a user's
configuration, is evaluated over random contacts by a real nightly scoring build. For every
contact and criterion, `is_met` (int_persona_criteria_evaluated, int_profile_rules_evaluated)
must equal the compiler's predicate on marts.dim_contacts; match_pct, is_match and
profile_score must follow from the compiler's results by the formulas of SPEC §2.3/§2.4.

No activity rule gives points, so no contact becomes an MQL: the lifecycle stage the rules
see (before scoring) is the one dim_contacts shows.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from leadflow.config.fields import FIELDS
from leadflow.scoring import score
from leadflow.segments import segment_query
from leadflow.transform import dbt
from tests.leadflow.scoring.helpers import config_with, event, insert

AS_OF = dt.date(2025, 6, 30)
SEED = 20251127
CONTACTS = 48
PERSONAS = 30
PROFILE_RULES = 70

TEXTS = ["DE", "de", "De", "FR", "machine_tools", "Machine_Tools", "a%b", "a_b", "axb",
         "O'Brien", "o'brien", "Ünïcödé", "ünïcödé", "", " spaced ", "80331", "8033", "a/b",
         "; drop table raw.contacts; --", "Bayern"]  # fmt: skip
INTEGERS = [-1, 0, 1, 49, 50, 51, 500, 1000, 2147483647]
NUMBERS = [0, 0.01, 0.1, 49.99, 50, 1000.5, 5000000, 12345.67]
DATES = ["-30d", "-1m", "-1y", "+0d", "-7d", "-2w", "2025-01-01", "2024-02-29", "+1y", "-3y"]
DATE_PAIRS = [["-30d", "+0d"], ["-1y", "-1m"], ["2025-01-01", "2025-06-30"], ["-3y", "-1y"]]
ARRAY_ITEMS = ["hydraulics", "Hydraulics", "pricing", "a%b", "x'y", "competitor", ""]
ENUM_FIELDS = {"decision_role", "consent_status", "lifecycle_stage", "customer_status"}
CONDITION_FIELDS = [
    name for name, spec in FIELDS.items() if not spec.from_scoring and name != "best_persona"
]
PERSONA_FIELDS = [name for name in CONDITION_FIELDS if FIELDS[name].source != "derived"]


# --- the random batch ---------------------------------------------------------------------


def _scalar(rng: random.Random, name: str):
    spec = FIELDS[name]
    if spec.type == "enum" or (spec.references and spec.values):
        return rng.choice(spec.values)
    if name == "email":
        return rng.choice([" c01@example.com", "C02@EXAMPLE.COM", "c03@example.com ", "c0", "@"])
    if name == "contact_id":
        return rng.choice(["c01", "c1", "C01", "c0"])
    if name == "tenant_code":
        return rng.choice(["hq", "fr", "it", "es"])
    if name == "best_persona":
        return f"p{rng.randrange(PERSONAS)}"
    if spec.type in ("text", "text_array"):
        return rng.choice(ARRAY_ITEMS if spec.type == "text_array" else TEXTS)
    if spec.type == "integer":
        return rng.choice(INTEGERS)
    if spec.type == "numeric":
        return rng.choice(NUMBERS)
    if spec.type in ("date", "timestamp"):
        return rng.choice(DATES)
    return rng.choice([True, False])


def _condition(rng: random.Random, name: str) -> dict:
    spec = FIELDS[name]
    op = rng.choice(sorted(spec.operators))
    condition = {"field": name, "op": op}
    if op in ("is_null", "is_not_null"):
        return condition
    if op in ("in", "not_in"):
        condition["value"] = sorted({json.dumps(_scalar(rng, name)) for _ in range(3)})
        condition["value"] = [json.loads(item) for item in condition["value"]]
    elif op == "between":
        if spec.type in ("date", "timestamp"):
            condition["value"] = rng.choice(DATE_PAIRS)
        else:
            condition["value"] = sorted([_scalar(rng, name), _scalar(rng, name)])
    else:
        condition["value"] = _scalar(rng, name)
    return condition


def _weight(rng: random.Random) -> float | int:
    return rng.choice([1, 2, 3, 10, 33.33, 0.01, 50, 69.99, 100])


def personas_yaml(rng: random.Random) -> str:
    personas = []
    for number in range(PERSONAS):
        criteria = [
            {**_condition(rng, rng.choice(PERSONA_FIELDS)), "weight": _weight(rng)}
            for _ in range(rng.randint(1, 6))
        ]
        threshold = rng.choice([0, 25, 50, 66.67, 70, 100])
        personas.append(
            {
                "id": f"p{number}",
                "name": f"P {number}",
                "threshold": threshold,
                "criteria": criteria,
            }
        )
    return json.dumps({"personas": personas}, ensure_ascii=False)  # JSON is YAML


def scoring_yaml(rng: random.Random) -> str:
    fields = [*CONDITION_FIELDS, "best_persona"]
    rules = [
        {"id": f"r{number}", **_condition(rng, rng.choice(fields)), "points": _weight(rng)}
        for number in range(PROFILE_RULES)
    ]
    # One activity rule that scores almost nothing: no contact can leave band 4.
    activity = [{"id": "fair", "event_type": "fair_visit", "points": 0.01}]
    return json.dumps({"profile_rules": rules, "activity_rules": activity}, ensure_ascii=False)


def _maybe(rng: random.Random, value, null_share: float = 0.25):
    return None if rng.random() < null_share else value


def _timestamp(rng: random.Random) -> dt.datetime:
    day = AS_OF + dt.timedelta(days=rng.choice([-1200, -366, -365, -31, -30, -29, -7, 0, 1]))
    moment = rng.choice([dt.time(0), dt.time(23, 59, 59, 999999), dt.time(12)])
    return dt.datetime.combine(day, moment, tzinfo=dt.UTC)


def seed_pool(connection, rng: random.Random) -> None:
    accounts, contacts, orders, events = [], [], [], []
    for number in range(CONTACTS):
        contact_id = f"c{number:02d}"
        account_id = None
        if rng.random() < 0.8:
            account_id = f"a{number:02d}"
            accounts.append(
                {
                    "account_id": account_id,
                    "name": _maybe(rng, rng.choice(TEXTS), 0) or "x",
                    "industry": _maybe(rng, rng.choice(TEXTS)),
                    "employee_count": _maybe(rng, abs(rng.choice(INTEGERS))),
                    "annual_revenue": _maybe(rng, Decimal(str(abs(rng.choice(NUMBERS))))),
                    "country": _maybe(rng, rng.choice(["DE", "FR", "IT", "ES", "AT"])),
                    "region": _maybe(rng, rng.choice(TEXTS)),
                    "postcode": _maybe(rng, rng.choice(TEXTS)),
                }
            )
        contacts.append(
            {
                "contact_id": contact_id,
                "email": f"{rng.choice(['', ' '])}C{number}@Example.com",
                "salutation": _maybe(rng, rng.choice(TEXTS)),
                "first_name": _maybe(rng, rng.choice(TEXTS)),
                "last_name": _maybe(rng, rng.choice(TEXTS)),
                "language": _maybe(rng, rng.choice(["de", "fr", "DE", "it"])),
                "country": _maybe(rng, rng.choice(["DE", "FR", "IT", "ES", "CH"]), 0.4),
                "position": _maybe(rng, rng.choice(TEXTS)),
                "decision_role": _maybe(rng, rng.choice(FIELDS["decision_role"].values)),
                "account_id": account_id,
                "owner": _maybe(rng, rng.choice(TEXTS)),
                "source": _maybe(rng, rng.choice(TEXTS)),
                "tags": rng.sample(ARRAY_ITEMS, rng.randint(0, 3)),
                "interests": rng.sample(ARRAY_ITEMS, rng.randint(0, 3)),
                "consent_status": rng.choice(["none", "pending", "confirmed", "objected"]),
                "lifecycle_stage": _maybe(rng, rng.choice(["lead", "mql", "sql", "customer"]), 0.6),
                "created_at": _timestamp(rng),
            }
        )
        for order in range(rng.choice([0, 0, 1, 2])):
            orders.append(
                {
                    "order_id": f"o{number}-{order}",
                    "contact_id": contact_id,
                    "ordered_at": _timestamp(rng),
                    "status": rng.choice(["won", "won", "cancelled"]),
                    "net_amount": Decimal(str(rng.choice(NUMBERS))),
                }
            )
        if rng.random() < 0.5:
            events.append(event(f"e{number}", contact_id, "email_open", _timestamp(rng)))
    insert(connection, "raw.accounts", accounts)
    insert(connection, "raw.contacts", contacts)
    insert(connection, "raw.orders", orders)
    insert(connection, "raw.events", events)


# --- the build ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(server_url: URL, template_url: URL, tmp_path_factory) -> Iterator[tuple[Engine, object]]:
    name = f"m_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"create database {name} template {template_url.database}")
    url = server_url.set(database=name)
    engine = sa.create_engine(url)
    rng = random.Random(SEED)
    config = config_with(
        tmp_path_factory.mktemp("config"), personas=personas_yaml(rng), scoring=scoring_yaml(rng)
    )
    with engine.begin() as connection:
        seed_pool(connection, rng)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEADFLOW_WAREHOUSE_URL", url.render_as_string(hide_password=False))
        patch.setenv("LEADFLOW_DBT_TARGET_PATH", str(tmp_path_factory.mktemp("dbt-target")))
        dbt.run_dbt(["run", "--exclude", "tag:scoring+"], as_of=AS_OF)
        score(engine, config, AS_OF)
        yield engine, config
    engine.dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f"drop database if exists {name} with (force)")
    admin.dispose()


def _compiler_members(connection, condition) -> set[str]:
    return set(connection.execute(segment_query(condition, AS_OF)).scalars())


def _met(connection, sql: str) -> dict[tuple[str, str, int], bool]:
    return {(a, b, c): met for a, b, c, met in connection.execute(sa.text(sql))}


def test_persona_criteria_mean_what_the_compiler_means(built):
    engine, config = built
    with engine.connect() as connection:
        contacts = list(connection.execute(sa.text("select contact_id from marts.dim_contacts")))
        contacts = sorted(contact_id for (contact_id,) in contacts)
        evaluated = _met(
            connection,
            "select contact_id, persona_id, criterion_position, is_met"
            " from intermediate.int_persona_criteria_evaluated",
        )
        matches = {
            (contact_id, persona): (pct, is_match)
            for contact_id, persona, pct, is_match in connection.execute(
                sa.text(
                    "select contact_id, persona, match_pct, is_match from marts.persona_matches"
                )
            )
        }
        checked = 0
        for persona in config.personas:
            met_weight = dict.fromkeys(contacts, Decimal(0))
            for position, criterion in enumerate(persona.criteria, start=1):
                members = _compiler_members(connection, criterion)
                for contact_id in contacts:
                    expected = contact_id in members
                    found = evaluated[(contact_id, persona.id, position)]
                    assert found is expected, (contact_id, persona.id, criterion)
                    checked += 1
                    if expected:
                        met_weight[contact_id] += Decimal(repr(criterion.weight))
            total = sum(Decimal(repr(c.weight)) for c in persona.criteria)
            for contact_id in contacts:
                pct = (100 * met_weight[contact_id] / total).quantize(
                    Decimal("0.01"), rounding=ROUND_HALF_UP
                )
                is_match = pct >= Decimal(repr(persona.threshold))
                assert matches[(contact_id, persona.id)] == (pct, is_match), (
                    contact_id,
                    persona.id,
                )
    assert checked == CONTACTS * sum(len(p.criteria) for p in config.personas)


def test_profile_rules_mean_what_the_compiler_means(built):
    engine, config = built
    with engine.connect() as connection:
        contacts = sorted(
            connection.execute(sa.text("select contact_id from marts.dim_contacts")).scalars()
        )
        evaluated = {
            (contact_id, rule_id): met
            for contact_id, rule_id, met in connection.execute(
                sa.text(
                    "select contact_id, rule_id, is_met"
                    " from intermediate.int_profile_rules_evaluated"
                )
            )
        }
        points = dict.fromkeys(contacts, Decimal(0))
        fired = 0
        for rule in config.scoring.profile_rules:
            members = _compiler_members(connection, rule)
            for contact_id in contacts:
                expected = contact_id in members
                assert evaluated[(contact_id, rule.id)] is expected, (contact_id, rule)
                if expected:
                    points[contact_id] += Decimal(repr(rule.points))
                    fired += 1
        scores = dict(
            connection.execute(
                sa.text("select contact_id, profile_score from marts.lead_scores")
            ).all()
        )
        stages = set(
            connection.execute(sa.text("select distinct lifecycle_stage from marts.dim_contacts"))
            .scalars()
            .all()
        )
    for contact_id in contacts:
        expected = min(max(points[contact_id], Decimal(0)), Decimal(100)).quantize(Decimal("0.01"))
        assert scores[contact_id] == expected, contact_id
    assert 0 < fired < CONTACTS * PROFILE_RULES  # the batch exercises both outcomes
    assert "mql" not in stages
