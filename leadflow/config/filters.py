"""The filter language (SPEC §2.5) as a typed tree.

One language serves segments, campaign audiences, goals and branches, routing rules and
tenant pool aliases; a compiler turns the tree into parameterised SQL. In YAML a filter is a
mapping whose one identifying key says what it is:

    all: [<filter>, ...]            AllOf            any: [...]   AnyOf      not: <filter>  Not
    field/op/value                  FieldCondition   (checked against the field catalogue)
    purchased: {...}                Purchased        last_purchase: {...}    LastPurchase
    opened: {...}                   Opened           clicked: {...}          Clicked
    downloaded: {...}               Downloaded       visited: {...}          Visited
    events: {...}                   Events           inactive: {days: N}     Inactive
    owns: {...}                     Owns             maintenance_due: {...}  MaintenanceDue
    segment: <name>                 InSegment

Every node class is a frozen pydantic model; `Filter` is their union. `walk(filter)` yields
every node with its path (as YAML keys), which the loader uses for reference checks and a
compiler can use for recursion-free traversal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from leadflow.config.base import (
    ConfigModel,
    PositiveInt,
    ProductId,
    Slug,
    config_error,
    did_you_mean,
    tagged_union,
)
from leadflow.config.dates import Duration, RelativeDate
from leadflow.config.fields import (
    FIELDS,
    OPERATORS,
    FieldSpec,
    FieldValueError,
    Operator,
    normalize_value,
)

EventType = Literal[
    "email_sent",
    "email_delivered",
    "email_bounced",
    "email_open",
    "email_click",
    "unsubscribe",
    "download",
    "form_submit",
    "web_visit",
    "purchase",
    "fair_visit",
]

EVENT_TYPES: tuple[str, ...] = get_args(EventType)
# What counts as a person doing something (for `inactive`, `last_activity_at`, inactivity
# triggers): machine-flagged events never count, nor do the platform's own send events.
HUMAN_ACTIVITY_EVENTS: tuple[str, ...] = (
    "email_open",
    "email_click",
    "download",
    "form_submit",
    "web_visit",
    "purchase",
    "fair_visit",
)


def _days_or_longer(duration: Duration) -> Duration:
    if duration.unit == "h":
        raise config_error(
            "duration", "filters work on whole days: use d, w, m or y (e.g. 30d), not hours"
        )
    return duration


Window = Annotated[Duration, AfterValidator(_days_or_longer)]
"""A look-back window for a filter: `30d` means a date in (as_of − 30 days, as_of]."""


def _at_most_one(model: ConfigModel, *names: str) -> None:
    given = [name for name in names if getattr(model, name) is not None]
    if len(given) > 1:
        raise config_error("exclusive", f"give only one of {', '.join(names)}, not both")


def _exactly_one(model: ConfigModel, *names: str) -> None:
    _at_most_one(model, *names)
    if all(getattr(model, name) is None for name in names):
        raise config_error("required", f"give one of {', '.join(names)}")


# --- field comparisons -----------------------------------------------------------------


class FieldCondition(ConfigModel):
    """`field op value`: a comparison of one catalogue field (see fields.py)."""

    # Which field sources the context allows (persona criteria: contact/account only).
    allowed_sources: ClassVar[frozenset[str]] = frozenset({"contact", "account", "derived"})
    allow_scoring_fields: ClassVar[bool] = True

    field: str
    op: Operator
    value: Any = Field(None, validate_default=True)

    @property
    def spec(self) -> FieldSpec:
        return FIELDS[self.field]

    @field_validator("field")
    @classmethod
    def _known_field(cls, name: str) -> str:
        if name not in FIELDS:
            raise config_error(
                "unknown_field", f"unknown field {name!r}{did_you_mean(name, FIELDS)}"
            )
        spec = FIELDS[name]
        if spec.source not in cls.allowed_sources:
            raise config_error(
                "field_not_allowed",
                f"field {name!r} is {spec.source}; here only "
                f"{' and '.join(sorted(cls.allowed_sources))} fields are allowed",
            )
        if spec.from_scoring and not cls.allow_scoring_fields:
            raise config_error(
                "field_not_allowed", f"field {name!r} is computed from the scores themselves"
            )
        return name

    @field_validator("op", mode="before")
    @classmethod
    def _known_operator(cls, op: Any) -> Any:
        if isinstance(op, str) and op not in OPERATORS:
            raise config_error(
                "unknown_operator",
                f"unknown operator {op!r}{did_you_mean(op, OPERATORS)}; "
                f"operators: {' '.join(OPERATORS)}",
            )
        return op

    @field_validator("op")
    @classmethod
    def _operator_fits_field(cls, op: str, info: ValidationInfo) -> str:
        spec = FIELDS.get(info.data.get("field", ""))
        if spec is not None and op not in spec.operators:
            allowed = " ".join(o for o in OPERATORS if o in spec.operators)
            raise config_error(
                "operator_type",
                f"operator {op!r} does not apply to {spec.type} field {spec.name!r} "
                f"(allowed: {allowed})",
            )
        return op

    @field_validator("value")
    @classmethod
    def _value_fits_field(cls, value: Any, info: ValidationInfo) -> Any:
        spec = FIELDS.get(info.data.get("field", ""))
        op = info.data.get("op")
        if spec is None or op is None or op not in spec.operators:
            return value  # the field or operator error is reported already
        try:
            return normalize_value(spec, op, value)
        except FieldValueError as error:
            raise config_error("field_value", f"{spec.name} ({spec.type}): {error}") from None

    @field_serializer("value")
    def _serialize_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return [str(item) if isinstance(item, RelativeDate) else item for item in value]
        return str(value) if isinstance(value, RelativeDate) else value


# --- purchases and installed base ------------------------------------------------------


class PurchasedSpec(ConfigModel):
    """Bought `product` (or any product of `family`, or anything) at least `min_count` times.

    `before`/`after` bound the order date (exclusive/inclusive: ordered_at < before,
    ordered_at >= after); `within` is a look-back window and excludes before/after.
    """

    product: ProductId | None = None
    family: Slug | None = None
    before: RelativeDate | None = None
    after: RelativeDate | None = None
    within: Window | None = None
    min_count: PositiveInt = 1

    @model_validator(mode="after")
    def _consistent(self) -> PurchasedSpec:
        _at_most_one(self, "product", "family")
        if self.within is not None and (self.before or self.after):
            raise config_error("exclusive", "give either within or before/after, not both")
        return self


class ProductRef(ConfigModel):
    """Exactly one of a product id or a product family id."""

    product: ProductId | None = None
    family: Slug | None = None

    @model_validator(mode="after")
    def _one(self) -> ProductRef:
        _exactly_one(self, "product", "family")
        return self


class MaintenanceDueSpec(ConfigModel):
    """An installed product (optionally of one product/family) whose next maintenance date
    lies in `between` (inclusive), e.g. [+0d, +1y] = within the coming year."""

    product: ProductId | None = None
    family: Slug | None = None
    between: Annotated[list[RelativeDate], Field(min_length=2, max_length=2)]

    @model_validator(mode="after")
    def _consistent(self) -> MaintenanceDueSpec:
        _at_most_one(self, "product", "family")
        return self


class Purchased(ConfigModel):
    purchased: PurchasedSpec


class LastPurchase(ConfigModel):
    """The most recent purchase (latest won order) contains the product / family."""

    last_purchase: ProductRef


class Owns(ConfigModel):
    """The contact's account has the product / a product of the family installed."""

    owns: ProductRef


