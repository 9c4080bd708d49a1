"""Migration 0002: the indexes that make the compiler's per-contact lookups index scans."""

from __future__ import annotations

import sqlalchemy as sa

from leadflow.warehouse.migrate import downgrade, upgrade

EXPECTED = {
    ("events", "events_contact_type_time_idx"): "(contact_id, event_type, occurred_at)",
    ("installed_base", "installed_base_account_idx"): "(account_id)",
    ("installed_base", "installed_base_contact_idx"): "(contact_id)",
}


def _indexes(connection) -> dict[tuple[str, str], str]:
    rows = connection.exec_driver_sql(
        "select tablename, indexname, indexdef from pg_indexes where schemaname = 'raw'"
    )
    return {(table, name): definition for table, name, definition in rows}


def test_lookup_indexes_exist(db):
    indexes = _indexes(db)
    for key, columns in EXPECTED.items():
        assert key in indexes, key
        assert indexes[key].endswith(f"USING btree {columns}")
    # Order lookups are served by 0001's index and the order_items primary key.
    assert ("orders", "orders_contact_idx") in indexes
    assert indexes[("order_items", "order_items_pkey")].endswith("(order_id, line_no)")


def test_downgrade_drops_only_these_indexes(empty_database_url):
    engine = sa.create_engine(empty_database_url)
    upgrade(engine)
    downgrade(engine, "0001")
    with engine.connect() as connection:
        remaining = _indexes(connection)
    assert not set(EXPECTED) & set(remaining)
    assert ("orders", "orders_contact_idx") in remaining
    upgrade(engine)
    with engine.connect() as connection:
        assert set(EXPECTED) <= set(_indexes(connection))
    engine.dispose()
