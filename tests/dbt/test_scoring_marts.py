"""Personas, scores, matrix, MQL and CLV from a real nightly scoring run on a hand-made pool.

D = 2025-06-30, cut-off 2025-07-01 00:00 UTC. Every number below is computed by hand from
the test configuration (PERSONAS, SCORING; half-life 30 days, grades A ≥ 75, B ≥ 50, C ≥ 25,
bands 1 ≥ 75, 2 ≥ 50, 3 ≥ 25, MQL cells A1, A2, B1, CLV r = 0.8, H = 5):

persona alpha (threshold 70): decision_role = production_manager 50, industry = machine_tools
30, employee_count >= 50 20. beta (threshold 60): production_manager 80, interests contains
hydraulics 20. gamma (threshold 70): country = DE 69.99, language = de 0.01, postcode
starts_with 80 30.

"just now" is 2025-06-30 23:59:59.999999, one microsecond before the cut-off: its decay factor
is 0.5^(1e-6 s / 30 days) = 1 − 2.7e-13, so its points count in full after rounding.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.config.fields import FIELDS
from leadflow.errors import LeadflowError
from leadflow.scoring import explain, export_cell, matrix, reset_activity_state, score
from leadflow.transform import dbt
from tests.leadflow.scoring.helpers import at, config_with, event, insert, rows

AS_OF = dt.date(2025, 6, 30)
JUST_NOW = "2025-06-30 23:59:59.999999+00"
CUTOFF = "2025-07-01 00:00:00+00"

PERSONAS = """
personas:
  - id: alpha
    name: Alpha
    criteria:
      - {field: decision_role, op: "=", value: production_manager, weight: 50}
      - {field: industry, op: "=", value: machine_tools, weight: 30}
      - {field: employee_count, op: ">=", value: 50, weight: 20}
  - id: beta
    name: Beta
    threshold: 60
    criteria:
      - {field: decision_role, op: "=", value: production_manager, weight: 80}
      - {field: interests, op: contains, value: hydraulics, weight: 20}
  - id: gamma
    name: Gamma
    threshold: 70
    criteria:
      - {field: country, op: "=", value: DE, weight: 69.99}
      - {field: language, op: "=", value: de, weight: 0.01}
      - {field: postcode, op: starts_with, value: "80", weight: 30}
"""

SCORING = """
profile_rules:
  - {id: r_pm, field: decision_role, op: "=", value: production_manager, points: 40}
  - {id: r_mt, field: industry, op: "=", value: machine_tools, points: 34.99}
  - {id: r_lang, field: language, op: "=", value: de, points: 0.01}
  - {id: r_big, field: employee_count, op: ">=", value: 1000, points: 70}
  - {id: r_comp, field: tags, op: contains, value: competitor, points: -200}
  - {id: r_gamma, field: best_persona, op: "=", value: gamma, points: 10}
activity_rules:
  - {id: a_open, event_type: email_open, points: 40}
  - {id: a_click_pricing, event_type: email_click, link_tag: pricing, points: 30}
  - {id: a_click, event_type: email_click, points: 5}
  - {id: a_ebook, event_type: download, asset: ebook_antriebslosigkeit, points: 25}
  - {id: a_visit, event_type: web_visit, url_pattern: "/produkte/*", points: 9.99}
  - {id: a_form, event_type: form_submit, points: 80}
  - {id: a_unsub, event_type: unsubscribe, points: -100}
