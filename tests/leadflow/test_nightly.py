"""The nightly run (`leadflow build`): its date, its ops.runs record, and that a failed gate
stops it before dbt builds anything."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from leadflow import paths
from leadflow.errors import LeadflowError
from leadflow.nightly import as_of_for_run, run_nightly
from leadflow.quality import QualityGateFailed
from leadflow.quality.suites import MART_SUITES
from leadflow.warehouse.migrate import upgrade

AS_OF = dt.date(2026, 11, 27)

CLEAN_RAW = """
insert into raw.accounts (account_id, name, country) values ('a1', 'Acme Werkzeugbau', 'DE');
insert into raw.contacts (contact_id, email, country, account_id) values
    ('c1', 'anna@acme.example', 'DE', 'a1'),
    ('c2', 'piet@acme.example', 'AT', 'a1');
insert into raw.products values
    ('HS2000', 'HS2000', 'HydroStat 2000', 'hydrostat', 24000, 15000, 24);
insert into raw.orders (order_id, account_id, contact_id, ordered_at, net_amount) values
    ('o1', 'a1', 'c1', '2026-05-01', 24000);
insert into raw.order_items values ('o1', 1, 'HS2000', 1, 24000);
"""


def execute(engine: sa.Engine, sql: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(sql)


def runs(engine: sa.Engine) -> list[dict]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("select kind, as_of, status, finished_at, detail from ops.runs")
        )
        return [dict(row._mapping) for row in rows]


def relation_exists(engine: sa.Engine, name: str) -> bool:
    with engine.connect() as connection:
        found = connection.execute(sa.text("select to_regclass(:name)"), {"name": name})
        return found.scalar() is not None


@pytest.fixture
def leadflow_home(tmp_path, monkeypatch):
    """Quality reports go to a temporary home, not the project's .leadflow."""
    monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_as_of_is_the_logical_dates_utc_date():
    evening_in_new_york = dt.datetime(2026, 11, 27, 20, 30, tzinfo=ZoneInfo("America/New_York"))
    assert as_of_for_run(dt.datetime(2026, 11, 27, tzinfo=dt.UTC), None) == AS_OF
    assert as_of_for_run(evening_in_new_york, None) == dt.date(2026, 11, 28)


def test_without_a_logical_date_as_of_is_the_last_complete_day_before_the_run():
    run_after = dt.datetime(2026, 11, 28, 10, 15, tzinfo=dt.UTC)
    assert as_of_for_run(None, run_after) == AS_OF
    assert as_of_for_run(None, dt.datetime(2026, 11, 28, 0, 0, tzinfo=dt.UTC)) == AS_OF


def test_a_run_with_no_date_at_all_is_refused():
    with pytest.raises(LeadflowError, match="neither a logical date nor run_after"):
        as_of_for_run(None, None)


def test_a_failed_raw_gate_fails_the_run_before_dbt_builds_anything(warehouse, leadflow_home):
    execute(warehouse, CLEAN_RAW)
    execute(warehouse, "insert into raw.contacts (contact_id, email) values ('c3', 'nobody')")

    with pytest.raises(QualityGateFailed) as failed:
        run_nightly(AS_OF, paths.config_dir())

    message = "raw.contacts: expect_column_values_to_match_regex(email) — 1 unexpected of 3"
    assert message in str(failed.value)
    [run] = runs(warehouse)
    assert run["kind"] == "nightly" and run["as_of"] == AS_OF
    assert run["status"] == "failed" and run["finished_at"] is not None
    assert message in run["detail"]["error"]
    assert run["detail"]["steps"]["raw_quality_gate"]["failures"] == [message]
    assert "activity_state" not in run["detail"]["steps"]
    assert "dbt_build" not in run["detail"]["steps"]
    assert not relation_exists(warehouse, "marts.dim_contacts")
    assert (leadflow_home / "quality" / "raw.html").is_file()


def test_leadflow_build_prints_the_failed_expectation_and_exits_non_zero(warehouse, leadflow_home):
    execute(warehouse, CLEAN_RAW)
    execute(
        warehouse,
        "insert into raw.events (event_id, event_type, occurred_at) "
        "values ('e1', 'web_visit', '2026-11-20')",
    )

    completed = subprocess.run(
        [str(Path(sys.executable).parent / "leadflow"), "build", "--as-of", "2026-11-27"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert completed.returncode == 1
    error = " ".join(completed.stderr.split())  # rich may wrap long lines
    assert "error: quality gate 'raw' failed: " in error
    assert (
        "raw.events: unexpected_rows_expectation(contact_id or visitor_id present)"
        " — 1 unexpected of 1" in error
    )


def test_an_unmigrated_warehouse_is_a_clear_error(empty_database_url, monkeypatch):
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", empty_database_url.render_as_string(False))
    with pytest.raises(LeadflowError, match=r"the warehouse is not migrated .*leadflow db migrate"):
        run_nightly(AS_OF, paths.config_dir())


def test_a_warehouse_behind_the_latest_migration_is_a_clear_error(empty_database_url, monkeypatch):
    upgrade(sa.create_engine(empty_database_url), "0001")
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", empty_database_url.render_as_string(False))
    with pytest.raises(LeadflowError, match="the warehouse is at revision 0001 "):
        run_nightly(AS_OF, paths.config_dir())


@pytest.mark.slow
def test_a_clean_run_builds_the_marts_and_records_every_step(warehouse, leadflow_home):
    execute(warehouse, CLEAN_RAW)

    result = run_nightly(AS_OF, paths.config_dir())

    with warehouse.connect() as connection:
        contacts = connection.execute(
            sa.text("select contact_id, customer_status, as_of from marts.dim_contacts order by 1")
        ).all()
    assert contacts == [("c1", "new_customer", AS_OF), ("c2", "lead", AS_OF)]
    [run] = runs(warehouse)
    assert run["status"] == "success" and run["detail"]["origin"] == "cli"
    assert set(run["detail"]["steps"]) == {
        "validate_config",
        "raw_quality_gate",
        "activity_state",
        "segments",
        "dbt_build",
        "marts_quality_gate",
        "routing",
    }
    # c2 is a lead but no MQL (D4): nobody to route, so no mail server was needed.
    assert run["detail"]["steps"]["routing"]["routed"] == 0
    assert run["detail"]["steps"]["segments"]["members"]["customers"] == 1
    assert run["detail"]["steps"]["activity_state"]["mode"] == "full"  # no state before
    with warehouse.connect() as connection:
        snapshot = connection.execute(sa.text("select config_hash from ops.config_snapshot"))
        assert snapshot.scalar_one() == run["detail"]["steps"]["validate_config"]["config_hash"]
    assert result.run_id and result.raw_gate.success and result.marts_gate.success
    described = result.describe()
    assert described.startswith(f"nightly run {result.run_id} for 2026-11-27: success")
    checks = sum(len(suite.checks) for suite in MART_SUITES)
    assert f"quality gate 'marts': {checks}/{checks} expectations passed" in described
