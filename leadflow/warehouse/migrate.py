"""Apply the Alembic migrations that own the `raw` and `ops` schemas."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        # The version table lives in ops, so ops must exist before Alembic looks for it.
        connection.exec_driver_sql("create schema if not exists ops")
        command.upgrade(_config(connection), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as connection:
        command.downgrade(_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        exists = connection.exec_driver_sql("select to_regclass('ops.alembic_version')").scalar()
        if not exists:
            return None
        return connection.exec_driver_sql("select version_num from ops.alembic_version").scalar()
