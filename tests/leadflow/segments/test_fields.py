"""Field comparisons: one small table per field type, exact member sets, NULLs included."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.leadflow.segments.data import add_contacts, at, members

D = dt.date(2025, 6, 30)


@pytest.fixture
def people(db):
    add_contacts(
        db,
        {"contact_id": "de", "country": "DE", "first_name": "Anna", "email": "anna@example.com"},
        {"contact_id": "at", "country": "AT", "first_name": "JOHANNA", "email": "jo@example.com"},
        {"contact_id": "null", "country": None, "first_name": None, "email": "n@example.com"},
        {"contact_id": "fr", "country": "FR", "first_name": "Hans", "email": "hans@example.com"},
    )
    return db


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("=", "DE", {"de"}),
        ("=", "de", set()),  # equality on text is exact (case-sensitive)
        ("!=", "DE", {"at", "fr"}),  # NULL != DE is not satisfied
        ("in", ["DE", "AT"], {"de", "at"}),
        ("not_in", ["DE", "AT"], {"fr"}),  # NULL is in no list and in no complement
        ("is_null", None, {"null"}),
        ("is_not_null", None, {"de", "at", "fr"}),
    ],
)
def test_text_equality_and_lists(people, op, value, expected):
    condition = {"field": "country", "op": op}
    if value is not None:
        condition["value"] = value
    assert members(people, condition, D) == expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("contains", "ann", {"de", "at"}),  # case-insensitive: Anna, JOHANNA
        ("contains", "ANS", {"fr"}),
        ("starts_with", "an", {"de"}),
        ("starts_with", "JO", {"at"}),
        ("starts_with", "x", set()),
    ],
)
def test_text_contains_and_starts_with_ignore_case(people, op, value, expected):
    assert members(people, {"field": "first_name", "op": op, "value": value}, D) == expected


def test_not_of_a_comparison_with_null_is_satisfied(people):
    # `not: X` = X is not satisfied; the NULL country does not satisfy `country = DE`.
    assert members(people, {"not": {"field": "country", "op": "=", "value": "DE"}}, D) == {
        "at",
        "null",
        "fr",
    }
    assert members(people, {"not": {"field": "country", "op": "!=", "value": "DE"}}, D) == {
        "de",
        "null",
    }


def test_like_wildcards_in_values_are_literal(db):
    add_contacts(
        db,
        {"contact_id": "pct", "first_name": "50% Rabatt"},
        {"contact_id": "x", "first_name": "50x Rabatt"},
        {"contact_id": "under", "first_name": "a_b"},
        {"contact_id": "axb", "first_name": "axb"},
        {"contact_id": "slash", "first_name": "a/b\\c"},
    )
    assert members(db, {"field": "first_name", "op": "contains", "value": "50%"}, D) == {"pct"}
    assert members(db, {"field": "first_name", "op": "contains", "value": "a_b"}, D) == {"under"}
    assert members(db, {"field": "first_name", "op": "starts_with", "value": "a_"}, D) == {"under"}
    assert members(db, {"field": "first_name", "op": "contains", "value": "/b\\"}, D) == {"slash"}


def test_email_values_compare_trimmed_and_lower_case(people):
    condition = {"field": "email", "op": "=", "value": "  Anna@Example.COM "}
    assert members(people, condition, D) == {"de"}
    condition = {"field": "email", "op": "in", "value": ["JO@example.com", "HANS@EXAMPLE.COM"]}
    assert members(people, condition, D) == {"at", "fr"}


@pytest.fixture
def accounts(db):
    add_contacts(
        db,
        {"contact_id": "small", "employee_count": 10, "annual_revenue": 2.5, "order_count": 0},
        {"contact_id": "mid", "employee_count": 50, "annual_revenue": 1000, "order_count": 2},
        {"contact_id": "big", "employee_count": 500, "annual_revenue": 3, "order_count": 5},
        {"contact_id": "unknown", "employee_count": None, "annual_revenue": None},
    )
    return db


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "employee_count", "op": ">=", "value": 50}, {"mid", "big"}),
        ({"field": "employee_count", "op": ">", "value": 50}, {"big"}),
        ({"field": "employee_count", "op": "<", "value": 50}, {"small"}),
        ({"field": "employee_count", "op": "<=", "value": 50}, {"small", "mid"}),
        ({"field": "employee_count", "op": "between", "value": [10, 50]}, {"small", "mid"}),
        ({"field": "employee_count", "op": "!=", "value": 50}, {"small", "big"}),
        ({"field": "employee_count", "op": "not_in", "value": [10, 500]}, {"mid"}),
        ({"field": "employee_count", "op": "is_null"}, {"unknown"}),
        # 2.5 must stay 2.5 (a bind typed by its first value would make it INTEGER 3).
        ({"field": "annual_revenue", "op": "in", "value": [1000, 2.5]}, {"small", "mid"}),
        ({"field": "annual_revenue", "op": "between", "value": [2.5, 999.99]}, {"small", "big"}),
        ({"field": "annual_revenue", "op": "=", "value": 2.5}, {"small"}),
        ({"field": "order_count", "op": ">=", "value": 2}, {"mid", "big"}),
    ],
)
def test_numbers(accounts, condition, expected):
    assert members(accounts, condition, D) == expected


@pytest.fixture
def statuses(db):
    add_contacts(
        db,
        {"contact_id": "lead", "customer_status": "lead", "is_mql": True},
        {"contact_id": "new", "customer_status": "new_customer", "is_mql": False},
        {"contact_id": "old", "customer_status": "existing_customer", "is_mql": None},
        {"contact_id": "none", "customer_status": None, "is_mql": None},
    )
    return db


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "customer_status", "op": "=", "value": "lead"}, {"lead"}),
        (
            {
                "field": "customer_status",
                "op": "in",
                "value": ["new_customer", "existing_customer"],
            },
            {"new", "old"},
        ),
        ({"field": "customer_status", "op": "not_in", "value": ["lead"]}, {"new", "old"}),
        ({"field": "is_mql", "op": "=", "value": True}, {"lead"}),
        ({"field": "is_mql", "op": "!=", "value": True}, {"new"}),
        ({"field": "is_mql", "op": "is_null"}, {"old", "none"}),
        ({"field": "is_mql", "op": "is_not_null"}, {"lead", "new"}),
    ],
)
def test_enums_and_booleans(statuses, condition, expected):
    assert members(statuses, condition, D) == expected


@pytest.fixture
def purchase_dates(db):
    # D = 2025-06-30; D - 30 days = 2025-05-31.
    add_contacts(
        db,
        {"contact_id": "may30", "last_purchase_date": dt.date(2025, 5, 30)},
        {"contact_id": "may31", "last_purchase_date": dt.date(2025, 5, 31)},
        {"contact_id": "jun01", "last_purchase_date": dt.date(2025, 6, 1)},
        {"contact_id": "jun30", "last_purchase_date": dt.date(2025, 6, 30)},
        {"contact_id": "jul01", "last_purchase_date": dt.date(2025, 7, 1)},
        {"contact_id": "never", "last_purchase_date": None},
    )
    return db


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        (">", "-30d", {"jun01", "jun30", "jul01"}),
        (">=", "-30d", {"may31", "jun01", "jun30", "jul01"}),
        ("<", "-30d", {"may30"}),
        ("<=", "-30d", {"may30", "may31"}),
        ("=", "-30d", {"may31"}),
        ("!=", "+0d", {"may30", "may31", "jun01", "jul01"}),
        ("between", ["-30d", "+0d"], {"may31", "jun01", "jun30"}),
        ("between", ["2025-06-01", "2025-07-01"], {"jun01", "jun30", "jul01"}),
        ("=", "-1m", {"may30"}),  # -1m = 2025-05-30
        ("is_null", None, {"never"}),
    ],
)
def test_dates_resolve_relative_values_against_as_of(purchase_dates, op, value, expected):
    condition = {"field": "last_purchase_date", "op": op}
    if value is not None:
        condition["value"] = value
    assert members(purchase_dates, condition, D) == expected


@pytest.fixture
def created(db):
    # D - 90 days = 2025-04-01: compared as UTC calendar days.
    add_contacts(
        db,
        {"contact_id": "before", "created_at": at("2025-03-31T23:59:59.999999")},
        {"contact_id": "first", "created_at": at("2025-04-01T00:00:00")},
        {"contact_id": "last", "created_at": at("2025-04-01T23:59:59.999999")},
        # 2025-04-02 01:00 in Berlin is still 2025-04-01 in UTC.
        {"contact_id": "berlin", "created_at": at("2025-04-02T01:00:00+02:00")},
        {"contact_id": "after", "created_at": at("2025-04-02T00:00:00")},
        {"contact_id": "unknown", "created_at": None},
    )
    return db


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("<", "-90d", {"before"}),
        ("<=", "-90d", {"before", "first", "last", "berlin"}),
        ("=", "-90d", {"first", "last", "berlin"}),
        ("!=", "-90d", {"before", "after"}),
        (">", "-90d", {"after"}),
        (">=", "-90d", {"first", "last", "berlin", "after"}),
        ("between", ["2025-03-31", "2025-04-01"], {"before", "first", "last", "berlin"}),
        ("is_not_null", None, {"before", "first", "last", "berlin", "after"}),
    ],
)
def test_timestamps_compare_by_utc_date(created, op, value, expected):
    condition = {"field": "created_at", "op": op}
    if value is not None:
        condition["value"] = value
    assert members(created, condition, D) == expected


@pytest.fixture
def tagged(db):
    add_contacts(
        db,
        {"contact_id": "vip", "tags": ["vip", "fair"]},
        {"contact_id": "fair", "tags": ["fair"]},
        {"contact_id": "empty", "tags": []},
        {"contact_id": "null", "tags": None},
    )
    return db


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("contains", "vip", {"vip"}),
        ("contains", "VIP", set()),  # elements compare exactly
        ("in", ["vip", "other"], {"vip"}),
        ("in", ["fair"], {"vip", "fair"}),
        ("not_in", ["vip"], {"fair", "empty"}),  # a NULL array satisfies no comparison
        ("is_null", None, {"empty", "null"}),  # empty counts as null
        ("is_not_null", None, {"vip", "fair"}),
    ],
)
def test_text_arrays(tagged, op, value, expected):
    condition = {"field": "tags", "op": op}
    if value is not None:
        condition["value"] = value
    assert members(tagged, condition, D) == expected
