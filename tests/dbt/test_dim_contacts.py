"""marts.dim_contacts from a real dbt build on a hand-made pool, for as_of = 2025-06-30.

D = 2025-06-30, so the cut-off is 2025-07-01 00:00:00 UTC; "within the last 365 days" is
(2024-06-30, 2025-06-30]. Every case sits on a boundary of SPEC §2.1. The database's time
zone is Europe/Berlin on purpose: order dates must be UTC dates whatever the session says.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from leadflow.transform import dbt

AS_OF = dt.date(2025, 6, 30)

# fmt: off
ACCOUNTS = [
    # account_id, name, industry, employee_count, annual_revenue, country, region, postcode
    ("acc-de", "Maschinenbau Huber GmbH", "machine_tools", 120, "25000000.00", "DE", "Bayern",
     "80331"),
    ("acc-fr", "Usinage Lefèvre SA", "metalworking", 80, "9000000.00", "FR",
     "Auvergne-Rhône-Alpes", "69001"),
]

CONTACTS = [
    # contact_id, email, country, account_id, lifecycle_stage (from the CRM)
    ("c-no-order", "  Peter.Produzent@Huber.example ", "DE", "acc-de", None),
    ("c-cancelled-only", "eva@huber.example", "AT", "acc-de", None),
    ("c-after-cutoff", "urs@huber.example", "CH", "acc-de", None),
    ("c-last-second", "claire@lefevre.example", "FR", "acc-fr", None),
    ("c-new-364", "giulia@example.it", "IT", None, None),
    ("c-existing-365", "javier@example.es", "ES", None, None),
    ("c-berlin-midnight", "jonas@huber.example", "DE", "acc-de", None),
    # No country of its own: it lives where its company (FR) is.
    ("c-crm-stage", "luc@lefevre.example", None, "acc-fr", " Opportunity "),
    ("c-no-country", "anon@example.org", None, None, None),
]

ORDERS = [
    # order_id, contact_id, account_id, ordered_at, status, net_amount
    ("o-cancelled", "c-cancelled-only", "acc-de", "2025-03-01 10:00:00+00", "cancelled", "5000.00"),
    # The first instant after the cut-off: not seen by the run for D.
    ("o-at-cutoff", "c-after-cutoff", "acc-de", "2025-07-01 00:00:00+00", "won", "777.00"),
    # The last second before the cut-off: seen.
    ("o-last-second", "c-last-second", "acc-fr", "2025-06-30 23:59:59+00", "won", "1500.25"),
    ("o-next-day", "c-last-second", "acc-fr", "2025-07-01 00:00:00+00", "won", "999.00"),
    # First order exactly 364 days before D (2024-07-01): new.
    ("o-364-first", "c-new-364", None, "2024-07-01 08:00:00+00", "won", "12000.00"),
    ("o-364-second", "c-new-364", None, "2025-05-10 14:00:00+00", "won", "349.90"),
    ("o-364-cancelled", "c-new-364", None, "2025-06-01 09:00:00+00", "cancelled", "800.00"),
    # First order exactly 365 days before D (2024-06-30): existing.
    ("o-365", "c-existing-365", None, "2024-06-30 12:00:00+00", "won", "8000.00"),
    # Just after midnight in Berlin on 2024-07-01 is still 2024-06-30 in UTC: existing.
    ("o-berlin", "c-berlin-midnight", "acc-de", "2024-07-01 00:30:00+02", "won", "450.00"),
    ("o-crm", "c-crm-stage", "acc-fr", "2020-01-15 09:00:00+00", "won", "3000.00"),
    # An account-level order without a contact counts for no contact.
    ("o-account-only", None, "acc-de", "2025-06-01 09:00:00+00", "won", "10000.00"),
]

D = dt.date
# contact_id: (email, country, customer_status, lifecycle_stage, tenant_code,
#              order_count, total_revenue, first_order_date, last_purchase_date)
EXPECTED = {
    "c-no-order": ("peter.produzent@huber.example", "DE", "lead", "lead", "hq",
                   0, Decimal("0.00"), None, None),
    "c-cancelled-only": ("eva@huber.example", "AT", "lead", "lead", "hq",
                         0, Decimal("0.00"), None, None),
    "c-after-cutoff": ("urs@huber.example", "CH", "lead", "lead", "hq",
                       0, Decimal("0.00"), None, None),
    "c-last-second": ("claire@lefevre.example", "FR", "new_customer", "customer", "fr",
                      1, Decimal("1500.25"), D(2025, 6, 30), D(2025, 6, 30)),
    "c-new-364": ("giulia@example.it", "IT", "new_customer", "customer", "it",
                  2, Decimal("12349.90"), D(2024, 7, 1), D(2025, 5, 10)),
    "c-existing-365": ("javier@example.es", "ES", "existing_customer", "customer", "es",
                       1, Decimal("8000.00"), D(2024, 6, 30), D(2024, 6, 30)),
    "c-berlin-midnight": ("jonas@huber.example", "DE", "existing_customer", "customer", "hq",
                          1, Decimal("450.00"), D(2024, 6, 30), D(2024, 6, 30)),
    "c-crm-stage": ("luc@lefevre.example", "FR", "existing_customer", "opportunity", "fr",
                    1, Decimal("3000.00"), D(2020, 1, 15), D(2020, 1, 15)),
    "c-no-country": ("anon@example.org", None, "lead", "lead", "hq",
                     0, Decimal("0.00"), None, None),
}
# fmt: on


def _insert(connection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    placeholders = ", ".join(f":{column}" for column in columns)
    connection.execute(
        sa.text(f"insert into {table} ({', '.join(columns)}) values ({placeholders})"),
        [dict(zip(columns, row, strict=True)) for row in rows],
    )


def _seed(engine: Engine) -> None:
    with engine.begin() as connection:
        _insert(
            connection,
            "raw.accounts",
            ("account_id", "name", "industry", "employee_count", "annual_revenue", "country",
             "region", "postcode"),
            ACCOUNTS,
        )  # fmt: skip
        # Every contact has the same person fields; the cases differ in what matters here.
        _insert(
            connection,
            "raw.contacts",
            ("contact_id", "email", "country", "account_id", "lifecycle_stage", "first_name",
             "last_name", "salutation", "language", "owner", "source", "consent_status"),
            [(*row, "Vorname", "Nachname", "Herr", "de", "anna.schmidt", "crm", "confirmed")
             for row in CONTACTS],
        )  # fmt: skip
        _insert(
            connection,
            "raw.orders",
            ("order_id", "contact_id", "account_id", "ordered_at", "status", "net_amount"),
            ORDERS,
        )


@dataclass
class Built:
    engine: Engine
    environ_before: dict[str, str]
    environ_after: dict[str, str]


@pytest.fixture(scope="module")
def build_result(module_database: URL, tmp_path_factory) -> Iterator[Built]:
    """The module's database, seeded and built once by dbt for AS_OF."""
    engine = sa.create_engine(module_database)
    with engine.begin() as connection:
        # dbt's sessions start in Berlin time: UTC dates must not depend on it.
        connection.execute(
            sa.text(f"alter database {module_database.database} set timezone = 'Europe/Berlin'")
        )
    _seed(engine)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEADFLOW_WAREHOUSE_URL", module_database.render_as_string(False))
        patch.setenv("LEADFLOW_DBT_TARGET_PATH", str(tmp_path_factory.mktemp("dbt-target")))
        environ_before = dict(os.environ)
        dbt.build(AS_OF)
        environ_after = dict(os.environ)
    yield Built(engine, environ_before, environ_after)
    engine.dispose()


