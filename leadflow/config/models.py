"""Models of the top-level configuration files (everything but campaigns/*.yaml).

One root model per file: `Company` (company.yaml), `TenantsFile`, `ProductsFile`,
`PersonasFile`, `Scoring`, `Routing`, `SegmentsFile`, `Costs`. They check shape, types and
everything that one file can decide on its own; references between files are checked by
`leadflow.config.checks`, and defaults that come from company.yaml (persona threshold,
scoring thresholds) are filled in by the loader, so a loaded `Config` has no gaps.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    GetCoreSchemaHandler,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from leadflow.config.base import (
    WEEKDAYS,
    ClockTime,
    ConfigModel,
    CountryCode,
    CurrencyCode,
    Email,
    IsoDate,
    LanguageCode,
    Money,
    NonEmptyText,
    Percent,
    PositiveInt,
    ProductId,
    Slug,
    TenantCode,
    TimeZoneName,
    Weekday,
    config_error,
)
from leadflow.config.fields import MATRIX_CELLS
from leadflow.config.filters import EventType, FieldCondition, Filter

MatrixCell = Literal[MATRIX_CELLS]  # type: ignore[valid-type]


# --- company.yaml ----------------------------------------------------------------------


class AsOfConventions(ConfigModel):
    """How a run's logical date is chosen when a command is not given `--as-of`."""

    default: Literal["yesterday", "today"] = "yesterday"
    # The run sees everything before as_of + 1 day, 00:00 in this zone (SPEC §2: UTC).
    cutoff_time_zone: TimeZoneName = "UTC"


class GradeThresholds(ConfigModel):
    """Minimum profile score per grade; below C is D."""

    A: Percent = 75
    B: Percent = 50
    C: Percent = 25

    @model_validator(mode="after")
    def _descending(self) -> GradeThresholds:
        if not self.A > self.B > self.C:
            raise config_error("thresholds", "grade thresholds must fall: A > B > C")
        return self


class BandThresholds(ConfigModel):
    """Minimum activity score per band; below band 3 is band 4. YAML keys are 1, 2, 3."""

    band_1: Percent = Field(75, alias="1")
    band_2: Percent = Field(50, alias="2")
    band_3: Percent = Field(25, alias="3")

    @model_validator(mode="after")
    def _descending(self) -> BandThresholds:
        if not self.band_1 > self.band_2 > self.band_3:
            raise config_error("thresholds", "band thresholds must fall: 1 > 2 > 3")
        return self


class FrequencyCap(ConfigModel):
    """At most `max_mails` marketing mails per contact in any `per_days` days."""

    max_mails: PositiveInt = 2
    per_days: PositiveInt = 7


class ClvSettings(ConfigModel):
    retention: Annotated[float, Field(ge=0, le=1)] = 0.8
    horizon_years: PositiveInt = 5


class AttributionSettings(ConfigModel):
    """Orders of enrolled contacts within `window_days` after their first send count."""

    window_days: PositiveInt = 90
    model: Literal["last_touch"] = "last_touch"


class SoftBounceRule(ConfigModel):
    """`max_soft_bounces` soft bounces within `within_days` days suppress the address."""

    max_soft_bounces: PositiveInt = 3
    within_days: PositiveInt = 30


class Defaults(ConfigModel):
    persona_threshold: Percent = 70
    activity_half_life_days: Annotated[float, Field(gt=0)] = 30
    mql_cells: Annotated[list[MatrixCell], Field(min_length=1)] = Field(
        default_factory=lambda: ["A1", "A2", "B1"]
    )
    grade_thresholds: GradeThresholds = Field(default_factory=GradeThresholds)
    band_thresholds: BandThresholds = Field(default_factory=BandThresholds)
    frequency_cap: FrequencyCap = Field(default_factory=FrequencyCap)
    clv: ClvSettings = Field(default_factory=ClvSettings)
    attribution: AttributionSettings = Field(default_factory=AttributionSettings)
    soft_bounce: SoftBounceRule = Field(default_factory=SoftBounceRule)
    # `new_customer` while the first order is fewer than this many days before as_of.
    new_customer_days: PositiveInt = 365


