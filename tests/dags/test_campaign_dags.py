"""The campaign DAG factory (dags/campaigns.py): one DAG per campaign file, its graph the
journey's, scheduled on the campaign's cron or the nightly marts, cheap and harmless to parse.

The DagBag is loaded in a fresh interpreter by `dagbag_probe.py` (network, databases and
subprocesses forbidden), extended here with what the campaign DAGs need checked: their
timetables, the YAML files the import read and what it logged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from ruamel.yaml import YAML

from leadflow import paths
from leadflow.airflow_env import airflow_environment
from leadflow.assets import NIGHTLY_MARTS_URI
from leadflow.config import load_config
from leadflow.config.campaigns import Campaign
from leadflow.errors import ConfigError

DAGS = paths.PROJECT_ROOT / "dags"
PLUGINS = paths.PROJECT_ROOT / "plugins"
EXAMPLE_CONFIG = paths.PROJECT_ROOT / "include" / "config"
PROBE_DIR = Path(__file__).parent
UNREACHABLE_WAREHOUSE = "postgresql://nobody@127.0.0.1:9/nowhere"
PARSING_CONTEXT = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"

# dagbag_probe.py plus: each DAG's timetable, and every YAML file read while importing.
CAMPAIGN_PROBE = textwrap.dedent(
    """
    import json, pathlib, sys
    sys.path.insert(0, sys.argv[2])
    import dagbag_probe as probe

    yaml_reads = []
    read_text = pathlib.Path.read_text

    def recording_read_text(self, *args, **kwargs):
        if self.suffix in (".yaml", ".yml"):
            yaml_reads.append(self.name)
        return read_text(self, *args, **kwargs)

    def schedule(dag):
        timetable = dag.timetable
        inner = getattr(timetable, "timetable", None)
        condition = getattr(timetable, "asset_condition", None)
        return {
            "type": type(timetable).__name__,
            "timetable": type(inner).__name__ if inner is not None else None,
            "cron": getattr(inner, "_expression", getattr(inner, "expression", None)),
            "timezone": str(getattr(inner, "_timezone", getattr(inner, "timezone", ""))),
            "asset": getattr(condition, "uri", None),
            "max_active_runs": dag.max_active_runs,
        }

    probe.forbid_everything_outside()
    pathlib.Path.read_text = recording_read_text
    bag = probe.DagBag(dag_folder=sys.argv[1])
    pathlib.Path.read_text = read_text
    found = probe.describe(bag)
    found["schedules"] = {dag_id: schedule(dag) for dag_id, dag in bag.dags.items()}
    found["trigger_rules"] = {
        dag_id: {t.task_id: getattr(t.trigger_rule, "value", t.trigger_rule) for t in dag.tasks}
        for dag_id, dag in bag.dags.items()
    }
    found["yaml_reads"] = yaml_reads
    print("DAGBAG-JSON " + json.dumps(found, default=str))
    """
)


def probe(tmp_path: Path, dags: Path = DAGS, **extra_env: str) -> dict:
    """The probe's findings for `dags` (plus "log": its stdout and stderr)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "LEADFLOW_HOME": str(tmp_path),
            "LEADFLOW_WAREHOUSE_URL": UNREACHABLE_WAREHOUSE,
            **extra_env,
        }.items():
            patch.setenv(name, value)
        environment = {**os.environ, **airflow_environment()}
    completed = subprocess.run(
        [sys.executable, "-c", CAMPAIGN_PROBE, str(dags), str(PROBE_DIR)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("DAGBAG-JSON ")]
    assert completed.returncode == 0 and lines, completed.stderr[-3000:]
    found = json.loads(lines[-1].removeprefix("DAGBAG-JSON "))
    found["log"] = completed.stdout + completed.stderr
    return found


def campaign_dags(found: dict) -> dict:
    return {dag_id: dag for dag_id, dag in found["dags"].items() if dag_id.startswith("campaign__")}


@pytest.fixture(scope="module")
def examples() -> dict[str, Campaign]:
    return load_config(EXAMPLE_CONFIG).campaigns


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> dict:
    """The whole dags/ folder with the example configuration."""
    return probe(tmp_path_factory.mktemp("dagbag"), LEADFLOW_CONFIG_DIR=str(EXAMPLE_CONFIG))


@pytest.fixture
def factory_only(tmp_path) -> Path:
    """A DAG folder with the campaign factory alone (no dbt manifest or Cosmos needed)."""
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(DAGS / "campaigns.py", folder / "campaigns.py")
    return folder


@pytest.fixture
def config_dir(tmp_path) -> Path:
    """A copy of the example configuration to add campaign files to."""
    directory = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, directory)
    return directory


