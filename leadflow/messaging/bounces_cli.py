"""`leadflow bounces ingest`: read the bounce mailbox once and print what it held.

The mailbox is `--maildir DIR`, `--imap URL`, or else the URL in the environment variable
that `company.delivery.bounce_mailbox_url_env` names (default LEADFLOW_BOUNCE_MAILBOX_URL):
`maildir:///path/to/Maildir` or `imaps://user:password@host/INBOX`. The URL lives in the
environment, not in the configuration, because it carries a password.

Exit status: 0 when every message was ingested, 1 when some could not be (they are listed
and stay unread for the next run), the error's own code when the run could not start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from leadflow.errors import LeadflowError

console = Console()
err_console = Console(stderr=True)


def _mailbox_url(maildir: Path | None, imap: str | None, env_name: str) -> str:
    if maildir is not None and imap is not None:
        raise typer.BadParameter("give --maildir or --imap, not both")
    if maildir is not None:
        return f"maildir://{maildir.resolve()}"
    if imap is not None:
        return imap
    url = os.environ.get(env_name, "").strip()
    if not url:
        raise LeadflowError(
            f"no bounce mailbox: set ${env_name} to maildir:///path or "
            "imaps://user:password@host/INBOX, or pass --maildir / --imap"
        )
    return url


def bounces_ingest_command(
    maildir: Annotated[
        Path | None,
        typer.Option("--maildir", help="A Maildir folder (with new/, cur/, tmp/)."),
    ] = None,
    imap: Annotated[
        str | None,
        typer.Option("--imap", help="imap(s)://user:password@host[:port]/FOLDER"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Configuration directory (default: $LEADFLOW_CONFIG_DIR or include/config).",
        ),
    ] = None,
) -> None:
    """Classify new bounce-mailbox messages; suppress hard bounces, repeated soft bounces and
    complaints; record bounces of campaign mails as email_bounced events."""
    from rich.markup import escape

    from leadflow import paths
    from leadflow.config import load_config
    from leadflow.messaging.bounces import ingest, open_mailbox
    from leadflow.warehouse.engine import get_engine

    try:
        loaded = load_config(config or paths.config_dir())
        delivery = loaded.company.delivery
        url = _mailbox_url(maildir, imap, delivery.bounce_mailbox_url_env)
        mailbox = open_mailbox(url)
        try:
            report = ingest(get_engine(), mailbox, loaded.company.defaults.soft_bounce)
        finally:
            mailbox.close()
    except LeadflowError as error:
        err_console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    console.print(report.describe(), markup=False, highlight=False, soft_wrap=True)
    if report.errors:
        raise typer.Exit(1)