class PatternList:
    """A list of patterns given inline (a YAML list) or as a file (one per line, # comments).

    A file path is relative to the config directory; the loader checks that it exists and
    reads it, so `patterns` always holds the patterns and `file` where they came from.
    """

    def __init__(self, patterns: tuple[str, ...] = (), file: str | None = None) -> None:
        self.patterns = patterns
        self.file = file

    def __repr__(self) -> str:
        return f"PatternList(file={self.file!r}, patterns={len(self.patterns)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PatternList) and (self.patterns, self.file) == (
            other.patterns,
            other.file,
        )

    def __hash__(self) -> int:
        return hash((self.patterns, self.file))

    @classmethod
    def parse(cls, value: Any) -> PatternList:
        if isinstance(value, PatternList):
            return value
        if isinstance(value, str) and value.strip():
            return cls(file=value.strip())
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return cls(patterns=tuple(value))
        raise config_error(
            "pattern_list", "expected a list of patterns or the path of a file of patterns"
        )

    def read_file(self, base: Path) -> PatternList:
        """The same list with the file's non-empty, non-comment lines as patterns."""
        assert self.file is not None
        lines = (base / self.file).read_text(encoding="utf-8").splitlines()
        patterns = tuple(
            line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
        )
        return PatternList(patterns=patterns, file=self.file)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: value.file if value.file else list(value.patterns)
            ),
        )


class MachineTraffic(ConfigModel):
    """How machine opens/clicks (privacy proxies, security scanners) are recognised."""

    user_agents: PatternList = Field(default_factory=PatternList)
    ip_ranges: PatternList = Field(default_factory=PatternList)
    # A click this soon after delivery is a scanner following links, not a person.
    min_seconds_after_delivery: Annotated[float, Field(ge=0)] = 10
    # A link no human can see; whoever "clicks" it is a machine.
    honeypot_link_tag: str | None = "honeypot"


def _check_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+\S*", value):
        raise config_error(
            "url", f"expected a URL starting with http:// or https://, got {value!r}"
        )
    return value


class Tracking(ConfigModel):
    base_url: Annotated[str, AfterValidator(_check_url)] = "http://localhost:8765"
    token_secret_env: NonEmptyText = "LEADFLOW_TRACKING_SECRET"
    fair_lead_api_key_env: NonEmptyText = "LEADFLOW_FAIR_LEAD_API_KEY"
    double_opt_in_expiry_days: PositiveInt = 7
    batch_size: PositiveInt = 500
    flush_interval_seconds: Annotated[float, Field(gt=0)] = 1.0
    machine_traffic: MachineTraffic = Field(default_factory=MachineTraffic)


class Delivery(ConfigModel):
    smtp_url_env: NonEmptyText = "LEADFLOW_SMTP_URL"
    rate_limit_per_minute: PositiveInt = 600
    concurrency: PositiveInt = 2
    batch_size: PositiveInt = 200
    dry_run: bool = False
    bounce_mailbox_url_env: NonEmptyText = "LEADFLOW_BOUNCE_MAILBOX_URL"
    unsubscribe_mailto: Email | None = None


class Translation(ConfigModel):
    provider: Literal["deepl", "none"] = "deepl"
    api_key_env: NonEmptyText = "DEEPL_AUTH_KEY"
    server_url: str | None = None
    source_language: LanguageCode = "de"
    # Terms DeepL must keep as written (product names).
    glossary_terms: list[NonEmptyText] = Field(default_factory=list)
    # Without a key or translation: send in the source language, or hold the send.
    fallback: Literal["source_language", "hold"] = "source_language"


class FieldOwnership(ConfigModel):
    """Who may write which contact field; shared fields resolve by the newest change."""

    crm: list[NonEmptyText] = Field(default_factory=list)
    leadflow: list[NonEmptyText] = Field(default_factory=list)
    shared: list[NonEmptyText] = Field(default_factory=list)


class Crm(ConfigModel):
    adapter: Literal["sql", "rest", "none"] = "none"
    url_env: NonEmptyText = "LEADFLOW_CRM_URL"
    push_activities: bool = True
    field_ownership: FieldOwnership = Field(default_factory=FieldOwnership)


class Asset(ConfigModel):
    """A downloadable asset (e-book, data sheet); `downloaded` filters name it by id."""

    id: Slug
    name: NonEmptyText
    kind: Literal["ebook", "whitepaper", "datasheet", "video", "other"] = "other"
    languages: list[LanguageCode] = Field(default_factory=list)
    url: str | None = None
    # Gated: the capture form asks for contact data and double opt-in before the download.
    gated: bool = True


class Company(ConfigModel):
    """company.yaml: who the company is and the defaults every other file inherits."""

    name: NonEmptyText
    legal_name: str | None = None
    website: str | None = None
    currency: CurrencyCode = "EUR"
    # Where tenant and message templates live, relative to the config directory.
    templates_dir: NonEmptyText = "../templates"
    as_of: AsOfConventions = Field(default_factory=AsOfConventions)
    defaults: Defaults = Field(default_factory=Defaults)
    tracking: Tracking = Field(default_factory=Tracking)
    delivery: Delivery = Field(default_factory=Delivery)
    translation: Translation = Field(default_factory=Translation)
    crm: Crm = Field(default_factory=Crm)
    assets: list[Asset] = Field(default_factory=list)