"""

# fmt: off
ACCOUNTS = [
    {"account_id": "acc-mt100", "name": "Huber", "industry": "machine_tools",
     "employee_count": 100, "country": "DE", "postcode": "10115"},
    {"account_id": "acc-auto2000", "name": "Auto", "industry": "automotive",
     "employee_count": 2000, "country": "DE", "postcode": "80331"},
    {"account_id": "acc-mt10", "name": "Petit", "industry": "machine_tools",
     "employee_count": 10, "country": "FR", "postcode": "75001"},
    {"account_id": "acc-mt5000", "name": "Gross", "industry": "machine_tools",
     "employee_count": 5000, "country": "DE", "postcode": "10115"},
]

PM = "production_manager"
CONTACTS = [
    # contact_id, decision_role, account_id, country, language, interests, tags, CRM stage
    ("c-full", PM, "acc-mt100", "DE", "fr", ["hydraulics"], [], None),
    ("c-a-edge", PM, "acc-mt100", "DE", "de", [], [], None),
    ("c-null", None, None, None, None, [], [], "mql"),
    ("c-gamma", "other", "acc-auto2000", None, "fr", [], [], None),
    ("c-neg", PM, "acc-mt10", "FR", "fr", [], ["competitor"], None),
    ("c-over", PM, "acc-mt5000", "DE", "de", [], [], None),
    ("c-busy", PM, "acc-mt100", "DE", "de", [], [], "sql"),
    ("c-echo", PM, "acc-mt100", "DE", "de", [], [], "mql"),
    ("c-it", None, None, "IT", "it", [], [], None),
]

EVENTS = [
    event("e-full-now", "c-full", "email_open", JUST_NOW),
    event("e-full-cutoff", "c-full", "email_open", CUTOFF),           # at the cut-off: not yet
    event("e-full-machine", "c-full", "email_open", "2025-06-30 12:00:00", is_machine=True),
    event("e-edge-30d", "c-a-edge", "email_open", "2025-06-01 00:00:00"),   # one half-life
    event("e-null-60d", "c-null", "email_open", "2025-05-02 00:00:00"),     # two half-lives
    event("e-gamma-open", "c-gamma", "email_open", JUST_NOW),
    event("e-gamma-click", "c-gamma", "email_click", JUST_NOW, link_tag="pricing"),
    event("e-neg-unsub", "c-neg", "unsubscribe", JUST_NOW),
    event("e-neg-open", "c-neg", "email_open", JUST_NOW),
    event("e-over-open", "c-over", "email_open", JUST_NOW),
    event("e-over-ebook", "c-over", "download", JUST_NOW, asset_id="ebook_antriebslosigkeit"),
    event("e-over-visit", "c-over", "web_visit", JUST_NOW,
          url="https://www.example.de/produkte/hs3000"),
    event("e-over-blog", "c-over", "web_visit", "2025-06-30 10:00:00",
          url="https://www.example.de/blog"),
    event("e-busy-1", "c-busy", "form_submit", JUST_NOW),
    event("e-busy-2", "c-busy", "form_submit", JUST_NOW),
    event("e-echo-1", "c-echo", "form_submit", JUST_NOW),
    event("e-echo-2", "c-echo", "form_submit", JUST_NOW),
    event("e-anonymous", None, "form_submit", JUST_NOW),
]

ORDERS = [
    # order_id, contact_id, ordered_at, status, net_amount
    ("o-full-365", "c-full", "2024-06-30 12:00:00+00", "won", "700.00"),  # D - 365: not in run rate
    ("o-full-364", "c-full", "2024-07-01 08:00:00+00", "won", "300.00"),
    ("o-full-cancelled", "c-full", "2025-01-01 08:00:00+00", "cancelled", "999.00"),
    ("o-over-recent", "c-over", "2025-01-15 10:00:00+00", "won", "1000.00"),
    ("o-over-old", "c-over", "2023-03-01 10:00:00+00", "won", "5000.00"),
    ("o-over-later", "c-over", CUTOFF, "won", "123.00"),                   # after the cut-off
]

D = Decimal
# contact_id: {persona: (match_pct, is_match)}
PERSONA_MATCHES = {
    "c-full": {"alpha": (D("100.00"), True), "beta": (D("100.00"), True),
               "gamma": (D("69.99"), False)},
    "c-a-edge": {"alpha": (D("100.00"), True), "beta": (D("80.00"), True),
                 "gamma": (D("70.00"), True)},
    "c-null": {"alpha": (D("0.00"), False), "beta": (D("0.00"), False),
               "gamma": (D("0.00"), False)},
    "c-gamma": {"alpha": (D("20.00"), False), "beta": (D("0.00"), False),
                "gamma": (D("99.99"), True)},
    "c-neg": {"alpha": (D("80.00"), True), "beta": (D("80.00"), True),
              "gamma": (D("0.00"), False)},
    "c-over": {"alpha": (D("100.00"), True), "beta": (D("80.00"), True),
               "gamma": (D("70.00"), True)},
    "c-busy": {"alpha": (D("100.00"), True), "beta": (D("80.00"), True),
               "gamma": (D("70.00"), True)},
    "c-echo": {"alpha": (D("100.00"), True), "beta": (D("80.00"), True),
               "gamma": (D("70.00"), True)},
    "c-it": {"alpha": (D("0.00"), False), "beta": (D("0.00"), False),
             "gamma": (D("0.00"), False)},
}

# contact_id: (best_persona, profile_score, grade, activity_score, band, matrix_cell, is_mql,
#              lifecycle_stage, tenant_code)
LEAD_SCORES = {
    # alpha and beta tie at 100: alpha is listed first. 40 + 34.99 = 74.99 → B.
    # Only the human open one microsecond before the cut-off counts: 40 → band 3.
    "c-full": ("alpha", D("74.99"), "B", D("40.00"), 3, "B3", False, "customer", "hq"),
    # gamma exactly at its threshold 70. 40 + 34.99 + 0.01 = 75 → A; 40 after one half-life.
    "c-a-edge": ("alpha", D("75.00"), "A", D("20.00"), 4, "A4", False, "lead", "hq"),
    # NULL fields meet nothing; 40 after two half-lives = 10; the CRM's echoed mql is demoted.
    "c-null": (None, D("0.00"), "D", D("10.00"), 4, "D4", False, "lead", "hq"),
    # country from the account (DE); 70 + 10 (best persona gamma) = 80; 40 + 30 + 5 = 75 → A1.
    "c-gamma": ("gamma", D("80.00"), "A", D("75.00"), 1, "A1", True, "mql", "hq"),
    # 40 + 34.99 - 200 < 0 → 0; -100 + 40 < 0 → 0.
    "c-neg": ("alpha", D("0.00"), "D", D("0.00"), 4, "D4", False, "lead", "fr"),
    # 145 → 100; 40 + 25 + 9.99 = 74.99 → band 2; A2 is an MQL cell, but a customer.
    "c-over": ("alpha", D("100.00"), "A", D("74.99"), 2, "A2", False, "customer", "hq"),
    # 2 × 80 = 160 → 100 → A1, but the CRM says sql.
    "c-busy": ("alpha", D("75.00"), "A", D("100.00"), 1, "A1", False, "sql", "hq"),
    # the same, with the mql the CRM echoes: an MQL.
    "c-echo": ("alpha", D("75.00"), "A", D("100.00"), 1, "A1", True, "mql", "hq"),
    "c-it": (None, D("0.00"), "D", D("0.00"), 4, "D4", False, "lead", "it"),
}
# fmt: on


def _seed(engine: Engine) -> None:
    with engine.begin() as connection:
        insert(connection, "raw.accounts", ACCOUNTS)
        insert(
            connection,
            "raw.contacts",
            [
                {
                    "contact_id": contact_id,
                    "email": f"{contact_id}@example.com",
                    "decision_role": role,
                    "account_id": account,
                    "country": country,
                    "language": language,
                    "interests": interests,
                    "tags": tags,
                    "lifecycle_stage": stage,
                    "first_name": contact_id.upper(),
                    "last_name": "Test",
                    "owner": "anna@example.com",
                }
                for contact_id, role, account, country, language, interests, tags, stage in CONTACTS
            ],
        )
        insert(connection, "raw.events", EVENTS)
        insert(
            connection,
            "raw.orders",
            [
                {
                    "order_id": order_id,
                    "contact_id": contact_id,
                    "ordered_at": at(ordered_at),
                    "status": status,
                    "net_amount": D(amount),
                }
                for order_id, contact_id, ordered_at, status, amount in ORDERS
            ],
        )


@pytest.fixture(scope="module")
def scored(module_database: URL, tmp_path_factory) -> Iterator[Engine]:
    """The module's database, seeded and scored once (snapshot, activity state, dbt build)."""
    engine = sa.create_engine(module_database)
    _seed(engine)
    config = config_with(tmp_path_factory.mktemp("config"), personas=PERSONAS, scoring=SCORING)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEADFLOW_WAREHOUSE_URL", module_database.render_as_string(False))
        patch.setenv("LEADFLOW_DBT_TARGET_PATH", str(tmp_path_factory.mktemp("dbt-target")))
        # As the nightly run: what the scoring models read first, then the scoring step.
        dbt.run_dbt(["run", "--exclude", "tag:scoring+"], as_of=AS_OF)
        result = score(engine, config, AS_OF, full=True)
        assert result.activity.mode == "full"
        yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return config_with(tmp_path_factory.mktemp("config-copy"), personas=PERSONAS, scoring=SCORING)


