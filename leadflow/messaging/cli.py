"""`leadflow dispatch`: send the due outbox rows once, over SMTP (leadflow.messaging.dispatch).

The SMTP server is the URL in the environment variable `company.delivery.smtp_url_env`
(default LEADFLOW_SMTP_URL; smtp://user:password@host:port?starttls=true or smtps://...): it
carries a password, so it lives in the environment, not in the configuration. Concurrency,
rate limit, batch size and dry run default to `company.delivery`. Messages are rendered by
leadflow.messaging.render's Renderer (templates, content blocks, translation memory and
DeepL); the one-click unsubscribe URL is signed with the tracking secret.

Exit status: 0 when the run finished (mails that failed or are ambiguous are in the report
and the outbox), 1 when it stopped early (e.g. the server became unreachable: the rows not
sent are pending again), the error's own code when it could not start.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from leadflow.errors import LeadflowError

console = Console()
err_console = Console(stderr=True)


def make_composer(config, engine):
    """The dispatcher's `compose`: the templates' Renderer with the configured translator."""
    from leadflow.messaging.dispatch import rendered_composer
    from leadflow.messaging.render import Renderer
    from leadflow.messaging.translation import Translator

    renderer = Renderer(config, Translator.from_config(config, engine))
    return rendered_composer(renderer.render)


def dispatch_command(
    dry_run: Annotated[
        bool | None,
        typer.Option(
            "--dry-run/--send",
            help="Render and report without sending or changing anything "
            "(default: company.delivery.dry_run).",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Take at most this many rows.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Workers, each with its own SMTP connection.")
    ] = None,
    rate: Annotated[
        int | None, typer.Option("--rate", min=1, help="Messages per minute, all workers.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Rows per claim.")] = None,
    group_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Rows marked 'sending' and recorded together (default 20): the most a "
            "crash can leave ambiguous per worker.",
        ),
    ] = None,
    now: Annotated[
        dt.datetime | None,
        typer.Option(help="Send what is due at this moment (UTC; default: now)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Configuration directory (default: $LEADFLOW_CONFIG_DIR or include/config).",
        ),
    ] = None,
) -> None:
    """Send the due campaign mails and owner notifications in the outbox, each exactly once."""
    from rich.markup import escape

    from leadflow import paths
    from leadflow.config import load_config
    from leadflow.messaging.delivery import smtp_server_from_env
    from leadflow.messaging.dispatch import DEFAULT_GROUP_SIZE, DispatchError, dispatch
    from leadflow.warehouse.engine import get_engine

    moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        loaded = load_config(config or paths.config_dir())
        delivery = loaded.company.delivery
        dry = delivery.dry_run if dry_run is None else dry_run
        # Checked before anything is claimed; the URL itself is passed on as given.
        smtp_url = None
        if not dry:
            smtp_server_from_env(loaded)
            smtp_url = os.environ[delivery.smtp_url_env].strip()
        engine = get_engine()
        report = dispatch(
            engine,
            loaded,
            moment,
            compose=make_composer(loaded, engine),
            smtp_url=smtp_url,
            concurrency=concurrency or delivery.concurrency,
            rate_per_minute=rate or delivery.rate_limit_per_minute,
            batch_size=batch_size or delivery.batch_size,
            group_size=group_size or DEFAULT_GROUP_SIZE,
            dry_run=dry,
            max_messages=limit,
        )
    except DispatchError as error:
        err_console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except LeadflowError as error:
        err_console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    console.print(report.describe(), markup=False, highlight=False, soft_wrap=True)