# --- tenants.yaml ----------------------------------------------------------------------


class Sender(ConfigModel):
    name: NonEmptyText
    email: Email
    reply_to: Email | None = None


class ConsentPolicy(ConfigModel):
    # Customers who have not objected may get marketing mail without opt-in (e.g. §7(3) UWG).
    existing_customer_exemption: bool = False


class SendWindow(ConfigModel):
    """Sends happen on these weekdays between start and end, in the tenant's time zone."""

    days: Annotated[list[Weekday], Field(min_length=1)] = Field(
        default_factory=lambda: list(WEEKDAYS[:5])
    )
    start: ClockTime = dt.time(8, 0)
    end: ClockTime = dt.time(18, 0)

    @model_validator(mode="after")
    def _start_before_end(self) -> SendWindow:
        if self.start >= self.end:
            raise config_error("send_window", "the send window must start before it ends")
        return self


class Tenant(ConfigModel):
    code: TenantCode
    name: NonEmptyText
    # The global account (HQ): sees the whole pool and can run central campaigns for all.
    is_global: bool = False
    language: LanguageCode
    languages: list[LanguageCode] = Field(default_factory=list)
    countries: Annotated[list[CountryCode], Field(min_length=1)]
    time_zone: TimeZoneName
    sender: Sender
    # The derived template (include/templates/tenants/<template>.*); defaults to the code.
    template: Slug | None = None
    consent: ConsentPolicy = Field(default_factory=ConsentPolicy)
    deepl_formality: Literal["default", "more", "less", "prefer_more", "prefer_less"] = "default"
    send_window: SendWindow = Field(default_factory=SendWindow)
    # Which contacts of the global pool the tenant sees; defaults to country in countries.
    # Contact and account field comparisons only (checked with the other references).
    pool_alias: Filter | None = None

    @model_validator(mode="after")
    def _fill_defaults(self) -> Tenant:
        # Defaults that depend on other keys; set once here so readers never see a gap.
        if self.template is None:
            object.__setattr__(self, "template", self.code)
        if not self.languages:
            object.__setattr__(self, "languages", [self.language])
        elif self.language not in self.languages:
            raise config_error(
                "languages", f"languages {self.languages} must include language {self.language!r}"
            )
        if self.pool_alias is None:
            alias = FieldCondition(field="country", op="in", value=list(self.countries))
            object.__setattr__(self, "pool_alias", alias)
        return self


class TenantsFile(ConfigModel):
    tenants: Annotated[list[Tenant], Field(min_length=1)]


# --- products.yaml ---------------------------------------------------------------------


class ProductFamily(ConfigModel):
    id: Slug
    name: NonEmptyText
    description: str | None = None


class Product(ConfigModel):
    id: ProductId
    sku: str | None = None
    name: NonEmptyText
    family: Slug
    list_price: Money
    unit_cost: Money
    # Manufacturer maintenance interval; installed products get next_maintenance_date from it.
    maintenance_interval_months: PositiveInt | None = None
    successor: ProductId | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _fill_sku(self) -> Product:
        if self.sku is None:
            object.__setattr__(self, "sku", self.id)
        return self


class ProductsFile(ConfigModel):
    families: Annotated[list[ProductFamily], Field(min_length=1)]
    products: Annotated[list[Product], Field(min_length=1)]


# --- personas.yaml ---------------------------------------------------------------------


class Criterion(FieldCondition):
    """A persona criterion: a comparison on a contact or account field, and its weight."""

    allowed_sources = frozenset({"contact", "account"})

    weight: Annotated[float, Field(gt=0)]


class Persona(ConfigModel):
    id: Slug
    name: NonEmptyText
    description: str | None = None
    # Percent of the criteria weight a contact must meet; default company.defaults.
    threshold: Percent | None = None
    criteria: Annotated[list[Criterion], Field(min_length=1)]


class PersonasFile(ConfigModel):
    """Order matters: on equal match_pct the persona listed first wins."""

    personas: Annotated[list[Persona], Field(min_length=1)]


# --- scoring.yaml ----------------------------------------------------------------------


class ProfileRule(FieldCondition):
    """Fit: `points` when the comparison holds. Score fields themselves are not allowed."""

    allow_scoring_fields = False

    id: Slug | None = None
    points: float
    description: str | None = None