@pytest.fixture
def built(build_result: Built) -> Engine:
    return build_result.engine


def _rows(engine: Engine, sql: str) -> list[sa.Row]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(sql)))


def test_customer_status_and_purchases_match_spec_boundaries(built):
    rows = _rows(
        built,
        "select contact_id, email, country, customer_status, lifecycle_stage, tenant_code,"
        " order_count, total_revenue, first_order_date, last_purchase_date"
        " from marts.dim_contacts",
    )
    assert {row[0]: tuple(row[1:]) for row in rows} == EXPECTED


def test_every_row_carries_the_runs_date(built):
    assert _rows(built, "select distinct as_of from marts.dim_contacts") == [(AS_OF,)]


def test_account_owner_and_consent_fields_come_through(built):
    (row,) = _rows(
        built,
        "select first_name, last_name, salutation, language, account_id, account_name,"
        " industry, employee_count, annual_revenue, region, postcode, owner, source,"
        " consent_status from marts.dim_contacts where contact_id = 'c-no-order'",
    )
    assert tuple(row) == (
        "Vorname", "Nachname", "Herr", "de", "acc-de", "Maschinenbau Huber GmbH",
        "machine_tools", 120, Decimal("25000000.00"), "Bayern", "80331", "anna.schmidt",
        "crm", "confirmed",
    )  # fmt: skip


