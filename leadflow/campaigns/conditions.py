"""Events and purchases in a time span, as SQL: what triggers, goals, exit rules and branches ask.

Filters (audiences, goal and exit filters, branch filters) go through the one filter
compiler (leadflow.segments). What the compiler does not express is "this event happened
between two moments of a journey" — after the enrolment, since an earlier step — so those
conditions are built here, over the same `Relations`:

- an event of a type (EventSpec) counts when it is human (`is_machine = false`) and
  occurred in [since, until); `asset`, `link_tag` narrow by the event's columns, `fair` and
  `form` by its properties (`{"fair": ...}`, `{"form": ...}`, as the tracking service and
  the fair-lead import store them);
- a purchase is a won order of the contact ordered in [since, until), containing the product
  or an item of the family when one is named (the orders, not `purchase` events, are the
  source of truth for purchases, as in the compiler).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause, TableClause

from leadflow.config.campaigns import EventSpec
from leadflow.segments.relations import Relations, tables


def _qualified(qualified: str) -> tuple[str | None, str]:
    schema, _, name = qualified.rpartition(".")
    return schema or None, name


def event_table(relations: Relations) -> TableClause:
    """The events relation with the columns journeys read (the compiler's has fewer)."""
    schema, name = _qualified(relations.events)
    return sa.table(
        name,
        sa.column("event_id", sa.Text()),
        sa.column("contact_id", sa.Text()),
        sa.column("event_type", sa.Text()),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("is_machine", sa.Boolean()),
        sa.column("campaign_id", sa.Text()),
        sa.column("step_id", sa.Text()),
        sa.column("mailing_id", sa.Text()),
        sa.column("link_id", sa.Text()),
        sa.column("link_tag", sa.Text()),
        sa.column("asset_id", sa.Text()),
        sa.column("properties", postgresql.JSONB()),
        schema=schema,
    )


def installation_table(relations: Relations) -> TableClause:
    """The installed base with its key (date triggers fire per installation)."""
    schema, name = _qualified(relations.installed_base)
    return sa.table(
        name,
        sa.column("installation_id", sa.Text()),
        sa.column("account_id", sa.Text()),
        sa.column("contact_id", sa.Text()),
        sa.column("product_id", sa.Text()),
        sa.column("installed_on", sa.Date()),
        sa.column("next_maintenance_date", sa.Date()),
        schema=schema,
    )


def event_qualifiers(event: FromClause, spec: EventSpec) -> list[ColumnElement[bool]]:
    """The conditions `asset`, `link_tag`, `fair`, `form` of an event spec put on an event row."""
    conditions: list[ColumnElement[bool]] = []
    if spec.asset is not None:
        conditions.append(event.c.asset_id == spec.asset)
    if spec.link_tag is not None:
        conditions.append(event.c.link_tag == spec.link_tag)
    if spec.fair is not None:
        conditions.append(event.c.properties["fair"].astext == spec.fair)
    if spec.form is not None:
        conditions.append(event.c.properties["form"].astext == spec.form)
    return conditions


def human_events(
    event: FromClause, event_type: str, since: Any, until: dt.datetime
) -> list[ColumnElement[bool]]:
    """Human events of the type in [since, until)."""
    return [
        event.c.event_type == event_type,
        event.c.is_machine == sa.false(),
        event.c.occurred_at >= since,
        event.c.occurred_at < until,
    ]


def won_orders_with(
    relations: Relations, product: str | None, family: str | None
) -> tuple[FromClause, FromClause, list[ColumnElement[bool]]]:
    """(orders joined to their items if needed, the orders alias, the narrowing conditions)."""
    relation = tables(relations)
    order = relation.orders.alias("journey_order")
    if product is None and family is None:
        return order, order, []
    item = relation.order_items.alias("journey_item")
    joined = order.join(item, item.c.order_id == order.c.order_id)
    if product is not None:
        return joined, order, [item.c.product_id == product]
    catalogue = relation.products.alias("journey_product")
    joined = joined.join(catalogue, catalogue.c.product_id == item.c.product_id)
    return joined, order, [catalogue.c[relation.product_family_column] == family]


def purchased_between(
    relations: Relations,
    contact_id: ColumnElement,
    since: Any,
    until: dt.datetime,
    product: str | None = None,
    family: str | None = None,
) -> ColumnElement[bool]:
    """A won order of the contact in [since, until) containing the product / a family item."""
    from_, order, narrowing = won_orders_with(relations, product, family)
    return (
        sa.select(sa.literal_column("1"))
        .select_from(from_)
        .where(
            order.c.contact_id == contact_id,
            order.c.status == "won",
            order.c.ordered_at >= since,
            order.c.ordered_at < until,
            *narrowing,
        )
        .exists()
    )


def happened(
    spec: EventSpec,
    relations: Relations,
    contact_id: ColumnElement,
    since: Any,
    until: dt.datetime,
) -> ColumnElement[bool]:
    """The contact did `spec` in [since, until): a human event, or a won order for purchases."""
    if spec.type == "purchase":
        return purchased_between(
            relations, contact_id, since, until, spec.product, spec.product_family
        )
    event = event_table(relations).alias("journey_event")
    return (
        sa.select(sa.literal_column("1"))
        .select_from(event)
        .where(
            event.c.contact_id == contact_id,
            *human_events(event, spec.type, since, until),
            *event_qualifiers(event, spec),
        )
        .exists()
    )


__all__ = [
    "event_qualifiers",
    "event_table",
    "happened",
    "human_events",
    "installation_table",
    "purchased_between",
    "won_orders_with",
]