def test_persona_match_pct_and_threshold_edges(scored):
    found: dict[str, dict] = {}
    for contact_id, persona, pct, is_match in rows(
        scored, "select contact_id, persona, match_pct, is_match from marts.persona_matches"
    ):
        found.setdefault(contact_id, {})[persona] = (pct, is_match)
    assert found == PERSONA_MATCHES


def test_lead_scores_grades_bands_cells_and_mql(scored):
    found = {
        row[0]: row[1:]
        for row in rows(
            scored,
            "select l.contact_id, l.best_persona, l.profile_score, l.grade, l.activity_score,"
            " l.band, l.matrix_cell, l.is_mql, l.lifecycle_stage, l.tenant_code"
            " from marts.lead_scores as l",
        )
    }
    assert found == LEAD_SCORES


def test_dim_contacts_carries_persona_scores_and_stage(scored):
    found = {
        row[0]: row[1:]
        for row in rows(
            scored,
            "select contact_id, best_persona, profile_score, grade, activity_score, band,"
            " matrix_cell, is_mql, lifecycle_stage, tenant_code from marts.dim_contacts",
        )
    }
    assert found == LEAD_SCORES


def test_every_row_has_the_runs_date(scored):
    for table in ("lead_scores", "persona_matches", "scoring_matrix", "customer_lifetime_value"):
        assert rows(scored, f"select distinct as_of from marts.{table}") == [(AS_OF,)]


