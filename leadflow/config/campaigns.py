"""Campaigns (journeys, SPEC §2.6): one YAML file per campaign in campaigns/.

A campaign has a trigger that enrols contacts, an ordered list of steps, an optional goal
and exit rules, a re-entry policy, a schedule and costs. Steps run in list order unless a
step says otherwise (`next:`, or a branch's `then`/`else`); an `exit` step or the end of the
list ends the journey.

`flow_issues` checks the step graph (unknown or duplicate step ids, unreachable steps,
cycles without a wait); it returns every problem with its path instead of stopping at the
first, so the loader can report them all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import Field, field_validator, model_serializer, model_validator

from leadflow.config.base import (
    WEEKDAYS,
    ClockTime,
    ConfigModel,
    DateOrDateTime,
    Money,
    NonEmptyText,
    PositiveInt,
    ProductId,
    Slug,
    TenantCode,
    Weekday,
    config_error,
    did_you_mean,
    none_as_empty,
    tagged_union,
)
from leadflow.config.dates import Duration
from leadflow.config.fields import FIELDS, LIFECYCLE_STAGES, normalize_value
from leadflow.config.filters import EventType, Filter

Path = tuple[str | int, ...]

# --- events (triggers, goals, exits) ---------------------------------------------------

_EVENT_QUALIFIERS: dict[str, frozenset[str]] = {
    "product": frozenset({"purchase"}),
    "product_family": frozenset({"purchase"}),
    "asset": frozenset({"download"}),
    "fair": frozenset({"fair_visit"}),
    "form": frozenset({"form_submit"}),
    "link_tag": frozenset({"email_click"}),
}


class EventSpec(ConfigModel):
    """An event of `type`, optionally narrowed (purchase of a product/family, download of an
    asset, visit of a fair, submit of a form, click on a link tag)."""

    type: EventType
    product: ProductId | None = None
    product_family: Slug | None = None
    asset: Slug | None = None
    fair: Slug | None = None
    form: Slug | None = None
    link_tag: str | None = None

    @model_validator(mode="after")
    def _qualifiers_fit_type(self) -> EventSpec:
        for qualifier, types in _EVENT_QUALIFIERS.items():
            if getattr(self, qualifier) is not None and self.type not in types:
                raise config_error(
                    "qualifier", f"{qualifier} applies to {'/'.join(sorted(types))} events only"
                )
        if self.product is not None and self.product_family is not None:
            raise config_error("exclusive", "give only one of product, product_family")
        return self


class TriggerEventSpec(EventSpec):
    type: Literal["purchase", "form_submit", "download", "fair_visit"]


# --- triggers --------------------------------------------------------------------------


class SegmentEntrySpec(ConfigModel):
    segment: Slug


DATE_TRIGGER_FIELDS = (
    "next_maintenance_date",
    *(name for name, spec in FIELDS.items() if spec.type in ("date", "timestamp")),
)


class DateRelativeSpec(ConfigModel):
    """Enrol when `field` + `offset_days` is as_of (e.g. 180 days before the next maintenance
    of an installed product; `product`/`product_family` narrow the installations)."""

    field: str
    offset_days: int
    product: ProductId | None = None
    product_family: Slug | None = None

    @field_validator("field")
    @classmethod
    def _date_field(cls, name: str) -> str:
        if name not in DATE_TRIGGER_FIELDS:
            raise config_error(
                "date_field", f"expected a date field ({', '.join(DATE_TRIGGER_FIELDS)})"
            )
        return name

    @model_validator(mode="after")
    def _narrowing_needs_installations(self) -> DateRelativeSpec:
        if self.product is not None and self.product_family is not None:
            raise config_error("exclusive", "give only one of product, product_family")
        narrowed = self.product is not None or self.product_family is not None
        if narrowed and self.field != "next_maintenance_date":
            raise config_error(
                "qualifier", "product/product_family apply to next_maintenance_date only"
            )
        return self


class InactivitySpec(ConfigModel):
    days: PositiveInt


class OneOffSpec(ConfigModel):
    """A single send at a date (at the tenant's send-window start) or date-time."""

    at: DateOrDateTime


class EventTrigger(ConfigModel):
    event: TriggerEventSpec


class SegmentEntryTrigger(ConfigModel):
    segment_entry: SegmentEntrySpec


class DateRelativeTrigger(ConfigModel):
    date_relative: DateRelativeSpec


class InactivityTrigger(ConfigModel):
    inactivity: InactivitySpec


class OneOffTrigger(ConfigModel):
    one_off: OneOffSpec


TRIGGER_KINDS: dict[str, type[ConfigModel]] = {
    "event": EventTrigger,
    "segment_entry": SegmentEntryTrigger,
    "date_relative": DateRelativeTrigger,
    "inactivity": InactivityTrigger,
    "one_off": OneOffTrigger,
}
Trigger = tagged_union(TRIGGER_KINDS, "trigger", "segment_entry: {segment: new_customers}")

# --- steps -----------------------------------------------------------------------------


class SendSpec(ConfigModel):
    """Send message `message` (templates/messages/<campaign>/<message>.*) with content blocks."""

    message: Slug
    content: list[NonEmptyText] = Field(default_factory=list)


class WaitUntil(ConfigModel):
    """Wait until the next moment inside this weekly window (tenant time zone)."""

    days: Annotated[list[Weekday], Field(min_length=1)] = Field(
        default_factory=lambda: list(WEEKDAYS[:5])
    )
    start: ClockTime
    end: ClockTime | None = None


class WaitSpec(ConfigModel):
    duration: Duration | None = None
    until: WaitUntil | None = None

    @model_validator(mode="after")
    def _one(self) -> WaitSpec:
        if (self.duration is None) == (self.until is None):
            raise config_error("wait", "give one of duration (e.g. 3d) or until")
        return self


BranchOn = Literal["opened", "clicked", "downloaded", "purchased"]
_BRANCH_QUALIFIERS: dict[str, frozenset[str]] = {
    "link": frozenset({"clicked"}),
    "link_tag": frozenset({"clicked"}),
    "asset": frozenset({"downloaded"}),
    "product": frozenset({"purchased"}),
    "product_family": frozenset({"purchased"}),
}


class BranchSpec(ConfigModel):
    """Go to `then` if the contact did `on` since `since_step` (or the filter holds),
    else to `else` (default: the following step)."""

    on: BranchOn | None = None
    since_step: Slug | None = None
    link: str | None = None
    link_tag: str | None = None
    asset: Slug | None = None
    product: ProductId | None = None
    product_family: Slug | None = None
    filter: Filter | None = None
    then: Slug
    otherwise: Slug | None = Field(None, alias="else")

    @model_validator(mode="after")
    def _one_condition(self) -> BranchSpec:
        if (self.on is None) == (self.filter is None):
            raise config_error("branch", "give one of on (with since_step) or filter")
        if self.on is not None and self.since_step is None:
            raise config_error("branch", f"on: {self.on} needs since_step (a step id)")
        if self.filter is not None and self.since_step is not None:
            raise config_error("branch", "since_step applies to on:, not to filter")
        for qualifier, kinds in _BRANCH_QUALIFIERS.items():
            if getattr(self, qualifier) is not None and self.on not in kinds:
                raise config_error(
                    "qualifier", f"{qualifier} applies to on: {'/'.join(sorted(kinds))} only"
                )
        if self.link is not None and self.link_tag is not None:
            raise config_error("exclusive", "give only one of link, link_tag")
        if self.product is not None and self.product_family is not None:
            raise config_error("exclusive", "give only one of product, product_family")
        return self


# Contact fields a journey may set; identity, consent and derived fields are not writable.
UPDATABLE_FIELDS = tuple(
    name
    for name, spec in FIELDS.items()
    if spec.source == "contact"
    and name not in ("contact_id", "email", "consent_status", "created_at", "lifecycle_stage")
)


class UpdateSet(ConfigModel):
    tag: NonEmptyText | None = None
    remove_tag: NonEmptyText | None = None
    stage: Literal[LIFECYCLE_STAGES] | None = None  # type: ignore[valid-type]
    fields: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _writable_fields(cls, fields: dict[str, Any]) -> dict[str, Any]:
        checked = {}
        for name, value in fields.items():
            if name not in UPDATABLE_FIELDS:
                raise config_error(
                    "field", f"{name!r} cannot be set (settable: {', '.join(UPDATABLE_FIELDS)})"
                )
            try:
                checked[name] = normalize_value(FIELDS[name], "=", value)
            except ValueError as error:
                raise config_error("field_value", f"{name}: {error}") from None
        return checked

    @model_validator(mode="after")
    def _something(self) -> UpdateSet:
        if not (self.tag or self.remove_tag or self.stage or self.fields):
            raise config_error("update", "set at least one of tag, remove_tag, stage, fields")
        return self


class UpdateSpec(ConfigModel):
    set: UpdateSet


class NotifyOwnerSpec(ConfigModel):
    """Mail the contact's sales rep the message (templates/messages/<campaign>/<message>.*)."""

    message: Slug


class CrmTaskSpec(ConfigModel):
    subject: NonEmptyText
    type: Literal["task", "call", "meeting"] = "task"
    due_in_days: Annotated[int, Field(ge=0)] = 3
    description: str | None = None


class ExitSpec(ConfigModel):
    reason: str | None = None


class StepBase(ConfigModel):
    id: Slug
    description: str | None = None
    # Where to go after this step; default: the following step in the list.
    next: Slug | None = None


class SendStep(StepBase):
    send: SendSpec


class WaitStep(StepBase):
    wait: WaitSpec


class BranchStep(StepBase):
    branch: BranchSpec


class UpdateStep(StepBase):
    update: UpdateSpec


class NotifyOwnerStep(StepBase):
    notify_owner: NotifyOwnerSpec


class CrmTaskStep(StepBase):
    crm_task: CrmTaskSpec


class ExitStep(StepBase):
    exit: none_as_empty(ExitSpec)


STEP_KINDS: dict[str, type[StepBase]] = {
    "send": SendStep,
    "wait": WaitStep,
    "branch": BranchStep,
    "update": UpdateStep,
    "notify_owner": NotifyOwnerStep,
    "crm_task": CrmTaskStep,
    "exit": ExitStep,
}
Step = tagged_union(STEP_KINDS, "step", "{id: welcome, send: {message: welcome}}")
StepNode = SendStep | WaitStep | BranchStep | UpdateStep | NotifyOwnerStep | CrmTaskStep | ExitStep


def step_kind(step: StepNode) -> str:
    """The step's kind key: send, wait, branch, update, notify_owner, crm_task or exit."""
    return next(key for key, model in STEP_KINDS.items() if isinstance(step, model))


# --- goal, exit rules, re-entry, schedule, costs ---------------------------------------


class JourneyCondition(ConfigModel):
    """A goal or exit rule: a filter that holds, or an event that happens after enrolment."""

    id: Slug | None = None
    filter: Filter | None = None
    event: EventSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> JourneyCondition:
        if (self.filter is None) == (self.event is None):
            raise config_error("condition", "give one of filter or event")
        return self


class ReEntry(ConfigModel):
    """`never`, `always`, or `{lockout_days: N}` (again N days after leaving)."""

    policy: Literal["never", "lockout", "always"]
    lockout_days: PositiveInt | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value: Any) -> Any:
        if isinstance(value, ReEntry):
            return value
        if value in ("never", "always"):
            return {"policy": value}
        if isinstance(value, dict) and set(value) == {"lockout_days"}:
            return {"policy": "lockout", **value}
        if isinstance(value, dict) and "policy" in value:
            return value  # the explicit form, as in ReEntry(policy="never")
        raise config_error(
            "re_entry", f"expected never, always or {{lockout_days: N}}, got {value!r}"
        )

    @model_serializer
    def _to_yaml(self) -> str | dict[str, int]:
        if self.policy == "lockout":
            return {"lockout_days": self.lockout_days or 0}
        return self.policy

    @model_validator(mode="after")
    def _lockout_has_days(self) -> ReEntry:
        if (self.policy == "lockout") != (self.lockout_days is not None):
            raise config_error("re_entry", "lockout_days goes with a lockout, and only there")
        return self


SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly")


def _check_schedule(value: str | None) -> str | None:
    if value is None or value in SCHEDULE_PRESETS or croniter.is_valid(value):
        return value
    raise config_error(
        "schedule",
        f"expected a cron expression like '0 7 * * 1-5' or one of "
        f"{', '.join(SCHEDULE_PRESETS)}, got {value!r}",
    )


class CampaignCosts(ConfigModel):
    """Campaign costs for ROI (SPEC §2.13), in the company currency."""

    concept: Money = 0
    content: Money = 0
    discounts: Money = 0
    tickets: Money = 0
    software: Money = 0
    per_send: Money = 0

    def fixed_total(self) -> float:
        return round(self.concept + self.content + self.discounts + self.tickets + self.software, 2)


class Campaign(ConfigModel):
    """campaigns/<id>.yaml."""

    id: Slug
    name: NonEmptyText
    description: str | None = None
    enabled: bool = True
    # Marketing mail counts against the frequency cap and needs marketing consent.
    category: Literal["marketing", "service"] = "marketing"
    tenants: Annotated[list[TenantCode], Field(min_length=1)]
    audience: Filter | None = None
    trigger: Trigger
    steps: Annotated[list[Step], Field(min_length=1)]
    goal: JourneyCondition | None = None
    exit_rules: list[JourneyCondition] = Field(default_factory=list)
    re_entry: ReEntry = Field(default_factory=lambda: ReEntry(policy="never"))
    # When the campaign's DAG advances journeys (cron or preset; null = manual runs only).
    schedule: Annotated[str | None, Field(validate_default=True)] = "@hourly"
    costs: CampaignCosts = Field(default_factory=CampaignCosts)

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, schedule: str | None) -> str | None:
        return _check_schedule(schedule)

    def step(self, step_id: str) -> StepNode:
        return next(step for step in self.steps if step.id == step_id)

    def successors(self, index: int) -> list[tuple[str, str]]:
        """(label, step id) of the steps that can follow steps[index]; [] ends the journey.

        Labels: `next` (the following step or `next:`), `then`/`else` for a branch.
        """
        return [(label, self.steps[target].id) for label, target in _successors(self.steps, index)]

    def messages(self) -> list[tuple[int, str, str]]:
        """(step index, kind key, message key) of every step that renders a message."""
        found = []
        for index, step in enumerate(self.steps):
            if isinstance(step, SendStep):
                found.append((index, "send", step.send.message))
            elif isinstance(step, NotifyOwnerStep):
                found.append((index, "notify_owner", step.notify_owner.message))
        return found


