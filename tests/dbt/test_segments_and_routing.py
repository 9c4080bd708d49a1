"""The nightly run end to end on a hand-made company (real dbt, GX, SMTP on loopback):
segments materialised between the two dbt builds, marts.segment_members equal to ops, MQLs
routed by the shipped routing.yaml with one mail per owner, the new marts' quality suites,
and the `segment` and `route` commands.

D = 2026-11-27 with the shipped configuration (include/config). The four leads below are
production managers at 100-employee machine-tool builders with EUR 10 M revenue and an
interest in hydraulic components: profile 30 + 20 + 15 + 10 + 15 + 10 (persona) = 100 → A;
four form submits 12 hours before the cut-off: 4 × 25 × 0.5^(0.5 / 30) = 98.85 → band 1.
So they are A1 MQLs, routed by contact_id: lead-f1 (FR) → france/Camille Martin, lead-n1 and
lead-n2 (DE, postcode 1…) → dach_north/Jana Krüger then Tobias Lange, lead-s1 (DE, 8…) →
dach_south/Sabine Huber. lead-owned is the same but has an owner from the CRM. cust-1 bought
a HydroStat 2000 in 2022 whose maintenance is due in March 2027: the hs2000_upsell segment.

The `campaign` commands run the shipped up-sell campaign on these marts: 180 days before the
maintenance on 2027-03-01 is 2026-09-02, the day cust-1 is enrolled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from typer.testing import CliRunner

from leadflow import paths
from leadflow.cli import app
from leadflow.messaging.smtp_sink import SmtpSink
from leadflow.nightly import NightlyResult, run_nightly
from leadflow.quality import QualityGateFailed, run_gate
from leadflow.quality.suites import MART_SUITES
from tests.leadflow.scoring.helpers import at, event, insert, rows

AS_OF = dt.date(2026, 11, 27)
FORMS_AT = "2026-11-27 12:00:00"

ACCOUNTS = [
    {"account_id": "acc-north", "country": "DE", "postcode": "10115"},
    {"account_id": "acc-south", "country": "DE", "postcode": "80331"},
    {"account_id": "acc-fr", "country": "FR", "postcode": "75001"},
]
LEADS = {
    "lead-n1": "acc-north",
    "lead-n2": "acc-north",
    "lead-s1": "acc-south",
    "lead-f1": "acc-fr",
    "lead-owned": "acc-north",
}
ROUTED = [
    ("lead-f1", "france", "Camille Martin", "camille.martin@fr.steinhoff-hydraulik.example"),
    ("lead-n1", "dach_north", "Jana Krüger", "jana.krueger@steinhoff-hydraulik.example"),
    ("lead-n2", "dach_north", "Tobias Lange", "tobias.lange@steinhoff-hydraulik.example"),
    ("lead-s1", "dach_south", "Sabine Huber", "sabine.huber@steinhoff-hydraulik.example"),
]


def _seed(engine: Engine) -> None:
    with engine.begin() as connection:
        insert(
            connection,
            "raw.accounts",
            [
                {
                    **account,
                    "name": f"{account['account_id']} Werkzeugmaschinen",
                    "industry": "machine_tools",
                    "employee_count": 100,
                    "annual_revenue": 10_000_000,
                }
                for account in ACCOUNTS
            ]
            + [
                {
                    "account_id": "acc-cust",
                    "name": "Kunststoff Kunde",
                    "country": "DE",
                    "postcode": "50667",
                    "industry": "plastics",
                    "employee_count": 300,
                    "annual_revenue": 20_000_000,
                }
            ],
        )
        insert(
            connection,
            "raw.contacts",
            [
                {
                    "contact_id": contact_id,
                    "email": f"{contact_id}@example.com",
                    "first_name": contact_id.title(),
                    "last_name": "Lead",
                    "decision_role": "production_manager",
                    "account_id": account_id,
                    "interests": ["hydraulic_components"],
                    "owner": "Mehmet Aydin" if contact_id == "lead-owned" else None,
                }
                for contact_id, account_id in LEADS.items()
            ]
            + [
                {
                    "contact_id": "cust-1",
                    "email": "cust-1@example.com",
                    "first_name": "Carla",
                    "last_name": "Kunde",
                    "decision_role": "purchaser",
                    "account_id": "acc-cust",
                    "interests": [],
                    "owner": None,
                }
            ],
        )
        insert(
            connection,
            "raw.events",
            [
                event(f"e-{contact_id}-{number}", contact_id, "form_submit", FORMS_AT)
                for contact_id in LEADS
                for number in range(4)
            ],
        )
        insert(
            connection,
            "raw.products",
            [
                {"product_id": product, "sku": product, "name": product, "family": "hydrostat",
                 "list_price": 42000, "unit_cost": 27300, "maintenance_interval_months": 24}
                for product in ("HS2000", "HS3000")
            ],
        )  # fmt: skip
        insert(
            connection,
            "raw.orders",
            [
                {
                    "order_id": "o-1",
                    "account_id": "acc-cust",
                    "contact_id": "cust-1",
                    "ordered_at": at("2022-06-01 10:00:00"),
                    "net_amount": 42000,
                }
            ],
        )
        insert(
            connection,
            "raw.order_items",
            [{"order_id": "o-1", "line_no": 1, "product_id": "HS2000", "quantity": 1,
              "net_amount": 42000}],
        )  # fmt: skip
        insert(
            connection,
            "raw.installed_base",
            [
                {
                    "installation_id": "i-1",
                    "account_id": "acc-cust",
                    "contact_id": "cust-1",
                    "product_id": "HS2000",
                    "installed_on": dt.date(2022, 6, 15),
                    "next_maintenance_date": dt.date(2027, 3, 1),
                }
            ],
        )


class Built:
    """The module's database after two nightly runs, and what each run returned and mailed."""

    def __init__(self, engine: Engine, first: NightlyResult, mail: Path) -> None:
        self.engine = engine
        self.first = first
        self.mail = mail
        self.first_mails: list = []
        self.owners_after_first: dict = {}
        self.second: NightlyResult | None = None
        self.second_mails: list = []


