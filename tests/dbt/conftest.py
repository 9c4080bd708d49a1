"""Fixtures for running the real dbt project against the test server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL


@pytest.fixture
def dbt_target(tmp_path, monkeypatch):
    """A private dbt target directory: parallel test runs must not share compiled files."""
    target = tmp_path / "dbt-target"
    monkeypatch.setenv("LEADFLOW_DBT_TARGET_PATH", str(target))
    return target


@pytest.fixture(scope="module")
def module_database(server_url: URL, template_url: URL) -> Iterator[URL]:
    """A fresh migrated database shared by one module, for tests that read one dbt build.

    The per-test `warehouse` fixture would rebuild dbt for every assertion; a build takes
    seconds, so a module seeds its cases once, builds once and asserts many times.
    """
    name = f"m_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"create database {name} template {template_url.database}")
    yield server_url.set(database=name)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"drop database if exists {name} with (force)")
    admin.dispose()