# --- the step graph --------------------------------------------------------------------


def _successors(steps: list[StepNode], index: int) -> list[tuple[str, int]]:
    """(label, index) of the steps that can follow steps[index] (unknown ids left out).

    The default successor is the next step in the list by position, so a duplicated id
    (reported on its own) does not reroute the flow.
    """
    step = steps[index]
    index_of: dict[str, int] = {}
    for position, candidate in enumerate(steps):
        index_of.setdefault(candidate.id, position)
    following = index + 1 if index + 1 < len(steps) else None
    if isinstance(step, ExitStep):
        targets: list[tuple[str, int | None]] = []
    elif isinstance(step, BranchStep):
        otherwise = step.branch.otherwise
        targets = [
            ("then", index_of.get(step.branch.then)),
            ("else", index_of.get(otherwise) if otherwise else following),
        ]
    else:
        targets = [("next", index_of.get(step.next) if step.next else following)]
    return [(label, target) for label, target in targets if target is not None]


def flow_issues(campaign: Campaign) -> list[tuple[Path, str]]:
    """Every problem of the step graph as (path in the campaign file, message)."""
    issues: list[tuple[Path, str]] = []
    index_of: dict[str, int] = {}
    for index, step in enumerate(campaign.steps):
        if step.id in index_of:
            first = index_of[step.id]
            message = f"duplicate step id {step.id!r} (steps[{first}])"
            issues.append((("steps", index, "id"), message))
        else:
            index_of[step.id] = index
    issues += _reference_issues(campaign.steps, index_of)
    if issues:
        return issues  # reachability and cycles are guesswork with dangling or doubled ids
    issues += _unreachable_issues(campaign.steps)
    issues += _cycle_issues(campaign.steps)
    return issues


