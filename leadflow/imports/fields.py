"""Columns and the parsers that turn one CSV cell into a typed value or a clear complaint.

A parser receives the cell already trimmed and non-empty and either returns the value to
store or raises `FieldError` with a message that reads well after "<column>: ". Empty cells
never reach a parser: the column decides (a value is required, or its default is used).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from email_validator import EmailNotValidError, validate_email

from leadflow.imports.codes import COUNTRY_CODES, LANGUAGE_CODES

Parser = Callable[[str], object]

INT4_MAX = 2**31 - 1


class FieldError(ValueError):
    """One cell's value is unusable; the message says why (without the column name)."""


@dataclass(frozen=True)
class Column:
    """One CSV column: how to parse it, how to stage it, whether a value is required."""

    name: str
    parse: Parser
    sql_type: str = "text"
    required: bool = False
    # What an empty cell stands for (for NOT NULL columns with a natural empty value).
    default: object = None


def quoted(value: str, limit: int = 60) -> str:
    """A cell value for a message: quoted, shortened when long."""
    shown = value if len(value) <= limit else value[: limit - 1] + "…"
    return f"'{shown}'"


# --- text -------------------------------------------------------------------------------


def text(value: str) -> str:
    return value


def identifier(value: str) -> str:
    """A key such as contact_id: any text without line breaks."""
    if "\n" in value or "\r" in value:
        raise FieldError(f"{quoted(value)} contains a line break")
    return value


# --- codes and enumerations -------------------------------------------------------------


def country(value: str) -> str:
    code = value.upper()
    if code not in COUNTRY_CODES:
        raise FieldError(
            f"{quoted(value)} is not an ISO 3166 alpha-2 country code (e.g. DE, AT, FR)"
        )
    return code


def language(value: str) -> str:
    code = value.lower()
    if code not in LANGUAGE_CODES:
        raise FieldError(f"{quoted(value)} is not an ISO 639-1 language code (e.g. de, en, fr)")
    return code


def currency(value: str) -> str:
    code = value.upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise FieldError(f"{quoted(value)} is not a three-letter ISO 4217 currency code (e.g. EUR)")
    return code


def one_of(*choices: str) -> Parser:
    """An enumeration, matched case-insensitively and stored in lower case."""
    allowed = frozenset(choices)

    def parse(value: str) -> str:
        lowered = value.lower()
        if lowered not in allowed:
            raise FieldError(f"{quoted(value)} is not one of {', '.join(choices)}")
        return lowered

    return parse


# --- email ------------------------------------------------------------------------------

# The common shape (ASCII dot-atom at an LDH domain with an alphabetic TLD) is accepted
# without the full validator, which costs ~40 µs an address; everything else, including
# every address this pattern refuses, gets the full RFC check and its precise message.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,63})"
)
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def _is_plain_email(value: str) -> bool:
    match = _PLAIN_EMAIL.fullmatch(value)
    return bool(
        match
        and len(value) <= 254
        and value.index("@") <= 64
        and "--" not in value[value.index("@") :]
        and match.group(1).lower() not in _SPECIAL_USE_TLDS
    )


def email(value: str) -> str:
    """A syntactically valid address (no DNS lookup), stored as given (trimmed)."""
    if _is_plain_email(value):
        return value
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        explanation = str(error).rstrip(".")
        reason = explanation[:1].lower() + explanation[1:]
        raise FieldError(f"{quoted(value)} is not a valid email address ({reason})") from None
    return value


# --- numbers ----------------------------------------------------------------------------


def integer(minimum: int = 0, maximum: int = INT4_MAX) -> Parser:
    def parse(value: str) -> int:
        if not re.fullmatch(r"[+-]?\d+", value):
            raise FieldError(f"{quoted(value)} is not a whole number")
        number = int(value)
        if number < 0 <= minimum:
            raise FieldError(f"{quoted(value)} must not be negative")
        if number < minimum:
            raise FieldError(f"{quoted(value)} must be at least {minimum}")
        if number > maximum:
            raise FieldError(f"{quoted(value)} is larger than {maximum}")
        return number

    return parse


def decimal(*, integer_digits: int, places: int = 2, minimum: Decimal = Decimal(0)) -> Parser:
    """A decimal with '.' as separator, at most `places` decimals, within the column's range."""
    pattern = re.compile(r"[+-]?\d+(?:\.\d+)?")
    limit = Decimal(10) ** integer_digits
    step = Decimal(1).scaleb(-places)

    def parse(value: str) -> Decimal:
        if not pattern.fullmatch(value):
            hint = " (use '.' as the decimal separator)" if "," in value else ""
            raise FieldError(f"{quoted(value)} is not a decimal number{hint}")
        number = Decimal(value)
        if number < minimum:
            raise FieldError(f"{quoted(value)} must not be negative")
        if abs(number) >= limit:
            raise FieldError(f"{quoted(value)} is too large (at most {integer_digits} digits)")
        # '12.500' is fine, '12.345' is not: the column keeps `places` decimals.
        if number != number.quantize(step):
            raise FieldError(f"{quoted(value)} has more than {places} decimal places")
        return number

    return parse


_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise FieldError(f"{quoted(value)} is not a boolean (true/false, yes/no, 1/0)")


# --- time -------------------------------------------------------------------------------


def timestamp(value: str) -> dt.datetime:
    """ISO-8601 with offset or Z; a value without offset is UTC; a bare date is 00:00 UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(
            f"{quoted(value)} is not an ISO-8601 timestamp (e.g. 2024-05-01T09:30:00Z)"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed


# --- lists ------------------------------------------------------------------------------


def items(value: str) -> list[str]:
    """';'-separated items, trimmed, empty items dropped, order kept."""
    return [item.strip() for item in value.split(";") if item.strip()]


def array(value: str) -> str:
    """The items of a ';'-separated cell as a PostgreSQL text[] literal, for COPY.

    Written here rather than by psycopg's list dumper, which is a large share of the time
    a row takes to stage.
    """
    quoted_items = (
        '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items(value)
    )
    return "{" + ",".join(quoted_items) + "}"


EMPTY_ARRAY = "{}"