@pytest.fixture(scope="module")
def built(module_database: URL, tmp_path_factory) -> Iterator[Built]:
    engine = sa.create_engine(module_database)
    _seed(engine)
    mail = tmp_path_factory.mktemp("mail")
    with SmtpSink(mail, port=0) as sink, pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEADFLOW_WAREHOUSE_URL", module_database.render_as_string(False))
        patch.setenv("LEADFLOW_DBT_TARGET_PATH", str(tmp_path_factory.mktemp("dbt-target")))
        patch.setenv("LEADFLOW_HOME", str(tmp_path_factory.mktemp("home")))
        patch.setenv("LEADFLOW_SMTP_HOST", sink.host)
        patch.setenv("LEADFLOW_SMTP_PORT", str(sink.port))
        state = Built(engine, run_nightly(AS_OF, paths.config_dir()), mail)
        state.first_mails = sink.messages()
        state.owners_after_first = dict(
            rows(engine, "select contact_id, owner from marts.dim_contacts")
        )
        # The same night again: a rerun (or a retried DAG) must change nothing.
        state.second = run_nightly(AS_OF, paths.config_dir())
        state.second_mails = sink.messages()[len(state.first_mails) :]
        yield state
    engine.dispose()


def segment_members(engine: Engine, table: str) -> set[tuple]:
    return set(rows(engine, f"select segment, contact_id, as_of from {table}"))


def test_marts_segment_members_equals_the_ops_membership_of_the_run(built):
    ops = segment_members(built.engine, "ops.segment_members")
    assert ops and {as_of for _, _, as_of in ops} == {AS_OF}
    assert segment_members(built.engine, "marts.segment_members") == ops
    counts = {
        segment: count
        for segment, count in rows(
            built.engine,
            "select segment, members from ops.segment_materializations where as_of = :d",
            d=AS_OF,
        )
    }
    assert counts == built.second.segments
    assert sum(counts.values()) == len(ops)


def test_segments_see_the_derived_fields_and_the_purchase_history(built):
    ops = segment_members(built.engine, "ops.segment_members")
    members = {}
    for segment, contact_id, _ in ops:
        members.setdefault(segment, set()).add(contact_id)
    # is_mql is derived by the scoring models built before the segments (an MQL with an
    # owner is still an MQL; only routing skips it).
    assert members["mql_dach"] == {"lead-n1", "lead-n2", "lead-s1", "lead-owned"}
    assert members["hs2000_upsell"] == {"cust-1"}
    assert members["customers"] == {"cust-1"}
    assert members["machine_tools_production_managers"] == set(LEADS)
    assert built.first.segments["fr_existing_customers"] == 0


