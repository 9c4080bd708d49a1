"""The tracking service as a FastAPI application (`create_app`).

The app holds, on `app.state`: `settings` (TrackingSettings), `config` (the loaded
configuration), `engine` (the warehouse), `secret` (the token key), `verifier`
(TokenVerifier), `machine_rules`,
`lookups` (cached ops.links / ops.outbox reads) and `writer` (the EventWriter every route
records through). The lifespan starts the writer and, on shutdown — uvicorn's answer to
SIGTERM, after the requests in progress are answered — closes it, which writes every
buffered event: a graceful stop loses no accepted event.

Routes: the mail tracking routes of `leadflow.tracking.tracking`, the capture routes of
`leadflow.tracking.capture` (forms, web events, fair leads) and `GET /healthz`. FastAPI
publishes the OpenAPI schema at `/openapi.json`.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from sqlalchemy.engine import Engine, make_url

from leadflow.tracking import tracking
from leadflow.tracking.machine import MachineRules
from leadflow.tracking.settings import TrackingSettings
from leadflow.tracking.tokens import TokenVerifier
from leadflow.tracking.writer import EventWriter


def create_app(
    settings: TrackingSettings, *, engine: Engine | None = None, config: Any = None
) -> FastAPI:
    """The service for `settings`; `engine`/`config` default to the warehouse/config dir."""
    config = config if config is not None else _load_config()
    engine = engine if engine is not None else _engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer = EventWriter(
            engine,
            batch_size=settings.batch_size,
            flush_interval=settings.flush_interval_seconds,
        ).start()
        app.state.writer = writer
        try:
            yield
        finally:
            writer.close()
            await app.state.lookups.aclose()

    app = FastAPI(
        title="leadflow tracking",
        summary="Open pixel, click redirect, unsubscribe, lead capture and web events.",
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.config = config
    app.state.engine = engine
    app.state.secret = settings.token_secret()
    app.state.verifier = TokenVerifier(app.state.secret)
    app.state.machine_rules = MachineRules.from_config(config)
    app.state.lookups = tracking.Lookups(engine)
    app.include_router(tracking.router)
    capture = _capture_router()
    if capture is not None:
        app.include_router(capture)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["service"])
    return app


async def healthz(request: Request) -> dict[str, Any]:
    """Liveness, and how many accepted events still wait for the warehouse."""
    return {"status": "ok", "pending_events": request.app.state.writer.pending()}


def _capture_router() -> Any:
    try:
        module = importlib.import_module("leadflow.tracking.capture")
    except ModuleNotFoundError as error:
        if error.name != "leadflow.tracking.capture":
            raise
        return None
    return getattr(module, "router", None)


def _load_config() -> Any:
    from leadflow import paths
    from leadflow.config.loader import load_config

    return load_config(paths.config_dir())


def _engine(settings: TrackingSettings) -> Engine:
    from leadflow.warehouse.engine import get_engine

    if settings.warehouse_url:
        url = make_url(settings.warehouse_url).set(drivername="postgresql+psycopg")
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10)
    return get_engine()