class MaintenanceDue(ConfigModel):
    maintenance_due: MaintenanceDueSpec


# --- behaviour -------------------------------------------------------------------------


class OpenedSpec(ConfigModel):
    mailing: str | None = None
    within: Window | None = None


class ClickedSpec(ConfigModel):
    link: str | None = None
    tag: str | None = None
    mailing: str | None = None
    within: Window | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ClickedSpec:
        _at_most_one(self, "link", "tag")
        return self


class DownloadedSpec(ConfigModel):
    asset: Slug | None = None
    within: Window | None = None


class VisitedSpec(ConfigModel):
    """`url_pattern` is matched like SQL LIKE with `*` as the wildcard (`/produkte/*`)."""

    url_pattern: Annotated[str, Field(min_length=1)]
    within: Window | None = None


class EventsSpec(ConfigModel):
    type: EventType
    min_count: PositiveInt = 1
    within: Window | None = None


class InactiveSpec(ConfigModel):
    days: PositiveInt


class Opened(ConfigModel):
    """A human (non-machine) open of the mailing (any mailing if omitted)."""

    opened: OpenedSpec


class Clicked(ConfigModel):
    """A human click on the link id or any link with the tag (optionally in one mailing)."""

    clicked: ClickedSpec


class Downloaded(ConfigModel):
    downloaded: DownloadedSpec


