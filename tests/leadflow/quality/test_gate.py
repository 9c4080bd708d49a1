"""The quality gate against a real PostgreSQL with the real Great Expectations.

Bad data here is data raw can really hold: its constraints reject NULL emails or unknown
event types, but not an email without an @, an unknown country, an event nobody can be
attributed to or a line item for a product that does not exist.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from leadflow.errors import LeadflowError
from leadflow.quality import QualityGateFailed, run_gate
from leadflow.quality.gate import gx_connection
from leadflow.quality.suites import MART_SUITES, RAW_SUITES

CLEAN_RAW = """
insert into raw.accounts (account_id, name, industry, employee_count, country) values
    ('a1', 'Acme Werkzeugbau', 'machine_tools', 120, 'DE'),
    ('a2', 'Boulonnerie SA', 'automotive', 800, 'FR');
insert into raw.contacts (contact_id, email, country, account_id, decision_role, consent_status)
values
    ('c1', 'anna@acme.example', 'DE', 'a1', 'purchaser', 'confirmed'),
    ('c2', 'luc@boulonnerie.example', 'FR', 'a2', 'production_manager', 'none'),
    ('c3', 'piet@acme.example', 'AT', 'a1', 'other', 'confirmed');
insert into raw.products values
    ('HS2000', 'HS2000', 'HydroStat 2000', 'hydrostat', 24000, 15000, 24),
    ('CLN-10', 'CLN-10', 'HydroClean Konzentrat 10 l', 'cleaning_agent', 90, 30, null);
insert into raw.orders (order_id, account_id, contact_id, ordered_at, net_amount) values
    ('o1', 'a1', 'c1', '2026-05-01', 24090);
insert into raw.order_items values ('o1', 1, 'HS2000', 1, 24000), ('o1', 2, 'CLN-10', 1, 90);
insert into raw.installed_base values
    ('i1', 'a1', 'c1', 'HS2000', 'SN-1', '2022-05-01', '2027-05-01');
insert into raw.events (event_id, contact_id, visitor_id, event_type, occurred_at) values
    ('e1', 'c1', null, 'email_open', '2026-11-20'),
    ('e2', null, 'v9', 'web_visit', '2026-11-21');
