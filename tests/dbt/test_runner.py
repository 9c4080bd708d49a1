"""leadflow.transform.dbt: the environment it gives dbt, parsing offline, failures it reports."""

from __future__ import annotations

import datetime as dt
import json
import os
import re

import pytest
import sqlalchemy as sa

from leadflow.errors import LeadflowError, WarehouseUnavailable
from leadflow.transform import dbt
from leadflow.warehouse.engine import ConnectionParams


def test_dbt_env_passes_a_socket_directory_as_host():
    params = ConnectionParams(
        host="/work/main/.leadflow/pg", port=5432, user="postgres", password="", dbname="leadflow"
    )
    assert dbt.dbt_env(params) == {
        "LEADFLOW_DBT_HOST": "/work/main/.leadflow/pg",
        "LEADFLOW_DBT_PORT": "5432",
        "LEADFLOW_DBT_USER": "postgres",
        "LEADFLOW_DBT_PASSWORD": "",
        "LEADFLOW_DBT_DBNAME": "leadflow",
        "DBT_PROFILES_DIR": str(dbt.project_dir()),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
    }


def test_dbt_env_defaults_to_the_configured_warehouse(warehouse_url):
    env = dbt.dbt_env()
    assert env["LEADFLOW_DBT_DBNAME"] == warehouse_url.database
    assert env["LEADFLOW_DBT_HOST"] == warehouse_url.query["host"]


@pytest.fixture
def no_warehouse(tmp_path, monkeypatch):
    """No warehouse configured and a home without an embedded server: nothing to connect to."""
    monkeypatch.delenv("LEADFLOW_WAREHOUSE_URL", raising=False)
    for name in [n for n in os.environ if n.startswith("LEADFLOW_DBT_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("LEADFLOW_HOME", str(home))
    return home


def test_parse_works_without_any_database(no_warehouse, dbt_target):
    manifest_path = dbt.parse()

    assert manifest_path == dbt_target / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    dim_contacts = manifest["nodes"]["model.leadflow.dim_contacts"]
    assert dim_contacts["schema"] == "marts"
    assert dim_contacts["config"]["materialized"] == "table"
    assert dim_contacts["config"]["contract"]["enforced"] is True
    assert manifest["nodes"]["model.leadflow.stg_raw__contacts"]["schema"] == "staging"
    assert manifest["nodes"]["model.leadflow.stg_raw__contacts"]["config"]["materialized"] == (
        "view"
    )
    exposure = manifest["exposures"]["exposure.leadflow.leadflow_bi_dashboard"]
    assert exposure["depends_on"]["nodes"] == ["model.leadflow.dim_contacts"]
    # Parsing neither started an embedded server nor needed one.
    assert not (no_warehouse / "pg").exists()
    assert (no_warehouse / "dbt" / "logs" / "dbt.log").is_file()


def test_parse_puts_the_manifest_in_the_project_target_by_default(monkeypatch):
    monkeypatch.delenv("LEADFLOW_DBT_TARGET_PATH", raising=False)
    assert dbt.target_dir() == dbt.project_dir() / "target"


def test_pii_columns_are_tagged_in_the_sources(no_warehouse, dbt_target):
    manifest = json.loads(dbt.parse().read_text())
    contacts = manifest["sources"]["source.leadflow.raw.contacts"]["columns"]
    pii = sorted(name for name, column in contacts.items() if "pii" in column["tags"])
    assert pii == ["custom", "email", "first_name", "last_name", "position", "salutation"]


@pytest.mark.parametrize("as_of", ["2025-02-30", "30.06.2025", "2025-13-01"])
def test_an_invalid_as_of_date_is_refused(no_warehouse, dbt_target, as_of):
    expected = f"var('as_of') must be a date as YYYY-MM-DD, got '{as_of}'"
    with pytest.raises(LeadflowError, match=re.escape(expected)):
        dbt.run_dbt(["parse", "--vars", json.dumps({"as_of": as_of})])


def test_without_as_of_the_cutoff_is_the_end_of_today_utc(warehouse, dbt_target):
    before = dt.datetime.now(dt.UTC).date()
    dbt.run_dbt(["compile", "--select", "int_contacts_orders_aggregated"])
    after = dt.datetime.now(dt.UTC).date()

    compiled = next(dbt_target.glob("compiled/**/int_contacts_orders_aggregated.sql")).read_text()
    cutoffs = {f"{day + dt.timedelta(days=1)} 00:00:00+00" for day in (before, after)}
    assert any(f"ordered_at < cast('{cutoff}' as timestamptz)" in compiled for cutoff in cutoffs)


def test_a_failing_data_test_names_the_test_and_builds_no_mart(warehouse, dbt_target):
    # A German CRM exports its own stage label: the pool must not silently lose the contact
    # from every funnel, so the build stops before the marts.
    with warehouse.begin() as connection:
        connection.exec_driver_sql(
            "insert into raw.contacts (contact_id, email, lifecycle_stage) values"
            " ('c-1', 'a@example.de', 'customer'), ('c-2', 'b@example.de', 'Kunde')"
        )

    with pytest.raises(LeadflowError) as raised:
        dbt.build(dt.date(2025, 6, 30))

    message = str(raised.value)
    assert message.startswith("dbt build failed: ")
    assert "test stg_raw__contacts_crm_lifecycle_stage_is_known failed: 1 row" in message
    assert "dependent nodes skipped" in message
    with warehouse.connect() as connection:
        exists = connection.execute(sa.text("select to_regclass('marts.dim_contacts')")).scalar()
    assert exists is None


def test_an_unreachable_warehouse_is_reported_as_such(monkeypatch, dbt_target):
    # Port 1 on loopback refuses at once: no server, no waiting for a timeout.
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(WarehouseUnavailable, match=r"dbt build cannot reach the warehouse: .*"):
        dbt.build(dt.date(2025, 6, 30))
