"""Fixtures for the campaign engine: a fresh database with a hand-made contacts relation
(public.test_facts, see tests/leadflow/segments/data.py), the example configuration with
test tenants, and campaigns built in the tests from their YAML form.

Test tenants: `hq` sends any day 00:00–23:59 UTC (so a run at midnight sends at once and
the expected times stay simple), `fr` keeps office hours (Mon–Fri 09:00–17:30 Europe/Paris)
for the send-window tests. The frequency cap is the default: 2 marketing mails in 7 days.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadflow.campaigns import advance, enrol, now_for
from leadflow.config import Campaign, Config, load_config
from leadflow.config.base import WEEKDAYS
from leadflow.config.models import SendWindow
from leadflow.paths import PROJECT_ROOT
from tests.leadflow.segments.data import (
    FACTS_TABLE,
    TEST_RELATIONS,
    add_contacts,
    create_facts_table,
    insert_products,
)

UTC = dt.UTC
_EVENT_NUMBERS = itertools.count(1)
ALWAYS_OPEN = SendWindow(days=list(WEEKDAYS), start=dt.time(0, 0), end=dt.time(23, 59))
OFFICE_HOURS_PARIS = SendWindow(start=dt.time(9, 0), end=dt.time(17, 30))

# Every table a campaign run may write, with the order that makes dumps comparable.
STATE_TABLES = {
    "ops.campaign_enrolments": "enrolment_id",
    "ops.campaign_step_history": "enrolment_id, step_seq",
    "ops.outbox": "outbox_id",
    "ops.crm_outbox": "outbox_id",
    "ops.contact_changes": "change_id",
    "raw.contacts": "contact_id",
    f"public.{FACTS_TABLE}": "contact_id",
}


@pytest.fixture(scope="session")
def example_config() -> Config:
    return load_config(PROJECT_ROOT / "include" / "config")


@pytest.fixture(scope="session")
def base_config(example_config: Config) -> Config:
    """The example configuration with the test tenants' time zones and send windows."""
    tenants = []
    for tenant in example_config.tenants:
        if tenant.code == "fr":
            changed = {"time_zone": "Europe/Paris", "send_window": OFFICE_HOURS_PARIS}
        else:
            changed = {"time_zone": "UTC", "send_window": ALWAYS_OPEN}
        tenants.append(tenant.model_copy(update=changed))
    return dataclasses.replace(example_config, tenants=tenants, campaigns={})


def with_campaigns(config: Config, *campaigns: dict[str, Any]) -> Config:
    """`config` holding exactly these campaigns (YAML form; name and tenants defaulted)."""
    models = {}
    for data in campaigns:
        data = {"name": data["id"], "tenants": ["hq", "fr"], **data}
        models[data["id"]] = Campaign.model_validate(data)
    return dataclasses.replace(config, campaigns=models)


@pytest.fixture
def pool(warehouse: Engine) -> Engine:
    """This test's database with an empty contacts relation and the test products."""
    with warehouse.begin() as connection:
        create_facts_table(connection)
        insert_products(connection)
    return warehouse


def person(contact_id: str, tenant: str = "hq", **extra: Any) -> dict[str, Any]:
    """A contacts-relation row: consent confirmed, created long ago, no owner."""
    return {
        "contact_id": contact_id,
        "email": f"{contact_id}@example.com",
        "tenant_code": tenant,
        "country": "FR" if tenant == "fr" else "DE",
        "consent_status": "confirmed",
        "created_at": dt.datetime(2020, 1, 1, tzinfo=UTC),
        "tags": [],
        **extra,
    }


def add_people(engine: Engine, *rows: dict[str, Any]) -> None:
    """Rows in the contacts relation and in raw.contacts (which `update` steps change)."""
    with engine.begin() as connection:
        add_contacts(connection, *rows)
        connection.execute(
            sa.text(
                "insert into raw.contacts (contact_id, email, tags, lifecycle_stage, owner) "
                "values (:contact_id, :email, :tags, :lifecycle_stage, :owner)"
            ),
            [
                {
                    "contact_id": row["contact_id"],
                    "email": row["email"],
                    "tags": row.get("tags") or [],
                    "lifecycle_stage": row.get("lifecycle_stage"),
                    "owner": row.get("owner"),
                }
                for row in rows
            ],
        )


