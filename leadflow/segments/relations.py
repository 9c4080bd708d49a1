"""The relations a compiled filter reads, as SQLAlchemy Core table clauses.

The compiler never names a table itself: `Relations` says where the contact facts, events,
orders, order items, products and the installed base live. The defaults are the dbt models
(`marts.dim_contacts` and the staging views); tests and other callers point them elsewhere,
e.g. at the raw tables, which have the same columns (`RAW_RELATIONS`).

The contact facts relation has one row per contact and one column per field of the field
catalogue (`leadflow.config.fields.FIELDS`), named like the field, plus `account_id`. Only the
columns a filter uses appear in its SQL, so a relation lacking a column fails when the query
runs (PostgreSQL names the column), not when the filter is compiled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.expression import Alias, TableClause
from sqlalchemy.types import TypeEngine

from leadflow.config.fields import FIELDS

# The alias every compiled filter uses for the contact row: `contact.country = ...`.
CONTACT_ALIAS = "contact"

# The SQL type of each field type of the catalogue (binds are typed by the column they meet).
SQL_TYPES: dict[str, TypeEngine] = {
    "text": sa.Text(),
    "enum": sa.Text(),
    "integer": sa.Integer(),
    "numeric": sa.Numeric(),
    "date": sa.Date(),
    "timestamp": sa.DateTime(timezone=True),
    "boolean": sa.Boolean(),
    "text_array": postgresql.ARRAY(sa.Text()),
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


def _split(qualified: str, what: str) -> tuple[str | None, str]:
    parts = qualified.split(".")
    if len(parts) > 2 or not all(_NAME.fullmatch(part) for part in parts):
        raise ValueError(f"relation {what} must be 'schema.table' or 'table', got {qualified!r}")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


@dataclass(frozen=True)
class Relations:
    """Qualified names (`schema.table` or `table`) of the relations a filter reads."""

    contacts: str = "marts.dim_contacts"
    events: str = "staging.stg_raw__events"
    orders: str = "staging.stg_raw__orders"
    order_items: str = "staging.stg_raw__order_items"
    products: str = "staging.stg_raw__products"
    installed_base: str = "staging.stg_raw__installed_base"
    # The products column holding the family id: staging renames raw.products.family.
    product_family_column: str = "product_family"

    def __post_init__(self) -> None:
        for name in ("contacts", "events", "orders", "order_items", "products", "installed_base"):
            _split(getattr(self, name), name)
        if not _NAME.fullmatch(self.product_family_column):
            raise ValueError(
                f"product_family_column must be a column name, got {self.product_family_column!r}"
            )


DEFAULT_RELATIONS = Relations()
"""The dbt models: what the nightly build and `leadflow segment preview` read."""

RAW_RELATIONS = Relations(
    events="raw.events",
    orders="raw.orders",
    order_items="raw.order_items",
    products="raw.products",
    installed_base="raw.installed_base",
    product_family_column="family",
)
"""The raw tables for events, orders, products and installed base (facts stay in marts)."""


def _table(qualified: str, *columns: sa.ColumnClause) -> TableClause:
    schema, name = _split(qualified, "name")
    return sa.table(name, *columns, schema=schema)


@dataclass(frozen=True)
class Tables:
    """The table clauses of one `Relations`; subqueries alias them as they need."""

    contact: Alias
    events: TableClause
    orders: TableClause
    order_items: TableClause
    products: TableClause
    installed_base: TableClause
    product_family_column: str


@cache
def tables(relations: Relations) -> Tables:
    """The table clauses for `relations`, built once per Relations value.

    Cached so that every filter compiled for the same relations shares one `contact` alias:
    SQLAlchemy correlates subqueries by object identity, and a caller building its own
    SELECT around a compiled predicate must select FROM this very alias (`contact_row`).
    """
    facts_columns = [sa.column(spec.name, SQL_TYPES[spec.type]) for spec in FIELDS.values()]
    if "account_id" not in FIELDS:
        facts_columns.append(sa.column("account_id", sa.Text()))
    return Tables(
        contact=_table(relations.contacts, *facts_columns).alias(CONTACT_ALIAS),
        events=_table(
            relations.events,
            sa.column("contact_id", sa.Text()),
            sa.column("event_type", sa.Text()),
            sa.column("occurred_at", sa.DateTime(timezone=True)),
            sa.column("is_machine", sa.Boolean()),
            sa.column("mailing_id", sa.Text()),
            sa.column("link_id", sa.Text()),
            sa.column("link_tag", sa.Text()),
            sa.column("asset_id", sa.Text()),
            sa.column("url", sa.Text()),
        ),
        orders=_table(
            relations.orders,
            sa.column("order_id", sa.Text()),
            sa.column("contact_id", sa.Text()),
            sa.column("ordered_at", sa.DateTime(timezone=True)),
            sa.column("status", sa.Text()),
        ),
        order_items=_table(
            relations.order_items,
            sa.column("order_id", sa.Text()),
            sa.column("product_id", sa.Text()),
        ),
        products=_table(
            relations.products,
            sa.column("product_id", sa.Text()),
            sa.column(relations.product_family_column, sa.Text()),
        ),
        installed_base=_table(
            relations.installed_base,
            sa.column("contact_id", sa.Text()),
            sa.column("account_id", sa.Text()),
            sa.column("product_id", sa.Text()),
            sa.column("installed_on", sa.Date()),
            sa.column("next_maintenance_date", sa.Date()),
        ),
        product_family_column=relations.product_family_column,
    )


def contact_row(relations: Relations) -> Alias:
    """The contact facts relation aliased `contact`: select FROM this around a predicate."""
    return tables(relations).contact
