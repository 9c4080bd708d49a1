"""The field catalogue: every field a filter, persona criterion or scoring rule may name.

Each field has a type, the operators that make sense for that type, and where it comes
from: `contact` (raw.contacts), `account` (raw.accounts, joined by account_id) or `derived`
(computed by dbt per contact: customer facts, persona, scores). The filter compiler turns a
comparison into SQL against one contact-level relation that has a column per field (named
like the field); `column` says which source column feeds it.

Value checks (`normalize_value`) run at config load time, so "text for a numeric field" or
"a list for `=`" is reported with file and line instead of failing in SQL later.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from leadflow.config.dates import RelativeDate

FieldType = Literal[
    "text", "integer", "numeric", "date", "timestamp", "boolean", "text_array", "enum"
]
FieldSource = Literal["contact", "account", "derived"]
Operator = Literal[
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not_in",
    "between",
    "contains",
    "starts_with",
    "is_null",
    "is_not_null",
]
OPERATORS: tuple[str, ...] = get_args(Operator)
NULL_OPERATORS = frozenset({"is_null", "is_not_null"})
LIST_OPERATORS = frozenset({"in", "not_in"})
ORDER_OPERATORS = frozenset({"<", "<=", ">", ">="})

_EQUALITY = frozenset({"=", "!="}) | LIST_OPERATORS | NULL_OPERATORS
OPERATORS_BY_TYPE: dict[str, frozenset[str]] = {
    "text": _EQUALITY | {"contains", "starts_with"},
    "enum": _EQUALITY,
    "integer": _EQUALITY | ORDER_OPERATORS | {"between"},
    "numeric": _EQUALITY | ORDER_OPERATORS | {"between"},
    "date": frozenset({"=", "!="}) | ORDER_OPERATORS | {"between"} | NULL_OPERATORS,
    "timestamp": frozenset({"=", "!="}) | ORDER_OPERATORS | {"between"} | NULL_OPERATORS,
    "boolean": frozenset({"=", "!="}) | NULL_OPERATORS,
    # contains X: X is an element; in [..]: any element is listed; not_in: none is;
    # is_null: the array is empty (or NULL).
    "text_array": frozenset({"contains", "in", "not_in"}) | NULL_OPERATORS,
}

DECISION_ROLES = ("purchaser", "production_manager", "managing_director", "other")
# An unsubscribe sets `objected` (and a suppression): there is no separate "unsubscribed" status.
CONSENT_STATUSES = ("none", "pending", "confirmed", "objected")
LIFECYCLE_STAGES = ("lead", "mql", "sql", "opportunity", "customer")
CUSTOMER_STATUSES = ("lead", "new_customer", "existing_customer")
GRADES = ("A", "B", "C", "D")
BANDS = (1, 2, 3, 4)
MATRIX_CELLS = tuple(f"{grade}{band}" for grade in GRADES for band in BANDS)


@dataclass(frozen=True)
class FieldSpec:
    """One filterable field."""

    name: str
    type: FieldType
    source: FieldSource
    description: str
    column: str = ""
    values: tuple[str, ...] = ()
    # The ids a value must be one of, checked against the rest of the config.
    references: Literal["persona", "tenant"] | None = None
    # Computed from scores (so persona criteria and profile rules must not use it).
    from_scoring: bool = False

    @property
    def operators(self) -> frozenset[str]:
        return OPERATORS_BY_TYPE[self.type]

    @property
    def source_column(self) -> str:
        """The column in the source table (`raw.contacts`, `raw.accounts`) or derived model."""
        return self.column or self.name


def _contact(name: str, type_: FieldType, description: str, **extra: Any) -> FieldSpec:
    return FieldSpec(name, type_, "contact", description, **extra)


def _account(name: str, type_: FieldType, description: str, **extra: Any) -> FieldSpec:
    return FieldSpec(name, type_, "account", description, **extra)


def _derived(name: str, type_: FieldType, description: str, **extra: Any) -> FieldSpec:
    return FieldSpec(name, type_, "derived", description, **extra)


_CATALOGUE = (
    _contact("contact_id", "text", "Stable contact id."),
    _contact("email", "text", "E-mail address (compare lower-case)."),
    _contact("salutation", "text", "Salutation as imported (Herr, Frau, M., Sig., ...)."),
    _contact("first_name", "text", "First name."),
    _contact("last_name", "text", "Last name."),
    _contact("language", "text", "Preferred language, ISO 639-1 (de, fr, it, es, en)."),
    _contact("country", "text", "Contact's country, ISO 3166-1 alpha-2 (DE, AT, CH, FR, ...)."),
    _contact("position", "text", "Job title as written."),
    _contact("decision_role", "enum", "Normalised role in buying.", values=DECISION_ROLES),
    _contact("owner", "text", "Sales rep (e-mail) who owns the contact; NULL = unassigned."),
    _contact("source", "text", "Where the contact came from (e.g. ebook, fair:<fair id>, crm)."),
    _contact("tags", "text_array", "Free tags."),
    _contact("interests", "text_array", "Declared interests (e.g. hydraulic_components)."),
    _contact("consent_status", "enum", "Marketing consent.", values=CONSENT_STATUSES),
    _contact("created_at", "timestamp", "When the contact entered the pool."),
    _contact(
        "lifecycle_stage",
        "enum",
        "lead → mql → sql → opportunity → customer.",
        values=LIFECYCLE_STAGES,
    ),
    _derived(
        "customer_status",
        "enum",
        "lead / new_customer (first order < 365 days before as_of) / existing_customer.",
        values=CUSTOMER_STATUSES,
    ),
    _account("account_name", "text", "Company name.", column="name"),
    _account("industry", "text", "Industry (machine_tools, automotive, ...)."),
    _account("employee_count", "integer", "Number of employees."),
    _account("annual_revenue", "numeric", "Annual revenue in the company currency."),
    _account("region", "text", "Region within the country (e.g. Bayern, Île-de-France)."),
    _account("postcode", "text", "Postcode; use starts_with for postcode areas."),
    _account("account_country", "text", "Company's country (ISO alpha-2).", column="country"),
    _derived(
        "best_persona",
        "text",
        "Id of the best matching persona (NULL = none).",
        references="persona",
    ),
    _derived("profile_score", "numeric", "Fit score 0-100.", from_scoring=True),
    _derived("grade", "enum", "A-D from the profile score.", values=GRADES, from_scoring=True),
    _derived("activity_score", "numeric", "Decayed engagement score 0-100.", from_scoring=True),
    _derived("band", "integer", "1-4 from the activity score.", from_scoring=True),
    _derived(
        "matrix_cell", "enum", "grade ‖ band, A1 … D4.", values=MATRIX_CELLS, from_scoring=True
    ),
    _derived("is_mql", "boolean", "Lead in one of the MQL cells.", from_scoring=True),
    _derived("first_order_date", "date", "Date of the first won order."),
    _derived("last_purchase_date", "date", "Date of the latest won order."),
    _derived("order_count", "integer", "Number of won orders up to as_of."),
    _derived("total_revenue", "numeric", "Net revenue of won orders up to as_of."),
    _derived("clv", "numeric", "Customer lifetime value (historic + predicted)."),
    _derived("last_activity_at", "timestamp", "Latest human (non-machine) tracking event."),
    _derived(
        "tenant_code",
        "text",
        "The tenant whose pool alias selects the contact.",
        references="tenant",
    ),
)

FIELDS: dict[str, FieldSpec] = {spec.name: spec for spec in _CATALOGUE}


class FieldValueError(ValueError):
    """A comparison's value does not fit its field or operator; the text says why."""


