"""Shared test data for scoring: configuration copies with test personas/rules, raw rows, builds."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadflow.config import Config, load_config
from leadflow.paths import PROJECT_ROOT

UTC = dt.UTC
INCLUDE = PROJECT_ROOT / "include"


def config_with(
    tmp_path: Path, *, personas: str | None = None, scoring: str | None = None
) -> Config:
    """The example configuration with personas.yaml / scoring.yaml replaced (templates kept)."""
    target = tmp_path / "include"
    shutil.copytree(INCLUDE, target, dirs_exist_ok=True)
    if personas is not None:
        (target / "config" / "personas.yaml").write_text(personas, encoding="utf-8")
    if scoring is not None:
        (target / "config" / "scoring.yaml").write_text(scoring, encoding="utf-8")
    return load_config(target / "config")


def at(text: str) -> dt.datetime:
    """An aware timestamp from ISO text; no offset means UTC."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def insert(connection: Connection, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
    rows = list(rows)
    if not rows:
        return
    columns = list(rows[0])
    connection.execute(
        sa.text(
            f"insert into {table} ({', '.join(columns)}) "
            f"values ({', '.join(':' + column for column in columns)})"
        ),
        [dict(row) for row in rows],
    )


def event(
    event_id: str,
    contact_id: str | None,
    event_type: str,
    occurred_at: str | dt.datetime,
    **extra: Any,
) -> dict[str, Any]:
    """A raw.events row with every column the tests use (defaults: human, no qualifiers)."""
    row = {
        "event_id": event_id,
        "contact_id": contact_id,
        "event_type": event_type,
        "occurred_at": at(occurred_at) if isinstance(occurred_at, str) else occurred_at,
        "is_machine": False,
        "link_tag": None,
        "asset_id": None,
        "mailing_id": None,
        "url": None,
    }
    unknown = set(extra) - set(row)
    assert not unknown, f"unknown event columns {unknown}"
    row.update(extra)
    return row


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql), params)]