def write_variant(config_dir: Path, base: str, campaign_id: str, **changes: object) -> Path:
    """campaigns/<campaign_id>.yaml: the example `base` with its id and `changes` set."""
    yaml = YAML(typ="rt")
    data = yaml.load((config_dir / "campaigns" / f"{base}.yaml").read_text())
    data["id"] = campaign_id
    data.update(changes)
    path = config_dir / "campaigns" / f"{campaign_id}.yaml"
    with path.open("w") as stream:
        yaml.dump(data, stream)
    return path


def step_task(step_id: str) -> str:
    return f"journey.step__{step_id}"


# --- the example campaigns --------------------------------------------------------------


def test_the_dags_import_cleanly_without_touching_database_or_network(bag, examples):
    assert bag["import_errors"] == {}
    assert bag["attempts"] == []
    assert set(campaign_dags(bag)) == {f"campaign__{campaign_id}" for campaign_id in examples}
    assert "leadflow_nightly" in bag["dags"]


def test_every_campaign_dag_mirrors_its_journey(bag, examples):
    from leadflow.campaigns.diagram import journey_order

    for campaign_id, campaign in examples.items():
        dag = bag["dags"][f"campaign__{campaign_id}"]
        order = journey_order(campaign)
        steps = [step_id for step_id, _ in order]
        assert sorted(steps) == sorted(step.id for step in campaign.steps), campaign_id
        assert set(dag["tasks"]) == {
            "enrol",
            "hand_off_sends",
            "dispatch",
            *map(step_task, steps),
        }
        upstream = {task_id: task["upstream"] for task_id, task in dag["tasks"].items()}
        assert upstream["enrol"] == []
        for step_id, predecessors in order:
            expected = sorted(map(step_task, predecessors)) if predecessors else ["enrol"]
            assert upstream[step_task(step_id)] == expected, (campaign_id, step_id)
        waited_for = {predecessor for _, predecessors in order for predecessor in predecessors}
        last_steps = sorted(step_task(step_id) for step_id in steps if step_id not in waited_for)
        assert upstream["hand_off_sends"] == last_steps, campaign_id
        rules = bag["trigger_rules"][f"campaign__{campaign_id}"]
        assert all(rules[step_task(step_id)] == "none_failed" for step_id in steps)
        assert rules["hand_off_sends"] == "none_failed"
        # The dispatch workers are mapped over what hand_off_sends planned.
        assert upstream["dispatch"] == ["hand_off_sends"]


def test_the_journey_starts_at_the_first_step_and_joins_wait_for_every_branch(bag):
    tasks = bag["dags"]["campaign__cross_sell"]["tasks"]
    assert tasks["journey.step__intro"]["upstream"] == ["enrol"]
    # follow_up_task is reached from the reminder branch, two discount mails and the trial.
    assert tasks["journey.step__follow_up_task"]["upstream"] == [
        "journey.step__cleaning_discount",
        "journey.step__clicked_reminder",
        "journey.step__maintenance_discount",
        "journey.step__software_trial",
    ]


def test_every_campaign_dag_runs_on_its_cron_or_after_the_nightly_marts(bag, examples):
    crons = {
        "cross_sell": "0 * * * *",  # @hourly
        "ebook_nurture": "0 * * * *",
        "fair_followup": "0 * * * *",
        "inactivity": "0 0 * * *",  # @daily
        "loyalty": "0 0 * * *",
        "onboarding": "0 * * * *",
        "upsell_hs3000": "0 6 * * *",
    }
    assert set(crons) == set(examples)
    for campaign_id, cron in crons.items():
        dag_id = f"campaign__{campaign_id}"
        assert bag["schedules"][dag_id] == {
            "type": "AssetOrTimeSchedule",
            "timetable": "CronTriggerTimetable",
            "cron": cron,
            "timezone": "UTC",
            "asset": NIGHTLY_MARTS_URI,
            "max_active_runs": 1,
        }
        dag = bag["dags"][dag_id]
        assert dag["catchup"] is False
        assert dag["tags"] == sorted(["leadflow", "campaign", "hq", "fr", "it", "es"])
        assert {task["retries"] for task in dag["tasks"].values()} == {2}


def test_the_dag_docs_describe_the_campaign_and_draw_its_journey(bag, examples):
    from leadflow.campaigns.diagram import mermaid

    for campaign_id, campaign in examples.items():
        doc = bag["dags"][f"campaign__{campaign_id}"]["doc_md"]
        assert doc.startswith(f"### {campaign.name}\n\n{campaign.description}\n")
        assert f"```mermaid\n{mermaid(campaign).strip()}\n```" in doc


# --- bad, disabled and unscheduled campaigns ---------------------------------------------


