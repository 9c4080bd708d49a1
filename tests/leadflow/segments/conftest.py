"""One migrated database per test module (cloned from the session's template), holding the
test facts table and the product catalogue; each test works in a transaction rolled back
at its end, so tests in a module never see each other's rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from tests.leadflow.segments.data import create_facts_table, insert_products


@pytest.fixture(scope="module")
def segments_engine(server_url: URL, template_url: URL) -> Iterator[Engine]:
    name = f"s_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"create database {name} template {template_url.database}")
    engine = sa.create_engine(server_url.set(database=name))
    with engine.begin() as connection:
        create_facts_table(connection)
        insert_products(connection)
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f"drop database if exists {name} with (force)")
    admin.dispose()


@pytest.fixture
def db(segments_engine: Engine) -> Iterator[Connection]:
    """A connection whose rows vanish after the test (its transaction is rolled back)."""
    with segments_engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()
