"""The environment Airflow runs this project in, and `leadflow airflow env|run`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leadflow import paths
from leadflow.airflow_env import airflow_environment, ensure_migrated, export_lines

LEADFLOW = Path(sys.executable).parent / "leadflow"
SOCKET_URL = "postgresql+psycopg://postgres@/leadflow?host=/tmp/leadflow-pg"
TCP_URL = "postgresql://app:s3cr%40t@db.internal:6432/warehouse"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("LEADFLOW_SMTP_HOST", raising=False)
    monkeypatch.delenv("LEADFLOW_SMTP_PORT", raising=False)
    return tmp_path


def test_airflow_runs_from_the_leadflow_home_with_the_projects_dags(home, monkeypatch):
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", SOCKET_URL)

    env = airflow_environment()

    airflow_home = home / "airflow"
    assert env["AIRFLOW_HOME"] == str(airflow_home)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{airflow_home}/airflow.db"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(paths.PROJECT_ROOT / "dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(paths.PROJECT_ROOT / "plugins")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["LEADFLOW_HOME"] == str(home)
    assert env["LEADFLOW_CONFIG_DIR"] == str(paths.config_dir().resolve())


def test_no_tool_phones_home(home, monkeypatch):
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", SOCKET_URL)

    env = airflow_environment()

    assert env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] == "False"
    assert env["DO_NOT_TRACK"] == "1"
    assert env["SCARF_ANALYTICS"] == "false"
    assert env["SCARF_NO_ANALYTICS"] == "true"
    assert env["GX_ANALYTICS_ENABLED"] == "false"
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "False"


def test_the_warehouse_connection_keeps_a_socket_directory_and_an_empty_password(home, monkeypatch):
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", SOCKET_URL)

    env = airflow_environment()

    assert json.loads(env["AIRFLOW_CONN_WAREHOUSE"]) == {
        "conn_type": "postgres",
        "host": "/tmp/leadflow-pg",
        "port": 5432,
        "login": "postgres",
        "password": "",
        "schema": "leadflow",
    }
    assert env["LEADFLOW_WAREHOUSE_URL"] == (
        "postgresql+psycopg://postgres@/leadflow?host=%2Ftmp%2Fleadflow-pg"
    )


def test_a_tcp_warehouse_and_smtp_server_come_from_the_environment(home, monkeypatch):
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", TCP_URL)
    monkeypatch.setenv("LEADFLOW_SMTP_HOST", "mail.internal")
    monkeypatch.setenv("LEADFLOW_SMTP_PORT", "2525")

    env = airflow_environment()

    warehouse = json.loads(env["AIRFLOW_CONN_WAREHOUSE"])
    assert (warehouse["host"], warehouse["port"]) == ("db.internal", 6432)
    assert (warehouse["login"], warehouse["password"]) == ("app", "s3cr@t")
    assert warehouse["schema"] == "warehouse"
    smtp = json.loads(env["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert (smtp["conn_type"], smtp["host"], smtp["port"]) == ("smtp", "mail.internal", 2525)


def test_the_smtp_connection_defaults_to_the_local_mail_sink(home, monkeypatch):
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", SOCKET_URL)

    smtp = json.loads(airflow_environment()["AIRFLOW_CONN_SMTP_DEFAULT"])

    assert (smtp["host"], smtp["port"]) == ("127.0.0.1", 8025)
    assert smtp["extra"] == {"disable_ssl": True, "disable_tls": True}


def test_export_lines_survive_a_shell_round_trip(home, monkeypatch):
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", TCP_URL)
    env = airflow_environment()
    script = export_lines(env) + '\nprintf %s "$AIRFLOW_CONN_WAREHOUSE"'

    echoed = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout

    assert echoed == env["AIRFLOW_CONN_WAREHOUSE"]


def test_leadflow_airflow_env_prints_the_exports(home, monkeypatch):
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", SOCKET_URL)
    leadflow = LEADFLOW

    printed = subprocess.run(
        [str(leadflow), "airflow", "env"], capture_output=True, text=True, check=True
    ).stdout

    assert printed.strip() == export_lines(airflow_environment())


@pytest.mark.slow
def test_airflow_run_migrates_once_then_runs_airflow(home, monkeypatch):
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", SOCKET_URL)
    env = airflow_environment()
    database = home / "airflow" / "airflow.db"

    assert ensure_migrated(env) is True
    with sqlite3.connect(database) as metadata:
        tables = {name for (name,) in metadata.execute("select name from sqlite_master")}
    assert {"dag", "dag_run", "task_instance", "connection"} <= tables
    started = time.monotonic()
    assert ensure_migrated(env) is False
    assert time.monotonic() - started < 1

    leadflow = LEADFLOW
    version = subprocess.run(
        [str(leadflow), "airflow", "run", "--", "version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "3.3.2"
