"""The filter language: every condition kind, value typing against the field catalogue,
error locations, tree walking and the YAML round trip."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import TypeAdapter, ValidationError

from leadflow.config.dates import Duration, RelativeDate
from leadflow.config.fields import FIELDS, OPERATORS_BY_TYPE
from leadflow.config.filters import (
    AllOf,
    AnyOf,
    Clicked,
    Downloaded,
    Events,
    FieldCondition,
    Filter,
    Inactive,
    InSegment,
    LastPurchase,
    MaintenanceDue,
    Not,
    Opened,
    Owns,
    Purchased,
    Visited,
    filter_to_yaml,
    referenced_segments,
    walk,
)

FILTER = TypeAdapter(Filter)


def errors(raw: object) -> list[tuple[tuple, str]]:
    """(loc without union tags, message) of every error of `raw` as a filter."""
    with pytest.raises(ValidationError) as raised:
        FILTER.validate_python(raw)
    from leadflow.config.base import LOC_TAGS

    return [
        (tuple(part for part in error["loc"] if part not in LOC_TAGS), error["msg"])
        for error in raised.value.errors()
    ]


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"all": [{"segment": "a"}]}, AllOf),
        ({"any": [{"segment": "a"}]}, AnyOf),
        ({"not": {"segment": "a"}}, Not),
        ({"field": "country", "op": "=", "value": "DE"}, FieldCondition),
        ({"purchased": {"family": "hydrostat", "within": "90d"}}, Purchased),
        ({"last_purchase": {"product": "CLN-10"}}, LastPurchase),
        ({"opened": {"mailing": "newsletter_2026_03", "within": "30d"}}, Opened),
        ({"clicked": {"tag": "pricing"}}, Clicked),
        ({"downloaded": {"asset": "ebook_antriebslosigkeit"}}, Downloaded),
        ({"visited": {"url_pattern": "/produkte/hydrostat-3000*"}}, Visited),
        ({"events": {"type": "email_open", "min_count": 3, "within": "30d"}}, Events),
        ({"inactive": {"days": 90}}, Inactive),
        ({"owns": {"family": "hydrostat"}}, Owns),
        ({"maintenance_due": {"between": ["+0d", "+1y"]}}, MaintenanceDue),
        ({"segment": "hs2000_upsell"}, InSegment),
    ],
)
def test_each_condition_kind_is_recognised_by_its_key(raw, kind):
    node = FILTER.validate_python(raw)

    assert type(node) is kind
    assert filter_to_yaml(node) == {**raw, **_defaults(raw)}


def _defaults(raw: dict) -> dict:
    # The YAML form spells out the defaults the user left out.
    if "purchased" in raw:
        return {"purchased": {**raw["purchased"], "min_count": 1}}
    return {}


def test_purchase_condition_parses_dates_and_windows():
    node = FILTER.validate_python({"purchased": {"product": "HS2000", "before": "-3y"}})
    assert node.purchased.before == RelativeDate(amount=-3, unit="y")
    assert node.purchased.before.resolve(dt.date(2026, 5, 31)) == dt.date(2023, 5, 31)

    node = FILTER.validate_python({"purchased": {"after": dt.date(2024, 1, 1)}})
    assert node.purchased.after.resolve(dt.date(2026, 5, 31)) == dt.date(2024, 1, 1)

    node = FILTER.validate_python({"purchased": {"family": "software", "within": "6m"}})
    assert node.purchased.within == Duration(6, "m")


def test_field_values_are_typed_by_the_catalogue():
    def value(field: str, op: str, raw: object) -> object:
        return FILTER.validate_python({"field": field, "op": op, "value": raw}).value

    assert value("country", "in", ["DE", "AT"]) == ["DE", "AT"]
    assert value("employee_count", "between", [50, 500]) == [50, 500]
    assert value("annual_revenue", ">=", 2.5e6) == 2.5e6
    assert value("created_at", "<", "-90d") == RelativeDate(amount=-90, unit="d")
    assert value("first_order_date", "between", [dt.date(2024, 1, 1), "+0d"]) == [
        RelativeDate(absolute=dt.date(2024, 1, 1)),
        RelativeDate(amount=0, unit="d"),
    ]
    assert value("is_mql", "=", True) is True
    assert value("tags", "contains", "vip") == "vip"
    assert value("grade", "in", ["A", "B"]) == ["A", "B"]
    assert FILTER.validate_python({"field": "owner", "op": "is_null"}).value is None


@pytest.mark.parametrize(
    ("raw", "loc", "message"),
    [
        (
            {"field": "employee_count", "op": ">", "value": "many"},
            ("value",),
            "employee_count (integer): expected a whole number, got the text 'many'",
        ),
        (
            {"field": "employee_count", "op": ">", "value": 50.5},
            ("value",),
            "employee_count (integer): expected a whole number, got 50.5",
        ),
        (
            {"field": "annual_revenue", "op": "<", "value": True},
            ("value",),
            "annual_revenue (numeric): expected a number, got True",
        ),
        (
            {"field": "country", "op": "=", "value": ["DE"]},
            ("value",),
            "country (text): '=' takes a single value, not a list ['DE'] "
            "(use 'in' for several values)",
        ),
        (
            {"field": "country", "op": "in", "value": "DE"},
            ("value",),
            "country (text): 'in' needs a non-empty list of values, got the text 'DE'",
        ),
        (
            {"field": "postcode", "op": "starts_with", "value": 80},
            ("value",),
            "postcode (text): expected text, got the number 80 (quote it: '80'; a postcode "
            "with a leading zero must be quoted to keep the zero)",
        ),
        (
            {"field": "grade", "op": "=", "value": "E"},
            ("value",),
            "grade (enum): expected one of A, B, C, D, got the text 'E'",
        ),
        (
            {"field": "customer_status", "op": "in", "value": ["lead", "prospect"]},
            ("value",),
            "customer_status (enum): item 1: expected one of lead, new_customer, "
            "existing_customer, got the text 'prospect'",
        ),
        (
            {"field": "created_at", "op": "<", "value": "3 months ago"},
            ("value",),
            "created_at (timestamp): expected a date (YYYY-MM-DD) or a relative date like "
            "-3y, -30d, +0d, got the text '3 months ago'",
        ),
        (
            {"field": "employee_count", "op": "between", "value": [500, 50]},
            ("value",),
            "employee_count (integer): 'between' needs low <= high, got [500, 50]",
        ),
        (
            {"field": "created_at", "op": "between", "value": ["-1d", "-1y"]},
            ("value",),
            "created_at (timestamp): 'between' needs low <= high, got [-1d, -1y]",
        ),
        (
            {"field": "owner", "op": "is_null", "value": "x"},
            ("value",),
            "owner (text): 'is_null' takes no value; remove 'value'",
        ),
        (
            {"field": "owner", "op": "="},
            ("value",),
            "owner (text): '=' needs a value",
        ),
        (
            {"field": "is_mql", "op": ">", "value": True},
            ("op",),
            "operator '>' does not apply to boolean field 'is_mql' "
            "(allowed: = != is_null is_not_null)",
        ),
        (
            {"field": "tags", "op": "=", "value": "vip"},
            ("op",),
            "operator '=' does not apply to text_array field 'tags' "
            "(allowed: in not_in contains is_null is_not_null)",
        ),
        (
            {"field": "country", "op": "like", "value": "D%"},
            ("op",),
            "unknown operator 'like'; operators: = != < <= > >= in not_in between contains "
            "starts_with is_null is_not_null",
        ),
        (
            {"field": "contry", "op": "=", "value": "DE"},
            ("field",),
            "unknown field 'contry' (did you mean 'country'?)",
        ),
    ],
)
def test_field_comparison_errors(raw, loc, message):
    assert errors(raw) == [(loc, message)]


def test_condition_errors_name_the_key_inside_the_tree():
    raw = {
        "all": [
            {"purchased": {"product": "HS2000", "family": "hydrostat"}},
            {"purchased": {"within": "30d", "before": "-1y"}},
            {"opened": {"within": "12h"}},
            {"clicked": {"link": "l1", "tag": "t1"}},
            {"owns": {}},
            {"purchase": {"product": "HS2000"}},
            {"segment": "x", "owns": {"product": "HS2000"}},
            {"maintenance_due": {"between": ["+0d"]}},
            "country = DE",
        ]
    }

    assert errors(raw) == [
        (("all", 0, "purchased"), "give only one of product, family, not both"),
        (("all", 1, "purchased"), "give either within or before/after, not both"),
        (
            ("all", 2, "opened", "within"),
            "filters work on whole days: use d, w, m or y (e.g. 30d), not hours",
        ),
        (("all", 3, "clicked"), "give only one of link, tag, not both"),
        (("all", 4, "owns"), "give one of product, family"),
        (
            ("all", 5),
            "a filter needs one of the keys all, any, not, field, purchased, last_purchase, "
            "opened, clicked, downloaded, visited, events, inactive, owns, maintenance_due, "
            "segment; got purchase (did you mean 'purchased'?)",
        ),
        (
            ("all", 6),
            "a filter takes exactly one of the keys owns, segment; combine them with all/any",
        ),
        (
            ("all", 7, "maintenance_due", "between"),
            "List should have at least 2 items after validation, not 1",
        ),
        (
            ("all", 8),
            "expected a filter: a mapping with one of the keys all, any, not, field, purchased, "
            "last_purchase, opened, clicked, downloaded, visited, events, inactive, owns, "
            "maintenance_due, segment (e.g. field: country, op: in, value: [DE, AT])",
        ),
    ]


def test_walk_yields_every_node_with_its_yaml_path():
    tree = FILTER.validate_python(
        {
            "all": [
                {"field": "country", "op": "in", "value": ["DE", "AT", "CH"]},
                {"any": [{"segment": "a"}, {"not": {"segment": "b"}}]},
            ]
        }
    )

    assert [(path, type(node).__name__) for path, node in walk(tree)] == [
        ((), "AllOf"),
        (("all", 0), "FieldCondition"),
        (("all", 1), "AnyOf"),
        (("all", 1, "any", 0), "InSegment"),
        (("all", 1, "any", 1), "Not"),
        (("all", 1, "any", 1, "not"), "InSegment"),
    ]
    assert referenced_segments(tree) == [
        (("all", 1, "any", 0), "a"),
        (("all", 1, "any", 1, "not"), "b"),
    ]


def test_yaml_form_round_trips():
    raw = {
        "all": [
            {"field": "created_at", "op": "between", "value": ["-1y", "2026-01-01"]},
            {"maintenance_due": {"product": "HS2000", "between": ["+0d", "+1y"]}},
            {"not": {"events": {"type": "email_click", "min_count": 2, "within": "2w"}}},
            {"field": "tags", "op": "is_null"},
        ]
    }
    tree = FILTER.validate_python(raw)

    assert filter_to_yaml(tree) == raw
    assert FILTER.validate_python(filter_to_yaml(tree)) == tree


def test_every_catalogue_field_has_operators_of_its_type():
    assert len(FIELDS) == 38
    for spec in FIELDS.values():
        assert spec.operators == OPERATORS_BY_TYPE[spec.type]
        assert (spec.type == "enum") == bool(spec.values)
    assert FIELDS["tags"].operators == {"contains", "in", "not_in", "is_null", "is_not_null"}
    assert FIELDS["account_name"].source_column == "name"
    assert FIELDS["account_country"].source == "account"
    assert FIELDS["best_persona"].references == "persona"
    assert FIELDS["tenant_code"].references == "tenant"
    scoring = {name for name, spec in FIELDS.items() if spec.from_scoring}
    assert scoring == {
        "profile_score", "grade", "activity_score", "band", "matrix_cell", "is_mql",
    }  # fmt: skip
