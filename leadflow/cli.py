"""The `leadflow` command line. Every step the DAGs run is also a command here.

Commands are thin: parse arguments, call into the domain modules, print the result.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from leadflow.errors import LeadflowError
from leadflow.messaging.bounces_cli import bounces_ingest_command
from leadflow.messaging.cli import dispatch_command
from leadflow.tracking.cli import tracking_app

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
db_app = typer.Typer(
    no_args_is_help=True, help="The warehouse: migrations and the embedded server."
)
config_app = typer.Typer(no_args_is_help=True, help="The YAML configuration.")
demo_app = typer.Typer(no_args_is_help=True, help="The example company.")
import_app = typer.Typer(no_args_is_help=True, help="Import CSV files into the raw schema.")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(demo_app, name="demo")
app.add_typer(import_app, name="import")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Configuration directory (default: $LEADFLOW_CONFIG_DIR or include/config).",
    ),
]


def _config_dir(option: Path | None) -> Path:
    from leadflow import paths

    return option or paths.config_dir()


def _engine():
    from leadflow.warehouse.engine import get_engine

    return get_engine()


# --- db ---------------------------------------------------------------------------------


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the raw and ops schemas."""
    from leadflow.warehouse.migrate import current_revision, upgrade

    engine = _engine()
    upgrade(engine)
    console.print(f"warehouse at revision [bold]{current_revision(engine)}[/]")


@db_app.command("url")
def db_url() -> None:
    """Print the warehouse URL (starting the embedded server if needed)."""
    from leadflow.warehouse.engine import connection_params

    console.print(connection_params().libpq_url(), soft_wrap=True, highlight=False)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded warehouse server."""
    from leadflow.warehouse import embedded

    stopped = embedded.stop()
    console.print("embedded warehouse stopped" if stopped else "embedded warehouse was not running")


# --- config -----------------------------------------------------------------------------


@config_app.command("validate")
def config_validate(config: ConfigOption = None) -> None:
    """Validate the configuration; every error is reported with file, line and key."""

    from leadflow.config import load_config
    from leadflow.errors import ConfigError
    from leadflow.messaging.templates import TemplateError, Templates

    try:
        loaded = load_config(_config_dir(config))
        # The templates too (Jinja syntax, content keys, tenant languages): what a send needs.
        Templates.load(loaded)
    except (ConfigError, TemplateError) as error:
        # Escaped: messages contain YAML like `[low, high]` that rich would take for markup.
        err_console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    console.print(f"[green]configuration valid[/]: {loaded.summary()}", soft_wrap=True)


# --- demo -------------------------------------------------------------------------------


@demo_app.command("generate")
def demo_generate(
    contacts: Annotated[int, typer.Option(min=1, help="Number of contacts to generate.")] = 3000,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same company.")
    ] = 42,
    events_per_contact: Annotated[
        float, typer.Option(help="Average tracking events per contact.")
    ] = 20.0,
    as_of: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day of history.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write the example hydraulics manufacturer into the raw schema (replacing what is there)."""
    from leadflow.demo.generator import GeneratorSettings, generate
    from leadflow.warehouse.migrate import upgrade

    engine = _engine()
    upgrade(engine)
    settings = GeneratorSettings(
        contacts=contacts,
        seed=seed,
        events_per_contact=events_per_contact,
        as_of=(as_of.date() if as_of else dt.date.today()),
    )
    summary = generate(engine, settings, progress=True)
    _print_counts("generated", summary.counts)
    console.print(f"fair-lead CSV: {summary.fair_leads_csv}")