def test_scoring_matrix_has_all_16_cells_per_tenant_with_zeros(scored):
    found = {
        (tenant, cell): (contacts, leads, mqls)
        for tenant, cell, contacts, leads, mqls in rows(
            scored,
            "select tenant_code, matrix_cell, contacts, leads, mqls from marts.scoring_matrix",
        )
    }
    cells = [f"{grade}{band}" for grade in "ABCD" for band in (1, 2, 3, 4)]
    expected = {(tenant, cell): (0, 0, 0) for tenant in ("hq", "fr", "it", "es") for cell in cells}
    expected.update(
        {
            ("hq", "A1"): (3, 2, 2),  # c-gamma, c-echo (MQLs), c-busy (sql)
            ("hq", "A2"): (1, 0, 0),  # c-over, a customer
            ("hq", "A4"): (1, 1, 0),  # c-a-edge
            ("hq", "B3"): (1, 0, 0),  # c-full, a customer
            ("hq", "D4"): (1, 1, 0),  # c-null
            ("fr", "D4"): (1, 1, 0),  # c-neg
            ("it", "D4"): (1, 1, 0),  # c-it
        }
    )
    assert found == expected


def test_clv_for_customers_with_known_orders(scored):
    found = {
        row[0]: row[1:]
        for row in rows(
            scored,
            "select contact_id, historic_revenue, annual_run_rate, predicted_revenue, clv,"
            " retention, horizon_years from marts.customer_lifetime_value",
        )
    }
    factor = D("0.8") + D("0.64") + D("0.512") + D("0.4096") + D("0.32768")  # 2.68928
    assert D("1000") * factor == D("2689.28000")
    assert found == {
        # 1000 within the last year, 5000 earlier: 6000 + 1000 × 2.68928 = 8689.28
        "c-over": (D("6000.00"), D("1000.00"), D("2689.28"), D("8689.28"), D("0.8"), 5),
        # 700 on D - 365 (outside the last 365 days), 300 on D - 364; cancelled ignored.
        # 300 × 2.68928 = 806.784 → 806.78
        "c-full": (D("1000.00"), D("300.00"), D("806.78"), D("1806.78"), D("0.8"), 5),
    }
    clv = dict(rows(scored, "select contact_id, clv from marts.dim_contacts"))
    assert clv["c-over"] == D("8689.28") and clv["c-full"] == D("1806.78")
    assert clv["c-null"] == D("0.00")