def test_the_nightly_run_routes_the_mqls_round_robin_by_the_shipped_rules(built):
    assignments = rows(
        built.engine,
        "select contact_id, team_id, owner_name, owner_email from ops.lead_assignments "
        "order by batch_position",
    )
    assert assignments == ROUTED
    assert [(a.contact_id, a.rule_id) for a in built.first.routing.routing.assignments] == [
        ("lead-f1", "france"),
        ("lead-n1", "germany_north"),
        ("lead-n2", "germany_north"),
        ("lead-s1", "germany_south"),
    ]
    # dim_contacts shows the owners at once, and again after the next build (coalesce).
    expected = {contact_id: owner for contact_id, _, owner, _ in ROUTED}
    expected.update({"lead-owned": "Mehmet Aydin", "cust-1": None})
    assert built.owners_after_first == expected
    assert dict(rows(built.engine, "select contact_id, owner from marts.dim_contacts")) == expected


def test_each_new_owner_got_one_mail_listing_their_lead(built):
    received = {message["To"]: message for message in built.first_mails}
    assert sorted(received) == sorted(email for *_, email in ROUTED)
    assert len(built.first_mails) == 4
    jana = received["jana.krueger@steinhoff-hydraulik.example"].get_body(("plain",)).get_content()
    assert "1. Lead-N1 Lead <lead-n1@example.com> (lead-n1)" in jana
    assert "Company: acc-north Werkzeugmaschinen, DE" in jana
    assert "Why: MQL in cell A1; persona production_manager; rule germany_north" in jana
    assert "lead-n2" not in jana


def test_a_second_run_routes_nobody_and_mails_nobody(built):
    assert built.second.routing.routing.assignments == []
    assert built.second_mails == []
    assert rows(built.engine, "select count(*) from ops.routing_batches") == [(1,)]
    assert rows(built.engine, "select count(*) from ops.crm_outbox") == [(4,)]


def test_the_run_records_its_segment_and_routing_steps(built):
    [detail] = rows(
        built.engine,
        "select detail from ops.runs where run_id = :run_id",
        run_id=built.first.run_id,
    )[0]
    steps = detail["steps"]
    assert steps["segments"]["members"] == built.first.segments
    assert steps["routing"]["routed"] == 4 and steps["routing"]["notifications_sent"] == 4
    assert steps["routing"]["per_owner"]["dach_north/Jana Krüger"] == 1
    described = built.first.describe()
    assert "segments: 14 materialised (new_customers 0, existing_customers 1," in described
    assert "routing: routed 4 MQL(s) in batch 1" in described


def test_the_new_marts_pass_their_quality_suites(built):
    outcomes = built.first.marts_gate.outcomes
    suites = {outcome.suite for outcome in outcomes}
    assert suites == {suite.name for suite in MART_SUITES}
    assert {
        "marts_persona_matches",
        "marts_lead_scores",
        "marts_scoring_matrix",
        "marts_segment_members",
        "marts_customer_lifetime_value",
    } <= suites
    assert [outcome.describe() for outcome in outcomes if not outcome.success] == []


def test_segment_preview_prints_count_sample_and_sql_with_placeholders(built):
    result = CliRunner().invoke(
        app, ["segment", "preview", "hs2000_upsell", "--as-of", "2026-11-27"], env=_env(built)
    )

    assert result.exit_code == 0, result.output
    out = result.output
    assert "segment hs2000_upsell as of 2026-11-27: 1 contacts" in out
    assert "cust-1" in out and "cust-1@example.com" in out and "existing_customer" in out
    assert "FROM marts.dim_contacts AS contact" in out
    # Values are placeholders in the SQL, listed with their bound values.
    assert "item.product_id = %(product_id_1)s" in out, out
    assert "HS2000" not in out.split("parameters:")[0]
    assert "  product_id_1 = 'HS2000'\n" in out
    # -3y and the maintenance window [+0d, +1y] resolved against as_of.
    assert "  ordered_at_2 = 2023-11-27 00:00:00+00:00\n" in out
    assert "  next_maintenance_date_2 = 2027-11-27\n" in out
    assert "lead-n1" not in out


