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