def test_last_activity_ignores_machine_events_and_the_cutoff(scored):
    found = dict(rows(scored, "select contact_id, last_activity_at from marts.dim_contacts"))
    assert found["c-full"] == at(JUST_NOW)
    assert found["c-over"] == at(JUST_NOW)
    assert found["c-it"] is None


def test_unrounded_activity_points_decay_by_half_lives(scored):
    points = dict(
        rows(
            scored,
            "select contact_id, activity_points from intermediate.int_contacts_activity_scored",
        )
    )
    assert points["c-a-edge"] == pytest.approx(20.0, rel=1e-12)  # 40 × 0.5
    assert points["c-null"] == pytest.approx(10.0, rel=1e-12)  # 40 × 0.25
    assert points["c-full"] == pytest.approx(40.0, rel=1e-12)
    assert points["c-neg"] == pytest.approx(-60.0, rel=1e-12)  # clamped to 0 in lead_scores


def test_explain_equals_the_marts(scored, config):
    for contact_id, expected in LEAD_SCORES.items():
        explanation = explain(scored, contact_id, AS_OF, config)
        best, profile, grade, activity, band, cell, is_mql, stage, _tenant = expected
        assert (explanation.best_persona, explanation.profile_score, explanation.grade) == (
            best,
            profile,
            grade,
        )
        assert (explanation.activity_score, explanation.band, explanation.matrix_cell) == (
            activity,
            band,
            cell,
        )
        assert (explanation.is_mql, explanation.lifecycle_stage) == (is_mql, stage)
        assert explanation.warnings == []
        for persona in explanation.personas:
            pct, is_match = PERSONA_MATCHES[contact_id][persona.persona_id]
            recomputed = round(100 * persona.weight_met / persona.weight_total, 2)
            assert (persona.match_pct, persona.is_match, recomputed) == (pct, is_match, pct)
        fired = sum((rule.points for rule in explanation.profile_rules_fired), Decimal(0))
        assert min(max(fired, Decimal(0)), Decimal(100)) == profile
        listed = explanation.activity_points_listed
        assert listed == pytest.approx(explanation.activity_points, rel=1e-12, abs=1e-12)
        assert round(Decimal(repr(min(max(listed, 0.0), 100.0))), 2) == activity


def test_explain_lists_rules_fired_with_decay(scored, config):
    explanation = explain(scored, "C-GAMMA@example.com ", None, config)
    assert explanation.contact_id == "c-gamma"
    assert [rule.rule_id for rule in explanation.profile_rules_fired] == ["r_big", "r_gamma"]
    assert [(hit.event_id, hit.rule_id, hit.points) for hit in explanation.activity_hits] == [
        ("e-gamma-open", "a_open", 40.0),
        ("e-gamma-click", "a_click_pricing", 30.0),
        ("e-gamma-click", "a_click", 5.0),
    ]
    for hit in explanation.activity_hits:
        assert hit.age_days == pytest.approx(1e-6 / 86400)
        assert hit.contribution == pytest.approx(hit.points * hit.decay)
    gamma = next(p for p in explanation.personas if p.persona_id == "gamma")
    assert [(c.field, c.is_met, c.field_value) for c in gamma.criteria] == [
        ("country", True, "DE"),
        ("language", False, "fr"),
        ("postcode", True, "80331"),
    ]


def test_the_event_fallback_gives_the_state_numbers(scored):
    """Without a valid activity state, dbt alone computes the same scores from the events."""
    before = rows(scored, "select * from marts.lead_scores order by contact_id")
    reset_activity_state(scored)
    dbt.build(AS_OF, select="tag:scoring")
    assert rows(scored, "select * from marts.lead_scores order by contact_id") == before


