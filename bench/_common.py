"""Helpers shared by the benchmark scripts (run as `python bench/<script>.py`)."""

from __future__ import annotations

import sqlalchemy as sa

from leadflow.warehouse.engine import get_engine
from leadflow.warehouse.migrate import upgrade


def bench_database(name: str) -> sa.Engine:
    """Create (if needed) and migrate the database `name` on the warehouse's server.

    Benchmarks run in databases of their own so the `leadflow` demo database is never touched.
    """
    server = get_engine().url
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            sa.text("select 1 from pg_database where datname = :name"), {"name": name}
        ).scalar()
        if not exists:
            connection.exec_driver_sql(f'create database "{name}"')
    admin.dispose()
    engine = sa.create_engine(server.set(database=name))
    upgrade(engine)
    return engine