def test_segment_preview_of_an_unknown_segment_suggests_the_name(built):
    result = CliRunner().invoke(app, ["segment", "preview", "hs2000_upsel"], env=_env(built))

    assert result.exit_code != 0
    assert "unknown segment 'hs2000_upsel' (did you mean 'hs2000_upsell'?)" in " ".join(
        result.output.split()
    )


def test_segment_list_shows_the_last_materialisation(built):
    result = CliRunner().invoke(app, ["segment", "list"], env=_env(built))

    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "hs2000_upsell" in line)
    assert "1" in line.split("│")[-3] and "2026-11-27" in line


def test_route_dry_run_after_routing_has_nobody_to_route(built):
    result = CliRunner().invoke(
        app, ["route", "--as-of", "2026-11-27", "--dry-run"], env=_env(built)
    )

    assert result.exit_code == 0, result.output
    assert "routing: no MQL waiting for an owner matched a rule" in result.output


def test_the_demo_prints_matrix_personas_segments_and_routed_mqls(built, tmp_path):
    from rich.console import Console

    from leadflow.config import load_config
    from leadflow.demo.scenario import print_know_the_customer

    (tmp_path / "one.eml").write_text("Subject: x\n\nx\n")
    console = Console(record=True, width=200)

    print_know_the_customer(console, built.engine, load_config(paths.config_dir()), AS_OF, tmp_path)

    out = console.export_text()
    assert "scoring matrix hq as of 2026-11-27: 5 contacts" in out
    assert "scoring matrix fr as of 2026-11-27: 1 contacts" in out
    assert cells(out, "Peter Produzent") == [
        "Peter Produzent (production_manager)",
        "4",
        "1",
        "0",
        "0",
    ]
    assert cells(out, "Eva Einkauf")[1:] == ["1", "0", "0", "0"]  # cust-1, a purchaser
    assert cells(out, "hs2000_upsell")[:2] == ["hs2000_upsell", "1"]
    assert "Routed MQLs as of 2026-11-27: 4" in out
    assert cells(out, "Jana Krüger") == ["dach_north", "Jana Krüger", "1"]
    assert f"Owner notifications: 1 mail(s) as .eml in {tmp_path}" in out


def cells(table_text: str, containing: str) -> list[str]:
    """The cells of the first table row (rich box drawing) that contains `containing`."""
    line = next(line for line in table_text.splitlines() if containing in line and "│" in line)
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_campaign_simulate_enrols_on_the_maintenance_day_and_keeps_nothing(built):
    result = CliRunner().invoke(
        app,
        ["campaign", "simulate", "upsell_hs3000", "--as-of", "2026-08-31", "--days", "4"],
        env=_env(built),
    )

    assert result.exit_code == 0, result.output
    per_day = {
        line.split()[0]: line.split()[1:]
        for line in result.output.splitlines()
        if line.startswith("2026-")
    }
    # as_of, enrolled, steps taken, ended: cust-1 enters on 2026-09-02 and gets the notice.
    assert per_day == {
        "2026-08-31": ["0", "0", "0"],
        "2026-09-01": ["0", "0", "0"],
        "2026-09-02": ["1", "1", "0"],
        "2026-09-03": ["0", "0", "0"],
    }
    assert "maintenance_notice  next     wait_notice" in result.output
    assert scalar_count(built, "ops.campaign_enrolments") == 0
    assert scalar_count(built, "ops.outbox") == 0


def test_campaign_run_enrols_once_and_status_shows_the_journey(built):
    run = ["campaign", "run", "upsell_hs3000", "--as-of", "2026-09-02"]
    dry = CliRunner().invoke(app, [*run, "--dry-run"], env=_env(built))
    assert dry.exit_code == 0, dry.output
    assert "dry run (nothing written)" in dry.output and table_count(dry.output, "enrolled") == 1
    assert scalar_count(built, "ops.campaign_enrolments") == 0

    first = CliRunner().invoke(app, run, env=_env(built))
    again = CliRunner().invoke(app, run, env=_env(built))
    status = CliRunner().invoke(
        app, ["campaign", "status", "upsell_hs3000", "--as-of", "2026-09-02"], env=_env(built)
    )

    assert first.exit_code == again.exit_code == status.exit_code == 0, first.output
    assert table_count(first.output, "enrolled") == 1
    assert table_count(again.output, "enrolled") == 0
    # Thursday 2026-09-03 00:00 UTC: the notice goes out when the window opens, 08:00 Berlin.
    with built.engine.connect() as connection:
        mail = connection.execute(
            sa.text("select contact_id, step_id, scheduled_at, deferred_reason from ops.outbox")
        ).one()
    assert tuple(mail) == (
        "cust-1",
        "maintenance_notice",
        dt.datetime(2026, 9, 3, 6, 0, tzinfo=dt.UTC),
        "send_window",
    )
    assert "1 active, 0 completed, 0 exited, 0 converted" in status.output
    assert "maintenance_notice" in status.output


