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
from leadflow.demo.generator import GENERATED_TABLES
from leadflow.errors import LeadflowError

SUMMARY_TABLES = (*GENERATED_TABLES, "ops.quarantine", "ops.quality_results")


@dataclass(frozen=True)
class DemoSettings:
    contacts: int = 3000
    seed: int = 42
    as_of: dt.date = field(default_factory=dt.date.today)
    # Days the campaigns run for after the nightly build: the first through their Airflow
    # DAGs, the following ones with `leadflow campaign run --all`.
    campaign_days: int = 5


def run_demo(settings: DemoSettings, console: Console) -> None:
    from leadflow.campaigns.state import forget_journeys
    from leadflow.config import load_config
    from leadflow.demo.generator import GeneratorSettings, generate
    from leadflow.imports import import_file
    from leadflow.messaging.smtp_sink import SmtpSink
    from leadflow.routing import forget_routing
    from leadflow.warehouse.engine import connection_params, get_engine
    from leadflow.warehouse.migrate import upgrade

    started = time.monotonic()
    config = _step(console, "Validating the configuration", lambda: load_config(paths.config_dir()))
    console.print(f"  {config.summary()}")

    engine = _step(console, "Starting the warehouse and applying migrations", get_engine)
    upgrade(engine)
    console.print(f"  warehouse: {connection_params().libpq_url()}", highlight=False)

    generator = GeneratorSettings(
        contacts=settings.contacts, seed=settings.seed, as_of=settings.as_of
    )
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

    # A new company: the routing and the journeys of the previous one no longer apply.
    forget_routing(engine)
    forget_journeys(engine)
    mail_dir = clear_mail(paths.demo_dir() / "mail")
    # The nightly DAG routes the MQLs and mails their owners: a local SMTP sink keeps the mails.
    with SmtpSink(mail_dir, port=0) as sink:
        _step(
            console,
            f"Running the nightly DAG (airflow dags test leadflow_nightly {settings.as_of})",
            lambda: run_airflow_dag(
                "leadflow_nightly",
                settings.as_of,
                {"LEADFLOW_SMTP_HOST": sink.host, "LEADFLOW_SMTP_PORT": str(sink.port)},
            ),
        )

    print_know_the_customer(console, engine, config, settings.as_of, mail_dir)
    run_campaigns(console, engine, config, settings)
    _print_summary(console, engine, settings, time.monotonic() - started)


def _step(console: Console, title: str, action: Callable):
    console.rule(f"[bold]{title}")
    began = time.monotonic()
    result = action()
    console.print(f"  [green]done[/] in {time.monotonic() - began:.1f} s")
    return result


