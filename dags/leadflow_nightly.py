"""
### leadflow nightly

Rebuilds the marts every night for the day before: at 02:00 UTC, `as_of` is the run's
logical date (the start of its data interval, i.e. yesterday). Runs without a logical date
(manual or asset-triggered) use the last complete day before the run.

1. **validate_config** records the run in `ops.runs`, validates the YAML configuration and
   writes it to the `ops.config_*` snapshot the dbt models read.
2. **raw_quality_gate** validates the raw tables with Great Expectations. A failed
   critical expectation fails the task (without retries) and names expectation and table;
   warnings are logged. Results: `ops.quality_results` and `.leadflow/quality/raw.html`
   (also under Browse → Quality gates).
3. **update_activity_state** brings the incremental activity scores up to the cut-off.
4. **dbt** builds every model and runs its tests (Cosmos, one `dbt build` per model, with
   `--vars {as_of: ...}`), rendered from `dbt_project/target/manifest.json`.
5. **marts_quality_gate** validates the marts the campaigns send from.
6. **publish** marks the run successful and updates the Asset `leadflow://marts/nightly`,
   which the campaign DAGs are scheduled on.

`leadflow build --as-of DATE` runs the same steps from the command line.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode, TestBehavior
from leadflow_airflow.dbt_profile import DBT_PROFILE, warehouse_profile_mapping
from leadflow_airflow.runs import (
    RUN_ID_KEY,
    START_TASK,
    as_of_from_context,
    fail_fast_on_user_errors,
    mark_run_failed,
    origin,
)

from leadflow import paths
from leadflow.assets import NIGHTLY_MARTS_URI
from leadflow.transform.dbt import target_dir

NIGHTLY_MARTS = Asset(NIGHTLY_MARTS_URI)
MANIFEST = target_dir() / "manifest.json"
if not MANIFEST.is_file():
    # Cosmos renders the dbt graph from the manifest alone: without it there is no DAG.
    raise FileNotFoundError(f"dbt manifest not found at {MANIFEST}: run `make setup` (dbt parse)")

AS_OF_TEMPLATE = "{{ ti.xcom_pull(task_ids='" + START_TASK + "', key='as_of') }}"


def _engine():
    from leadflow.warehouse.engine import get_engine

    return get_engine()


@dag(
    dag_id="leadflow_nightly",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["leadflow", "nightly", "dbt", "quality"],
    default_args={
        "owner": "leadflow",
        # Only an unreachable warehouse is retried (bad data or config fails at once); the
        # delay is Airflow's [core] default_task_retry_delay (5 minutes unless configured).
        "retries": 2,
        "on_failure_callback": mark_run_failed,
    },
)
def leadflow_nightly():
    @task(task_id=START_TASK, multiple_outputs=True)
    def validate_config(**context) -> dict[str, object]:
        from leadflow.nightly import begin

        as_of = as_of_from_context(context)
        with fail_fast_on_user_errors():
            run_id, config = begin(_engine(), as_of, paths.config_dir(), origin(context))
        return {RUN_ID_KEY: run_id, "as_of": as_of.isoformat(), "config": config}

    @task
    def raw_quality_gate(nightly_run_id: int) -> None:
        from leadflow.nightly import check_raw

        with fail_fast_on_user_errors():
            print(check_raw(_engine(), nightly_run_id).describe())

    @task
    def update_activity_state(nightly_run_id: int, as_of: str) -> None:
        from leadflow.nightly import update_activity

        with fail_fast_on_user_errors():
            day = dt.date.fromisoformat(as_of)
            print(update_activity(_engine(), paths.config_dir(), day, nightly_run_id))

    @task
    def marts_quality_gate(nightly_run_id: int) -> None:
        from leadflow.nightly import check_marts

        with fail_fast_on_user_errors():
            print(check_marts(_engine(), nightly_run_id).describe())

    @task(outlets=[NIGHTLY_MARTS])
    def publish(nightly_run_id: int) -> None:
        from leadflow.nightly import finish_run

        finish_run(_engine(), nightly_run_id, "success")

    run = validate_config()
    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=paths.dbt_project_dir(),
            manifest_path=MANIFEST,
            project_name="leadflow",
            install_dbt_deps=False,
        ),
        profile_config=ProfileConfig(
            profile_name=DBT_PROFILE,
            target_name="warehouse",
            profile_mapping=warehouse_profile_mapping(),
        ),
        execution_config=ExecutionConfig(dbt_executable_path=Path(sys.executable).parent / "dbt"),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            # One task per model running the model and its tests: half the tasks of
            # after_each, and a failing test still stops everything downstream.
            test_behavior=TestBehavior.BUILD,
            # A test spanning two models (relationships) runs once both are built, as its
            # own task: inside one model's `dbt build` the other model may not exist yet.
            should_detach_multiple_parents_tests=True,
            # The one Asset this DAG publishes is NIGHTLY_MARTS, once everything passed.
            emit_datasets=False,
        ),
        operator_args={"vars": {"as_of": AS_OF_TEMPLATE}},
    )
    (
        raw_quality_gate(run[RUN_ID_KEY])
        >> update_activity_state(run[RUN_ID_KEY], run["as_of"])
        >> dbt
        >> marts_quality_gate(run[RUN_ID_KEY])
        >> publish(run[RUN_ID_KEY])
    )


leadflow_nightly()
