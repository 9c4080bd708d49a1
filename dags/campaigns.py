"""
### Campaign DAGs: one per campaign file

Every `campaigns/<id>.yaml` of the configuration directory becomes the DAG
`campaign__<id>`, built here in one loop (Airflow's dynamic DAG generation):

1. **enrol** enrols the contacts the campaign's trigger brings in at the run's moment.
2. **journey.step__&lt;step id&gt;**, one task per journey step, advances the journeys due at
   that step. The edges are the journey's own (`leadflow.campaigns.diagram.journey_order`,
   loops back through a wait left out: those journeys move on in the next run), so the
   graph is the campaign designer's drawing, which the DAG docs also show as a diagram.
   Every step task runs in every run, with or without contacts, so a step joining several
   branches never waits for a branch nobody took; nothing is skipped (no short-circuit),
   and a manually skipped task does not block what follows either.
3. **hand_off_sends** counts the campaign's outbox rows that are due and plans the
   dispatch: one mapped **dispatch** task per worker (`company.delivery.concurrency`, fewer
   for a small load, none when nothing is due), each sending over its own SMTP connection;
   rows are claimed with SKIP LOCKED, so the workers share the mails and none goes twice.
   Nothing is sent unless the latest nightly run succeeded (`leadflow.messaging.gate`): a
   failed data-quality gate fails `hand_off_sends`, and the mails wait in the outbox.

All tasks of a run work for the same moment: the end of the run's data interval (its
cron time) or, for a run triggered by the nightly marts, the moment it was queued.

Scheduling: the campaign's `schedule` (cron, or a preset mapped to cron; UTC) **or** the
Asset `leadflow://marts/nightly`, whichever comes first: new marts mean new segment
members and new triggers. `@once` is a single time-based run plus the nightly runs;
`schedule: null` means manual runs only. No catch-up, one run at a time.

Decisions:
- **A disabled campaign (`enabled: false`) has no DAG.** A paused DAG would not be enough:
  Airflow pauses a DAG only when it is first created, so a running campaign switched off
  in YAML would go on running. Without a DAG nothing can run it by accident; its journeys
  stay where they are until it is enabled again.
- **An invalid campaign file has no DAG, and the error is logged** (`ERROR` naming the file,
  line and key, as `leadflow config validate` does) by the DAG processor for this file.
  All campaign DAGs come from this one file, so raising would make Airflow drop every
  campaign DAG for one bad file; instead the others are built as usual. Parsing checks
  the campaign file alone (its model, its step graph, its id = its file name); references
  to other files (segments, tenants, templates) are checked when a task loads the whole
  configuration, which fails the task at once, without retries.
- **Parsing reads only what it builds.** When Airflow runs a task it names the DAG in the
  parsing context; then only that campaign's file is read (not even listed with the
  others). Nothing at import time touches the database, the network or the marts.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    TaskGroup,
    TriggerRule,
    get_parsing_context,
)
from airflow.sdk.definitions.timetables.simple import OnceTimetable
from leadflow_airflow.campaign_tasks import (
    advance_step,
    dispatch_mails,
    enrol_contacts,
    hand_off_sends,
    read_campaign,
)

from leadflow import paths
from leadflow.assets import NIGHTLY_MARTS_URI
from leadflow.config.campaigns import Campaign
from leadflow.config.loader import CAMPAIGNS_DIR
from leadflow.errors import ConfigError

log = logging.getLogger(__name__)

DAG_ID_PREFIX = "campaign__"
NIGHTLY_MARTS = Asset(NIGHTLY_MARTS_URI)
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
JOURNEY_GROUP = "journey"
STEP_TASK_PREFIX = "step__"
# Airflow's presets as cron expressions: CronTriggerTimetable takes cron only.
PRESET_CRONS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
}
DEFAULT_ARGS = {
    "owner": "leadflow",
    # Like the nightly: only an unreachable warehouse is retried (a LeadflowError fails
    # the task at once, see leadflow_airflow.runs.fail_fast_on_user_errors).
    "retries": 2,
}


def dag_id_for(campaign_id: str) -> str:
    return f"{DAG_ID_PREFIX}{campaign_id}"


def campaign_files(directory: Path, parsing_dag_id: str | None) -> list[Path]:
    """The campaign files to build DAGs from: all, or only the one the parsing context names.

    A parsing context naming another DAG (not a campaign's) means none of them is needed.
    """
    folder = directory / CAMPAIGNS_DIR
    if parsing_dag_id is None:
        return sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    campaign_id = parsing_dag_id.removeprefix(DAG_ID_PREFIX)
    if campaign_id == parsing_dag_id or not campaign_id or "/" in campaign_id:
        return []
    path = folder / f"{campaign_id}.yaml"
    return [path] if path.is_file() else []


def schedule_for(campaign: Campaign) -> AssetOrTimeSchedule | None:
    """The campaign's own schedule (UTC) or the nightly marts, whichever comes first."""
    if campaign.schedule is None:
        return None  # manual runs only
    if campaign.schedule == "@once":
        timetable = OnceTimetable()
    else:
        cron = PRESET_CRONS.get(campaign.schedule, campaign.schedule)
        timetable = CronTriggerTimetable(cron, timezone="UTC")
    return AssetOrTimeSchedule(timetable=timetable, assets=NIGHTLY_MARTS)


def documentation(campaign: Campaign, diagram: str, path: Path) -> str:
    """The DAG's doc_md: what the campaign is, its journey as a Mermaid diagram, its file."""
    parts = [f"### {campaign.name}"]
    if campaign.description:
        parts.append(campaign.description)
    parts.append(f"Campaign `{campaign.id}` for tenants {', '.join(campaign.tenants)}.")
    parts.append(f"```mermaid\n{diagram.strip()}\n```")
    parts.append(f"Defined in `{CAMPAIGNS_DIR}/{path.name}`; see the `campaigns` DAG file docs.")
    return "\n\n".join(parts) + "\n"


def build_dag(campaign: Campaign, path: Path) -> DAG:
    """One campaign: enrol → the journey's steps, as drawn → hand_off_sends → dispatch."""
    from leadflow.campaigns.diagram import journey_order, mermaid

    with DAG(
        dag_id=dag_id_for(campaign.id),
        schedule=schedule_for(campaign),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["leadflow", "campaign", *campaign.tenants],
        doc_md=documentation(campaign, mermaid(campaign), path),
        default_args=DEFAULT_ARGS,
    ) as dag:
        # PythonOperator, not @task: the tasks take plain arguments, and for a few thousand
        # tasks the decorator (signature checks per task) parses about five times slower.
        enrol = PythonOperator(
            task_id="enrol", python_callable=enrol_contacts, op_args=[campaign.id]
        )
        with TaskGroup(JOURNEY_GROUP) as journey:
            order = journey_order(campaign)
            steps = {
                step_id: PythonOperator(
                    task_id=f"{STEP_TASK_PREFIX}{step_id}",
                    python_callable=advance_step,
                    op_args=[campaign.id, step_id],
                    trigger_rule=TriggerRule.NONE_FAILED,
                )
                for step_id, _predecessors in order
            }
            for step_id, predecessors in order:
                for predecessor in predecessors:
                    steps[predecessor] >> steps[step_id]
        hand_off = PythonOperator(
            task_id="hand_off_sends",
            python_callable=hand_off_sends,
            op_args=[campaign.id],
            trigger_rule=TriggerRule.NONE_FAILED,
        )
        # One dispatcher worker per mapped task (none when nothing is due).
        send = PythonOperator.partial(
            task_id="dispatch", python_callable=dispatch_mails, op_args=[campaign.id]
        ).expand(op_kwargs=hand_off.output)
        enrol >> journey >> hand_off >> send
    return dag


def build_dags(directory: Path, parsing_dag_id: str | None) -> dict[str, DAG]:
    """Every enabled, valid campaign's DAG by dag_id; an invalid file is logged and left out."""
    dags = {}
    for path in campaign_files(directory, parsing_dag_id):
        try:
            campaign = read_campaign(path)
        except ConfigError as error:
            log.error("no DAG for campaign file %s: %s", path, error)
            continue
        if not campaign.enabled:
            log.info("no DAG for campaign %s: it is disabled (enabled: false)", campaign.id)
            continue
        dags[dag_id_for(campaign.id)] = build_dag(campaign, path)
    return dags


# Module-level names are what Airflow collects: one global per DAG.
globals().update(build_dags(paths.config_dir(), get_parsing_context().dag_id))
