"""`make demo`: build the example company and run the platform on it, visibly.

Each step is an ordinary leadflow command or Airflow DAG run; this module only strings them
together and prints what came out.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from leadflow import paths
from leadflow.errors import LeadflowError

RAW_TABLES = (
    "raw.accounts",
    "raw.contacts",
    "raw.products",
    "raw.orders",
    "raw.order_items",
    "raw.installed_base",
    "raw.events",
    "raw.fair_leads",
    "ops.quarantine",
    "ops.quality_results",
)


@dataclass(frozen=True)
class DemoSettings:
    contacts: int = 3000
    seed: int = 42
    as_of: dt.date = field(default_factory=dt.date.today)


def run_demo(settings: DemoSettings, console: Console) -> None:
    from leadflow.config import load_config
    from leadflow.demo.generator import GeneratorSettings, generate
    from leadflow.imports import import_file
    from leadflow.warehouse.engine import connection_params, get_engine
    from leadflow.warehouse.migrate import upgrade

    started = time.monotonic()
    config = _step(console, "Validating the configuration", lambda: load_config(paths.config_dir()))
    console.print(f"  {config.summary()}")

    engine = _step(console, "Starting the warehouse and applying migrations", get_engine)
    upgrade(engine)
    console.print(f"  warehouse: {connection_params().libpq_url()}", highlight=False)

    generator = GeneratorSettings(contacts=settings.contacts, seed=settings.seed, as_of=settings.as_of)
    summary = _step(
        console,
        f"Generating the example company ({settings.contacts:,} contacts, seed {settings.seed})",
        lambda: generate(engine, generator, progress=True),
    )

    fair = _step(
        console,
        "Importing the trade-fair leads export",
        lambda: import_file(engine, "fair_leads", summary.fair_leads_csv),
    )
    console.print(fair.describe())

    _step(
        console,
        f"Running the nightly DAG (airflow dags test leadflow_nightly {settings.as_of})",
        lambda: run_airflow_dag("leadflow_nightly", settings.as_of),
    )

    _print_summary(console, engine, settings, time.monotonic() - started)


def _step(console: Console, title: str, action: Callable):
    console.rule(f"[bold]{title}")
    began = time.monotonic()
    result = action()
    console.print(f"  [green]done[/] in {time.monotonic() - began:.1f} s")
    return result


def run_airflow_dag(dag_id: str, as_of: dt.date) -> None:
    """Run one DAG in-process with `airflow dags test`, streaming its log to a file."""
    log_dir = paths.demo_dir() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{dag_id}-{as_of}.log"
    command = [
        str(Path(sys.executable).parent / "leadflow"),
        "airflow",
        "run",
        "--",
        "dags",
        "test",
        dag_id,
        as_of.isoformat(),
    ]
    with log_file.open("w") as log:
        finished = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    if finished.returncode != 0:
        tail = "\n".join(log_file.read_text().splitlines()[-25:])
        raise LeadflowError(f"DAG {dag_id} failed (full log: {log_file}):\n{tail}")


def _print_summary(console: Console, engine, settings: DemoSettings, seconds: float) -> None:
    console.rule("[bold]Summary")
    with engine.connect() as connection:
        counts = Table(title="Rows per table")
        counts.add_column("table")
        counts.add_column("rows", justify="right")
        for table in RAW_TABLES + ("marts.dim_contacts",):
            rows = connection.execute(sa.text(f"select count(*) from {table}")).scalar_one()
            counts.add_row(table, f"{rows:,}")
        console.print(counts)
        console.print(_status_by_country(connection))
    home = paths.home()
    console.print(f"as_of: {settings.as_of}   total time: {seconds:.0f} s")
    console.print(f"Warehouse:   `.venv/bin/leadflow db url` (BI tools read the `marts` schema)")
    console.print(f"Airflow UI:  `make airflow` (AIRFLOW_HOME {home / 'airflow'})")
    console.print(f"DAG logs:    {paths.demo_dir() / 'logs'}")
    console.print(f"Quality:     {home / 'quality'}")


def _status_by_country(connection) -> Table:
    rows = connection.execute(
        sa.text(
            "select country, customer_status, count(*) from marts.dim_contacts"
            " group by 1, 2 order by 1, 2"
        )
    ).all()
    statuses = ("lead", "new_customer", "existing_customer")
    table = Table(title="Customer status per country (marts.dim_contacts)")
    table.add_column("country")
    for status in statuses:
        table.add_column(status, justify="right")
    by_country: dict[str, dict[str, int]] = {}
    for country, status, count in rows:
        by_country.setdefault(country or "?", {})[status] = count
    for country, counts in by_country.items():
        table.add_row(country, *(f"{counts.get(s, 0):,}" for s in statuses))
    return table
