"""One way to reach the warehouse: `LEADFLOW_WAREHOUSE_URL`, else the embedded server."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from leadflow.errors import WarehouseUnavailable
from leadflow.warehouse import embedded


def warehouse_url() -> URL:
    """The SQLAlchemy URL of the warehouse, with the psycopg 3 driver."""
    configured = os.environ.get("LEADFLOW_WAREHOUSE_URL")
    if not configured:
        return make_url(embedded.ensure_running().url())
    url = make_url(configured)
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise WarehouseUnavailable(
            f"LEADFLOW_WAREHOUSE_URL must be a PostgreSQL URL, got '{url.get_backend_name()}'."
        )
    return url.set(drivername="postgresql+psycopg")


@dataclass(frozen=True)
class ConnectionParams:
    """libpq-style parameters for tools that take no URL (dbt, Airflow, Great Expectations)."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    def libpq_url(self) -> str:
        """A plain `postgresql://` URL (socket directories go in the `host` query parameter)."""
        return URL.create(
            "postgresql",
            username=self.user,
            password=self.password or None,
            host=None if self.host.startswith("/") else self.host,
            port=None if self.host.startswith("/") else self.port,
            database=self.dbname,
            query={"host": self.host} if self.host.startswith("/") else {},
        ).render_as_string(hide_password=False)


def connection_params(url: URL | None = None) -> ConnectionParams:
    url = url or warehouse_url()
    host = url.host or url.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = host[0]
    return ConnectionParams(
        host=host,
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or "",
        dbname=url.database or "postgres",
    )


@cache
def _engine_for(url_string: str) -> Engine:
    return sa.create_engine(url_string, pool_pre_ping=True, future=True)


def get_engine(url: URL | None = None) -> Engine:
    """A pooled engine for the warehouse; fails with one clear sentence if it is unreachable."""
    url = url or warehouse_url()
    engine = _engine_for(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("select 1")
    except sa.exc.OperationalError as error:
        _engine_for.cache_clear()
        where = url.render_as_string(hide_password=True)
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise WarehouseUnavailable(f"Cannot reach the warehouse at {where}: {reason}") from None
    return engine
