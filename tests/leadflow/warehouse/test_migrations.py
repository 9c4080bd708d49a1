import sqlalchemy as sa

from leadflow.warehouse.migrate import current_revision, downgrade, upgrade


def _schemas(engine) -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.exec_driver_sql(
                "select schema_name from information_schema.schemata"
            ).scalars()
        )


def _tables(engine, schema: str) -> set[str]:
    return set(sa.inspect(engine).get_table_names(schema=schema))


def test_upgrade_from_empty_creates_raw_and_ops(empty_database_url):
    engine = sa.create_engine(empty_database_url)
    upgrade(engine)
    assert {"raw", "ops"} <= _schemas(engine)
    assert {
        "contacts",
        "accounts",
        "orders",
        "order_items",
        "products",
        "installed_base",
        "events",
        "fair_leads",
    } <= _tables(engine, "raw")
    assert {"quarantine", "import_runs", "runs", "quality_results"} <= _tables(engine, "ops")
    assert current_revision(engine) is not None
    engine.dispose()


def test_upgrade_is_idempotent(empty_database_url):
    engine = sa.create_engine(empty_database_url)
    upgrade(engine)
    first = current_revision(engine)
    upgrade(engine)
    assert current_revision(engine) == first
    engine.dispose()


def test_downgrade_to_base_and_up_again(empty_database_url):
    engine = sa.create_engine(empty_database_url)
    upgrade(engine)
    downgrade(engine, "base")
    assert "raw" not in _schemas(engine)
    upgrade(engine)
    assert "contacts" in _tables(engine, "raw")
    engine.dispose()


def test_email_unique_ignoring_case_and_spaces(warehouse):
    insert = sa.text("insert into raw.contacts (contact_id, email) values (:id, :email)")
    with warehouse.begin() as connection:
        connection.execute(insert, {"id": "c1", "email": "Max@Example.com"})
    try:
        with warehouse.begin() as connection:
            connection.execute(insert, {"id": "c2", "email": "  max@example.COM "})
    except sa.exc.IntegrityError:
        return
    raise AssertionError("a second contact with the same email was accepted")


def _event_indexes(engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "select indexname, indexdef from pg_indexes "
            "where schemaname = 'raw' and tablename = 'events'"
        ).all()
    return {name: definition for name, definition in rows}


def test_raw_events_keeps_one_index_on_event_seq(empty_database_url):
    # Every tracked open and click maintains every index of raw.events: the incremental
    # readers use the b-tree, so the BRIN index of 0001 is gone, and a downgrade restores it.
    engine = sa.create_engine(empty_database_url)
    upgrade(engine)
    on_event_seq = {
        name: definition
        for name, definition in _event_indexes(engine).items()
        if definition.endswith("(event_seq)")
    }
    assert list(on_event_seq) == ["events_seq_idx"]
    assert "USING btree" in on_event_seq["events_seq_idx"]
    downgrade(engine, "0009_outbox_due_order")
    assert "USING brin" in _event_indexes(engine)["events_seq_brin"]
    engine.dispose()


# Segment membership of three materialised dates, as 0004 stored it: c1 a member throughout,
# c2 on the first and last date only, c3 from the second date on; `gone` (a segment no
# longer materialised) on one date.
SEGMENT_DATES = {
    ("2026-11-01", "germans"): ["c1", "c2"],
    ("2026-11-02", "germans"): ["c1", "c3"],
    ("2026-11-03", "germans"): ["c1", "c2", "c3"],
    ("2026-11-02", "gone"): ["c4"],
}


def _store_dates(engine) -> None:
    with engine.begin() as connection:
        for (as_of, segment), members in SEGMENT_DATES.items():
            date = {"as_of": as_of, "segment": segment, "members": len(members)}
            connection.execute(
                sa.text(
                    "insert into ops.segment_materializations "
                    "(as_of, segment, members, sql_sha256) "
                    "values (cast(:as_of as date), :segment, :members, 'test')"
                ),
                date,
            )
            connection.execute(
                sa.text(
                    "insert into ops.segment_members (as_of, segment, contact_id) "
                    "values (cast(:as_of as date), :segment, :contact_id)"
                ),
                [{**date, "contact_id": contact_id} for contact_id in members],
            )


def _members_by_date(engine) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    with engine.connect() as connection:
        for as_of, segment, contact_id in connection.exec_driver_sql(
            "select as_of, segment, contact_id from ops.segment_members "
            "order by as_of, segment, contact_id"
        ):
            found.setdefault((as_of.isoformat(), segment), []).append(contact_id)
    return found


def test_segment_dates_become_spans_and_back(empty_database_url):
    engine = sa.create_engine(empty_database_url)
    upgrade(engine, "0010_events_one_seq_index")
    _store_dates(engine)

    upgrade(engine, "0011_segment_member_spans")

    with engine.connect() as connection:
        spans = connection.exec_driver_sql(
            "select segment, contact_id, valid_from::text, valid_to::text "
            "from ops.segment_member_spans order by segment, contact_id, valid_from"
        ).all()
    assert [tuple(span) for span in spans] == [
        ("germans", "c1", "2026-11-01", None),
        ("germans", "c2", "2026-11-01", "2026-11-02"),
        ("germans", "c2", "2026-11-03", None),
        ("germans", "c3", "2026-11-02", None),
        ("gone", "c4", "2026-11-02", None),
    ]
    # The view lists every date's members as the table did.
    assert _members_by_date(engine) == SEGMENT_DATES
    downgrade(engine, "0010_events_one_seq_index")
    assert "segment_members" in _tables(engine, "ops")
    assert _members_by_date(engine) == SEGMENT_DATES
    engine.dispose()
