"""Benchmark: parsing the campaign DAGs, and advancing journeys.

    .venv/bin/python bench/campaigns.py [--campaigns 200] [--repeat 5] [--contacts 100000]
        [--rounds 3] [--skip-parse] [--skip-advance]

Parse part: writes 200 generated campaigns (the example campaigns under other ids, names and
schedules) into a copy of include/config, then times Airflow's DagBag loading
- the whole dags/ folder (the nightly with its Cosmos graph, and every campaign DAG),
- dags/campaigns.py alone (the factory: list, read, validate, build), and
- a hand-written DAG file declaring the same DAGs with the same tasks, edges, schedules
  and docs explicitly (generated here as plain Python, no YAML): the baseline.
Each load runs in a fresh interpreter with the project's Airflow environment (Airflow itself
imported and `gc.freeze()`d before the clock starts, as in Airflow's DAG processor), the
three interleaved, `--repeat` times; the medians are printed. The factory's and the
hand-written DAGs are checked to be the same graphs. Targets: dags/ ≤ 3 s with 200
campaigns; factory ≤ 2 × hand-written.

Advance part: `measure_advance(engine, contacts)` of bench/_campaign_advance.py (when that
file exists), in its own database on the warehouse's server: advancing `--contacts`
journeys one step against one set-based UPDATE of the same rows, `--rounds` times.
`LEADFLOW_BENCH_SCALE=0.1` generates a tenth of the campaigns and contacts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import traceback
from pathlib import Path
from types import ModuleType

from ruamel.yaml import YAML

from leadflow import paths
from leadflow.airflow_env import airflow_environment

BENCH_DIR = Path(__file__).resolve().parent
DAGS = paths.PROJECT_ROOT / "dags"
FACTORY = DAGS / "campaigns.py"
EXAMPLE_CONFIG = paths.PROJECT_ROOT / "include" / "config"
CAMPAIGNS = 200
REPEAT = 5
# Journeys advanced by the advance part (bench/_campaign_advance.py's default).
CONTACTS = 100_000
# Rounds of baseline, send step and wait step (bench/_campaign_advance.py).
ROUNDS = 3
TOTAL_TARGET_SECONDS = 3.0
RATIO_TARGET = 2.0
# Rotated through the generated campaigns, so every kind of schedule is built.
SCHEDULES = ["@hourly", "@daily", "0 6 * * *", "*/30 7-18 * * 1-5", "@weekly", None]
UNREACHABLE_WAREHOUSE = "postgresql://nobody@127.0.0.1:9/nowhere"

# Runs in a fresh interpreter: python -c TIMER DAG_FOLDER_OR_FILE
TIMER = textwrap.dedent(
    """
    import gc, json, sys, time
    from airflow.dag_processing.dagbag import DagBag

    # As Airflow's DAG processor does before it forks the processes that parse the files:
    # what is imported so far is never scanned by the garbage collector again.
    gc.freeze()

    def schedule(timetable):
        inner = getattr(timetable, "timetable", None)
        condition = getattr(timetable, "asset_condition", None)
        return [
            type(timetable).__name__,
            type(inner).__name__,
            getattr(inner, "expression", None),
            str(getattr(inner, "timezone", None)),
            getattr(condition, "uri", None),
        ]

    start = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    seconds = time.perf_counter() - start
    graphs = {
        dag_id: {
            "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
            "schedule": schedule(dag.timetable),
            "doc_md": dag.doc_md,
            "tags": sorted(dag.tags),
        }
        for dag_id, dag in bag.dags.items()
    }
    result = {"seconds": seconds, "errors": bag.import_errors, "graphs": graphs}
    print("BENCH-JSON " + json.dumps(result, default=str))
    """
)


# --- the generated campaigns --------------------------------------------------------------


def write_campaigns(config_dir: Path, count: int) -> list[Path]:
    """`count` campaign files: the examples in turn, each with its own id, name and schedule."""
    yaml = YAML(typ="rt")
    examples = sorted((EXAMPLE_CONFIG / "campaigns").glob("*.yaml"))
    written = []
    for number in range(count):
        example = examples[number % len(examples)]
        data = yaml.load(example.read_text(encoding="utf-8"))
        data["id"] = f"{example.stem}_{number:03d}"
        data["name"] = f"{data['name']} #{number}"
        data["schedule"] = SCHEDULES[number % len(SCHEDULES)]
        path = config_dir / "campaigns" / f"{data['id']}.yaml"
        with path.open("w", encoding="utf-8") as stream:
            yaml.dump(data, stream)
        written.append(path)
    return written


def load_factory() -> ModuleType:
    """dags/campaigns.py as a module, for its helpers (it builds no DAG: no campaign dir)."""
    sys.path.insert(0, str(paths.PROJECT_ROOT / "plugins"))
    spec = importlib.util.spec_from_file_location("campaign_factory_for_bench", FACTORY)
    module = importlib.util.module_from_spec(spec)
    previous = os.environ.get("LEADFLOW_CONFIG_DIR")
    os.environ["LEADFLOW_CONFIG_DIR"] = tempfile.mkdtemp(prefix="no-campaigns-")
    try:
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            os.environ.pop("LEADFLOW_CONFIG_DIR")
        else:
            os.environ["LEADFLOW_CONFIG_DIR"] = previous
    return module


def hand_written_source(factory: ModuleType, config_dir: Path) -> str:
    """A plain DAG file declaring every campaign DAG the factory builds from `config_dir`."""
    from leadflow.campaigns.diagram import journey_order, mermaid

    lines = [
        '"""The campaign DAGs written out by hand (airflow dag file, no YAML)."""',
        "import datetime as dt",
        "from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable,"
        " TaskGroup, TriggerRule",
        "from airflow.providers.standard.operators.python import PythonOperator",
        "from airflow.sdk.definitions.timetables.simple import OnceTimetable",
        "from leadflow_airflow.campaign_tasks import (",
        "    advance_step, dispatch_mails, enrol_contacts, hand_off_sends,",
        ")",
        f"NIGHTLY = Asset({factory.NIGHTLY_MARTS_URI!r})",
        "START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)",
        f"ARGS = {factory.DEFAULT_ARGS!r}",
    ]
    for path in factory.campaign_files(config_dir, None):
        campaign = factory.read_campaign(path)
        if not campaign.enabled:
            continue
        doc = factory.documentation(campaign, mermaid(campaign), path)
        lines += _hand_written_dag(campaign, _schedule_source(factory, campaign.schedule), doc)
        lines += _hand_written_steps(campaign.id, journey_order(campaign))
    return "\n".join(lines) + "\n"


def _schedule_source(factory: ModuleType, schedule: str | None) -> str:
    if schedule is None:
        return "None"
    if schedule == "@once":
        return "AssetOrTimeSchedule(timetable=OnceTimetable(), assets=NIGHTLY)"
    cron = factory.PRESET_CRONS.get(schedule, schedule)
    return (
        f"AssetOrTimeSchedule(timetable=CronTriggerTimetable({cron!r}, timezone='UTC'),"
        " assets=NIGHTLY)"
    )


def _hand_written_dag(campaign, schedule: str, doc: str) -> list[str]:
    tags = ["leadflow", "campaign", *campaign.tenants]
    return [
        "",
        f"with DAG(dag_id={'campaign__' + campaign.id!r}, schedule={schedule},"
        f" start_date=START, catchup=False, max_active_runs=1, tags={tags!r},"
        f" doc_md={doc!r}, default_args=ARGS):",
        "    enrol = PythonOperator(task_id='enrol', python_callable=enrol_contacts,"
        f" op_args=[{campaign.id!r}])",
        "    with TaskGroup('journey') as journey:",
    ]


def _hand_written_steps(campaign_id: str, order: list[tuple[str, list[str]]]) -> list[str]:
    names = {step_id: f"s{index}" for index, (step_id, _) in enumerate(order)}
    lines = [
        f"        {names[step_id]} = PythonOperator(task_id={'step__' + step_id!r},"
        f" python_callable=advance_step, op_args=[{campaign_id!r}, {step_id!r}],"
        " trigger_rule=TriggerRule.NONE_FAILED)"
        for step_id, _ in order
    ]
    lines += [
        f"        {names[predecessor]} >> {names[step_id]}"
        for step_id, predecessors in order
        for predecessor in predecessors
    ]
    return [
        *lines,
        "    hand_off = PythonOperator(task_id='hand_off_sends', python_callable=hand_off_sends,"
        f" op_args=[{campaign_id!r}], trigger_rule=TriggerRule.NONE_FAILED)",
        "    send = PythonOperator.partial(task_id='dispatch', python_callable=dispatch_mails,"
        f" op_args=[{campaign_id!r}]).expand(op_kwargs=hand_off.output)",
        "    enrol >> journey >> hand_off >> send",
    ]


# --- timing -------------------------------------------------------------------------------


def load_bag(target: Path, environment: dict[str, str]) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", TIMER, str(target)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("BENCH-JSON ")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"loading {target} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("BENCH-JSON "))
    if result["errors"]:
        raise RuntimeError(f"import errors in {target}: {result['errors']}")
    return result


def bench_parse(campaigns: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-campaigns-") as temporary:
        work = Path(temporary)
        config_dir = work / "config"
        shutil.copytree(EXAMPLE_CONFIG, config_dir)
        write_campaigns(config_dir, campaigns)
        environment = {
            **os.environ,
            "LEADFLOW_HOME": str(work / "home"),
            "LEADFLOW_CONFIG_DIR": str(config_dir),
            "LEADFLOW_WAREHOUSE_URL": UNREACHABLE_WAREHOUSE,
        }
        # airflow_environment() reads LEADFLOW_*; this process imports Airflow too (through
        # the factory, to write the baseline), so it gets the same environment for a while.
        saved = dict(os.environ)
        try:
            os.environ.update(environment)
            environment.update(airflow_environment(work / "airflow"))
            os.environ.update(environment)
            hand_written = work / "hand_written" / "campaign_dags.py"
            hand_written.parent.mkdir()
            hand_written.write_text(hand_written_source(load_factory(), config_dir))
        finally:
            os.environ.clear()
            os.environ.update(saved)

        targets = {"dags/": DAGS, "dags/campaigns.py": FACTORY, "hand-written": hand_written}
        seconds: dict[str, list[float]] = {name: [] for name in targets}
        graphs = {}
        for _ in range(repeat):
            for name, target in targets.items():
                result = load_bag(target, environment)
                seconds[name].append(result["seconds"])
                graphs[name] = result["graphs"]
        report_parse(campaigns, seconds, graphs)


def report_parse(campaigns: int, seconds: dict[str, list[float]], graphs: dict) -> None:
    factory, hand = graphs["dags/campaigns.py"], graphs["hand-written"]
    if factory != hand:
        differing = sorted(set(factory) ^ set(hand)) or [
            dag_id for dag_id in factory if factory[dag_id] != hand[dag_id]
        ]
        first = differing[0]
        details = [
            key
            for key in factory.get(first, {})
            if factory[first][key] != hand.get(first, {}).get(key)
        ]
        raise RuntimeError(f"factory and hand-written DAGs differ: {differing[:5]} ({details})")
    tasks = sum(len(graph["tasks"]) for graph in factory.values())
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print(
        f"{len(factory)} campaign DAGs ({campaigns} generated + the examples), {tasks} tasks; "
        f"DagBag load, median of {len(seconds['dags/'])} fresh interpreters:"
    )
    for name, median in medians.items():
        spread = ", ".join(f"{value:.2f}" for value in seconds[name])
        print(f"  {name:<20} {median:6.2f} s   ({spread})")
    # Medians, and the fastest loads: on a busy machine the spread is large.
    best = {name: min(values) for name, values in seconds.items()}
    ratio = medians["dags/campaigns.py"] / medians["hand-written"]
    best_ratio = best["dags/campaigns.py"] / best["hand-written"]
    print(
        f"dags/ total: {medians['dags/']:.2f} s, fastest {best['dags/']:.2f} s"
        f" (target ≤ {TOTAL_TARGET_SECONDS:.0f} s)"
    )
    print(
        f"factory / hand-written: {ratio:.2f}×, fastest loads {best_ratio:.2f}×"
        f" (target ≤ {RATIO_TARGET:.0f}×)"
    )


# --- advancing journeys -----------------------------------------------------------------


def bench_advance(contacts: int, rounds: int) -> None:
    if not (BENCH_DIR / "_campaign_advance.py").is_file():
        print("bench/_campaign_advance.py not found: no advance figures")
        return
    sys.path.insert(0, str(BENCH_DIR))
    from _campaign_advance import DATABASE, describe, measure_advance
    from _common import bench_database

    timings = measure_advance(bench_database(DATABASE), contacts, rounds)
    print(f"database {DATABASE}")
    print("\n".join(describe(timings, contacts)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale = float(os.environ.get("LEADFLOW_BENCH_SCALE", "1"))
    parser.add_argument("--campaigns", type=int, default=max(1, round(CAMPAIGNS * scale)))
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--contacts", type=int, default=max(1, round(CONTACTS * scale)))
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="advance rounds")
    parser.add_argument("--skip-parse", action="store_true")
    parser.add_argument("--skip-advance", action="store_true")
    arguments = parser.parse_args()
    parts = []
    if not arguments.skip_parse:
        parts.append(("parse", lambda: bench_parse(arguments.campaigns, arguments.repeat)))
    if not arguments.skip_advance:
        parts.append(("advance", lambda: bench_advance(arguments.contacts, arguments.rounds)))
    failed = []
    # Each part runs even if the other failed: one broken figure should not hide the other.
    for name, part in parts:
        print(f"--- campaign DAGs: {name} ---", flush=True)
        try:
            part()
        except Exception:  # reported; the next part still runs, the exit code says it failed
            traceback.print_exc()
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