def test_campaign_commands_name_the_known_campaigns_for_an_unknown_id(built):
    result = CliRunner().invoke(app, ["campaign", "status", "upsel"], env=_env(built))

    assert result.exit_code != 0
    assert "unknown campaign 'upsel'" in result.output and "upsell_hs3000" in result.output


def test_campaign_list_and_diagram(built):
    listing = CliRunner().invoke(app, ["campaign", "list"], env=_env(built))
    diagram = CliRunner().invoke(app, ["campaign", "diagram", "cross_sell"], env=_env(built))

    assert listing.exit_code == diagram.exit_code == 0, listing.output + diagram.output
    for campaign in ("onboarding", "cross_sell", "upsell_hs3000", "ebook_nurture"):
        assert campaign in listing.output
    assert diagram.output.startswith("flowchart TD")
    assert "clicked_cleaning" in diagram.output


def scalar_count(built: Built, table: str) -> int:
    with built.engine.connect() as connection:
        return connection.execute(sa.text(f"select count(*) from {table}")).scalar_one()


def table_count(output: str, label: str) -> int:
    """The count of the first `label  N` row of a report table in `output`."""
    line = next(line for line in output.splitlines() if line.split()[:-1] == label.split())
    return int(line.split()[-1])


def test_a_bad_row_fails_the_gate_naming_expectation_and_table(built):
    # Last in this module: it changes the marts (and puts them back).
    bad_score = (
        "insert into marts.lead_scores (contact_id, tenant_code, profile_score, grade,"
        " activity_score, band, matrix_cell, is_mql, lifecycle_stage, as_of)"
        " values ('ghost', 'hq', 120, 'E', 10, 4, 'E4', false, 'lead', '2026-11-27')"
    )
    orphan = "insert into marts.segment_members values ('customers', 'ghost', '2026-11-27')"
    twice = "insert into marts.segment_members values ('customers', 'cust-1', '2026-11-27')"
    with built.engine.begin() as connection:
        connection.execute(sa.text(bad_score))
        connection.execute(sa.text(orphan))
        connection.execute(sa.text(twice))
    try:
        result = run_gate("marts", built.engine)
    finally:
        with built.engine.begin() as connection:
            connection.execute(sa.text("delete from marts.lead_scores where contact_id = 'ghost'"))
            connection.execute(
                sa.text(
                    "delete from marts.segment_members "
                    "where contact_id in ('ghost', 'cust-1') and segment = 'customers'"
                )
            )
            connection.execute(
                sa.text("insert into marts.segment_members values ('customers', 'cust-1', :d)"),
                {"d": AS_OF},
            )

    failures = {outcome.describe() for outcome in result.failures}
    assert "marts.lead_scores: expect_column_values_to_be_in_set(grade) — 1 unexpected of 7" in (
        failures
    )
    assert (
        "marts.lead_scores: expect_column_values_to_be_between(profile_score) — 1 unexpected of 7"
        in failures
    )
    assert (
        "marts.lead_scores: expect_column_values_to_be_in_set(matrix_cell) — 1 unexpected of 7"
        in failures
    )
    assert (
        "marts.segment_members: unexpected_rows_expectation(contact_id in marts.dim_contacts)"
        " — 1 unexpected of " in " ".join(failures)
    )
    # The one check of the membership's key (dbt does not test it again).
    assert (
        "marts.segment_members: expect_compound_columns_to_be_unique(segment, contact_id)"
        in " ".join(failures)
    )
    with pytest.raises(QualityGateFailed, match=r"marts\.lead_scores: expect_column_values_to_be"):
        result.raise_if_failed()


def _env(built: Built) -> dict[str, str]:
    return {"LEADFLOW_WAREHOUSE_URL": built.engine.url.render_as_string(hide_password=False)}
