"""SQLAlchemy Core clauses of the raw and ops tables several modules write or read.

The migrations own the tables (leadflow/warehouse/migrations); these clauses only name
their columns and types for queries, so each table is declared once here instead of in
every module that touches it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_TEXT = sa.Text()
_TIMESTAMP = sa.DateTime(timezone=True)

# raw.events columns a writer fills (event_seq and loaded_at come from the database).
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "contact_id",
    "visitor_id",
    "event_type",
    "occurred_at",
    "campaign_id",
    "step_id",
    "mailing_id",
    "link_id",
    "link_tag",
    "asset_id",
    "url",
    "bounce_type",
    "is_machine",
    "user_agent",
    "properties",
)
_EVENT_TYPES = {
    "occurred_at": _TIMESTAMP,
    "is_machine": sa.Boolean(),
    "properties": postgresql.JSONB(),
}
EVENTS = sa.table(
    "events",
    *(sa.column(name, _EVENT_TYPES.get(name, _TEXT)) for name in EVENT_COLUMNS),
    schema="raw",
)

OUTBOX = sa.table(
    "outbox",
    sa.column("outbox_id", sa.BigInteger()),
    sa.column("kind", _TEXT),
    sa.column("campaign_id", _TEXT),
    sa.column("step_id", _TEXT),
    sa.column("enrolment_id", sa.BigInteger()),
    sa.column("step_seq", sa.Integer()),
    sa.column("contact_id", _TEXT),
    sa.column("tenant_code", _TEXT),
    sa.column("message", _TEXT),
    sa.column("content", postgresql.ARRAY(_TEXT)),
    sa.column("category", _TEXT),
    sa.column("recipient_email", _TEXT),
    sa.column("requested_at", _TIMESTAMP),
    sa.column("scheduled_at", _TIMESTAMP),
    sa.column("deferred_reason", _TEXT),
    sa.column("status", _TEXT),
    sa.column("status_reason", _TEXT),
    sa.column("message_id", _TEXT),
    sa.column("sent_at", _TIMESTAMP),
    schema="ops",
)