"""

RAW_CHECKS = sum(len(suite.checks) for suite in RAW_SUITES)
MART_CHECKS = sum(len(suite.checks) for suite in MART_SUITES)


def execute(engine: sa.Engine, sql: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(sql)


def recorded(engine: sa.Engine) -> list[dict]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "select suite, table_name, expectation, severity, success, observed, checked_at "
                "from ops.quality_results order by result_id"
            )
        )
        return [dict(row._mapping) for row in rows]


@pytest.fixture
def clean_raw(warehouse):
    execute(warehouse, CLEAN_RAW)
    return warehouse


def test_clean_raw_data_passes_and_every_expectation_is_recorded(clean_raw, tmp_path):
    result = run_gate("raw", clean_raw, report_dir=tmp_path)

    assert result.success
    assert result.failures == [] and result.warnings == []
    result.raise_if_failed()  # does not raise
    rows = recorded(clean_raw)
    assert len(rows) == len(result.outcomes) == RAW_CHECKS
    assert all(row["success"] for row in rows)
    # One gate run, one timestamp: the run's rows can be told apart from the next run's.
    assert {row["checked_at"] for row in rows} == {result.checked_at}
    contacts_null_check = next(
        row
        for row in rows
        if row["expectation"] == "expect_column_values_to_not_be_null(email)"
        and row["table_name"] == "raw.contacts"
    )
    assert contacts_null_check["suite"] == "raw_contacts"
    assert contacts_null_check["severity"] == "critical"
    assert contacts_null_check["observed"]["rows"] == 3
    assert contacts_null_check["observed"]["unexpected"] == 0
    assert contacts_null_check["observed"]["stage"] == "raw"


def test_bad_raw_data_fails_naming_every_failed_expectation_and_its_table(clean_raw, tmp_path):
    execute(
        clean_raw,
        """
        insert into raw.contacts (contact_id, email, country) values
            ('c4', 'jonas(at)acme.example', 'DE'),
            ('c5', 'kasia@firma.example', 'XX');
        insert into raw.events (event_id, contact_id, visitor_id, event_type, occurred_at)
            values ('e3', null, null, 'download', '2026-11-22');
        insert into raw.order_items values ('o1', 3, 'HS9999', 1, 10);
        """,
    )

    result = run_gate("raw", clean_raw, report_dir=tmp_path)
    with pytest.raises(QualityGateFailed) as failed:
        result.raise_if_failed()

    assert str(failed.value) == (
        "quality gate 'raw' failed: "
        "raw.contacts: expect_column_values_to_match_regex(email) — 1 unexpected of 5; "
        "raw.contacts: expect_column_values_to_be_in_set(country, ISO 3166-1 alpha-2)"
        " — 1 unexpected of 5; "
        "raw.events: unexpected_rows_expectation(contact_id or visitor_id present)"
        " — 1 unexpected of 3; "
        "raw.order_items: unexpected_rows_expectation(product_id in raw.products)"
        " — 1 unexpected of 3"
    )
    assert isinstance(failed.value, LeadflowError)
    # 'XX' is outside the tenant countries too: reported, but only as a warning.
    assert [w.describe() for w in result.warnings] == [
        "raw.contacts: expect_column_values_to_be_in_set(country, tenant countries)"
        " — 1 unexpected of 5"
    ]

    rows = recorded(clean_raw)
    assert len(rows) == RAW_CHECKS
    failed_rows = [r for r in rows if not r["success"]]
    assert [(r["table_name"], r["severity"]) for r in failed_rows] == [
        ("raw.contacts", "critical"),
        ("raw.contacts", "critical"),
        ("raw.contacts", "warning"),
        ("raw.events", "critical"),
        ("raw.order_items", "critical"),
    ]
    email, country = failed_rows[0]["observed"], failed_rows[1]["observed"]
    assert email["unexpected"] == 1 and email["rows"] == 5
    assert "examples" not in email  # an email address is personal data: counts only
    assert country["examples"] == ["XX"]


def test_a_failed_warning_is_reported_but_does_not_fail_the_gate(clean_raw, tmp_path):
    # A credit note: negative, unusual, worth a look, not a reason to stop the night.
    execute(
        clean_raw,
        "insert into raw.orders (order_id, account_id, contact_id, ordered_at, net_amount) "
        "values ('o2', 'a1', 'c1', '2026-06-01', -90)",
    )

    result = run_gate("raw", clean_raw, report_dir=tmp_path)
    result.raise_if_failed()  # does not raise

    assert result.success
    assert [w.describe() for w in result.warnings] == [
        "raw.orders: expect_column_values_to_be_between(net_amount) — 1 unexpected of 2"
    ]
    assert "WARNING raw.orders: expect_column_values_to_be_between(net_amount)" in (
        result.describe()
    )
    warnings = [r for r in recorded(clean_raw) if not r["success"]]
    assert [(w["table_name"], w["severity"], w["observed"]["examples"]) for w in warnings] == [
        ("raw.orders", "warning", ["-90.00"])
    ]


def test_the_report_pages_show_the_latest_run_of_each_gate(clean_raw, tmp_path):
    execute(clean_raw, "insert into raw.contacts (contact_id, email) values ('c4', 'nobody')")

    result = run_gate("raw", clean_raw, report_dir=tmp_path)

    assert result.report == tmp_path / "raw.html"
    page = (tmp_path / "raw.html").read_text()
    assert "Quality gate <code>raw</code>" in page and "FAILED" in page
    assert "expect_column_values_to_match_regex(email)" in page
    assert "nobody" not in page  # personal data stays out of the page
    summary = json.loads((tmp_path / "raw.json").read_text())
    assert summary["success"] is False
    assert len(summary["outcomes"]) == RAW_CHECKS
    index = (tmp_path / "index.html").read_text()
    assert '<a href="raw.html">raw</a>' in index and "marts: not run yet" in index


def test_marts_gate_fails_when_the_mart_was_never_built(warehouse, tmp_path):
    result = run_gate("marts", warehouse, report_dir=tmp_path)

    with pytest.raises(QualityGateFailed, match=r"marts\.dim_contacts: expect_table_to_exist"):
        result.raise_if_failed()
    # Every mart of the gate is missing, each reported once.
    tables = [suite.qualified_table for suite in MART_SUITES]
    assert [o.describe() for o in result.failures] == [
        f"{table}: expect_table_to_exist — table does not exist" for table in tables
    ]
    assert [(r["table_name"], r["success"]) for r in recorded(warehouse)] == [
        (table, False) for table in tables
    ]


def test_marts_gate_checks_the_contacts_the_campaigns_send_to(warehouse, tmp_path):
    execute(
        warehouse,
        """
        create schema marts;
        create table marts.dim_contacts (
            contact_id text, email text, customer_status text, tenant_code text
        );
        insert into marts.dim_contacts values
            ('c1', 'anna@acme.example', 'lead', 'hq'),
            ('c2', 'luc@boulonnerie.example', 'vip', 'fr'),
            ('c3', 'piet@acme.example', 'existing_customer', null),
            ('c4', 'ines@talleres.example', 'new_customer', 'pt');
        """,
    )

    result = run_gate("marts", warehouse, report_dir=tmp_path)

    contacts = [o for o in result.outcomes if o.table == "marts.dim_contacts"]
    assert [o.describe() for o in contacts if not o.success and o.severity == "critical"] == [
        "marts.dim_contacts: expect_column_values_to_be_in_set(customer_status)"
        " — 1 unexpected of 4",
        "marts.dim_contacts: expect_column_values_to_not_be_null(tenant_code) — 1 unexpected of 4",
    ]
    assert [o.describe() for o in result.warnings] == [
        "marts.dim_contacts: expect_column_values_to_be_in_set(tenant_code) — 1 unexpected of 4"
    ]
    # The other marts were not built here: one "table does not exist" each.
    others = [suite for suite in MART_SUITES if suite.table != "dim_contacts"]
    assert len(recorded(warehouse)) == len(contacts) + len(others)
    assert len(contacts) == next(len(s.checks) for s in MART_SUITES if s.table == "dim_contacts")


def test_an_unknown_stage_is_a_clear_error(warehouse):
    with pytest.raises(LeadflowError, match="unknown quality gate stage 'staging'"):
        run_gate("staging", warehouse)


def test_socket_directories_reach_gx_through_connect_args():
    socket_url = make_url("postgresql+psycopg://postgres@/leadflow?host=/tmp/pg")
    assert gx_connection(socket_url) == (
        "postgresql+psycopg://postgres@localhost/leadflow",
        {"connect_args": {"host": "/tmp/pg"}},
    )
    tcp_url = make_url("postgresql+psycopg://app:secret@db.internal:6432/leadflow")
    assert gx_connection(tcp_url) == (
        "postgresql+psycopg://app:secret@db.internal:6432/leadflow",
        {},
    )
