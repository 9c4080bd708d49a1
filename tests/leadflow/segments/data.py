"""Test data for the filter compiler: a facts table built from the field catalogue, rows for
the raw tables, and a one-call way to get a filter's members.

The compiler reads the raw tables here (same columns as the staging views) and a `test_facts`
table with one column per catalogue field, so each test states exactly the rows it needs.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.engine import Connection

from leadflow.config.fields import FIELDS
from leadflow.config.filters import Filter, FilterNode
from leadflow.segments import Relations, segment_query

UTC = dt.UTC
FACTS_TABLE = "test_facts"
TEST_RELATIONS = Relations(
    contacts=f"public.{FACTS_TABLE}",
    events="raw.events",
    orders="raw.orders",
    order_items="raw.order_items",
    products="raw.products",
    installed_base="raw.installed_base",
    product_family_column="family",
)

# PostgreSQL column types per catalogue field type (written out here, not taken from the
# compiler, so the table is what a dbt model would build).
DDL_TYPES = {
    "text": "text",
    "enum": "text",
    "integer": "integer",
    "numeric": "numeric(16, 2)",
    "date": "date",
    "timestamp": "timestamptz",
    "boolean": "boolean",
    "text_array": "text[]",
}

PRODUCTS = [
    ("HS2000", "hydrostat"),
    ("HS3000", "hydrostat"),
    ("CLN-10", "cleaning_agent"),
    ("CLN-25", "cleaning_agent"),
    ("MNT-KIT", "maintenance_device"),
    ("MNT-DIAG", "maintenance_device"),
    ("SW-SCOPE", "software"),
]
FAMILY = dict(PRODUCTS)

_FILTER = TypeAdapter(Filter)
_ids = itertools.count(1)


def parse_filter(data: Any) -> FilterNode:
    """A filter from its YAML form, validated like the config loader validates it."""
    return _FILTER.validate_python(data)


def at(text: str) -> dt.datetime:
    """An aware timestamp from ISO text; a missing offset means UTC."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def create_facts_table(connection: Connection) -> None:
    columns = [f"{spec.name} {DDL_TYPES[spec.type]}" for spec in FIELDS.values()]
    columns.append("account_id text")
    connection.exec_driver_sql(f"create table public.{FACTS_TABLE} ({', '.join(columns)})")
    connection.exec_driver_sql(f"alter table public.{FACTS_TABLE} add primary key (contact_id)")


def insert_products(connection: Connection) -> None:
    connection.execute(
        sa.text(
            "insert into raw.products (product_id, sku, name, family, list_price, unit_cost) "
            "values (:id, :id, :id, :family, 100, 50)"
        ),
        [{"id": product, "family": family} for product, family in PRODUCTS],
    )


def add_contacts(connection: Connection, *rows: Mapping[str, Any]) -> None:
    """Rows of test_facts: each a mapping with contact_id and any catalogue columns."""
    for row in rows:
        names = list(row)
        connection.execute(
            sa.text(
                f"insert into public.{FACTS_TABLE} ({', '.join(names)}) "
                f"values ({', '.join(':' + name for name in names)})"
            ),
            dict(row),
        )


def add_events(connection: Connection, *rows: Mapping[str, Any]) -> None:
    """raw.events rows: contact_id, event_type, occurred_at; is_machine defaults to false."""
    columns = ("mailing_id", "link_id", "link_tag", "asset_id", "url")
    connection.execute(
        sa.text(
            "insert into raw.events (event_id, contact_id, event_type, occurred_at, is_machine, "
            "mailing_id, link_id, link_tag, asset_id, url) values (:event_id, :contact_id, "
            ":event_type, :occurred_at, :is_machine, :mailing_id, :link_id, :link_tag, "
            ":asset_id, :url)"
        ),
        [
            {
                "event_id": f"e{next(_ids)}",
                "is_machine": False,
                **{column: None for column in columns},
                **row,
            }
            for row in rows
        ],
    )


def add_order(
    connection: Connection,
    contact_id: str | None,
    ordered_at: dt.datetime,
    products: Iterable[str] = (),
    *,
    status: str = "won",
    order_id: str | None = None,
) -> str:
    """A raw order with one item per product; returns its id."""
    order_id = order_id or f"o{next(_ids)}"
    connection.execute(
        sa.text(
            "insert into raw.orders (order_id, contact_id, ordered_at, status, net_amount) "
            "values (:order_id, :contact_id, :ordered_at, :status, 100)"
        ),
        {
            "order_id": order_id,
            "contact_id": contact_id,
            "ordered_at": ordered_at,
            "status": status,
        },
    )
    items = [
        {"order_id": order_id, "line_no": line, "product_id": product}
        for line, product in enumerate(products, start=1)
    ]
    if items:
        connection.execute(
            sa.text(
                "insert into raw.order_items (order_id, line_no, product_id, quantity, net_amount) "
                "values (:order_id, :line_no, :product_id, 1, 100)"
            ),
            items,
        )
    return order_id


def add_installations(connection: Connection, *rows: Mapping[str, Any]) -> None:
    """raw.installed_base rows: account_id, product_id, installed_on (+ contact_id, next date)."""
    connection.execute(
        sa.text(
            "insert into raw.installed_base (installation_id, account_id, contact_id, product_id, "
            "installed_on, next_maintenance_date) values (:installation_id, :account_id, "
            ":contact_id, :product_id, :installed_on, :next_maintenance_date)"
        ),
        [
            {
                "installation_id": f"i{next(_ids)}",
                "contact_id": None,
                "next_maintenance_date": None,
                **row,
            }
            for row in rows
        ],
    )


def members(
    connection: Connection,
    filter: Any,
    as_of: dt.date,
    segments: Mapping[str, Any] | None = None,
) -> set[str]:
    """The contact ids `filter` (a node or its YAML form) selects for `as_of`."""
    node = filter if not isinstance(filter, dict) else parse_filter(filter)
    nested = {
        name: value if not isinstance(value, dict) else parse_filter(value)
        for name, value in (segments or {}).items()
    }
    query = segment_query(node, as_of, relations=TEST_RELATIONS, segments=nested)
    return set(connection.execute(query).scalars())