def test_dim_contacts_has_a_column_for_every_catalogue_field(scored):
    """Segments compile against dim_contacts: every field of the filter language is there."""
    columns = {
        name
        for (name,) in rows(
            scored,
            "select column_name from information_schema.columns"
            " where table_schema = 'marts' and table_name = 'dim_contacts'",
        )
    }
    assert set(FIELDS) <= columns


def test_matrix_per_tenant(scored):
    matrices = matrix(scored)
    assert list(matrices) == ["hq", "fr", "it", "es"]  # configuration order
    hq = matrices["hq"]
    assert hq.rows() == [
        ("A", [3, 1, 0, 1]),
        ("B", [0, 0, 1, 0]),
        ("C", [0, 0, 0, 0]),
        ("D", [0, 0, 0, 1]),
    ]
    assert (hq.total, hq.mqls["A1"], hq.as_of) == (7, 2, AS_OF)
    assert matrices["es"].total == 0
    assert list(matrix(scored, "fr")) == ["fr"]


def test_export_a_cell_as_csv(scored, tmp_path):
    target = tmp_path / "a1.csv"
    assert export_cell(scored, "a1", "hq", target) == 3
    with target.open(encoding="utf-8", newline="") as handle:
        exported = list(csv.DictReader(handle))
    # by profile score, then activity score, then id
    assert [row["contact_id"] for row in exported] == ["c-gamma", "c-busy", "c-echo"]
    assert exported[0]["email"] == "c-gamma@example.com"
    assert exported[0]["first_name"] == "C-GAMMA"
    assert exported[0]["account_name"] == "Auto"
    assert exported[0]["owner"] == "anna@example.com"
    assert (exported[0]["profile_score"], exported[0]["activity_score"]) == ("80.00", "75.00")
    assert export_cell(scored, "D4", None, tmp_path / "d4.csv") == 3  # hq, fr and it