def test_a_broken_campaign_file_gets_no_dag_and_a_logged_error_the_others_still_build(
    tmp_path, factory_only, config_dir
):
    broken = write_variant(config_dir, "onboarding", "broken", schedule="every hour")
    (config_dir / "campaigns" / "unreadable.yaml").write_text("id: unreadable\nsteps: [\n")

    found = probe(tmp_path, factory_only, LEADFLOW_CONFIG_DIR=str(config_dir))

    assert found["import_errors"] == {}
    assert len(campaign_dags(found)) == 7
    assert "campaign__broken" not in found["dags"]
    assert "campaign__unreadable" not in found["dags"]
    schedule_line = broken.read_text().splitlines().index("schedule: every hour") + 1
    assert f"{broken}:{schedule_line}: campaign 'broken': schedule: expected a cron" in found["log"]
    assert "unreadable.yaml:3: invalid YAML" in found["log"]


def test_disabled_campaigns_get_no_dag_and_unscheduled_ones_run_manually_only(
    tmp_path, factory_only, config_dir
):
    write_variant(config_dir, "loyalty", "switched_off", enabled=False)
    write_variant(config_dir, "loyalty", "by_hand", schedule=None)
    write_variant(config_dir, "loyalty", "just_once", schedule="@once")
    write_variant(config_dir, "loyalty", "weekly", schedule="@weekly")

    found = probe(tmp_path, factory_only, LEADFLOW_CONFIG_DIR=str(config_dir))

    schedules = found["schedules"]
    assert "campaign__switched_off" not in found["dags"]
    assert schedules["campaign__by_hand"]["type"] == "NullTimetable"
    assert schedules["campaign__just_once"]["timetable"] == "OnceTimetable"
    assert schedules["campaign__just_once"]["asset"] == NIGHTLY_MARTS_URI
    assert schedules["campaign__weekly"]["cron"] == "0 0 * * 0"
    assert len(campaign_dags(found)) == 7 + 3


def test_a_parsing_context_builds_only_its_campaign_and_reads_only_its_file(
    tmp_path, factory_only, config_dir
):
    write_variant(config_dir, "onboarding", "broken", schedule="every hour")

    found = probe(
        tmp_path,
        factory_only,
        LEADFLOW_CONFIG_DIR=str(config_dir),
        **{PARSING_CONTEXT: "campaign__onboarding"},
    )

    assert list(found["dags"]) == ["campaign__onboarding"]
    assert found["yaml_reads"] == ["onboarding.yaml"]
    assert "broken.yaml" not in found["log"]


def test_a_parsing_context_naming_another_dag_builds_no_campaign(tmp_path, factory_only):
    found = probe(
        tmp_path,
        factory_only,
        LEADFLOW_CONFIG_DIR=str(EXAMPLE_CONFIG),
        **{PARSING_CONTEXT: "leadflow_nightly"},
    )

    assert found["dags"] == {}
    assert found["import_errors"] == {}
    assert found["yaml_reads"] == []


# --- reading a campaign file ----------------------------------------------------------------


@pytest.fixture(scope="module")
def campaign_tasks():
    sys.path.insert(0, str(PLUGINS))
    try:
        from leadflow_airflow import campaign_tasks
    finally:
        sys.path.remove(str(PLUGINS))
    return campaign_tasks


def test_reading_one_campaign_file_agrees_with_the_configuration_loader(campaign_tasks, examples):
    for campaign_id, campaign in examples.items():
        path = EXAMPLE_CONFIG / "campaigns" / f"{campaign_id}.yaml"
        assert campaign_tasks.read_campaign(path) == campaign


@pytest.mark.parametrize(
    ("spelling", "fast"),
    [
        ("on", True),  # YAML 1.1 (PyYAML's default) would read a boolean
        ("yes", True),
        ("true", True),
        ("~", True),
        ("'010'", True),
        ("10", True),
        ("-1.5", True),
        ("=", True),  # an unquoted operator
        ("5d", True),
        ("09:00", True),  # YAML 1.1: sexagesimal for 9:00
        ("2026-12-01", True),
        ("010", False),  # YAML 1.1: octal 8, YAML 1.2: 10
        ("0o10", False),
        ("0x10", False),
        ("1_000", False),
        ("1e3", False),
        (".inf", False),
        ("2026-12-01 10:00:00", False),
        ("!= x", False),
        ("!!int 010", False),
        ("!!python/name:os.system ''", False),
    ],
)
def test_the_fast_yaml_reading_equals_the_loaders_or_leaves_it_to_the_loader(
    tmp_path, campaign_tasks, spelling, fast
):
    from leadflow.config.loader import read_yaml, to_plain

    path = tmp_path / "odd.yaml"
    path.write_text(f"value: {spelling}\nlist: [{spelling}]\n")
    data, problems = read_yaml(path)
    by_loader = to_plain(data)[0] if not problems else None

    try:
        by_fast_reader = to_plain(campaign_tasks.read_yaml_fast(path))[0]
    except campaign_tasks.NotSure:
        assert not fast, spelling
    else:
        assert fast, spelling
        assert by_fast_reader == by_loader
        assert type(by_fast_reader["value"]) is type(by_loader["value"])


