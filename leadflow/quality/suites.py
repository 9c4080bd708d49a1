"""The expectation suites, as data: per table a list of checks with a severity.

A `critical` check that fails stops the nightly run (and so every send that depends on it);
a `warning` is recorded and reported but lets the run go on. Each check names a Great
Expectations expectation type and its keyword arguments, so adding a rule is one line here.

The raw suites only hold rules raw can actually break: its CHECK and NOT NULL constraints
already reject some values, but e.g. an email's syntax, an unknown country code, an event
nobody can be attributed to or a line item for an unknown product all land silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from leadflow.config.fields import CONSENT_STATUSES
from leadflow.config.filters import EVENT_TYPES as FILTER_EVENT_TYPES

Severity = Literal["critical", "warning"]
Stage = Literal["raw", "marts"]
CRITICAL: Severity = "critical"
WARNING: Severity = "warning"

# Deliberately simple: one @, no whitespace, a dot in the domain. Full RFC 5322 checking
# is the importer's job; this catches what would bounce or break personalisation.
EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

TENANT_COUNTRIES = ["DE", "AT", "CH", "FR", "IT", "ES"]

# ISO 3166-1 alpha-2 officially assigned codes (249).
_ISO_CODES = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
ZW
"""
ISO_COUNTRIES = _ISO_CODES.split()
ISO_LABEL = "ISO 3166-1 alpha-2"

# The event types raw.events may hold are the filter language's: one list for both.
EVENT_TYPES = list(FILTER_EVENT_TYPES)
ORDER_STATUSES = ["won", "cancelled"]
PRODUCT_FAMILIES = ["hydrostat", "cleaning_agent", "maintenance_device", "software"]
CUSTOMER_STATUSES = ["lead", "new_customer", "existing_customer"]
TENANT_CODES = ["hq", "fr", "it", "es"]
DECISION_ROLES = ["purchaser", "production_manager", "managing_director", "other"]

# Values of these columns are personal data: results keep their counts, never examples.
PII_COLUMNS = frozenset({"email", "first_name", "last_name", "phone"})


@dataclass(frozen=True)
class Check:
    """One expectation: its GX type (snake case), keyword arguments and severity.

    `label` tells checks of one column apart in messages (or, for a query expectation,
    says what it checks).
    """

    expectation: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    severity: Severity = CRITICAL
    label: str | None = None

    def describe(self) -> str:
        """E.g. `expect_column_values_to_not_be_null(email)`."""
        arguments = ", ".join(part for part in (self.columns(), self.label) if part)
        return f"{self.expectation}({arguments})" if arguments else self.expectation

    def columns(self) -> str:
        if "column" in self.kwargs:
            return str(self.kwargs["column"])
        if "column_list" in self.kwargs:
            return ", ".join(self.kwargs["column_list"])
        if "column_A" in self.kwargs:
            return f"{self.kwargs['column_A']}, {self.kwargs['column_B']}"
        return ""

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")


@dataclass(frozen=True)
class Suite:
    """The checks of one table; `name` is what ops.quality_results.suite records."""

    name: str
    schema: str
    table: str
    checks: tuple[Check, ...]

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}"


def not_null(column: str, severity: Severity = CRITICAL) -> Check:
    return Check("expect_column_values_to_not_be_null", {"column": column}, severity)


def unique(column: str, severity: Severity = CRITICAL) -> Check:
    return Check("expect_column_values_to_be_unique", {"column": column}, severity)


def in_set(
    column: str,
    values: list[str] | list[int],
    severity: Severity = CRITICAL,
    label: str | None = None,
) -> Check:
    return Check(
        "expect_column_values_to_be_in_set",
        {"column": column, "value_set": values},
        severity,
        label=label,
    )


def at_least(column: str, minimum: float, severity: Severity = CRITICAL) -> Check:
    return Check(
        "expect_column_values_to_be_between", {"column": column, "min_value": minimum}, severity
    )