class Visited(ConfigModel):
    visited: VisitedSpec


class Events(ConfigModel):
    """At least `min_count` human events of `type` (within the window, or ever)."""

    events: EventsSpec


class Inactive(ConfigModel):
    """No HUMAN_ACTIVITY_EVENTS in the last `days` days (a contact with none ever is
    inactive too)."""

    inactive: InactiveSpec


# --- composition -----------------------------------------------------------------------


class InSegment(ConfigModel):
    """Member of another segment (resolved recursively; cycles are config errors)."""

    segment: Slug


class AllOf(ConfigModel):
    conditions: Annotated[list[Filter], Field(alias="all", min_length=1)]


class AnyOf(ConfigModel):
    conditions: Annotated[list[Filter], Field(alias="any", min_length=1)]


class Not(ConfigModel):
    condition: Filter = Field(alias="not")


FILTER_KINDS: dict[str, type[ConfigModel]] = {
    "all": AllOf,
    "any": AnyOf,
    "not": Not,
    "field": FieldCondition,
    "purchased": Purchased,
    "last_purchase": LastPurchase,
    "opened": Opened,
    "clicked": Clicked,
    "downloaded": Downloaded,
    "visited": Visited,
    "events": Events,
    "inactive": Inactive,
    "owns": Owns,
    "maintenance_due": MaintenanceDue,
    "segment": InSegment,
}

Filter = tagged_union(FILTER_KINDS, "filter", "field: country, op: in, value: [DE, AT]")
"""Any node of the filter language (a union of the classes above)."""

FilterNode = (
    AllOf
    | AnyOf
    | Not
    | FieldCondition
    | Purchased
    | LastPurchase
    | Opened
    | Clicked
    | Downloaded
    | Visited
    | Events
    | Inactive
    | Owns
    | MaintenanceDue
    | InSegment
)

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()

Path = tuple[str | int, ...]


def walk(node: FilterNode, path: Path = ()) -> Iterator[tuple[Path, FilterNode]]:
    """Every node of the tree, depth first, with its path of YAML keys from `node`."""
    yield path, node
    if isinstance(node, AllOf):
        for index, child in enumerate(node.conditions):
            yield from walk(child, (*path, "all", index))
    elif isinstance(node, AnyOf):
        for index, child in enumerate(node.conditions):
            yield from walk(child, (*path, "any", index))
    elif isinstance(node, Not):
        yield from walk(node.condition, (*path, "not"))


def referenced_segments(node: FilterNode) -> list[tuple[Path, str]]:
    """The nested segment references of a filter, with their paths."""
    return [(path, child.segment) for path, child in walk(node) if isinstance(child, InSegment)]


def filter_to_yaml(node: FilterNode) -> dict[str, Any]:
    """The YAML/JSON form of a filter (what `Filter` validation accepts back)."""
    return node.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=False)


__all__ = [
    "EVENT_TYPES",
    "FILTER_KINDS",
    "HUMAN_ACTIVITY_EVENTS",
    "AllOf",
    "AnyOf",
    "Clicked",
    "Downloaded",
    "Duration",
    "EventType",
    "Events",
    "FieldCondition",
    "Filter",
    "FilterNode",
    "InSegment",
    "Inactive",
    "LastPurchase",
    "MaintenanceDue",
    "Not",
    "Opened",
    "Owns",
    "ProductRef",
    "Purchased",
    "RelativeDate",
    "Visited",
    "Window",
    "filter_to_yaml",
    "referenced_segments",
    "walk",
]
