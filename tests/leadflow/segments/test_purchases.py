"""Purchase and installed-base conditions: won orders before the cut-off, installations of
the contact's account (or naming the contact) installed by D."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.leadflow.segments.data import add_contacts, add_installations, add_order, at, members

D = dt.date(2025, 6, 30)
CUTOFF = at("2025-07-01T00:00:00")


def _contacts(db, *ids):
    add_contacts(db, *({"contact_id": contact_id} for contact_id in ids))


def test_purchased_counts_won_orders_of_the_contact_before_the_cutoff(db):
    _contacts(db, "won", "cancelled", "other_product", "at_cutoff", "family")
    add_order(db, "won", at("2025-06-30T23:59:59.999999"), ["HS2000"])
    add_order(db, "cancelled", at("2025-06-01"), ["HS2000"], status="cancelled")
    add_order(db, "other_product", at("2025-06-01"), ["HS3000"])
    add_order(db, "at_cutoff", CUTOFF, ["HS2000"])
    add_order(db, "family", at("2025-06-01"), ["CLN-10", "MNT-KIT"])
    add_order(db, None, at("2025-06-01"), ["HS2000"])  # an account-only order: nobody's
    assert members(db, {"purchased": {"product": "HS2000"}}, D) == {"won"}
    assert members(db, {"purchased": {"family": "hydrostat"}}, D) == {"won", "other_product"}
    assert members(db, {"purchased": {"family": "cleaning_agent"}}, D) == {"family"}
    assert members(db, {"purchased": {}}, D) == {"won", "other_product", "family"}


def test_purchased_before_and_after_bound_the_order_time(db):
    # before: -3y = 2022-06-30 → ordered before 2022-06-30 00:00 UTC.
    _contacts(db, "old", "boundary", "recent")
    add_order(db, "old", at("2022-06-29T23:59:59.999999"), ["HS2000"])
    add_order(db, "boundary", at("2022-06-30T00:00:00"), ["HS2000"])
    add_order(db, "recent", at("2025-01-01T00:00:00"), ["HS2000"])
    assert members(db, {"purchased": {"product": "HS2000", "before": "-3y"}}, D) == {"old"}
    assert members(db, {"purchased": {"product": "HS2000", "after": "-3y"}}, D) == {
        "boundary",
        "recent",
    }
    condition = {"purchased": {"product": "HS2000", "after": "-3y", "before": "2025-01-01"}}
    assert members(db, condition, D) == {"boundary"}
    condition = {"purchased": {"product": "HS2000", "after": "2025-01-01"}}
    assert members(db, condition, D) == {"recent"}


def test_purchased_within_a_window(db):
    # within 30d as of 30 June: ordered from 1 June 00:00 UTC (D − 29) to the cut-off.
    _contacts(db, "d_minus_29", "d_minus_30")
    add_order(db, "d_minus_29", at("2025-06-01T00:00:00"))
    add_order(db, "d_minus_30", at("2025-05-31T23:59:59.999999"))
    assert members(db, {"purchased": {"within": "30d"}}, D) == {"d_minus_29"}


def test_purchased_min_count_counts_distinct_orders(db):
    _contacts(db, "two_lines", "two_orders", "won_and_cancelled")
    add_order(db, "two_lines", at("2025-06-01"), ["CLN-10", "CLN-10"])
    add_order(db, "two_orders", at("2025-05-01"), ["CLN-10"])
    add_order(db, "two_orders", at("2025-06-01"), ["CLN-25"])
    add_order(db, "won_and_cancelled", at("2025-05-01"), ["CLN-10"])
    add_order(db, "won_and_cancelled", at("2025-06-01"), ["CLN-10"], status="cancelled")
    condition = {"purchased": {"family": "cleaning_agent", "min_count": 2}}
    assert members(db, condition, D) == {"two_orders"}
    assert members(db, {"purchased": {"min_count": 2}}, D) == {"two_orders"}
    assert members(db, {"purchased": {"product": "CLN-10", "min_count": 2}}, D) == set()


def test_last_purchase(db):
    _contacts(db, "switched", "then_cancelled", "tie", "future", "none")
    add_order(db, "switched", at("2024-01-01"), ["HS2000"])
    add_order(db, "switched", at("2025-06-01"), ["CLN-10"])
    add_order(db, "then_cancelled", at("2025-05-01"), ["HS2000"])
    add_order(db, "then_cancelled", at("2025-06-01"), ["CLN-10"], status="cancelled")
    add_order(db, "tie", at("2025-06-01T10:00"), ["CLN-25"])
    add_order(db, "tie", at("2025-06-01T10:00"), ["HS3000"])
    add_order(db, "future", at("2025-06-01"), ["HS2000"])
    add_order(db, "future", CUTOFF, ["HS3000"])
    assert members(db, {"last_purchase": {"product": "HS2000"}}, D) == {"then_cancelled", "future"}
    assert members(db, {"last_purchase": {"family": "cleaning_agent"}}, D) == {"switched", "tie"}
    assert members(db, {"last_purchase": {"product": "HS3000"}}, D) == {"tie"}
    # Seen from a later day, the order at the old cut-off is the last one.
    assert members(db, {"last_purchase": {"product": "HS3000"}}, dt.date(2025, 7, 1)) == {
        "tie",
        "future",
    }


@pytest.fixture
def installed(db):
    add_contacts(
        db,
        {"contact_id": "buyer", "account_id": "a1"},
        {"contact_id": "colleague", "account_id": "a1"},
        {"contact_id": "named", "account_id": "a2"},
        {"contact_id": "tomorrow", "account_id": "a3"},
        {"contact_id": "no_account", "account_id": None},
        {"contact_id": "successor", "account_id": "a4"},
    )
    add_installations(
        db,
        {
            "account_id": "a1",
            "product_id": "HS2000",
            "installed_on": dt.date(2020, 3, 1),
            "next_maintenance_date": dt.date(2025, 6, 30),
        },
        # Installed at another account but naming the contact.
        {
            "account_id": "a9",
            "contact_id": "named",
            "product_id": "HS2000",
            "installed_on": dt.date(2021, 1, 1),
            "next_maintenance_date": dt.date(2026, 6, 30),
        },
        {
            "account_id": "a3",
            "product_id": "HS2000",
            "installed_on": dt.date(2025, 7, 1),
            "next_maintenance_date": dt.date(2025, 12, 1),
        },
        {
            "account_id": "a4",
            "product_id": "HS3000",
            "installed_on": dt.date(2025, 1, 1),
            "next_maintenance_date": dt.date(2025, 6, 29),
        },
        {
            "account_id": "a4",
            "product_id": "HS2000",
            "installed_on": dt.date(2019, 1, 1),
            "next_maintenance_date": dt.date(2026, 7, 1),
        },
        {"account_id": "a4", "product_id": "MNT-KIT", "installed_on": dt.date(2019, 1, 1)},
    )
    return db


def test_owns_by_account_or_contact_installed_by_d(installed):
    assert members(installed, {"owns": {"product": "HS2000"}}, D) == {
        "buyer",
        "colleague",
        "named",
        "successor",
    }
    assert members(installed, {"owns": {"product": "HS3000"}}, D) == {"successor"}
    assert members(installed, {"owns": {"family": "maintenance_device"}}, D) == {"successor"}
    # The a3 installation counts from its installation day on.
    assert "tomorrow" in members(installed, {"owns": {"family": "hydrostat"}}, dt.date(2025, 7, 1))
    assert "tomorrow" not in members(installed, {"owns": {"family": "hydrostat"}}, D)


def test_maintenance_due_between_is_inclusive(installed):
    # [+0d, +1y] as of 30 June 2025 = [2025-06-30, 2026-06-30].
    condition = {"maintenance_due": {"product": "HS2000", "between": ["+0d", "+1y"]}}
    assert members(installed, condition, D) == {"buyer", "colleague", "named"}
    condition = {"maintenance_due": {"between": ["+0d", "+1y"]}}
    assert members(installed, condition, D) == {"buyer", "colleague", "named"}
    condition = {"maintenance_due": {"family": "hydrostat", "between": ["-1d", "+1y"]}}
    assert members(installed, condition, D) == {"buyer", "colleague", "named", "successor"}
    condition = {"maintenance_due": {"between": ["2026-07-01", "2026-07-01"]}}
    assert members(installed, condition, D) == {"successor"}