def no_rows(label: str, query: str, severity: Severity = CRITICAL) -> Check:
    """Fails for every row `query` returns; `{batch}` stands for the table being checked.

    GX substitutes `{batch}` with an aliased subquery, so the query must not alias it
    again: compare with `not in (select key ...)` on NOT NULL keys instead of a
    correlated `not exists`.
    """
    return Check(
        "unexpected_rows_expectation", {"unexpected_rows_query": query}, severity, label=label
    )


def key(column: str) -> tuple[Check, Check]:
    return not_null(column), unique(column)


RAW_SUITES: tuple[Suite, ...] = (
    Suite(
        "raw_contacts",
        "raw",
        "contacts",
        (
            *key("contact_id"),
            not_null("email"),
            Check("expect_column_values_to_match_regex", {"column": "email", "regex": EMAIL_REGEX}),
            in_set("consent_status", list(CONSENT_STATUSES)),
            in_set("country", ISO_COUNTRIES, label=ISO_LABEL),
            # Contacts outside the six tenant countries belong to no tenant: worth a look.
            in_set("country", TENANT_COUNTRIES, WARNING, label="tenant countries"),
            in_set("decision_role", DECISION_ROLES, WARNING),
        ),
    ),
    Suite(
        "raw_accounts",
        "raw",
        "accounts",
        (
            *key("account_id"),
            not_null("name"),
            in_set("country", ISO_COUNTRIES, label=ISO_LABEL),
            at_least("employee_count", 0),
        ),
    ),
    Suite(
        "raw_events",
        "raw",
        "events",
        (
            *key("event_id"),
            in_set("event_type", EVENT_TYPES),
            not_null("occurred_at"),
            no_rows(
                "contact_id or visitor_id present",
                "select * from {batch} where contact_id is null and visitor_id is null",
            ),
        ),
    ),
    Suite(
        "raw_orders",
        "raw",
        "orders",
        (
            *key("order_id"),
            not_null("ordered_at"),
            in_set("status", ORDER_STATUSES),
            Check(
                "expect_column_values_to_match_regex", {"column": "currency", "regex": "^[A-Z]{3}$"}
            ),
            # Credit notes are possible but rare; a negative order is worth a look, not a stop.
            at_least("net_amount", 0, WARNING),
            no_rows(
                "contact_id or account_id present",
                "select * from {batch} where contact_id is null and account_id is null",
                WARNING,
            ),
        ),
    ),
    Suite(
        "raw_order_items",
        "raw",
        "order_items",
        (
            Check("expect_compound_columns_to_be_unique", {"column_list": ["order_id", "line_no"]}),
            at_least("quantity", 1),
            no_rows(
                "order_id in raw.orders",
                "select * from {batch} where order_id not in (select order_id from raw.orders)",
            ),
            no_rows(
                "product_id in raw.products",
                "select * from {batch} "
                "where product_id not in (select product_id from raw.products)",
            ),
        ),
    ),
    Suite(
        "raw_products",
        "raw",
        "products",
        (
            *key("product_id"),
            unique("sku"),
            at_least("list_price", 0),
            at_least("unit_cost", 0),
            in_set("family", PRODUCT_FAMILIES, WARNING),
        ),
    ),
    Suite(
        "raw_installed_base",
        "raw",
        "installed_base",
        (
            *key("installation_id"),
            not_null("account_id"),
            not_null("installed_on"),
            no_rows(
                "product_id in raw.products",
                "select * from {batch} "
                "where product_id not in (select product_id from raw.products)",
            ),
            Check(
                "expect_column_pair_values_a_to_be_greater_than_b",
                {
                    "column_A": "next_maintenance_date",
                    "column_B": "installed_on",
                    "or_equal": True,
                    "ignore_row_if": "either_value_is_missing",
                },
                WARNING,
            ),
        ),
    ),
    Suite(
        "raw_fair_leads",
        "raw",
        "fair_leads",
        (
            *key("fair_lead_id"),
            not_null("email"),
            not_null("fair"),
            # Fair leads are cleaned when they are merged (bad rows are quarantined there).
            Check(
                "expect_column_values_to_match_regex",
                {"column": "email", "regex": EMAIL_REGEX},
                WARNING,
            ),
        ),
    ),
)

