"""render_sql shows placeholders; literal_sql inlines values escaped by SQLAlchemy."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy.dialects import sqlite

from leadflow.errors import LeadflowError
from leadflow.segments import execute_literal_sql, literal_sql, render_sql, segment_query
from tests.leadflow.segments.data import TEST_RELATIONS, add_contacts, parse_filter

D = dt.date(2025, 6, 30)


def _query(filter):
    return segment_query(parse_filter(filter), D, relations=TEST_RELATIONS)


def test_render_sql_shows_placeholders_not_values():
    query = _query(
        {
            "all": [
                {"field": "first_name", "op": "=", "value": "O'Brien"},
                {"field": "country", "op": "in", "value": ["DE", "AT"]},
                {"opened": {"mailing": "m'1", "within": "30d"}},
            ]
        }
    )
    sql = render_sql(query)
    assert re.search(r"contact\.first_name = %\(first_name_\d+\)s", sql)
    # One placeholder per list value.
    assert re.search(r"contact\.country IN \(%\(country_\d+\)s::VARCHAR, %\(country_\d+\)s", sql)
    assert "O'Brien" not in sql and "m'1" not in sql and "'DE'" not in sql
    assert "FROM public.test_facts AS contact" in sql
    assert "FROM raw.events AS event" in sql


def test_literal_sql_escapes_quotes_and_keeps_percent_signs_single():
    query = _query(
        {
            "any": [
                {"field": "first_name", "op": "=", "value": "O'Brien"},
                {"field": "first_name", "op": "contains", "value": "50%_off"},
                {"visited": {"url_pattern": "/it's/*"}},
            ]
        }
    )
    sql = literal_sql(query)
    assert "contact.first_name = 'O''Brien'" in sql
    # icontains escapes % and _ with '/', the compiler's URL globs with a backslash.
    assert "ILIKE '%' || '50/%/_off' || '%' ESCAPE '/'" in sql
    assert "LIKE '/it''s/%' ESCAPE '\\'" in sql
    assert "%(" not in sql and "%%" not in sql


def test_literal_sql_renders_dates_and_cutoff_as_literals():
    sql = literal_sql(_query({"purchased": {"product": "HS2000", "before": "-3y"}}))
    assert "purchase_order.ordered_at < '2025-07-01 00:00:00+00:00'" in sql
    assert "purchase_order.ordered_at < '2022-06-30 00:00:00+00:00'" in sql
    assert "item.product_id = 'HS2000'" in sql


def test_literal_sql_is_for_postgresql_only():
    with pytest.raises(ValueError, match="PostgreSQL"):
        literal_sql(_query({"field": "country", "op": "=", "value": "DE"}), sqlite.dialect())


def test_literal_sql_runs_as_written(db):
    add_contacts(db, {"contact_id": "c1", "first_name": "50% off"}, {"contact_id": "c2"})
    query = _query({"field": "first_name", "op": "contains", "value": "50%"})
    execute_literal_sql(db, f"create view public.literal_view as {literal_sql(query)}")
    assert db.exec_driver_sql("select contact_id from public.literal_view").scalars().all() == [
        "c1"
    ]


def test_execute_literal_sql_refuses_non_conforming_strings(db):
    db.exec_driver_sql("set local standard_conforming_strings = off")
    with pytest.raises(LeadflowError, match="standard_conforming_strings"):
        execute_literal_sql(db, "select 1")