def test_an_invalid_campaign_file_is_refused_with_file_line_and_key(tmp_path, campaign_tasks):
    path = tmp_path / "wrong_name.yaml"
    path.write_text(
        "id: other\nname: Other\ntenants: [hq]\ntrigger: {one_off: {at: 2026-12-01}}\n"
        "steps:\n  - id: hello\n    send: {message: hello}\n    next: nowhere\n"
    )

    with pytest.raises(ConfigError) as refused:
        campaign_tasks.read_campaign(path)

    message = str(refused.value)
    assert f"{path}:1: campaign 'other': id: campaign id 'other' must match" in message
    assert f"{path}:8: campaign 'other': step 'hello': next: unknown step 'nowhere'" in message


# --- the run's moment and the hand-off -----------------------------------------------------


def test_now_is_the_data_interval_end_or_for_asset_triggered_runs_run_after(campaign_tasks):
    import pendulum

    scheduled = SimpleNamespace(
        data_interval_end=pendulum.datetime(2026, 11, 27, 9, tz="Europe/Berlin"),
        run_after=pendulum.datetime(2026, 11, 27, 8, 3, tz="UTC"),
    )
    after_nightly = SimpleNamespace(
        data_interval_end=None, run_after=pendulum.datetime(2026, 11, 27, 2, 41, 5, tz="UTC")
    )

    now = campaign_tasks.now_from_context({"dag_run": scheduled})

    assert now == dt.datetime(2026, 11, 27, 8, tzinfo=dt.UTC)
    assert type(now) is dt.datetime and now.tzinfo is dt.UTC
    assert campaign_tasks.now_from_context({"dag_run": after_nightly}) == dt.datetime(
        2026, 11, 27, 2, 41, 5, tzinfo=dt.UTC
    )


def test_hand_off_counts_the_campaigns_pending_mails_due_now(warehouse):
    from leadflow.campaigns.handoff import due_sends

    now = dt.datetime(2026, 11, 27, 8, tzinfo=dt.UTC)
    with warehouse.begin() as connection:
        enrolments = [
            connection.execute(
                sa.text(
                    "insert into ops.campaign_enrolments (campaign_id, contact_id, trigger_key,"
                    " enrolled_at, status, step_id, arrived_at, due_at, updated_at)"
                    " values (:campaign, :contact, 'one_off', :now, 'active', 'x', :now, :now,"
                    " :now) returning enrolment_id"
                ),
                {"campaign": campaign, "contact": contact, "now": now},
            ).scalar_one()
            for campaign, contact in [("onboarding", "C1"), ("onboarding", "C2"), ("loyalty", "C1")]
        ]
        rows = [
            # (enrolment, step_seq, kind, scheduled_at, status)
            (enrolments[0], 1, "campaign_mail", now - dt.timedelta(hours=1), "pending"),
            (enrolments[0], 2, "owner_notification", now, "pending"),
            (enrolments[1], 1, "campaign_mail", now, "pending"),
            (enrolments[1], 2, "campaign_mail", now + dt.timedelta(hours=10), "pending"),
            (enrolments[1], 3, "campaign_mail", now - dt.timedelta(days=1), "sent"),
            (enrolments[1], 4, "campaign_mail", now - dt.timedelta(days=1), "cancelled"),
            (enrolments[2], 1, "campaign_mail", now, "pending"),  # another campaign
        ]
        for enrolment, seq, kind, scheduled_at, status in rows:
            connection.execute(
                sa.text(
                    "insert into ops.outbox (kind, campaign_id, step_id, enrolment_id, step_seq,"
                    " contact_id, message, category, requested_at, scheduled_at, status)"
                    " select :kind, campaign_id, 'x', enrolment_id, :seq, contact_id, 'm',"
                    " 'marketing', :now, :scheduled_at, :status"
                    " from ops.campaign_enrolments where enrolment_id = :enrolment"
                ),
                {
                    "kind": kind,
                    "seq": seq,
                    "now": now,
                    "scheduled_at": scheduled_at,
                    "status": status,
                    "enrolment": enrolment,
                },
            )

    due = due_sends(warehouse, "onboarding", now)

    assert due.counts() == {
        "due": 3,
        "campaign_mail": 2,
        "owner_notification": 1,
        "deferred": 1,
    }
    assert due.describe() == (
        "onboarding at 2026-11-27T08:00:00+00:00: 3 due (2 campaign_mail, "
        "1 owner_notification), 1 deferred"
    )
