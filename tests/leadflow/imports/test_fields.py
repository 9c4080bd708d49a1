"""The cell parsers: what they accept, what they store, what they say when they refuse."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from email_validator import EmailNotValidError, validate_email

from leadflow.imports import fields as f
from leadflow.imports.fields import FieldError

ADDRESSES = [
    "max.mustermann@hydraulik-werke.de",
    "A.B+c@X.DE",
    "o'neil@example.co.uk",
    "müller@firma.de",
    "a@xn--bcher-kva.de",
    "a@x.d",
    "a@b.de1",
    "max(at)x.de",
    "a@b",
    "a..b@x.de",
    ".a@x.de",
    "a@x-.de",
    "a@-x.de",
    "a@x..de",
    "a@mail.local",
    "a@x.test",
    '"a b"@x.de',
    "a b@x.de",
    "a@[1.2.3.4]",
    ("x" * 65) + "@x.de",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_email_agrees_with_the_full_validator(address):
    try:
        validate_email(address, check_deliverability=False)
        expected_valid = True
    except EmailNotValidError:
        expected_valid = False

    if expected_valid:
        assert f.email(address) == address
    else:
        with pytest.raises(FieldError, match="is not a valid email address"):
            f.email(address)


def test_timestamps_are_iso8601_and_naive_means_utc():
    utc = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)
    assert f.timestamp("2024-05-01T09:30:00Z") == utc
    assert f.timestamp("2024-05-01T11:30:00+02:00") == utc
    assert f.timestamp("2024-05-01 09:30") == utc
    assert f.timestamp("2024-05-01") == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    for bad in ("01.05.2024", "2024-02-30", "yesterday", "2024-05-01T25:00"):
        with pytest.raises(FieldError, match="is not an ISO-8601 timestamp"):
            f.timestamp(bad)


def test_decimals_use_a_point_and_fit_the_column():
    money = f.decimal(integer_digits=12)
    assert money("1200") == Decimal("1200")
    assert money("12.500") == Decimal("12.5")
    with pytest.raises(FieldError, match=r"'1,5' is not a decimal number \(use '\.' as the"):
        money("1,5")
    with pytest.raises(FieldError, match="has more than 2 decimal places"):
        money("12.345")
    with pytest.raises(FieldError, match="must not be negative"):
        money("-0.01")
    with pytest.raises(FieldError, match="is too large"):
        money("1000000000000")
    with pytest.raises(FieldError, match="is not a decimal number"):
        money("1e3")


def test_integers_are_whole_and_in_range():
    count = f.integer(minimum=1)
    assert count("+7") == 7
    with pytest.raises(FieldError, match="'0' must be at least 1"):
        count("0")
    with pytest.raises(FieldError, match="is not a whole number"):
        count("1.5")
    with pytest.raises(FieldError, match="is larger than 2147483647"):
        count("2147483648")


def test_codes_are_checked_against_the_iso_lists_and_normalised():
    assert f.country("de") == "DE"
    assert f.country("CH") == "CH"
    assert f.language("FR") == "fr"
    assert f.currency("eur") == "EUR"
    for bad in ("XX", "UK", "Germany", "D"):
        with pytest.raises(FieldError, match="is not an ISO 3166 alpha-2 country code"):
            f.country(bad)
    with pytest.raises(FieldError, match="is not an ISO 639-1 language code"):
        f.language("xx")


def test_enumerations_ignore_case_and_list_the_choices():
    status = f.one_of("won", "cancelled")
    assert status("WON") == "won"
    with pytest.raises(FieldError, match="'lost' is not one of won, cancelled"):
        status("lost")


def test_booleans():
    assert [f.boolean(v) for v in ("true", "Yes", "1", "f", "NO", "0")] == [
        True, True, True, False, False, False,
    ]  # fmt: skip
    with pytest.raises(FieldError, match="is not a boolean"):
        f.boolean("maybe")


def test_arrays_become_postgresql_literals():
    assert f.items(" a ; b;;c ") == ["a", "b", "c"]
    assert f.array('say "hi"; c\\d') == '{"say \\"hi\\"","c\\\\d"}'
    assert f.array(" ; ") == "{}"
