"""Orders, one row per order line → raw.orders (net_amount = sum of its lines) + raw.order_items.

A file carries whole orders: the lines of an order in the file replace that order's lines in
raw (lines no longer in the file are deleted), and an order lands whole or not at all: when
one of its lines is quarantined (bad value, unknown product, duplicate line, order columns
that disagree with the order's first line), all its lines are, so no order is stored with a
net amount that leaves out a line.
"""

from __future__ import annotations

from psycopg import Cursor, sql

from leadflow.imports import fields as f
from leadflow.imports.fields import Column
from leadflow.imports.kind import Kind, Landing, at_least_one_of
from leadflow.imports.sqlkit import (
    STAGING,
    Upsert,
    count,
    differing_columns_sql,
    reject,
    rows_differ_sql,
)
from leadflow.imports.summary import TableCounts

STATUSES = ("won", "cancelled")

COLUMNS = (
    Column("order_id", f.identifier, required=True),
    Column("ordered_at", f.timestamp, "timestamptz", required=True),
    Column("account_id", f.identifier),
    Column("contact_id", f.identifier),
    Column("status", f.one_of(*STATUSES), default="won"),
    Column("currency", f.currency, "char(3)", default="EUR"),
    Column("line_no", f.integer(minimum=1), "integer", required=True),
    Column("product_id", f.identifier, required=True),
    Column("quantity", f.integer(minimum=1), "integer", required=True),
    Column("line_net_amount", f.decimal(integer_digits=12), "numeric(14, 2)", required=True),
)
# The order's own columns, repeated on each of its lines.
ORDER_FIELDS = ("ordered_at", "account_id", "contact_id", "status", "currency")
# raw.orders.net_amount is numeric(14, 2).
MAX_ORDER_AMOUNT = 10**12


# --- file-level checks ------------------------------------------------------------------


def check(cursor: Cursor, present: frozenset[str]) -> None:
    reject_unknown_products(cursor)
    reject_disagreeing_lines(cursor, [name for name in ORDER_FIELDS if name in present])
    reject_oversized_orders(cursor)
    reject_rest_of_incomplete_orders(cursor)


def reject_unknown_products(cursor: Cursor) -> int:
    return reject(
        cursor,
        sql.SQL(
            "select s.line, format('product_id: %L is not a known product (not in raw.products)', "
            "s.product_id) from import_staging s "
            "where not exists (select from raw.products p where p.product_id = s.product_id)"
        ),
    )


def reject_disagreeing_lines(cursor: Cursor, compared: list[str]) -> int:
    return reject(
        cursor,
        sql.SQL(
            "select s.line, format('order %L: this line differs in %s from line %s of the "
            "same order', s.order_id, {which}, f.line) from import_staging s "
            "join (select distinct on (order_id) * from import_staging order by order_id, line) f "
            "using (order_id) where s.line <> f.line and {differ}"
        ).format(
            which=differing_columns_sql(compared, "s", "f"),
            differ=rows_differ_sql(compared, "s", "f"),
        ),
    )


def reject_oversized_orders(cursor: Cursor) -> int:
    return reject(
        cursor,
        sql.SQL(
            "select s.line, format('order %L: its lines add up to %s, more than an order amount "
            "can hold', s.order_id, t.total) from import_staging s "
            "join (select order_id, sum(line_net_amount) as total from import_staging "
            "      group by order_id having sum(line_net_amount) >= {limit}) t using (order_id)"
        ).format(limit=sql.Literal(MAX_ORDER_AMOUNT)),
    )


def reject_rest_of_incomplete_orders(cursor: Cursor) -> int:
    return reject(
        cursor,
        sql.SQL(
            "select s.line, format('order %L is not imported: line %s of the same order was "
            "quarantined', s.order_id, r.first_line) from import_staging s "
            "join (select btrim(row_data::jsonb ->> 'order_id') as order_id, "
            "      min(line) as first_line from import_rejects group by 1) r using (order_id)"
        ),
    )


# --- landing ----------------------------------------------------------------------------