def test_intermediate_aggregate_has_only_contacts_with_won_orders(built):
    rows = _rows(
        built,
        "select contact_id, order_count, total_net_revenue"
        " from intermediate.int_contacts_orders_aggregated order by contact_id",
    )
    assert [tuple(row) for row in rows] == [
        ("c-berlin-midnight", 1, Decimal("450.00")),
        ("c-crm-stage", 1, Decimal("3000.00")),
        ("c-existing-365", 1, Decimal("8000.00")),
        ("c-last-second", 1, Decimal("1500.25")),
        ("c-new-364", 2, Decimal("12349.90")),
    ]


def test_staging_keeps_cancelled_orders_with_is_won(built):
    rows = _rows(
        built,
        "select order_id, is_won from staging.stg_raw__orders"
        " where contact_id = 'c-new-364' order by order_id",
    )
    assert [tuple(row) for row in rows] == [
        ("o-364-cancelled", False),
        ("o-364-first", True),
        ("o-364-second", True),
    ]


def test_dbt_owns_exactly_the_three_schemas_by_name(built):
    rows = _rows(
        built,
        "select table_schema, table_name, table_type from information_schema.tables"
        " where table_schema not in ('pg_catalog', 'information_schema', 'raw', 'ops')"
        " order by table_schema, table_name",
    )
    by_schema: dict[str, dict[str, str]] = {}
    for schema, name, kind in rows:
        by_schema.setdefault(schema, {})[name] = kind
    # Custom schema names are used verbatim: no `<target>_staging` prefixes anywhere.
    assert set(by_schema) == {"staging", "intermediate", "marts"}
    staging = {
        f"stg_raw__{name}"
        for name in (
            "accounts",
            "contacts",
            "events",
            "fair_leads",
            "installed_base",
            "order_items",
            "orders",
            "products",
        )
    }
    assert set(by_schema["staging"]) == staging
    assert set(by_schema["staging"].values()) == {"VIEW"}
    assert by_schema["intermediate"]["int_contacts_orders_aggregated"] == "VIEW"
    assert by_schema["marts"]["dim_contacts"] == "BASE TABLE"
    assert all(name.startswith("int_") for name in by_schema["intermediate"])


def test_contract_types_and_primary_key_are_in_the_database(built):
    columns = dict(
        _rows(
            built,
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'marts' and table_name = 'dim_contacts'",
        )
    )
    assert columns["contact_id"] == "text"
    assert columns["order_count"] == "integer"
    assert columns["total_revenue"] == "numeric"
    assert columns["first_order_date"] == "date"
    assert columns["created_at"] == "timestamp with time zone"
    primary_key = _rows(
        built,
        "select a.attname from pg_constraint c"
        " join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any(c.conkey)"
        " where c.conrelid = 'marts.dim_contacts'::regclass and c.contype = 'p'",
    )
    assert [tuple(row) for row in primary_key] == [("contact_id",)]


def test_build_leaves_the_environment_as_it_found_it(build_result):
    # dbt reads its connection from LEADFLOW_DBT_*; they must not outlive the call.
    assert build_result.environ_after == build_result.environ_before
