"""The nightly DAG end to end: the real Airflow (`airflow dags test`), the real Cosmos and dbt,
the real Great Expectations, against this test's own PostgreSQL database.

Airflow runs in subprocesses with the project's Airflow environment
(`leadflow.airflow_env.airflow_environment`) and one temporary AIRFLOW_HOME whose SQLite
metadata database is migrated once per session.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from leadflow import paths
from leadflow.airflow_env import airflow_environment, airflow_executable, ensure_migrated
from leadflow.messaging.smtp_sink import SmtpSink
from leadflow.quality.suites import MART_SUITES, RAW_SUITES

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 27)
RAW_CHECKS = sum(len(suite.checks) for suite in RAW_SUITES)
MART_CHECKS = sum(len(suite.checks) for suite in MART_SUITES)

BOOST_LEADS = """
insert into raw.events (event_id, contact_id, event_type, occurred_at)
select 'boost-' || contact.contact_id || '-' || n, contact.contact_id, 'form_submit',
       timestamptz '2026-11-27 12:00:00+00'
from raw.contacts as contact cross join generate_series(1, 4) as n
where contact.owner is null
  and not exists (select 1 from raw.orders as o where o.contact_id = contact.contact_id)
"""

SMALL_FIXTURE = """
insert into raw.accounts (account_id, name, country) values ('a1', 'Acme Werkzeugbau', 'DE');
insert into raw.contacts (contact_id, email, country, account_id) values
    ('c1', 'anna@acme.example', 'DE', 'a1'),
    ('c2', 'piet@acme.example', 'AT', 'a1');
"""


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> Path:
    """One migrated Airflow metadata database for the session (migrating takes seconds)."""
    home = tmp_path_factory.mktemp("airflow-home")
    with pytest.MonkeyPatch.context() as patch:
        # Migrating Airflow's own database never reaches the warehouse.
        patch.setenv("LEADFLOW_WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:9/nowhere")
        ensure_migrated(airflow_environment(home))
    return home


@pytest.fixture(scope="session")
def dbt_target(tmp_path_factory) -> Path:
    """A manifest parsed now from the dbt project as it is, in a directory of our own.

    Cosmos renders the DAG from the manifest: a stale one (models changed since the last
    `make setup`) would build models in the wrong order or miss new ones.
    """
    from leadflow.transform.dbt import parse

    target = tmp_path_factory.mktemp("dbt-target")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEADFLOW_DBT_TARGET_PATH", str(target))
        parse()
    return target


@pytest.fixture
def airflow_env(airflow_home, dbt_target, warehouse_url, tmp_path, monkeypatch) -> dict[str, str]:
    """The environment `leadflow airflow run` would use, on this test's database."""
    monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path / "leadflow-home"))
    monkeypatch.setenv("LEADFLOW_DBT_TARGET_PATH", str(dbt_target))
    # A retried task (only an unreachable warehouse is retried) must not stall the test.
    return {
        **os.environ,
        **airflow_environment(airflow_home),
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
    }


def run_airflow(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(airflow_executable()), *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def scalar(engine: sa.Engine, sql: str):
    with engine.connect() as connection:
        return connection.execute(sa.text(sql)).scalar()


def nightly_runs(engine: sa.Engine) -> list[dict]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("select as_of, status, detail from ops.runs"))
        return [dict(row._mapping) for row in rows]


