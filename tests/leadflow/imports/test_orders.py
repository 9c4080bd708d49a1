"""Orders: order lines land as orders + items, whole orders or none, idempotent, headers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from leadflow.errors import LeadflowError
from leadflow.imports import import_file

UTC = dt.UTC
HEADER = (
    "order_id,ordered_at,account_id,contact_id,status,currency,"
    "line_no,product_id,quantity,line_net_amount\n"
)


def test_good_file_lands_exactly(warehouse, products, data_dir, query):
    summary = import_file(warehouse, "orders", data_dir / "orders.csv")

    assert (summary.rows_read, summary.inserted, summary.updated, summary.quarantined) == (
        6, 6, 0, 0,
    )  # fmt: skip
    assert summary.related["raw.orders"].inserted == 3
    assert query(
        "select order_id, account_id, contact_id, ordered_at, status, net_amount, currency "
        "from raw.orders order by order_id"
    ) == [
        ("o-5001", "a-100", "c-1002", dt.datetime(2021, 3, 15, 9, 30, tzinfo=UTC), "won",
         Decimal("39700.00"), "EUR"),
        ("o-5002", "a-100", "c-1002", dt.datetime(2024, 5, 2, tzinfo=UTC), "cancelled",
         Decimal("560.00"), "EUR"),
        # Empty status and currency take their defaults.
        ("o-5003", None, "c-1004", dt.datetime(2024, 6, 20, 8, tzinfo=UTC), "won",
         Decimal("55190.00"), "EUR"),
    ]  # fmt: skip
    assert query("select * from raw.order_items order by order_id, line_no") == [
        ("o-5001", 1, "HS2000", 1, Decimal("38500.00")),
        ("o-5001", 2, "MNT-KIT", 1, Decimal("1200.00")),
        ("o-5002", 1, "CLN-25", 4, Decimal("560.00")),
        ("o-5003", 1, "HS3000", 1, Decimal("52000.00")),
        ("o-5003", 2, "CLN-10", 10, Decimal("790.00")),
        ("o-5003", 3, "SW-SCOPE", 1, Decimal("2400.00")),
    ]


BAD_ORDERS = HEADER + (
    "o-1,2024-01-10,a-1,,won,EUR,1,HS3000,1,52000.00\n"  # 2 good
    "o-1,2024-01-10,a-1,,won,EUR,2,CLN-10,2,158.00\n"  # 3 good
    "o-2,2024-01-11,a-1,,won,EUR,1,CLN-10,1,-79.00\n"  # 4 negative amount
    "o-3,2024-01-12,a-1,,won,EUR,1,HS9999,1,100.00\n"  # 5 unknown product
    "o-3,2024-01-12,a-1,,won,EUR,2,CLN-10,1,79.00\n"  # 6 rest of o-3
    "o-4,10.01.2024,a-1,,won,EUR,1,CLN-10,1,79.00\n"  # 7 bad date
    "o-5,2024-01-13,a-1,,shipped,EUR,1,CLN-10,1,79.00\n"  # 8 unknown status
    "o-6,2024-01-13,,,won,EUR,1,CLN-10,1,79.00\n"  # 9 neither account nor contact
    "o-7,2024-01-13,a-1,,won,EUR,1,CLN-10,0,79.00\n"  # 10 quantity 0
    "o-8,2024-01-14,a-1,,won,EUR,1,CLN-10,1,79.00\n"  # 11 rest of o-8
    "o-8,2024-01-14,a-1,,won,EUR,1,CLN-25,1,140.00\n"  # 12 duplicate line
    "o-9,2024-01-15,a-1,,won,EUR,1,CLN-25,1,140.00\n"  # 13 rest of o-9
    "o-9,2024-01-15,a-1,,cancelled,EUR,2,CLN-10,1,79.00\n"  # 14 disagrees with line 13
    "o-10,2024-01-16,,c-1,won,eur,1,MNT-DIAG,1,4900.00\n"  # 15 good
)


def test_bad_rows_and_their_orders_are_quarantined(
    warehouse, products, write_csv, query, quarantined
):
    path = write_csv(BAD_ORDERS)
    summary = import_file(warehouse, "orders", path)

    assert (summary.rows_read, summary.inserted, summary.quarantined) == (14, 3, 11)
    assert query("select order_id, net_amount, currency from raw.orders order by 1") == [
        ("o-1", Decimal("52158.00"), "EUR"),
        ("o-10", Decimal("4900.00"), "EUR"),
    ]
    reasons = quarantined(path)
    assert reasons[4] == "line_net_amount: '-79.00' must not be negative"
    assert reasons[5] == "product_id: 'HS9999' is not a known product (not in raw.products)"
    assert reasons[6] == "order 'o-3' is not imported: line 5 of the same order was quarantined"
    assert reasons[7].startswith("ordered_at: '10.01.2024' is not an ISO-8601 timestamp")
    assert reasons[8] == "status: 'shipped' is not one of won, cancelled"
    assert reasons[9] == "account_id, contact_id: at least one is required"
    assert reasons[10] == "quantity: '0' must be at least 1"
    assert reasons[11] == "order 'o-8' is not imported: line 12 of the same order was quarantined"
    assert reasons[12] == (
        "duplicate order line (order_id 'o-8', line_no 1) (first seen on line 11)"
    )
    assert reasons[13] == "order 'o-9' is not imported: line 14 of the same order was quarantined"
    assert reasons[14] == "order 'o-9': this line differs in status from line 13 of the same order"
    assert sorted(reasons) == list(range(4, 15))


def test_reimport_changes_nothing(warehouse, products, data_dir, write_csv, query):
    bad = write_csv(BAD_ORDERS)
    import_file(warehouse, "orders", data_dir / "orders.csv")
    import_file(warehouse, "orders", bad)
    items_before = query("select * from raw.order_items order by 1, 2")

    again = import_file(warehouse, "orders", data_dir / "orders.csv")
    bad_again = import_file(warehouse, "orders", bad)

    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 6)
    assert again.related["raw.orders"].unchanged == 3
    assert (bad_again.inserted, bad_again.updated, bad_again.unchanged) == (0, 0, 3)
    assert (bad_again.quarantined, bad_again.newly_quarantined) == (11, 0)
    assert query("select count(*) from ops.quarantine") == [(11,)]
    assert query("select * from raw.order_items order by 1, 2") == items_before


def test_a_new_version_updates_lines_orders_and_drops_missing_lines(
    warehouse, products, data_dir, write_csv, query
):
    import_file(warehouse, "orders", data_dir / "orders.csv")
    path = write_csv(
        HEADER
        + "o-5001,2021-03-15T10:30:00+01:00,a-100,c-1002,won,EUR,1,HS2000,1,38500.00\n"
        + "o-5001,2021-03-15T10:30:00+01:00,a-100,c-1002,won,EUR,2,MNT-DIAG,1,2400.00\n"
        + "o-5002,2024-05-02,a-100,c-1002,won,EUR,1,CLN-25,4,560.00\n"
        + "o-5003,2024-06-20T08:00:00Z,,c-1004,,,1,HS3000,1,52000.00\n"
        + "o-5003,2024-06-20T08:00:00Z,,c-1004,,,2,CLN-10,10,790.00\n"
        + "o-5004,2024-07-01,a-300,c-1004,won,EUR,1,CLN-10,1,79.00\n"
    )

    summary = import_file(warehouse, "orders", path)

    # o-5001 line 2 changed, o-5002 changed status (its line counts as updated), o-5004 is new.
    assert (summary.inserted, summary.updated, summary.unchanged) == (1, 2, 3)
    orders, items = summary.related["raw.orders"], summary.related["raw.order_items"]
    assert (orders.inserted, orders.updated, orders.unchanged) == (1, 3, 0)
    assert (items.inserted, items.updated, items.unchanged, items.deleted) == (1, 1, 4, 1)
    assert query("select order_id, status, net_amount from raw.orders order by 1") == [
        ("o-5001", "won", Decimal("40900.00")),
        ("o-5002", "won", Decimal("560.00")),
        ("o-5003", "won", Decimal("52790.00")),
        ("o-5004", "won", Decimal("79.00")),
    ]
    assert query("select line_no from raw.order_items where order_id = 'o-5003' order by 1") == [
        (1,),
        (2,),
    ]


def test_wrong_header_names_the_columns_and_writes_nothing(warehouse, products, write_csv, query):
    path = write_csv(
        "order_id,ordered_at,account_id,product_id,quantity,line_net_amount,price\n"
        "o-1,2024-01-10,a-1,CLN-10,1,79.00,79.00\n"
    )

    with pytest.raises(LeadflowError) as raised:
        import_file(warehouse, "orders", path)

    assert "missing required column(s): line_no" in str(raised.value)
    assert "unknown column(s): price" in str(raised.value)
    assert query("select count(*) from ops.import_runs") == [(0,)]
    assert query("select count(*) from raw.orders") == [(0,)]


def test_a_header_needs_account_id_or_contact_id(warehouse, write_csv):
    path = write_csv(
        "order_id,ordered_at,line_no,product_id,quantity,line_net_amount\n"
        "o-1,2024-01-10,1,CLN-10,1,79.00\n"
    )

    with pytest.raises(LeadflowError, match="needs at least one of the columns account_id or"):
        import_file(warehouse, "orders", path)