def _reference_issues(steps: list[StepNode], index_of: dict[str, int]) -> list[tuple[Path, str]]:
    issues = []
    for index, step in enumerate(steps):
        references: list[tuple[Path, str]] = []
        if step.next is not None:
            if isinstance(step, BranchStep | ExitStep):
                issues.append(((("steps", index, "next")), f"a {step_kind(step)} step has no next"))
            references.append((("steps", index, "next"), step.next))
        if isinstance(step, BranchStep):
            branch = step.branch
            references.append((("steps", index, "branch", "then"), branch.then))
            if branch.otherwise is not None:
                references.append((("steps", index, "branch", "else"), branch.otherwise))
            if branch.since_step is not None:
                issues += _since_step_issues(steps, index_of, index, branch)
        for path, target in references:
            if target not in index_of:
                issues.append((path, f"unknown step {target!r}{did_you_mean(target, index_of)}"))
    return issues


def _since_step_issues(
    steps: list[StepNode], index_of: dict[str, int], index: int, branch: BranchSpec
) -> list[tuple[Path, str]]:
    path = ("steps", index, "branch", "since_step")
    since = branch.since_step
    if since not in index_of:
        return [(path, f"unknown step {since!r}{did_you_mean(since, index_of)}")]
    if since == steps[index].id:
        return [(path, "a branch cannot look back to itself")]
    if branch.on in ("opened", "clicked") and not isinstance(steps[index_of[since]], SendStep):
        return [(path, f"on: {branch.on} needs since_step to be a send step, not {since!r}")]
    return []


