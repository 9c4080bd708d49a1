"""Fixtures for routing: a fresh database with a hand-made contacts table, a test routing
configuration, and a real SMTP server on loopback (leadflow's SMTP sink)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from leadflow.config import Config, Routing, load_config
from leadflow.messaging.smtp_sink import SmtpSink
from leadflow.paths import PROJECT_ROOT
from leadflow.routing import SmtpSettings
from tests.leadflow.segments.data import FACTS_TABLE, add_contacts, create_facts_table

ROUTING_YAML = """
notify_owner: true
teams:
  - id: north
    name: Vertrieb Nord
    members:
      - {name: Anna Nord, email: anna@example.com}
      - {name: Bert Nord, email: bert@example.com}
      - {name: Cora Nord, email: cora@example.com}
  - id: south
    name: Vertrieb Süd
    members:
      - {name: Dora Süd, email: dora@example.com}
      - {name: Emil Süd, email: emil@example.com}
  - id: france
    members:
      - {name: Fleur France, email: fleur@example.com}
rules:
  - id: de_north
    description: Germany, postcodes starting with 1.
    match:
      all:
        - {field: country, op: "=", value: DE}
        - {field: postcode, op: starts_with, value: "1"}
    team: north
  - id: de_rest
    match: {field: country, op: "=", value: DE}
    team: south
  - id: fr
    match: {field: country, op: "=", value: FR}
    team: france
"""


def mql(contact_id: str, country: str, postcode: str | None = None, **extra: Any) -> dict:
    """A contacts-relation row of an MQL without owner (cell A1, scores 80/75)."""
    return {
        "contact_id": contact_id,
        "email": f"{contact_id}@lead.example",
        "first_name": contact_id.upper(),
        "last_name": "Lead",
        "account_name": f"{contact_id} GmbH",
        "country": country,
        "postcode": postcode,
        "is_mql": True,
        "owner": None,
        "matrix_cell": "A1",
        "grade": "A",
        "band": 1,
        "profile_score": 80,
        "activity_score": 75,
        "best_persona": "production_manager",
        **extra,
    }


@pytest.fixture(scope="session")
def example_config() -> Config:
    return load_config(PROJECT_ROOT / "include" / "config")


@pytest.fixture(scope="session")
def routing_config(example_config: Config) -> Config:
    """The example configuration with the test teams and rules above."""
    routing = Routing.model_validate(yaml.safe_load(ROUTING_YAML))
    return dataclasses.replace(example_config, routing=routing)


@pytest.fixture
def pool(warehouse: Engine) -> Engine:
    """This test's database with an empty hand-made contacts relation (test_facts)."""
    with warehouse.begin() as connection:
        create_facts_table(connection)
    return warehouse


def add(engine: Engine, *rows: dict) -> None:
    with engine.begin() as connection:
        add_contacts(connection, *rows)


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql), params)]


def owners(engine: Engine) -> dict[str, str | None]:
    return dict(rows(engine, f"select contact_id, owner from public.{FACTS_TABLE}"))


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """A real SMTP server on a free loopback port, storing mail under tmp_path/mail."""
    with SmtpSink(tmp_path / "mail", port=0) as running:
        yield running


@pytest.fixture
def smtp(sink: SmtpSink) -> SmtpSettings:
    return SmtpSettings(host=sink.host, port=sink.port)
