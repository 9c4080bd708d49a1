"""Shared fixtures: a real PostgreSQL for every test that needs one.

The server is the embedded one (in a temporary directory) unless LEADFLOW_WAREHOUSE_URL
names another; either way each test gets its own fresh database cloned from a migrated
template, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from leadflow.warehouse import embedded
from leadflow.warehouse.migrate import upgrade

# One template per test session, so parallel sessions on one server never clash.
TEMPLATE = f"leadflow_test_template_{os.getpid()}"


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> URL:
    """The URL of the test server's maintenance database."""
    configured = os.environ.get("LEADFLOW_WAREHOUSE_URL")
    if configured:
        return make_url(configured).set(drivername="postgresql+psycopg")
    # A short path: Unix socket paths are limited to about 100 characters.
    data = Path(f"/tmp/leadflow-test-pg-{os.getuid()}")
    server = embedded.ensure_running(data)
    return make_url(server.url("postgres"))


def _admin(url: URL) -> Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def template_url(server_url: URL) -> Iterator[URL]:
    admin = _admin(server_url)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"drop database if exists {TEMPLATE} with (force)")
        connection.exec_driver_sql(f"create database {TEMPLATE}")
    url = server_url.set(database=TEMPLATE)
    engine = sa.create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.exec_driver_sql(f"drop database if exists {TEMPLATE} with (force)")
    admin.dispose()


@pytest.fixture
def warehouse_url(server_url: URL, template_url: URL, monkeypatch) -> Iterator[URL]:
    """A fresh, migrated database for this test; LEADFLOW_WAREHOUSE_URL points at it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = _admin(server_url)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"create database {name} template {TEMPLATE}")
    url = server_url.set(database=name)
    monkeypatch.setenv("LEADFLOW_WAREHOUSE_URL", url.render_as_string(hide_password=False))
    yield url
    from leadflow.warehouse.engine import _engine_for

    _engine_for.cache_clear()
    with admin.connect() as connection:
        connection.exec_driver_sql(f"drop database if exists {name} with (force)")
    admin.dispose()


@pytest.fixture
def warehouse(warehouse_url: URL) -> Iterator[Engine]:
    """An engine on this test's fresh database."""
    engine = sa.create_engine(warehouse_url)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_database_url(server_url: URL) -> Iterator[URL]:
    """A database with no schemas at all, for migration tests."""
    name = f"e_{uuid.uuid4().hex[:12]}"
    admin = _admin(server_url)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"create database {name}")
    yield server_url.set(database=name)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"drop database if exists {name} with (force)")
    admin.dispose()