def land(cursor: Cursor, present: frozenset[str]) -> Landing:
    order_fields = [name for name in ORDER_FIELDS if name in present]
    collect_orders(cursor, order_fields)
    note_orders_with_changed_columns(cursor, order_fields)
    removed = delete_lines_not_in_file(cursor)
    orders = Upsert(
        table=("raw", "orders"),
        source="import_orders",
        keys=("order_id",),
        columns=tuple((name, name) for name in [*order_fields, "net_amount"]),
    )
    orders_updated = orders.update_changed(cursor)
    orders_inserted = orders.insert_missing(cursor)
    items = Upsert(
        table=("raw", "order_items"),
        source=STAGING,
        keys=("order_id", "line_no"),
        columns=(
            ("product_id", "product_id"),
            ("quantity", "quantity"),
            ("net_amount", "line_net_amount"),
        ),
    )
    items_updated = items.update_changed(cursor, record_into="import_items_updated")
    items_inserted = items.insert_missing(cursor, record_into="import_items_inserted")
    inserted, updated = count_lines(cursor)
    order_count, line_count = count(cursor, "import_orders"), count(cursor, STAGING)
    return Landing(
        inserted=inserted,
        updated=updated,
        related={
            "raw.orders": TableCounts(
                inserted=orders_inserted,
                updated=orders_updated,
                unchanged=order_count - orders_inserted - orders_updated,
            ),
            "raw.order_items": TableCounts(
                inserted=items_inserted,
                updated=items_updated,
                unchanged=line_count - items_inserted - items_updated,
                deleted=removed,
            ),
        },
    )


def collect_orders(cursor: Cursor, order_fields: list[str]) -> None:
    """One row per order: its columns from its first line, net_amount the sum of its lines."""
    cursor.execute(
        sql.SQL(
            "create temp table import_orders on commit drop as "
            "select h.*, t.net_amount from "
            "(select distinct on (order_id) order_id, line, {fields} from import_staging "
            " order by order_id, line) h "
            "join (select order_id, sum(line_net_amount) as net_amount from import_staging "
            "      group by order_id) t on t.order_id = h.order_id"
        ).format(fields=sql.SQL(", ").join(map(sql.Identifier, order_fields)))
    )
    cursor.execute(
        "create temp table import_items_inserted (order_id text, line_no integer) on commit drop;"
        "create temp table import_items_updated (order_id text, line_no integer) on commit drop"
    )


def note_orders_with_changed_columns(cursor: Cursor, order_fields: list[str]) -> None:
    """Orders whose own columns change: every line of theirs counts as an updated row."""
    cursor.execute(
        sql.SQL(
            "create temp table import_orders_changed on commit drop as "
            "select s.order_id from import_orders s join raw.orders t on t.order_id = s.order_id "
            "where {differ}"
        ).format(differ=rows_differ_sql(order_fields, "t", "s"))
    )


def delete_lines_not_in_file(cursor: Cursor) -> int:
    cursor.execute(
        "delete from raw.order_items i using import_orders o where i.order_id = o.order_id "
        "and not exists (select from import_staging s "
        "                where s.order_id = i.order_id and s.line_no = i.line_no)"
    )
    return cursor.rowcount


def count_lines(cursor: Cursor) -> tuple[int, int]:
    """(inserted, updated) file rows: a line is updated when it or its order's columns changed."""
    cursor.execute(
        "select count(*) filter (where i.order_id is not null), "
        "       count(*) filter (where i.order_id is null "
        "                        and (u.order_id is not null or h.order_id is not null)) "
        "from import_staging s "
        "left join import_items_inserted i on i.order_id = s.order_id and i.line_no = s.line_no "
        "left join import_items_updated u on u.order_id = s.order_id and u.line_no = s.line_no "
        "left join import_orders_changed h on h.order_id = s.order_id"
    )
    inserted, updated = cursor.fetchone()
    return inserted, updated


KIND = Kind(
    name="orders",
    target="raw.orders",
    columns=COLUMNS,
    key=("order_id", "line_no"),
    key_label_sql="format('order line (order_id %L, line_no %s)', s.order_id, s.line_no)",
    check=check,
    land=land,
    one_of_columns=(("account_id", "contact_id"),),
    row_rules=(at_least_one_of("account_id", "contact_id"),),
)