@pytest.mark.parametrize("cell", ["E1", "A5", "", "A1; drop table marts.dim_contacts"])
def test_export_refuses_unknown_cells(scored, tmp_path, cell):
    with pytest.raises(LeadflowError, match="unknown matrix cell"):
        export_cell(scored, cell, None, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_unknown_tenant_is_an_error(scored, tmp_path):
    with pytest.raises(LeadflowError, match=r"unknown tenant 'xx' \(known: es, fr, hq, it\)"):
        export_cell(scored, "A1", "xx", tmp_path / "x.csv")
    with pytest.raises(LeadflowError, match="unknown tenant 'xx'"):
        matrix(scored, "xx")
    assert list(tmp_path.iterdir()) == []


def test_cli_matrix_explain_and_export(scored, config, tmp_path):
    runner = CliRunner()
    shown = runner.invoke(app, ["matrix", "--tenant", "hq"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "scoring matrix hq as of 2025-06-30: 7 contacts" in shown.output
    assert "3 (2)" in shown.output  # A1: 3 contacts, 2 MQLs

    target = tmp_path / "out.csv"
    exported = runner.invoke(
        app, ["matrix", "export", "--cell", "A1", "--tenant", "hq", str(target)]
    )
    assert exported.exit_code == 0, exported.output
    assert "3 contacts of cell A1 of tenant hq" in exported.output
    assert target.read_text(encoding="utf-8").count("\n") == 4  # header + 3

    for arguments, message in [
        (["matrix", "export", "--cell", "Z9", str(target)], "unknown matrix cell 'Z9'"),
        (["matrix", "--tenant", "xx"], "unknown tenant 'xx'"),
        (["explain", "nobody@example.com"], "no contact with the id or e-mail address"),
        (["explain", "c-gamma", "--as-of", "2025-07-01"], "the marts are built for 2025-06-30"),
    ]:
        failed = runner.invoke(app, arguments)
        assert failed.exit_code == 1, failed.output
        assert message in failed.output

    explained = runner.invoke(
        app,
        ["explain", "c-gamma", "--config", str(config.directory)],
        env={"COLUMNS": "200"},
    )
    assert explained.exit_code == 0, explained.output
    for text in [
        "persona gamma (Gamma): 99.99 % (threshold 70.00 %) match",
        "best persona: gamma",
        "r_big",
        "grade A",
        "activity score 75.00 → band 1",
        "matrix cell A1",
        "MQL yes",
    ]:
        assert text in explained.output, text


def _scoring_marts(engine: Engine) -> dict[str, list]:
    return {
        table: rows(engine, f"select * from {table} order by 1, 2")
        for table in (
            "marts.lead_scores",
            "marts.persona_matches",
            "marts.dim_contacts",
            "intermediate.int_contacts_profile_scored",
        )
    }


def test_an_incremental_run_recomputes_changed_contacts_only_and_equals_a_full_one(scored, config):
    """Only contacts whose condition inputs changed are recomputed; the marts equal a full build.

    c-null becomes a production manager (a field the conditions name), c-full gets a new first
    name (a field no condition names), c-it is deleted, c-new arrives.
    """
    changes = [
        "update raw.contacts set decision_role = 'production_manager' where contact_id = 'c-null'",
        "update raw.contacts set first_name = 'Renamed' where contact_id = 'c-full'",
        "delete from raw.contacts where contact_id = 'c-it'",
        "insert into raw.contacts (contact_id, email, decision_role, country)"
        " values ('c-new', 'c-new@example.com', 'production_manager', 'ES')",
    ]
    undo = [
        "update raw.contacts set decision_role = null where contact_id = 'c-null'",
        "update raw.contacts set first_name = 'C-FULL' where contact_id = 'c-full'",
        "delete from raw.contacts where contact_id = 'c-new'",
        "insert into raw.contacts (contact_id, email, country, language, interests, tags,"
        " first_name, last_name, owner) values ('c-it', 'c-it@example.com', 'IT', 'it', '{}',"
        " '{}', 'C-IT', 'Test', 'anna@example.com')",
    ]
    with scored.begin() as connection:
        for statement in changes:
            connection.execute(sa.text(statement))
    try:
        score(scored, config, AS_OF)
        changed = rows(
            scored,
            "select contact_id, is_gone from intermediate.int_scoring_changed_contacts"
            " order by contact_id",
        )
        assert changed == [("c-it", True), ("c-new", False), ("c-null", False)]
        # production manager: alpha 50 (no industry, no employees) < 70, beta 80 ≥ 60
        assert rows(
            scored,
            "select best_persona, profile_score from marts.lead_scores"
            " where contact_id in ('c-null', 'c-new') order by contact_id",
        ) == [("beta", D("40.00")), ("beta", D("40.00"))]
        assert rows(
            scored, "select count(*) from marts.persona_matches where contact_id = 'c-it'"
        ) == [(0,)]
        incremental = _scoring_marts(scored)
        score(scored, config, AS_OF, full=True)
        assert _scoring_marts(scored) == incremental
    finally:
        with scored.begin() as connection:
            for statement in undo:
                connection.execute(sa.text(statement))
        score(scored, config, AS_OF)
    assert rows(scored, "select count(*) from marts.lead_scores") == [(len(LEAD_SCORES),)]


# Last in the module: it changes the module's configuration snapshot and marts.
def test_a_fourth_persona_needs_no_sql(tmp_path, scored):
    """Adding a persona to the YAML changes the marts after the next run: no model changes."""
    fourth = PERSONAS + (
        "  - id: delta\n"
        "    name: Delta\n"
        "    threshold: 50\n"
        "    criteria:\n"
        "      - {field: language, op: in, value: [it, es], weight: 1}\n"
        "      - {field: account_country, op: is_null, weight: 1}\n"
    )
    config = config_with(tmp_path, personas=fourth, scoring=SCORING)
    score(scored, config, AS_OF, select="tag:scoring")
    delta = dict(
        rows(
            scored,
            "select contact_id, match_pct from marts.persona_matches where persona = 'delta'",
        )
    )
    assert delta["c-it"] == D("100.00")  # it, no account
    assert delta["c-null"] == D("50.00")  # no language, no account
    assert delta["c-full"] == D("0.00")
    assert rows(
        scored, "select best_persona from marts.dim_contacts where contact_id = 'c-it'"
    ) == [("delta",)]
    assert rows(
        scored, "select count(*) from marts.persona_matches where contact_id = 'c-full'"
    ) == [(4,)]