@demo_app.command("run")
def demo_run(
    contacts: Annotated[int, typer.Option(min=1, help="Number of contacts.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Build the example company and run the whole platform on it (what `make demo` does)."""
    from leadflow.demo.scenario import DemoSettings, run_demo

    run_demo(DemoSettings(contacts=contacts, seed=seed), console)


# --- import -----------------------------------------------------------------------------


def _import(kind: str, file: Path) -> None:
    from leadflow.imports import import_file
    from leadflow.warehouse.migrate import upgrade

    engine = _engine()
    upgrade(engine)
    summary = import_file(engine, kind, file)
    # Reasons quote file contents: print them as they are, not as rich markup.
    console.print(summary.describe(), markup=False, highlight=False, soft_wrap=True)


@import_app.command("contacts")
def import_contacts(file: Path) -> None:
    """Import contacts (and their accounts) from CSV; see docs/imports.md for the columns."""
    _import("contacts", file)


@import_app.command("orders")
def import_orders(file: Path) -> None:
    """Import orders (one row per order line) from CSV."""
    _import("orders", file)


@import_app.command("events")
def import_events(file: Path) -> None:
    """Import tracking events from CSV."""
    _import("events", file)


@import_app.command("fair-leads")
def import_fair_leads(file: Path) -> None:
    """Land a snapADDY-style fair-lead export (CSV) in raw.fair_leads."""
    _import("fair_leads", file)


# --- build ------------------------------------------------------------------------------


@app.command("build")
def build(
    as_of: Annotated[
        dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="The run's logical date.")
    ],
    config: ConfigOption = None,
) -> None:
    """The nightly run: quality gates on raw data, dbt build, quality gates on the marts."""
    from leadflow.nightly import run_nightly

    result = run_nightly(as_of.date(), _config_dir(config))
    console.print(result.describe())


# --- airflow ----------------------------------------------------------------------------

airflow_app = typer.Typer(no_args_is_help=True, help="Run Airflow locally with this project.")
app.add_typer(airflow_app, name="airflow")


@airflow_app.command("env")
def airflow_env() -> None:
    """Print the environment Airflow needs as `export` lines: eval "$(leadflow airflow env)"."""
    from leadflow.airflow_env import airflow_environment, export_lines

    typer.echo(export_lines(airflow_environment()))


@airflow_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def airflow_run(
    arguments: Annotated[
        list[str] | None, typer.Argument(help="Arguments for `airflow`, after `--`.")
    ] = None,
) -> None:
    """Run `airflow ARGS` with the project's environment, e.g. `leadflow airflow run -- standalone`.

    The Airflow metadata database is migrated first, once.
    """
    from leadflow.airflow_env import exec_airflow

    exec_airflow(arguments or ["--help"])


# --- scoring: explain, matrix -----------------------------------------------------------

matrix_app = typer.Typer(
    invoke_without_command=True,
    help="The scoring matrix: contacts per grade (A-D) and band (1-4), per tenant.",
)
app.add_typer(matrix_app, name="matrix")

TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Only this tenant (e.g. hq, fr); default: all.")
]


def _fail(error: Exception) -> typer.Exit:
    """Print a user error the way main() does and return the exit to raise."""
    from rich.markup import escape

    err_console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    return typer.Exit(getattr(error, "exit_code", 1))


@app.command("explain")
def explain(
    contact: Annotated[str, typer.Argument(help="The contact's id or e-mail address.")],
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="The date the marts were built for (checked)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Why a contact has its persona, scores and matrix cell: criteria met, rules fired, decay."""
    from leadflow.config import load_config
    from leadflow.scoring.explain import explain as explain_contact
    from leadflow.scoring.explain import print_explanation

    try:
        loaded = load_config(_config_dir(config))
        explanation = explain_contact(_engine(), contact, as_of.date() if as_of else None, loaded)
    except LeadflowError as error:
        raise _fail(error) from None
    print_explanation(explanation, console)


@matrix_app.callback()
def matrix(ctx: typer.Context, tenant: TenantOption = None) -> None:
    """Show the scoring matrix of every tenant (or one) as of the last nightly run."""
    if ctx.invoked_subcommand is not None:
        return
    from leadflow.scoring.matrix import matrix as read_matrix
    from leadflow.scoring.matrix import matrix_table

    try:
        matrices = read_matrix(_engine(), tenant)
    except LeadflowError as error:
        raise _fail(error) from None
    for found in matrices.values():
        console.print(matrix_table(found))


@matrix_app.command("export")
def matrix_export(
    file: Annotated[Path, typer.Argument(help="The CSV file to write.")],
    cell: Annotated[str, typer.Option("--cell", help="The matrix cell, e.g. A1.")],
    tenant: TenantOption = None,
) -> None:
    """Write the contacts of one matrix cell to a CSV file (e-mail, names, scores, owner)."""
    from leadflow.scoring.matrix import export_cell

    try:
        count = export_cell(_engine(), cell, tenant, file)
    except LeadflowError as error:
        raise _fail(error) from None
    where = f" of tenant {tenant}" if tenant else ""
    console.print(f"{count:,} contacts of cell {cell.strip().upper()}{where} written to {file}")


# --- segments ---------------------------------------------------------------------------

segment_app = typer.Typer(no_args_is_help=True, help="Segments: named filters over the pool.")
app.add_typer(segment_app, name="segment")

AsOfOption = Annotated[
    dt.datetime | None,
    typer.Option(
        formats=["%Y-%m-%d"],
        help="The run date relative dates resolve against (default: the marts' date).",
    ),
]


@segment_app.command("preview")
def segment_preview(
    name: Annotated[str, typer.Argument(help="The segment's name (segments.yaml).")],
    as_of: AsOfOption = None,
    limit: Annotated[int, typer.Option(min=0, help="Sample size.")] = 10,
    config: ConfigOption = None,
) -> None:
    """How many contacts a segment selects, the first few of them, and its SQL."""
    from leadflow.config import load_config
    from leadflow.segments.materialize import marts_as_of
    from leadflow.segments.preview import preview

    try:
        loaded = load_config(_config_dir(config))
        engine = _engine()
        built_for = marts_as_of(engine)
        day = as_of.date() if as_of else built_for or _yesterday()
        found = preview(engine, name, day, loaded, limit)
    except LeadflowError as error:
        raise _fail(error) from None
    console.print(
        f"segment [bold]{escape(name)}[/] as of {day}: [bold]{found.count:,}[/] contacts",
        highlight=False,
    )
    if built_for is not None and built_for != day:
        console.print(
            f"note: marts.dim_contacts was built for {built_for}; its fields (status, scores)"
            f" are that day's, relative dates resolve against {day}",
            style="yellow",
            highlight=False,
        )
    sample = Table(title=f"first {len(found.sample)} by contact_id")
    for column in ("contact_id", "email", "country", "customer_status"):
        sample.add_column(column)
    for contact in found.sample:
        sample.add_row(*(escape(str(value)) if value is not None else "" for value in contact))
    console.print(sample)
    console.print("SQL (placeholders as the driver receives them):", style="bold")
    console.print(found.sql, markup=False, highlight=False, soft_wrap=True)
    console.print("parameters:", style="bold")
    for parameter, value in found.parameters.items():
        console.print(
            f"  {parameter} = {_parameter_text(value)}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@segment_app.command("list")
def segment_list(config: ConfigOption = None) -> None:
    """Every segment with its description and members at the last materialisation."""
    from leadflow.config import load_config
    from leadflow.segments.materialize import segment_sizes

    try:
        sizes = segment_sizes(_engine(), load_config(_config_dir(config)))
    except LeadflowError as error:
        raise _fail(error) from None
    table = Table(title="segments")
    table.add_column("segment")
    table.add_column("description")
    table.add_column("tenant")
    table.add_column("members", justify="right")
    table.add_column("as of")
    for size in sizes:
        members = f"{size.members:,}" if size.members is not None else "never built"
        table.add_row(
            escape(size.name),
            escape(size.description),
            size.tenant or "all",
            members,
            str(size.as_of or ""),
        )
    console.print(table)


def _parameter_text(value: object) -> str:
    """A bound value as a reader expects it: timestamps and dates in ISO form, text quoted."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_parameter_text(item) for item in value) + "]"
    return repr(value)


def _yesterday() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


# --- routing ----------------------------------------------------------------------------


@app.command("route")
def route(
    as_of: Annotated[
        dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="The run date the marts are for.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show who would be routed; write and send nothing.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Route MQLs without an owner to sales teams round-robin and mail the new owners."""
    from leadflow.config import load_config
    from leadflow.routing import route as route_leads

    try:
        report = route_leads(
            _engine(), load_config(_config_dir(config)), as_of.date(), dry_run=dry_run
        )
    except LeadflowError as error:
        raise _fail(error) from None
    if dry_run and report.routing.assignments:
        planned = Table(title=f"would route (as of {as_of.date()})")
        for column in ("contact_id", "team", "owner", "rule"):
            planned.add_column(column)
        for assignment in report.routing.assignments:
            planned.add_row(
                escape(assignment.contact_id),
                assignment.team_id,
                escape(assignment.owner_name),
                assignment.rule_id,
            )
        console.print(planned)
    console.print(report.describe(), markup=False, highlight=False, soft_wrap=True)


# --- campaigns --------------------------------------------------------------------------

campaign_app = typer.Typer(
    no_args_is_help=True, help="Campaigns (journeys): enrol, advance, status, simulate."
)
app.add_typer(campaign_app, name="campaign")

AsOfOption = Annotated[
    dt.datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        help="The run's date D: the campaign runs at D + 1 day 00:00 UTC (default: yesterday).",
    ),
]


def _campaign_ids(loaded, campaign_id: str | None, every: bool) -> list[str]:
    """The campaigns a command works on: one id, or every enabled campaign with --all."""
    if every == (campaign_id is not None):
        raise typer.BadParameter("give a campaign id or --all (not both)")
    if every:
        return [id_ for id_, campaign in loaded.campaigns.items() if campaign.enabled]
    return [_known_campaign(loaded, campaign_id).id]


def _known_campaign(loaded, campaign_id: str):
    if campaign_id not in loaded.campaigns:
        known = ", ".join(sorted(loaded.campaigns)) or "none"
        raise LeadflowError(f"unknown campaign {campaign_id!r} (known: {known})")
    return loaded.campaigns[campaign_id]


@campaign_app.command("list")
def campaign_list(config: ConfigOption = None) -> None:
    """The configured campaigns: trigger, steps, tenants, schedule."""
    from leadflow.campaigns.report_text import table
    from leadflow.config import load_config
    from leadflow.config.campaigns import TRIGGER_KINDS

    try:
        loaded = load_config(_config_dir(config))
    except LeadflowError as error:
        raise _fail(error) from None
    rows = [
        (
            campaign.id,
            next(
                kind for kind, model in TRIGGER_KINDS.items() if isinstance(campaign.trigger, model)
            ),
            len(campaign.steps),
            ",".join(campaign.tenants),
            campaign.schedule or "manual",
            "yes" if campaign.enabled else "no",
            campaign.name,
        )
        for campaign in loaded.campaigns.values()
    ]
    headers = ("id", "trigger", "steps", "tenants", "schedule", "enabled", "name")
    # Plain aligned text like the other campaign reports: ids are never cut to fit.
    print(table(headers, rows))


@campaign_app.command("run")
def campaign_run(
    campaign_id: Annotated[str | None, typer.Argument(help="The campaign id (file name).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every enabled campaign.")] = False,
    as_of: AsOfOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; keep nothing.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Enrol the triggered contacts and advance every journey as far as it may go now."""
    from leadflow.campaigns import run_campaign
    from leadflow.campaigns.clock import now_for
    from leadflow.config import load_config

    try:
        loaded = load_config(_config_dir(config))
        now = now_for(as_of.date() if as_of else _yesterday())
        for campaign_id_ in _campaign_ids(loaded, campaign_id, every):
            report = run_campaign(_engine(), loaded, campaign_id_, now, dry_run=dry_run)
            console.print(report.describe(), markup=False, highlight=False, soft_wrap=True)
    except LeadflowError as error:
        raise _fail(error) from None


@campaign_app.command("status")
def campaign_status(
    campaign_id: Annotated[str, typer.Argument(help="The campaign id (file name).")],
    as_of: AsOfOption = None,
    config: ConfigOption = None,
) -> None:
    """Contacts per step (due now or waiting), deferred sends, completed, exited, converted."""
    from leadflow.campaigns import status
    from leadflow.campaigns.clock import now_for
    from leadflow.config import load_config

    try:
        loaded = load_config(_config_dir(config))
        now = now_for(as_of.date()) if as_of else dt.datetime.now(dt.UTC)
        report = status(_engine(), loaded, campaign_id, now)
    except LeadflowError as error:
        raise _fail(error) from None
    console.print(report.describe(), markup=False, highlight=False, soft_wrap=True)


@campaign_app.command("simulate")
def campaign_simulate(
    campaign_id: Annotated[str, typer.Argument(help="The campaign id (file name).")],
    days: Annotated[int, typer.Option("--days", min=1, max=3660, help="Days to simulate.")] = 30,
    as_of: AsOfOption = None,
    config: ConfigOption = None,
) -> None:
    """Time-travel: run the campaign day by day from --as-of on and count the paths taken.

    Everything happens in one transaction that is rolled back: nothing is kept, no mail sent.
    """
    from leadflow.campaigns import simulate
    from leadflow.config import load_config

    try:
        loaded = load_config(_config_dir(config))
        start = as_of.date() if as_of else _yesterday()
        report = simulate(_engine(), loaded, campaign_id, start, days)
    except LeadflowError as error:
        raise _fail(error) from None
    console.print(report.describe(), markup=False, highlight=False, soft_wrap=True)


@campaign_app.command("diagram")
def campaign_diagram(
    campaign_id: Annotated[str, typer.Argument(help="The campaign id (file name).")],
    config: ConfigOption = None,
) -> None:
    """Print the journey as a Mermaid flowchart (paste into any Markdown that renders Mermaid)."""
    from leadflow.campaigns.diagram import mermaid
    from leadflow.config import load_config

    try:
        campaign = _known_campaign(load_config(_config_dir(config)), campaign_id)
    except LeadflowError as error:
        raise _fail(error) from None
    print(mermaid(campaign))


# --- dispatch ---------------------------------------------------------------------------

# The command's options live with the code it runs.
app.command("dispatch")(dispatch_command)


# --- tracking ---------------------------------------------------------------------------

app.add_typer(tracking_app, name="tracking")


# --- bounces ----------------------------------------------------------------------------

bounces_app = typer.Typer(no_args_is_help=True, help="The bounce mailbox: bounces, complaints.")
app.add_typer(bounces_app, name="bounces")


# The command's options live with the code it runs (a light module: it imports the
# bounce parsers only when it runs).
bounces_app.command("ingest")(bounces_ingest_command)


# --- development SMTP sink --------------------------------------------------------------


@app.command("smtp-sink")
def smtp_sink(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to store the .eml files (default .leadflow/demo/mail)."),
    ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1.")] = 8025,
) -> None:
    """Run a local SMTP server that stores every message it receives as an .eml file."""
    import threading

    from leadflow.messaging.smtp_sink import SmtpSink

    try:
        sink = SmtpSink(directory, port=port).start()
    except OSError as error:
        raise _fail(LeadflowError(f"cannot listen on 127.0.0.1:{port}: {error}")) from None
    console.print(
        f"SMTP sink listening on {sink.host}:{sink.port}, storing mail in {sink.directory}"
        " (Ctrl-C stops it)",
        highlight=False,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
        console.print(f"stopped; {len(sink.received())} message(s) received")


# --- helpers ----------------------------------------------------------------------------


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)


def main() -> None:
    try:
        app()
    except LeadflowError as error:
        err_console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