_RULE_QUALIFIERS: dict[str, frozenset[str]] = {
    "link_tag": frozenset({"email_click"}),
    "asset": frozenset({"download"}),
    "url_pattern": frozenset({"web_visit"}),
    "mailing": frozenset(
        {"email_sent", "email_delivered", "email_open", "email_click", "email_bounced"}
    ),
}


class ActivityRule(ConfigModel):
    """Engagement: each human event of `event_type` (narrowed by the optional qualifier)
    adds `points`, halved every half-life as it ages."""

    id: Slug | None = None
    event_type: EventType
    link_tag: str | None = None
    asset: Slug | None = None
    mailing: str | None = None
    url_pattern: str | None = None
    points: float
    description: str | None = None

    @model_validator(mode="after")
    def _qualifiers_fit_event(self) -> ActivityRule:
        for qualifier, event_types in _RULE_QUALIFIERS.items():
            if getattr(self, qualifier) is not None and self.event_type not in event_types:
                raise config_error(
                    "qualifier",
                    f"{qualifier} applies to {', '.join(sorted(event_types))} events, "
                    f"not {self.event_type}",
                )
        return self


class Scoring(ConfigModel):
    """scoring.yaml. Omitted thresholds/half-life/MQL cells come from company.defaults."""

    profile_rules: Annotated[list[ProfileRule], Field(min_length=1)]
    activity_rules: Annotated[list[ActivityRule], Field(min_length=1)]
    activity_half_life_days: Annotated[float, Field(gt=0)] | None = None
    grade_thresholds: GradeThresholds | None = None
    band_thresholds: BandThresholds | None = None
    mql_cells: Annotated[list[MatrixCell], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _name_rules(self) -> Scoring:
        # Explain output and the dbt snapshot need a stable name for every rule.
        for prefix, rules in (("profile", self.profile_rules), ("activity", self.activity_rules)):
            for number, rule in enumerate(rules, start=1):
                if rule.id is None:
                    object.__setattr__(rule, "id", f"{prefix}_{number}")
        return self


# --- routing.yaml ----------------------------------------------------------------------


class TeamMember(ConfigModel):
    name: NonEmptyText
    email: Email


class Team(ConfigModel):
    """A sales team; MQLs routed to it go round-robin to its members in this order."""

    id: Slug
    name: str | None = None
    members: Annotated[list[TeamMember], Field(min_length=1)]


class RoutingRule(ConfigModel):
    """The first rule whose `match` holds routes the MQL to `team`; no match = catch-all."""

    id: Slug
    description: str | None = None
    match: Filter | None = None
    team: Slug


class Routing(ConfigModel):
    notify_owner: bool = True
    teams: Annotated[list[Team], Field(min_length=1)]
    rules: Annotated[list[RoutingRule], Field(min_length=1)]


# --- segments.yaml ---------------------------------------------------------------------


class Segment(ConfigModel):
    description: NonEmptyText
    # A tenant's own segment (shown in its schema); none = a global segment.
    tenant: TenantCode | None = None
    filter: Filter


class SegmentsFile(ConfigModel):
    segments: dict[Slug, Segment]

    @field_validator("segments")
    @classmethod
    def _not_empty(cls, segments: dict[str, Segment]) -> dict[str, Segment]:
        if not segments:
            raise config_error("empty", "define at least one segment")
        return segments


# --- costs.yaml ------------------------------------------------------------------------


class Fair(ConfigModel):
    """A trade fair: fair leads carry its id; its costs feed the fair ROI."""

    id: Slug
    name: NonEmptyText
    date: IsoDate
    end_date: IsoDate | None = None
    location: str | None = None
    tenant: TenantCode | None = None
    # Cost per category (booth, travel, staff, ...), in the company currency.
    costs: dict[Slug, Money] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _dates_in_order(self) -> Fair:
        if self.end_date is not None and self.end_date < self.date:
            raise config_error("dates", "end_date is before date")
        return self

    @property
    def total_costs(self) -> float:
        return round(sum(self.costs.values()), 2)


class CostItem(ConfigModel):
    """Any other cost (licences, agencies) for KPI reports, optionally per tenant/campaign."""

    id: Slug
    name: NonEmptyText
    amount: Money
    date: IsoDate | None = None
    tenant: TenantCode | None = None
    campaign: Slug | None = None


class Costs(ConfigModel):
    fairs: list[Fair] = Field(default_factory=list)
    other: list[CostItem] = Field(default_factory=list)