def _unreachable_issues(steps: list[StepNode]) -> list[tuple[Path, str]]:
    seen = {0}
    pending = [0]
    while pending:
        for _label, target in _successors(steps, pending.pop()):
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return [
        (("steps", index), f"step {step.id!r} is unreachable from the first step {steps[0].id!r}")
        for index, step in enumerate(steps)
        if index not in seen
    ]


def _cycle_issues(steps: list[StepNode]) -> list[tuple[Path, str]]:
    """A loop must pass a wait step, or a journey would spin without time passing."""
    edges = {
        index: [target for _, target in _successors(steps, index)]
        for index, step in enumerate(steps)
        if not isinstance(step, WaitStep)
    }
    issues = []
    reported: set[frozenset[int]] = set()
    for start in edges:
        cycle = _cycle_through(start, edges)
        if cycle and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            names = " → ".join(steps[index].id for index in [*cycle, cycle[0]])
            issues.append((("steps", cycle[0]), f"steps form a cycle without a wait step: {names}"))
    return issues


def _cycle_through(start: int, edges: dict[int, list[int]]) -> list[int] | None:
    """The shortest path start → ... → start among non-wait steps, if there is one."""
    previous: dict[int, int] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in edges.get(node, []):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return list(reversed(path))
                if target in edges and target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    return None


__all__ = [
    "DATE_TRIGGER_FIELDS",
    "STEP_KINDS",
    "TRIGGER_KINDS",
    "BranchSpec",
    "BranchStep",
    "Campaign",
    "CampaignCosts",
    "CrmTaskStep",
    "DateRelativeTrigger",
    "EventSpec",
    "EventTrigger",
    "ExitStep",
    "InactivityTrigger",
    "JourneyCondition",
    "NotifyOwnerStep",
    "OneOffTrigger",
    "ReEntry",
    "SegmentEntryTrigger",
    "SendStep",
    "Step",
    "StepNode",
    "Trigger",
    "UpdateStep",
    "WaitStep",
    "flow_issues",
    "step_kind",
]