def run_airflow_dag(dag_id: str, as_of: dt.date, env: dict[str, str] | None = None) -> None:
    """Run one DAG in-process with `airflow dags test`, streaming its log to a file.

    `env` adds environment variables for the run (e.g. the SMTP server to send to).
    """
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
        finished = subprocess.run(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    if finished.returncode != 0:
        tail = "\n".join(log_file.read_text().splitlines()[-25:])
        raise LeadflowError(f"DAG {dag_id} failed (full log: {log_file}):\n{tail}")


def _print_summary(console: Console, engine, settings: DemoSettings, seconds: float) -> None:
    console.rule("[bold]Summary")
    with engine.connect() as connection:
        counts = Table(title="Rows per table")
        counts.add_column("table")
        counts.add_column("rows", justify="right")
        for table in (*SUMMARY_TABLES, "marts.dim_contacts"):
            schema, name = table.split(".")
            count = sa.select(sa.func.count()).select_from(sa.table(name, schema=schema))
            rows = connection.execute(count).scalar_one()
            counts.add_row(table, f"{rows:,}")
        console.print(counts)
        console.print(_status_by_country(connection))
    home = paths.home()
    console.print(f"as_of: {settings.as_of}   total time: {seconds:.0f} s")
    console.print("Warehouse:   `.venv/bin/leadflow db url` (BI tools read the `marts` schema)")
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


# --- issue 3: know the customer -----------------------------------------------------------


def clear_mail(directory: Path) -> Path:
    """The demo's mail directory, emptied of the .eml files of an earlier demo run."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.eml"):
        old.unlink()
    return directory


def print_know_the_customer(
    console: Console, engine, config, as_of: dt.date, mail_dir: Path
) -> None:
    """The scoring matrix per tenant, personas, segment sizes and routed MQLs of the run."""
    from leadflow.scoring.matrix import matrix, matrix_table

    console.rule("[bold]Know the customer: scoring matrix, personas, segments, routed MQLs")
    for found in matrix(engine).values():
        console.print(matrix_table(found))
    with engine.connect() as connection:
        console.print(_persona_distribution(connection, config))
        console.print(_segment_sizes(connection, config, as_of))
        console.print(_routed_mqls(connection, as_of))
    mails = sorted(mail_dir.glob("*.eml"))
    console.print(
        f"Owner notifications: {len(mails)} mail(s) as .eml in {mail_dir}", highlight=False
    )


def _persona_distribution(connection, config) -> Table:
    rows = connection.execute(
        sa.text("select tenant_code, best_persona, count(*) from marts.dim_contacts group by 1, 2")
    ).all()
    tenants = [tenant.code for tenant in config.tenants]
    counts: dict[str | None, dict[str, int]] = {}
    for tenant, persona, count in rows:
        counts.setdefault(persona, {})[tenant] = count
    table = Table(title="Best persona per tenant (marts.dim_contacts)")
    table.add_column("persona")
    for tenant in tenants:
        table.add_column(tenant, justify="right")
    names = [(persona.id, f"{persona.name} ({persona.id})") for persona in config.personas]
    for persona_id, label in [*names, (None, "no persona matched")]:
        by_tenant = counts.get(persona_id, {})
        table.add_row(label, *(f"{by_tenant.get(tenant, 0):,}" for tenant in tenants))
    return table


def _segment_sizes(connection, config, as_of: dt.date) -> Table:
    members = dict(
        connection.execute(
            sa.text(
                "select segment, members from ops.segment_materializations where as_of = :as_of"
            ),
            {"as_of": as_of},
        ).all()
    )
    table = Table(title=f"Segments as of {as_of} (marts.segment_members)")
    table.add_column("segment")
    table.add_column("members", justify="right")
    table.add_column("description")
    for name, segment in config.segments.items():
        count = members.get(name)
        table.add_row(
            name,
            f"{count:,}" if count is not None else "-",
            " ".join(segment.description.split()),
        )
    return table


def _routed_mqls(connection, as_of: dt.date) -> Table:
    rows = connection.execute(
        sa.text(
            "select team_id, owner_name, count(*) from ops.lead_assignments "
            "where as_of = :as_of group by 1, 2 order by 1, 2"
        ),
        {"as_of": as_of},
    ).all()
    # The latest batch's count: later batches report the still-unmatched again.
    unmatched = (
        connection.execute(
            sa.text(
                "select unmatched from ops.routing_batches where as_of = :as_of "
                "order by batch_id desc limit 1"
            ),
            {"as_of": as_of},
        ).scalar()
        or 0
    )
    total = sum(count for *_, count in rows)
    table = Table(
        title=f"Routed MQLs as of {as_of}: {total:,} (ops.lead_assignments; "
        f"{unmatched:,} matched no routing rule)"
    )
    table.add_column("team")
    table.add_column("owner")
    table.add_column("new leads", justify="right")
    for team, owner, count in rows:
        table.add_row(team, owner, f"{count:,}")
    return table


# --- issue 4: campaigns ---------------------------------------------------------------------


def run_campaigns(console: Console, engine, config, settings: DemoSettings) -> None:
    """Run every campaign for `campaign_days` days from as_of on and print where they stand.

    Day one runs each campaign's Airflow DAG (its `now` is the cut-off of as_of, like the run
    the nightly Asset triggers); the following days use the same engine from the command
    line's `campaign run`, one run per day at that day's cut-off, on the marts of as_of.
    """
    from leadflow.campaigns import now_for, run_campaign

    campaigns = [campaign.id for campaign in config.campaigns.values() if campaign.enabled]
    first = settings.as_of + dt.timedelta(days=1)
    _step(
        console,
        f"Running the {len(campaigns)} campaign DAGs (airflow dags test campaign__<id> {first})",
        lambda: [run_airflow_dag(f"campaign__{id_}", first) for id_ in campaigns],
    )
    later = [settings.as_of + dt.timedelta(days=day) for day in range(1, settings.campaign_days)]
    if later:
        _step(
            console,
            f"Running the campaigns for {later[0]} … {later[-1]} (leadflow campaign run --all)",
            lambda: [
                run_campaign(engine, config, id_, now_for(day))
                for day in later
                for id_ in campaigns
            ],
        )
    print_campaigns(
        console,
        engine,
        config,
        now_for(settings.as_of + dt.timedelta(days=settings.campaign_days - 1)),
    )


def print_campaigns(console: Console, engine, config, now: dt.datetime) -> None:
    """Contacts per step of every campaign at `now`, the outbox and the ended journeys."""
    from leadflow.campaigns import status

    console.rule(f"[bold]Campaigns at {now:%Y-%m-%d %H:%M} UTC: contacts per step")
    for campaign in config.campaigns.values():
        if not campaign.enabled:
            continue
        report = status(engine, config, campaign.id, now)
        table = Table(
            title=f"{campaign.id}: {report.active:,} active, "
            f"{report.count('completed'):,} completed, {report.count('exited'):,} exited, "
            f"{report.count('converted'):,} converted; outbox {report.pending_due:,} due, "
            f"{report.pending_deferred:,} deferred",
            title_justify="left",
        )
        table.add_column("step")
        table.add_column("kind")
        table.add_column("contacts", justify="right")
        table.add_column("waiting", justify="right")
        for step in report.steps:
            table.add_row(step.step_id, step.kind, f"{step.active:,}", f"{step.waiting:,}")
        console.print(table)
    with engine.connect() as connection:
        console.print(_outbox_summary(connection))


def _outbox_summary(connection) -> Table:
    rows = connection.execute(
        sa.text(
            "select campaign_id, kind, count(*), "
            "count(*) filter (where deferred_reason like '%frequency_cap%'), "
            "count(*) filter (where deferred_reason like '%send_window%') "
            "from ops.outbox where status = 'pending' group by 1, 2 order by 1, 2"
        )
    ).all()
    table = Table(title="Mails waiting for the dispatcher (ops.outbox, pending)")
    for column in ("campaign", "kind", "mails", "deferred by the cap", "deferred by the window"):
        table.add_column(column, justify="left" if column in ("campaign", "kind") else "right")
    for campaign_id, kind, count, capped, windowed in rows:
        table.add_row(campaign_id, kind, f"{count:,}", f"{capped:,}", f"{windowed:,}")
    return table
