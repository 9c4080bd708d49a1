"""Rows for the tracking tests: contacts, sent mails (ops.outbox) and their links."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadflow.config.loader import load_config
from leadflow.messaging import links
from leadflow.paths import PROJECT_ROOT

SECRET = "tracking-test-secret-0123456789-abcdefghijklmnop"
BASE = "https://go.steinhoff-hydraulik.example"
# Sent an hour ago: clicks now are long past min_seconds_after_delivery.
SENT_AT = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130 Safari/537.36"


def shipped_config() -> Any:
    return load_config(PROJECT_ROOT / "include" / "config")


def add_contact(engine: Engine, contact_id: str, email: str, consent: str = "confirmed") -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "insert into raw.contacts (contact_id, email, consent_status) "
                "values (:id, :email, :consent)"
            ),
            {"id": contact_id, "email": email, "consent": consent},
        )


def add_mail(
    engine: Engine,
    contact_id: str,
    *,
    campaign_id: str = "newsletter",
    step_id: str = "send_1",
    tenant_code: str = "hq",
    sent_at: dt.datetime | None = SENT_AT,
) -> int:
    """A sent campaign mail; its outbox_id."""
    with engine.begin() as connection:
        enrolment = connection.execute(
            sa.text("select coalesce(max(enrolment_id), 0) + 1 from ops.outbox")
        ).scalar()
        return connection.execute(
            sa.text(
                "insert into ops.outbox (kind, campaign_id, step_id, enrolment_id, step_seq, "
                "contact_id, tenant_code, message, category, requested_at, scheduled_at, "
                "status, sent_at) values ('campaign_mail', :campaign, :step, :enrolment, 1, "
                ":contact, :tenant, 'welcome', 'marketing', :sent, :sent, 'sent', :sent) "
                "returning outbox_id"
            ),
            {
                "campaign": campaign_id,
                "step": step_id,
                "enrolment": enrolment,
                "contact": contact_id,
                "tenant": tenant_code,
                "sent": sent_at or SENT_AT,
            },
        ).scalar_one()


def add_link(engine: Engine, outbox_id: int, url: str, tag: str | None = None) -> str:
    """A tracked link of the mail; its link_id."""
    link_id = links.new_link_id()
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "insert into ops.links (link_id, outbox_id, campaign_id, step_id, contact_id, "
                "url, tag) select :link_id, outbox_id, campaign_id, step_id, contact_id, :url, "
                ":tag from ops.outbox where outbox_id = :outbox_id"
            ),
            {"link_id": link_id, "outbox_id": outbox_id, "url": url, "tag": tag},
        )
    return link_id


def click_token(link_id: str, secret: str = SECRET) -> str:
    return links.sign({"link_id": link_id}, secret, purpose="click")


def mail_token(outbox_id: int, contact_id: str, purpose: links.Purpose = "open") -> str:
    return links.sign({"outbox_id": outbox_id, "contact_id": contact_id}, SECRET, purpose=purpose)


def events(engine: Engine, columns: str = "event_type") -> list[tuple]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.text(f"select {columns} from raw.events order by event_seq")
            )
        ]


def count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text(f"select count(*) from {table}")).scalar_one()
