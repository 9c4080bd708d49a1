"""Tracking events → raw.events.

Events are facts: once an event_id is stored it is never changed, so a re-imported (or
re-sent) event is "unchanged" whatever its columns say. Events of visitors not known yet
carry a visitor_id instead of (or besides) a contact_id; one of the two is required.
"""

from __future__ import annotations

from psycopg import Cursor, sql

from leadflow.imports import fields as f
from leadflow.imports.fields import Column
from leadflow.imports.kind import Kind, Landing, Values, at_least_one_of

EVENT_TYPES = (
    "email_sent", "email_delivered", "email_bounced", "email_open", "email_click",
    "unsubscribe", "download", "form_submit", "web_visit", "purchase", "fair_visit",
)  # fmt: skip
BOUNCE_TYPES = ("hard", "soft")

COLUMNS = (
    Column("event_id", f.identifier, required=True),
    Column("event_type", f.one_of(*EVENT_TYPES), required=True),
    Column("occurred_at", f.timestamp, "timestamptz", required=True),
    Column("contact_id", f.identifier),
    Column("visitor_id", f.identifier),
    Column("campaign_id", f.identifier),
    Column("step_id", f.identifier),
    Column("mailing_id", f.identifier),
    Column("link_id", f.identifier),
    Column("link_tag", f.text),
    Column("asset_id", f.identifier),
    Column("url", f.text),
    Column("bounce_type", f.one_of(*BOUNCE_TYPES)),
    Column("is_machine", f.boolean, "boolean", default=False),
    Column("user_agent", f.text),
)


def bounce_type_only_for_bounces(
    values: Values, failed: set[str], present: frozenset[str]
) -> list[str]:
    """A bounce is hard or soft (suppression depends on it); other events have no bounce type."""
    event_type, bounce_type = values["event_type"], values["bounce_type"]
    if event_type is None or "bounce_type" in failed:
        return []
    if event_type == "email_bounced" and bounce_type is None:
        return ["bounce_type: required for email_bounced events (hard or soft)"]
    if event_type != "email_bounced" and bounce_type is not None:
        return [f"bounce_type: only email_bounced events have one, not {event_type}"]
    return []


def check(cursor: Cursor, present: frozenset[str]) -> None:
    """Nothing beyond the duplicate event_id check every kind gets."""


def land(cursor: Cursor, present: frozenset[str]) -> Landing:
    columns = [column.name for column in COLUMNS if column.name in present]
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    # In file order, so event_seq (arrival order) follows the file.
    cursor.execute(
        sql.SQL(
            "insert into raw.events ({names}) select {names} from import_staging order by line "
            "on conflict (event_id) do nothing"
        ).format(names=names)
    )
    return Landing(inserted=cursor.rowcount, updated=0)


KIND = Kind(
    name="events",
    target="raw.events",
    columns=COLUMNS,
    key=("event_id",),
    key_label_sql="format('event_id %L', s.event_id)",
    check=check,
    land=land,
    one_of_columns=(("contact_id", "visitor_id"),),
    row_rules=(at_least_one_of("contact_id", "visitor_id"), bounce_type_only_for_bounces),
)
