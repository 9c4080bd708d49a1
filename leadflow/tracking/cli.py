"""`leadflow tracking serve`: the tracking service under uvicorn.

Settings come from `company.tracking` and the environment (TrackingSettings). uvicorn
answers SIGTERM and SIGINT with a graceful shutdown: it stops accepting connections,
finishes the requests in progress, then runs the app's lifespan shutdown, which writes
every buffered event before the process exits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

tracking_app = typer.Typer(no_args_is_help=True, help="The tracking and capture service.")


@tracking_app.callback()
def tracking() -> None:
    """The tracking and capture service."""


@tracking_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Configuration directory (default: $LEADFLOW_CONFIG_DIR or include/config).",
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Proxies whose X-Forwarded-For is trusted for the client address "
            "(comma-separated; default: $FORWARDED_ALLOW_IPS or 127.0.0.1)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the open pixel, click redirect, unsubscribe and capture routes."""
    from leadflow import paths
    from leadflow.config.loader import load_config
    from leadflow.errors import LeadflowError
    from leadflow.tracking.app import create_app
    from leadflow.tracking.settings import TrackingSettings

    try:
        loaded = load_config(config or paths.config_dir())
        settings = TrackingSettings.from_config(loaded)
        app = create_app(settings, config=loaded)
    except LeadflowError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(getattr(error, "exit_code", 1)) from None
    run_server(
        app, host=host, port=port, log_level=log_level, forwarded_allow_ips=forwarded_allow_ips
    )


def run_server(
    app: Any, *, host: str, port: int, log_level: str, forwarded_allow_ips: str | None = None
) -> None:
    """uvicorn as the service runs (bench/tracking.py serves its app through this too).

    uvloop and httptools are named rather than left to uvicorn's "auto": both are pinned
    requirements, and a silent fallback to asyncio and h11 would make every request slower.
    Proxy headers are honoured only from `forwarded_allow_ips`; no access log (a line per
    open pixel would cost more than recording the open).
    """
    import gc

    import uvicorn

    # The app, its routes, the configuration and the libraries live as long as the process:
    # frozen, a full collection no longer walks them. Otherwise it now and then stops every
    # request for as long as it takes to walk them (the p99 latency of the pixel and click).
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        access_log=False,
    )


if __name__ == "__main__":
    tracking_app()
