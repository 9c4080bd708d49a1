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
   `--vars {as_of: ...}`), rendered from `dbt_project/target/manifest.json`, except
   `segment_members` and what depends on it.
5. **materialize_segments** writes every segment of `segments.yaml` for `as_of` into
   `ops.segment_members` (the filter compiler, on the marts just built; one transaction).
6. **dbt_segments** builds `marts.segment_members` (and anything built on it).
7. **marts_quality_gate** validates the marts the campaigns send from.
8. **route_mqls** routes MQLs without an owner to a sales team (first matching rule of
   `routing.yaml`, round-robin within the team), records them in `ops.lead_assignments` and
   the CRM outbox, and mails each new owner one notification (SMTP server from
   `LEADFLOW_SMTP_HOST`/`LEADFLOW_SMTP_PORT`, else `LEADFLOW_SMTP_URL`). Re-running routes
   nobody twice; a retry after a mail failure only sends the pending notifications.
9. **publish** marks the run successful and updates the Asset `leadflow://marts/nightly`,
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
from leadflow.nightly import SEGMENT_MARTS
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
    def materialize_segments(nightly_run_id: int, as_of: str) -> None:
        from leadflow.nightly import describe_segments, materialize

        with fail_fast_on_user_errors():
            day = dt.date.fromisoformat(as_of)
            print(
                describe_segments(materialize(_engine(), paths.config_dir(), day, nightly_run_id))
            )

    @task
    def marts_quality_gate(nightly_run_id: int) -> None:
        from leadflow.nightly import check_marts

        with fail_fast_on_user_errors():
            print(check_marts(_engine(), nightly_run_id).describe())

    @task
    def route_mqls(nightly_run_id: int, as_of: str) -> None:
        from leadflow.nightly import notify_owners, route_mqls

        with fail_fast_on_user_errors():
            day = dt.date.fromisoformat(as_of)
            report = route_mqls(_engine(), paths.config_dir(), day, nightly_run_id, notify=False)
        print(report.describe())
        # Outside fail_fast: an unreachable mail server is worth retrying. The routing is
        # committed, so a retry routes nobody again and only sends what is still pending.
        print(notify_owners(_engine(), paths.config_dir(), nightly_run_id))

    @task(outlets=[NIGHTLY_MARTS])
    def publish(nightly_run_id: int) -> None:
        from leadflow.nightly import finish_run

        finish_run(_engine(), nightly_run_id, "success")

    run = validate_config()
    # Segments compare what the first group derives (scores, personas ...), so the segment
    # marts are a second group, after the segments are materialised.
    dbt = dbt_task_group("dbt", RenderConfig(exclude=[SEGMENT_MARTS], **RENDER))
    dbt_segments = dbt_task_group("dbt_segments", RenderConfig(select=[SEGMENT_MARTS], **RENDER))
    (
        raw_quality_gate(run[RUN_ID_KEY])
        >> update_activity_state(run[RUN_ID_KEY], run["as_of"])
        >> dbt
        >> materialize_segments(run[RUN_ID_KEY], run["as_of"])
        >> dbt_segments
        >> marts_quality_gate(run[RUN_ID_KEY])
        >> route_mqls(run[RUN_ID_KEY], run["as_of"])
        >> publish(run[RUN_ID_KEY])
    )


RENDER = {
    "load_method": LoadMode.DBT_MANIFEST,
    # One task per model running the model and its tests: half the tasks of after_each,
    # and a failing test still stops everything downstream.
    "test_behavior": TestBehavior.BUILD,
    # A test spanning two models (relationships) runs once both are built, as its own
    # task: inside one model's `dbt build` the other model may not exist yet.
    "should_detach_multiple_parents_tests": True,
    # The one Asset this DAG publishes is NIGHTLY_MARTS, once everything passed.
    "emit_datasets": False,
}


def project_config() -> ProjectConfig:
    """The dbt project, rendered from its manifest read as the local file it is.

    Cosmos wraps the manifest path in an ObjectStoragePath, and reading one of those
    reports hook lineage: the first read loads every Airflow plugin (the UI plugin imports
    FastAPI) in the middle of parsing this file, about 0.1 s each time the DAG processor
    parses it. A plain Path is one of the types ProjectConfig holds.
    """
    config = ProjectConfig(
        dbt_project_path=paths.dbt_project_dir(),
        manifest_path=MANIFEST,
        project_name="leadflow",
        install_dbt_deps=False,
    )
    config.manifest_path = MANIFEST
    return config


def dbt_task_group(group_id: str, render_config: RenderConfig) -> DbtTaskGroup:
    """The dbt models `render_config` selects, one Cosmos task per model, for the run's as_of."""
    return DbtTaskGroup(
        group_id=group_id,
        project_config=project_config(),
        profile_config=ProfileConfig(
            profile_name=DBT_PROFILE,
            target_name="warehouse",
            profile_mapping=warehouse_profile_mapping(),
        ),
        execution_config=ExecutionConfig(dbt_executable_path=Path(sys.executable).parent / "dbt"),
        render_config=render_config,
        operator_args={"vars": {"as_of": AS_OF_TEMPLATE}},
    )


leadflow_nightly()