def test_dags_test_builds_validated_marts_and_a_campaign_runs_on_them(
    warehouse, airflow_env, tmp_path
):
    from leadflow.demo.generator import GeneratorSettings, generate
    from leadflow.messaging.smtp_sink import SmtpSink

    settings = GeneratorSettings(contacts=150, seed=7, events_per_contact=4, as_of=AS_OF)
    generate(warehouse, settings, out_dir=tmp_path)
    # Four form submits on D make every lead without owner band 1: its A/B-grade ones are
    # MQLs (A1/B1) for the DAG to route (this small company has none of its own).
    with warehouse.begin() as connection:
        connection.exec_driver_sql(BOOST_LEADS)

    # The DAG routes the MQLs and mails their owners: a real SMTP server receives the mails.
    with SmtpSink(tmp_path / "mail", port=0) as sink:
        smtp = {"LEADFLOW_SMTP_HOST": sink.host, "LEADFLOW_SMTP_PORT": str(sink.port)}
        completed = run_airflow(
            {**airflow_env, **smtp}, "dags", "test", "leadflow_nightly", AS_OF.isoformat()
        )
        mails = sink.messages()

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-5000:]
    assert scalar(warehouse, "select count(*) from marts.dim_contacts") == 150
    assert scalar(warehouse, "select count(distinct as_of) from marts.dim_contacts") == 1
    assert scalar(warehouse, "select min(as_of) from marts.dim_contacts") == AS_OF
    assert scalar(warehouse, "select count(*) from ops.quality_results") == RAW_CHECKS + MART_CHECKS
    failed_critical = "select count(*) from ops.quality_results where severity = 'critical' "
    assert scalar(warehouse, failed_critical + "and not success") == 0
    [run] = nightly_runs(warehouse)
    assert run["as_of"] == AS_OF and run["status"] == "success"
    assert run["detail"]["origin"] == "airflow" and run["detail"]["dag_id"] == "leadflow_nightly"
    steps = run["detail"]["steps"]
    assert set(steps) - {"routing_notifications"} == {
        "validate_config",
        "raw_quality_gate",
        "activity_state",
        "segments",
        "marts_quality_gate",
        "routing",
    }
    # Segments materialised between the two dbt groups; the mart publishes the run's date.
    ops_members = "select segment, contact_id from ops.segment_members where as_of = :as_of"
    with warehouse.connect() as connection:
        ops = set(connection.execute(sa.text(ops_members), {"as_of": AS_OF}).all())
        mart = set(
            connection.execute(
                sa.text("select segment, contact_id from marts.segment_members")
            ).all()
        )
    assert ops == mart
    assert sum(steps["segments"]["members"].values()) == len(ops)
    # Every MQL without owner was routed (the shipped rules end with a catch-all) and each
    # owner got one mail listing their leads.
    routed = scalar(warehouse, "select count(*) from ops.lead_assignments")
    waiting = scalar(
        warehouse, "select count(*) from marts.dim_contacts where is_mql and owner is null"
    )
    assert steps["routing"]["routed"] == routed > 0 and waiting == 0
    owners = scalar(warehouse, "select count(distinct owner_email) from ops.lead_assignments")
    assert len(mails) == owners == steps.get("routing_notifications", {}).get("sent", 0)
    assert (
        scalar(warehouse, "select count(*) from ops.routing_notifications where sent_at is null")
        == 0
    )
    # The configuration reached dbt as data.
    config_hash = run["detail"]["steps"]["validate_config"]["config_hash"]
    assert scalar(warehouse, "select config_hash from ops.config_snapshot") == config_hash
    assert (paths.home() / "quality" / "index.html").is_file()

    # On these marts a campaign DAG runs: a HydroStat bought on as_of enrols its buyer into
    # onboarding. The run is at the cut-off (Saturday 00:00 UTC), so the welcome mail waits
    # for the send window: Monday 08:00 Berlin time.
    check_onboarding_dag(warehouse, airflow_env, tmp_path)


ONBOARDING_PURCHASE = (
    "insert into raw.orders (order_id, contact_id, ordered_at, status, net_amount) values "
    "('e2e-order', :contact_id, timestamptz '2026-11-27 10:00:00+00', 'won', 24900)",
    "insert into raw.order_items (order_id, line_no, product_id, quantity, net_amount) "
    "values ('e2e-order', 1, 'HS2000', 1, 24900)",
)
# Buyers of a HydroStat in the trigger's look-back [now - 7 days, now), independently of
# the engine's SQL: each of them is enrolled once.
HYDROSTAT_BUYERS = """
select count(distinct o.contact_id) from raw.orders as o
join raw.order_items as i using (order_id)
join raw.products as p using (product_id)
join marts.dim_contacts as c on c.contact_id = o.contact_id
where p.family = 'hydrostat' and o.status = 'won'
  and o.ordered_at >= timestamptz '2026-11-21 00:00:00+00'
  and o.ordered_at < timestamptz '2026-11-28 00:00:00+00'
  and c.tenant_code is not null and c.consent_status is distinct from 'objected'
"""