def normalize_value(spec: FieldSpec, op: str, value: Any) -> Any:
    """The checked value of `field op value`, in its Python form.

    Returns None for is_null/is_not_null, a list for in/not_in, a two-item list
    [low, high] for between (inclusive), otherwise one value. Dates become RelativeDate.
    """
    if op in NULL_OPERATORS:
        if value is not None:
            raise FieldValueError(f"'{op}' takes no value; remove 'value'")
        return None
    if value is None:
        raise FieldValueError(f"'{op}' needs a value")
    if op in LIST_OPERATORS:
        return _list_value(spec, op, value)
    if op == "between":
        return _between_value(spec, value)
    if isinstance(value, list | dict):
        hint = " (use 'in' for several values)" if isinstance(value, list) else ""
        raise FieldValueError(f"'{op}' takes a single value, not {describe_value(value)}{hint}")
    return _scalar(spec, op, value)


def _list_value(spec: FieldSpec, op: str, value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise FieldValueError(
            f"'{op}' needs a non-empty list of values, got {describe_value(value)}"
        )
    checked = []
    for index, item in enumerate(value):
        try:
            checked.append(_scalar(spec, op, item))
        except FieldValueError as error:
            raise FieldValueError(f"item {index}: {error}") from None
    return checked


def _between_value(spec: FieldSpec, value: Any) -> list[Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise FieldValueError(f"'between' needs a list [low, high], got {describe_value(value)}")
    low, high = (_scalar(spec, "between", item) for item in value)
    if not _in_order(low, high):
        raise FieldValueError(f"'between' needs low <= high, got [{low}, {high}]")
    return [low, high]


def _in_order(low: Any, high: Any) -> bool:
    if not isinstance(low, RelativeDate):
        return low <= high
    if low.is_relative != high.is_relative:
        return True  # a fixed date against a moving one: the order depends on as_of
    # Two offsets keep their order for any as_of; a mid-month reference avoids month clamping.
    reference = dt.date(2001, 1, 15)
    return low.resolve(reference) <= high.resolve(reference)


def _scalar(spec: FieldSpec, op: str, value: Any) -> Any:
    if spec.type in ("text", "text_array"):
        return _text(value)
    if spec.type == "enum":
        return _enum(spec, value)
    if spec.type == "integer":
        return _integer(value)
    if spec.type == "numeric":
        return _number(value)
    if spec.type in ("date", "timestamp"):
        return _date(value)
    return _boolean(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise FieldValueError(
            f"expected text, got the number {value} (quote it: '{value}'; a postcode with a "
            "leading zero must be quoted to keep the zero)"
        )
    raise FieldValueError(f"expected text, got {describe_value(value)}")


def _enum(spec: FieldSpec, value: Any) -> str:
    if isinstance(value, str) and value in spec.values:
        return value
    allowed = ", ".join(spec.values)
    raise FieldValueError(f"expected one of {allowed}, got {describe_value(value)}")


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldValueError(f"expected a whole number, got {describe_value(value)}")
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldValueError(f"expected a number, got {describe_value(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldValueError(f"expected a finite number, got {value}")
    return value


def _date(value: Any) -> RelativeDate:
    if isinstance(value, dt.datetime):
        raise FieldValueError("expected a date (YYYY-MM-DD) or a relative date like -30d")
    if isinstance(value, dt.date | str):
        try:
            return RelativeDate.parse(value)
        except ValueError:
            pass
    raise FieldValueError(
        f"expected a date (YYYY-MM-DD) or a relative date like -3y, -30d, +0d, "
        f"got {describe_value(value)}"
    )


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise FieldValueError(f"expected true or false, got {describe_value(value)}")


def describe_value(value: Any) -> str:
    """A short description of a YAML value for an error message."""
    if isinstance(value, list):
        return f"a list {value!r}" if len(repr(value)) <= 60 else "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return f"the text {value!r}"
    return repr(value)
