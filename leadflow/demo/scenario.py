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


# Days the campaigns run for after the nightly build: the first through their Airflow DAGs,
# the following ones with `leadflow campaign run --all`.
CAMPAIGN_DAYS = 5


def demo_as_of(today: dt.date | None = None, campaign_days: int = CAMPAIGN_DAYS) -> dt.date:
    """The demo's as_of: its simulated campaign days end yesterday.

    The tracking service records opens and clicks at the real time; with every simulated send
    in the past, real clicks come after the mails (not `too_fast`) and after the journey
    steps that sent them, and the next nightly build — for today — counts them.
    """
    return (today or dt.date.today()) - dt.timedelta(days=campaign_days)


@dataclass(frozen=True)
class DemoSettings:
    contacts: int = 3000
    seed: int = 42
    as_of: dt.date = field(default_factory=demo_as_of)
    campaign_days: int = CAMPAIGN_DAYS


def run_demo(settings: DemoSettings, console: Console) -> None:
    from leadflow.campaigns.state import forget_journeys
    from leadflow.config import load_config
    from leadflow.demo.engagement import simulate_engagement
    from leadflow.demo.generator import GeneratorSettings, generate
    from leadflow.imports import import_file
    from leadflow.messaging.smtp_sink import SmtpSink
    from leadflow.messaging.suppression import forget_mail_state
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

    # A new company: the routing, journeys, suppressions, links and consents of the previous
    # one no longer apply.
    forget_routing(engine)
    forget_journeys(engine)
    forget_mail_state(engine)
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
    run_campaigns(console, engine, config, settings, mail_dir)
    simulate_engagement(
        console,
        engine,
        config,
        settings.as_of + dt.timedelta(days=settings.campaign_days),
        mail_dir,
        settings.seed,
    )
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


def run_campaigns(console: Console, engine, config, settings: DemoSettings, mail_dir: Path) -> None:
    """Run every campaign for `campaign_days` days from as_of on, send what falls due, and
    print where the journeys stand and what was sent.

    Day D: the campaigns run at D + 1 day 00:00 UTC (the cut-off of D, like the run the
    nightly Asset triggers) — on the first day through their Airflow DAGs, then with the
    engine of `leadflow campaign run` on the marts of as_of — and the dispatcher sends what
    is due at 12:00 UTC that day into the local SMTP server, which keeps each mail as .eml.
    """
    from leadflow.campaigns import now_for, run_campaign
    from leadflow.messaging.smtp_sink import SmtpSink

    campaigns = [campaign.id for campaign in config.campaigns.values() if campaign.enabled]
    days = [settings.as_of + dt.timedelta(days=day) for day in range(settings.campaign_days)]
    with SmtpSink(mail_dir, port=0) as sink:
        smtp_url = f"smtp://{sink.host}:{sink.port}"
        first = days[0] + dt.timedelta(days=1)
        _step(
            console,
            f"Running the {len(campaigns)} campaign DAGs "
            f"(airflow dags test campaign__<id> {first})",
            lambda: [
                run_airflow_dag(f"campaign__{id_}", first, {"LEADFLOW_SMTP_URL": smtp_url})
                for id_ in campaigns
            ],
        )
        sent = [_dispatch(engine, config, now_for(days[0]) + NOON, smtp_url)]
        for day in days[1:]:
            _step(
                console,
                f"{day:%a %Y-%m-%d}: leadflow campaign run --all, then dispatch at 12:00 UTC",
                lambda day=day: [
                    run_campaign(engine, config, id_, now_for(day)) for id_ in campaigns
                ],
            )
            sent.append(_dispatch(engine, config, now_for(day) + NOON, smtp_url))
    print_campaigns(console, engine, config, now_for(days[-1]))
    print_deliveries(console, engine, mail_dir, sent)


# The demo's dispatcher runs at midday, inside every tenant's send window on weekdays.
NOON = dt.timedelta(hours=12)


def _dispatch(engine, config, now: dt.datetime, smtp_url: str):
    from leadflow.messaging.cli import make_composer
    from leadflow.messaging.dispatch import dispatch
    from leadflow.messaging.gate import require_clean_marts

    require_clean_marts(engine)
    delivery = config.company.delivery
    return dispatch(
        engine,
        config,
        now,
        compose=make_composer(config, engine),
        smtp_url=smtp_url,
        concurrency=delivery.concurrency,
        rate_per_minute=None,  # a local SMTP server: as fast as it goes
        batch_size=delivery.batch_size,
    )


def print_deliveries(console: Console, engine, mail_dir: Path, reports) -> None:
    """Mails sent per campaign, tenant and language; why others were not; one mail a tenant."""
    console.rule("[bold]Delivery: the dispatcher's sends into the local SMTP server")
    for report in reports:
        console.print(f"  {report.describe()}", highlight=False, soft_wrap=True)
    with engine.connect() as connection:
        console.print(_sent_per_campaign(connection))
        console.print(_not_sent(connection))
        examples = connection.execute(
            sa.text(
                "select distinct on (tenant_code) tenant_code, campaign_id, step_id, language, "
                "message_id from ops.outbox where status = 'sent' and kind = 'campaign_mail' "
                "order by tenant_code, outbox_id"
            )
        ).all()
    files = _eml_by_message_id(mail_dir, {row.message_id for row in examples})
    table = Table(title=f"One rendered mail per tenant (.eml files in {mail_dir})")
    for column in ("tenant", "campaign", "step", "language", "file"):
        table.add_column(column)
    for row in examples:
        found = files.get(row.message_id)
        table.add_row(
            row.tenant_code, row.campaign_id, row.step_id, row.language or "-",
            found.name if found else "(not found)",
        )  # fmt: skip
    console.print(table)


def _sent_per_campaign(connection) -> Table:
    rows = connection.execute(
        sa.text(
            "select campaign_id, tenant_code, language, count(*) from ops.outbox "
            "where status = 'sent' and kind = 'campaign_mail' group by 1, 2, 3 order by 1, 2, 3"
        )
    ).all()
    table = Table(title="Campaign mails sent (ops.outbox) per campaign, tenant and language")
    for column in ("campaign", "tenant", "language", "mails"):
        table.add_column(column, justify="right" if column == "mails" else "left")
    for campaign_id, tenant, language, count in rows:
        table.add_row(campaign_id, tenant or "-", language or "-", f"{count:,}")
    return table


def _not_sent(connection) -> Table:
    rows = connection.execute(
        sa.text(
            "select status, coalesce(status_reason, deferred_reason, '') as why, count(*) "
            "from ops.outbox where status <> 'sent' group by 1, 2 order by 1, 2"
        )
    ).all()
    table = Table(title="Outbox rows not sent (yet), and why")
    for column in ("status", "reason", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for status, why, count in rows:
        table.add_row(status, why, f"{count:,}")
    return table


def _eml_by_message_id(mail_dir: Path, wanted: set[str]) -> dict[str, Path]:
    """The .eml file of each wanted Message-ID (the sink names files by arrival)."""
    from email.parser import BytesHeaderParser

    found = {}
    parser = BytesHeaderParser()
    for path in sorted(mail_dir.glob("*.eml")):
        with path.open("rb") as handle:
            message_id = parser.parse(handle).get("Message-ID", "").strip()
        if message_id in wanted:
            found[message_id] = path
    return found


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