def check_onboarding_dag(warehouse: sa.Engine, airflow_env: dict[str, str], tmp_path: Path) -> None:
    buyer = scalar(
        warehouse,
        "select min(contact_id) from marts.dim_contacts "
        "where tenant_code = 'hq' and consent_status is distinct from 'objected'",
    )
    with warehouse.begin() as connection:
        for statement in ONBOARDING_PURCHASE:
            connection.execute(sa.text(statement), {"contact_id": buyer})
    run_day = (AS_OF + dt.timedelta(days=1)).isoformat()
    completed = run_airflow(airflow_env, "dags", "test", "campaign__onboarding", run_day)
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-5000:]

    journeys = "select count(*) from ops.campaign_enrolments where campaign_id = 'onboarding'"
    assert scalar(warehouse, journeys) == scalar(warehouse, HYDROSTAT_BUYERS) >= 1
    with warehouse.connect() as connection:
        journey = connection.execute(
            sa.text(
                "select status, step_id, step_seq, due_at from ops.campaign_enrolments "
                "where campaign_id = 'onboarding' and contact_id = :buyer"
            ),
            {"buyer": buyer},
        ).one()
        [mail] = connection.execute(
            sa.text(
                "select step_id, kind, scheduled_at, deferred_reason from ops.outbox "
                "where campaign_id = 'onboarding' and contact_id = :buyer"
            ),
            {"buyer": buyer},
        ).all()
    monday_eight_berlin = dt.datetime(2026, 11, 30, 7, 0, tzinfo=dt.UTC)
    assert tuple(journey) == ("active", "schedule_briefing", 1, monday_eight_berlin)
    assert tuple(mail) == ("welcome", "campaign_mail", monday_eight_berlin, "send_window")

    # Monday noon: the DAG's mapped dispatch tasks send the welcome mail, rendered, over SMTP
    # (the buyer confirmed their opt-in meanwhile).
    with warehouse.begin() as connection:
        connection.execute(
            sa.text("update raw.contacts set consent_status = 'confirmed' where contact_id = :c"),
            {"c": buyer},
        )
    with SmtpSink(tmp_path / "campaign-mail", port=0) as sink:
        smtp = {"LEADFLOW_SMTP_URL": f"smtp://{sink.host}:{sink.port}"}
        monday = run_airflow(
            {**airflow_env, **smtp}, "dags", "test", "campaign__onboarding", "2026-11-30T12:00:00"
        )
        received = sink.messages()
    assert monday.returncode == 0, (monday.stdout + monday.stderr)[-5000:]
    with warehouse.connect() as connection:
        status, message_id, email = connection.execute(
            sa.text(
                "select o.status, o.message_id, c.email from ops.outbox as o "
                "join raw.contacts as c using (contact_id) "
                "where o.campaign_id = 'onboarding' and o.contact_id = :buyer"
            ),
            {"buyer": buyer},
        ).one()
    assert status == "sent"
    [welcome] = [mail for mail in received if mail["Message-ID"] == message_id]
    assert welcome["To"] == email and welcome["List-Unsubscribe-Post"] == (
        "List-Unsubscribe=One-Click"
    )


def test_bad_raw_data_stops_the_dag_naming_expectation_and_table(warehouse, airflow_env):
    with warehouse.begin() as connection:
        connection.exec_driver_sql(SMALL_FIXTURE)
        connection.exec_driver_sql(
            "insert into raw.contacts (contact_id, email) values ('c3', 'jonas(at)acme.example')"
        )

    completed = run_airflow(airflow_env, "dags", "test", "leadflow_nightly", AS_OF.isoformat())

    output = completed.stdout + completed.stderr
    message = "raw.contacts: expect_column_values_to_match_regex(email) — 1 unexpected of 3"
    assert completed.returncode != 0
    assert f"quality gate 'raw' failed: {message}" in output
    # Bad data is not retried: the gate failed once, for good.
    assert "AirflowFailException" in output and "up_for_retry" not in output
    assert scalar(warehouse, "select to_regclass('marts.dim_contacts')") is None
    [run] = nightly_runs(warehouse)
    assert run["status"] == "failed" and message in run["detail"]["error"]
    assert run["detail"]["error"].startswith("raw_quality_gate: ")


PROBE_WITHOUT_LOGICAL_DATE = textwrap.dedent(
    """
    import datetime as dt, sys
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=sys.argv[1]).dags["leadflow_nightly"]
    run = dag.test(
        logical_date=None,
        run_after=dt.datetime(2026, 11, 28, 10, 15, tzinfo=dt.UTC),
        # Only the task that resolves the date runs; the rest is not under test here.
        mark_success_pattern=r"(?!validate_config$).*",
    )
    print("RUN-STATE", run.state, run.logical_date)
    """
)


def test_a_run_without_logical_date_uses_the_day_before_it_ran(warehouse, airflow_env):
    with warehouse.begin() as connection:
        connection.exec_driver_sql(SMALL_FIXTURE)

    completed = subprocess.run(
        [sys.executable, "-c", PROBE_WITHOUT_LOGICAL_DATE, str(paths.PROJECT_ROOT / "dags")],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-5000:]
    assert "RUN-STATE success None" in output
    [run] = nightly_runs(warehouse)
    assert run["as_of"] == AS_OF  # 2026-11-28 10:15 UTC → the last complete day
