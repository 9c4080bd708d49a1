"""DAG integrity, astronomer style: every DAG file imports, every DAG has tags and retries,
and importing touches no database, no network and no dbt.

The DagBag is loaded by `dagbag_probe.py` in a fresh interpreter with the project's Airflow
environment (`leadflow.airflow_env`) and a temporary AIRFLOW_HOME: Airflow reads its
configuration once, at import, so it must start in the environment under test. The probe
replaces socket/psycopg/psycopg2/SQLAlchemy/subprocess entry points with functions that
record the call and raise before it collects the DAGs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leadflow import paths
from leadflow.airflow_env import airflow_environment
from leadflow.assets import NIGHTLY_MARTS_URI

DAGS = paths.PROJECT_ROOT / "dags"
PROBE = Path(__file__).with_name("dagbag_probe.py")
# Nothing listens here, and the probe would refuse to connect anyway.
UNREACHABLE_WAREHOUSE = "postgresql://nobody@127.0.0.1:9/nowhere"


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """Cosmos renders from the manifest; `make setup` builds it, this covers a bare checkout."""
    from leadflow.transform.dbt import parse, target_dir

    manifest = target_dir() / "manifest.json"
    return manifest if manifest.is_file() else parse()


def probe(tmp_path: Path, dags: Path = DAGS, **extra_env: str) -> dict:
    """The probe's findings for `dags`, loaded with the project's Airflow environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "LEADFLOW_HOME": str(tmp_path),
            "LEADFLOW_WAREHOUSE_URL": UNREACHABLE_WAREHOUSE,
            **extra_env,
        }.items():
            patch.setenv(name, value)
        environment = {**os.environ, **airflow_environment()}
    completed = subprocess.run(
        [sys.executable, str(PROBE), str(dags)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("DAGBAG-JSON ")]
    assert completed.returncode == 0 and lines, completed.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("DAGBAG-JSON "))


@pytest.fixture(scope="module")
def bag(tmp_path_factory, dbt_manifest) -> dict:
    return probe(tmp_path_factory.mktemp("dagbag"))


def test_every_dag_file_imports_without_errors(bag):
    assert bag["import_errors"] == {}
    dag_files = {path.name for path in DAGS.glob("*.py") if path.name != "__init__.py"}
    loaded_files = {Path(dag["fileloc"]).name for dag in bag["dags"].values()}
    assert loaded_files == dag_files


def test_every_dag_has_tags_and_every_task_retries(bag):
    assert bag["dags"]
    for dag_id, dag in bag["dags"].items():
        assert dag["tags"], f"{dag_id} has no tags"
        assert dag["doc_md"].strip(), f"{dag_id} has no documentation"
        for task_id, task in dag["tasks"].items():
            assert task["retries"] >= 1, f"{dag_id}.{task_id} has no retries"


def test_importing_dags_touches_no_database_network_or_dbt(bag):
    assert bag["attempts"] == []
    assert bag["dbt_runner_imported"] is False


def test_nightly_runs_gate_dbt_segments_gate_routing_then_publishes_the_marts_asset(bag):
    nightly = bag["dags"]["leadflow_nightly"]
    tasks = nightly["tasks"]
    as_of_var = {"as_of": "{{ ti.xcom_pull(task_ids='validate_config', key='as_of') }}"}
    assert nightly["catchup"] is False
    assert tasks["validate_config"]["upstream"] == []
    assert tasks["raw_quality_gate"]["upstream"] == ["validate_config"]
    assert tasks["update_activity_state"]["upstream"] == ["raw_quality_gate", "validate_config"]
    dbt_tasks = {task_id: task for task_id, task in tasks.items() if task_id.startswith("dbt.")}
    segment_tasks = {t: task for t, task in tasks.items() if t.startswith("dbt_segments.")}
    assert "dbt.dim_contacts_model_build" in dbt_tasks
    # The segment marts are built in their own group, after the segments are materialised.
    assert set(segment_tasks) == {"dbt_segments.segment_members_model_build"}
    assert not any("segment_members" in task_id for task_id in dbt_tasks)
    # Every dbt task waits for the gate and the activity state (directly or through another
    # dbt task) ...
    for task_id, task in dbt_tasks.items():
        assert set(task["upstream"]) <= {"update_activity_state", *dbt_tasks}, task_id
        if task["operator"] != "EmptyOperator":
            assert task["vars"] == as_of_var, task_id
    # ... and runs dbt for the run's date, except the ephemeral model, which dbt inlines into
    # the models reading it: Cosmos keeps it in the graph as a task that runs nothing.
    ephemeral = {t for t, task in dbt_tasks.items() if task["operator"] == "EmptyOperator"}
    assert ephemeral == {"dbt.int_contacts_scored_model_build"}
    readers = {
        t
        for t, task in dbt_tasks.items()
        if "dbt.int_contacts_scored_model_build" in task["upstream"]
    }
    assert readers == {"dbt.lead_scores_model_build", "dbt.dim_contacts_model_build"}
    # ... the segments are materialised once every dbt task that nothing else waits for is done
    waited_for = {up for task in dbt_tasks.values() for up in task["upstream"]}
    leaves = set(dbt_tasks) - waited_for
    assert leaves and leaves <= set(tasks["materialize_segments"]["upstream"])
    segment_members = segment_tasks["dbt_segments.segment_members_model_build"]
    assert segment_members["upstream"] == ["materialize_segments"]
    assert segment_members["vars"] == as_of_var
    # ... then the marts gate, the routing, and the Asset.
    assert "dbt_segments.segment_members_model_build" in tasks["marts_quality_gate"]["upstream"]
    assert "marts_quality_gate" in tasks["route_mqls"]["upstream"]
    assert "route_mqls" in tasks["publish"]["upstream"]
    assert tasks["publish"]["outlets"] == [NIGHTLY_MARTS_URI]
    assert [t for t, task in tasks.items() if task["outlets"]] == ["publish"]


def test_a_missing_dbt_manifest_is_an_import_error_that_says_what_to_run(tmp_path, dbt_manifest):
    empty_target = tmp_path / "no-target"
    empty_target.mkdir()

    result = probe(tmp_path, LEADFLOW_DBT_TARGET_PATH=str(empty_target))

    # Only the nightly needs the manifest: the campaign DAGs (another file) still load.
    assert "leadflow_nightly" not in result["dags"]
    [error] = result["import_errors"].values()
    assert f"dbt manifest not found at {empty_target / 'manifest.json'}" in error
    assert "run `make setup`" in error


def test_the_probe_catches_a_dag_that_connects_while_importing(tmp_path):
    # Guards the guard: without this, an empty `attempts` could mean the traps never fire.
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "eager.py").write_text(
        "import sqlalchemy\n"
        "from airflow.sdk import dag\n"
        f"ENGINE = sqlalchemy.create_engine({UNREACHABLE_WAREHOUSE!r})\n"
        "@dag(tags=['eager'])\n"
        "def eager():\n"
        "    pass\n"
        "eager()\n"
    )

    result = probe(tmp_path, dags=dags)

    assert result["attempts"] == ["sqlalchemy.create_engine"]
    [error] = result["import_errors"].values()
    assert "create_engine called while importing DAGs" in error