def add_mail_events(engine: Engine, campaign_id: str, *events: tuple) -> None:
    """Opens/clicks of a campaign's mail: (contact_id, event_type, step_id, occurred_at, extra).

    `extra` (optional) sets link_id, link_tag or is_machine; add_events (segments' data.py)
    has no campaign and step columns, which these events need.
    """
    with engine.begin() as connection:
        for contact_id, event_type, step_id, occurred_at, *extra in events:
            row = {
                "event_id": f"{campaign_id}-{step_id}-{contact_id}-{next(_EVENT_NUMBERS)}",
                "contact_id": contact_id,
                "event_type": event_type,
                "occurred_at": occurred_at,
                "campaign_id": campaign_id,
                "step_id": step_id,
                "link_id": None,
                "link_tag": None,
                "is_machine": False,
                **(extra[0] if extra else {}),
            }
            connection.execute(
                sa.text(
                    "insert into raw.events (event_id, contact_id, event_type, occurred_at, "
                    "campaign_id, step_id, link_id, link_tag, is_machine) values (:event_id, "
                    ":contact_id, :event_type, :occurred_at, :campaign_id, :step_id, :link_id, "
                    ":link_tag, :is_machine)"
                ),
                row,
            )


def day(as_of: str) -> dt.datetime:
    """The moment of the run for `as_of` (its cut-off): as_of + 1 day 00:00 UTC."""
    return now_for(dt.date.fromisoformat(as_of))


def at(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run(engine: Engine, config: Config, campaign_id: str, now: dt.datetime) -> tuple:
    """enrol + advance at `now` over the test relations; (EnrolReport, AdvanceReport)."""
    enrolled = enrol(engine, config, campaign_id, now, relations=TEST_RELATIONS)
    advanced = advance(engine, config, campaign_id, now, relations=TEST_RELATIONS)
    return enrolled, advanced


def run_days(engine: Engine, config: Config, campaign_id: str, days: Iterable[str]) -> None:
    for as_of in days:
        run(engine, config, campaign_id, day(as_of))


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql), params)]


def journeys(engine: Engine) -> dict[str, tuple]:
    """contact → (status, step_id, step_seq, due_at, end_reason) of its latest journey."""
    return {
        row[0]: row[1:]
        for row in rows(
            engine,
            "select distinct on (contact_id) contact_id, status, step_id, step_seq, due_at, "
            "end_reason from ops.campaign_enrolments order by contact_id, enrolment_id desc",
        )
    }


def history(engine: Engine, contact_id: str) -> list[tuple]:
    """(step_seq, step_id, outcome, completed_at) of the contact's journeys, in order."""
    return rows(
        engine,
        "select h.step_seq, h.step_id, h.outcome, h.completed_at "
        "from ops.campaign_step_history h join ops.campaign_enrolments e using (enrolment_id) "
        "where e.contact_id = :contact_id order by e.enrolment_id, h.step_seq",
        contact_id=contact_id,
    )


def outbox(engine: Engine, contact_id: str | None = None) -> list[tuple]:
    """(contact_id, step_id, kind, scheduled_at, deferred_reason, status) by outbox_id."""
    return rows(
        engine,
        "select contact_id, step_id, kind, scheduled_at, deferred_reason, status "
        "from ops.outbox where cast(:contact_id as text) is null or contact_id = :contact_id "
        "order by outbox_id",
        contact_id=contact_id,
    )


def dump(engine: Engine) -> dict[str, list[tuple]]:
    """The full contents of every table a run writes (to compare runs)."""
    return {
        table: rows(engine, f"select * from {table} order by {order}")
        for table, order in STATE_TABLES.items()
    }