GRADES = ["A", "B", "C", "D"]
BANDS = [1, 2, 3, 4]
MATRIX_CELLS = [f"{grade}{band}" for grade in GRADES for band in BANDS]


def between(column: str, low: float, high: float | None, severity: Severity = CRITICAL) -> Check:
    return Check(
        "expect_column_values_to_be_between",
        {"column": column, "min_value": low, "max_value": high},
        severity,
    )


def compound_key(*columns: str, severity: Severity = CRITICAL) -> Check:
    return Check("expect_compound_columns_to_be_unique", {"column_list": list(columns)}, severity)


# Critical where campaigns depend on the mart (audiences, triggers, routing read scores,
# personas and segment membership); warnings for what only reports read (matrix, CLV).
MART_SUITES: tuple[Suite, ...] = (
    Suite(
        "marts_dim_contacts",
        "marts",
        "dim_contacts",
        (
            *key("contact_id"),
            not_null("email"),
            in_set("customer_status", CUSTOMER_STATUSES),
            not_null("tenant_code"),
            # Tenants are configurable; an unknown code usually means a config change.
            in_set("tenant_code", TENANT_CODES, WARNING),
        ),
    ),
    Suite(
        "marts_persona_matches",
        "marts",
        "persona_matches",
        (
            not_null("contact_id"),
            not_null("persona"),
            compound_key("contact_id", "persona"),
            not_null("match_pct"),
            between("match_pct", 0, 100),
            not_null("is_match"),
            no_rows(
                "is_match = (match_pct >= threshold)",
                "select * from {batch} where is_match <> (match_pct >= threshold)",
            ),
        ),
    ),
    Suite(
        "marts_lead_scores",
        "marts",
        "lead_scores",
        (
            *key("contact_id"),
            not_null("profile_score"),
            between("profile_score", 0, 100),
            not_null("activity_score"),
            between("activity_score", 0, 100),
            in_set("grade", GRADES),
            in_set("band", BANDS),
            in_set("matrix_cell", MATRIX_CELLS),
            no_rows(
                "matrix_cell = grade || band",
                "select * from {batch} where matrix_cell is distinct from grade || band",
            ),
            not_null("is_mql"),
        ),
    ),
    Suite(
        "marts_scoring_matrix",
        "marts",
        "scoring_matrix",
        (
            compound_key("tenant_code", "matrix_cell", severity=WARNING),
            in_set("matrix_cell", MATRIX_CELLS, WARNING),
            at_least("contacts", 0, WARNING),
            no_rows(
                "16 cells per tenant",
                "select tenant_code from {batch} group by tenant_code "
                "having count(distinct matrix_cell) <> 16",
                WARNING,
            ),
        ),
    ),
    Suite(
        "marts_segment_members",
        "marts",
        "segment_members",
        (
            not_null("segment"),
            not_null("contact_id"),
            compound_key("segment", "contact_id"),
            no_rows(
                "contact_id in marts.dim_contacts",
                "select * from {batch} "
                "where contact_id not in (select contact_id from marts.dim_contacts)",
            ),
        ),
    ),
    Suite(
        "marts_customer_lifetime_value",
        "marts",
        "customer_lifetime_value",
        (
            not_null("contact_id", WARNING),
            unique("contact_id", WARNING),
            # Credit notes can make revenue negative: worth a look, not a stop.
            at_least("historic_revenue", 0, WARNING),
            at_least("predicted_revenue", 0, WARNING),
            at_least("clv", 0, WARNING),
        ),
    ),
)

SUITES: dict[Stage, tuple[Suite, ...]] = {"raw": RAW_SUITES, "marts": MART_SUITES}


def suites_for(stage: str) -> tuple[Suite, ...]:
    if stage not in SUITES:
        from leadflow.errors import LeadflowError

        raise LeadflowError(f"unknown quality gate stage '{stage}' (known: raw, marts)")
    return SUITES[stage]  # type: ignore[index]
