"""Checks that span items or files: duplicate ids, references, cycles, templates.

They run after every file was validated on its own and see only the items that validated
(so one bad segment does not hide another's unknown reference). Known ids are collected
from the raw YAML, so a reference to an item that exists but is itself invalid is not
reported twice. A set of known ids is None when its file could not be read at all; checks
against it are then skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadflow.config.base import did_you_mean
from leadflow.config.campaigns import (
    BranchStep,
    Campaign,
    DateRelativeTrigger,
    EventSpec,
    EventTrigger,
    SegmentEntryTrigger,
    SendStep,
    flow_issues,
)
from leadflow.config.filters import (
    AllOf,
    AnyOf,
    Downloaded,
    FieldCondition,
    FilterNode,
    InSegment,
    LastPurchase,
    MaintenanceDue,
    Not,
    Owns,
    Purchased,
    walk,
)
from leadflow.config.issues import Issue, Loc
from leadflow.config.models import (
    Company,
    Product,
    ProfileRule,
    Segment,
    Tenant,
)

# (kind, collection, id key) of every list whose items need unique ids.
UNIQUE_IDS = (
    ("company", "assets", "id"),
    ("tenants", "tenants", "code"),
    ("products", "families", "id"),
    ("products", "products", "id"),
    ("personas", "personas", "id"),
    ("scoring", "profile_rules", "id"),
    ("scoring", "activity_rules", "id"),
    ("routing", "teams", "id"),
    ("routing", "rules", "id"),
    ("costs", "fairs", "id"),
    ("costs", "other", "id"),
)


@dataclass
class Known:
    """Ids declared anywhere in the configuration (None: the declaring file is unreadable)."""

    tenants: set[str] | None = None
    families: set[str] | None = None
    products: set[str] | None = None
    personas: set[str] | None = None
    segments: set[str] | None = None
    assets: set[str] | None = None
    fairs: set[str] | None = None
    teams: set[str] | None = None
    campaigns: set[str] | None = None


@dataclass(frozen=True)
class FilterSite:
    """A filter (or a valid part of an invalid one) at `loc` in `file`.

    `context` says what uses it (segment, pool_alias, routing, campaign); `owner` names the
    segment for segment filters.
    """

    file: Path
    loc: Loc
    node: FilterNode
    context: str
    owner: str | None = None


@dataclass
class Valid:
    """The items that validated, each with the file it is in and its loc in that file."""

    company: tuple[Path, Company] | None = None
    tenants: list[tuple[Path, Loc, Tenant]] = field(default_factory=list)
    tenants_complete: bool = False
    products: list[tuple[Path, Loc, Product]] = field(default_factory=list)
    profile_rules: list[tuple[Path, Loc, ProfileRule]] = field(default_factory=list)
    activity_rules: list[tuple[Path, Loc, Any]] = field(default_factory=list)
    routing_rules: list[tuple[Path, Loc, Any]] = field(default_factory=list)
    segments: list[tuple[Path, Loc, Segment]] = field(default_factory=list)
    campaigns: list[tuple[Path, Campaign]] = field(default_factory=list)
    costs: list[tuple[Path, Loc, Any]] = field(default_factory=list)
    filters: list[FilterSite] = field(default_factory=list)


def ids_in(data: Any, collection: str, id_key: str | None) -> set[str] | None:
    """The string ids of the items of `collection` in a file's raw YAML (None: unreadable)."""
    if not isinstance(data, dict):
        return None
    items = data.get(collection)
    if isinstance(items, dict) and id_key is None:
        return {str(key) for key in items}
    if not isinstance(items, list):
        return set()
    return {
        item[id_key]
        for item in items
        if isinstance(item, dict) and isinstance(item.get(id_key), str)
    }


def duplicate_id_issues(file: Path, data: Any, collection: str, id_key: str) -> list[Issue]:
    items = data.get(collection) if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    first_seen: dict[str, int] = {}
    issues = []
    for index, item in enumerate(items):
        value = item.get(id_key) if isinstance(item, dict) else None
        if not isinstance(value, str):
            continue
        if value in first_seen:
            issues.append(
                Issue(
                    file,
                    (collection, index, id_key),
                    f"duplicate {id_key} {value!r} ({collection}[{first_seen[value]}] has it too)",
                )
            )
        else:
            first_seen[value] = index
    return issues


def _unknown(kind: str, name: str, known: set[str] | None) -> str | None:
    """The message for a reference to an unknown id, or None when it is known/uncheckable."""
    if known is None or name in known:
        return None
    hint = did_you_mean(name, known)
    if not hint:
        listed = sorted(known)
        more = ", ..." if len(listed) > 10 else ""
        hint = f" (known: {', '.join(listed[:10])}{more})" if listed else f" (no {kind} is defined)"
    return f"unknown {kind} {name!r}{hint}"


def reference_issues(file: Path, loc: Loc, node: FilterNode, known: Known) -> list[Issue]:
    """Every reference of a filter (or a bare field condition) to an unknown id."""
    issues = []
    for path, child in walk(node):
        for key_path, kind, name, ids in _references(child, known):
            message = _unknown(kind, name, ids)
            if message:
                issues.append(Issue(file, (*loc, *path, *key_path), message))
    return issues


def _references(node: FilterNode, known: Known) -> Iterator[tuple[Loc, str, str, set[str] | None]]:
    """(path, kind, id, known ids) of each reference `node` itself makes."""
    if isinstance(node, FieldCondition) and node.spec.references:
        ids = known.personas if node.spec.references == "persona" else known.tenants
        values = node.value if isinstance(node.value, list) else [node.value]
        for value in values:
            if isinstance(value, str):
                yield ("value",), node.spec.references, value, ids
    elif isinstance(node, Purchased | LastPurchase | Owns | MaintenanceDue):
        key = next(iter(type(node).model_fields))
        spec = getattr(node, key)
        if spec.product is not None:
            yield (key, "product"), "product", spec.product, known.products
        if spec.family is not None:
            yield (key, "family"), "product family", spec.family, known.families
    elif isinstance(node, Downloaded) and node.downloaded.asset is not None:
        yield ("downloaded", "asset"), "asset", node.downloaded.asset, known.assets
    elif isinstance(node, InSegment):
        yield ("segment",), "segment", node.segment, known.segments


# --- per file ---------------------------------------------------------------------------


def tenant_issues(valid: Valid, known: Known, templates_dir: Path) -> list[Issue]:
    issues = []
    tenants_dir = templates_dir / "tenants"
    for file, loc, tenant in valid.tenants:
        if tenants_dir.is_dir() and not any(tenants_dir.glob(f"{tenant.template}.*")):
            issues.append(
                Issue(
                    file,
                    (*loc, "template"),
                    f"unknown template {tenant.template!r}: no file {tenant.template}.* in "
                    f"{tenants_dir}",
                )
            )
    if valid.tenants_complete:
        issues += _global_tenant_issues(valid.tenants)
    return issues


def _global_tenant_issues(tenants: list[tuple[Path, Loc, Tenant]]) -> list[Issue]:
    globals_ = [(file, loc) for file, loc, tenant in tenants if tenant.is_global]
    if len(globals_) == 1:
        return []
    if not globals_:
        file = tenants[0][0]
        return [Issue(file, ("tenants",), "exactly one tenant needs is_global: true (HQ)")]
    return [
        Issue(file, (*loc, "is_global"), "only one tenant may be global")
        for file, loc in globals_[1:]
    ]


def product_issues(valid: Valid, known: Known) -> list[Issue]:
    issues = []
    for file, loc, product in valid.products:
        message = _unknown("product family", product.family, known.families)
        if message:
            issues.append(Issue(file, (*loc, "family"), message))
        if product.successor is not None:
            message = _unknown("product", product.successor, known.products)
            if message:
                issues.append(Issue(file, (*loc, "successor"), message))
            elif product.successor == product.id:
                issues.append(Issue(file, (*loc, "successor"), "a product cannot succeed itself"))
    return issues


def scoring_issues(valid: Valid, known: Known) -> list[Issue]:
    issues = []
    for file, loc, rule in valid.profile_rules:
        issues += reference_issues(file, loc, rule, known)
    for file, loc, rule in valid.activity_rules:
        if rule.asset is not None:
            message = _unknown("asset", rule.asset, known.assets)
            if message:
                issues.append(Issue(file, (*loc, "asset"), message))
    return issues


def routing_issues(valid: Valid, known: Known) -> list[Issue]:
    issues = []
    catch_all: str | None = None
    for file, loc, rule in valid.routing_rules:
        message = _unknown("team", rule.team, known.teams)
        if message:
            issues.append(Issue(file, (*loc, "team"), message))
        if catch_all is not None:
            issues.append(
                Issue(file, loc, f"rule is never used: rule {catch_all!r} before it matches all")
            )
        if rule.match is None:
            catch_all = catch_all or rule.id
    return issues


def segment_issues(valid: Valid, known: Known) -> list[Issue]:
    issues = []
    for file, loc, segment in valid.segments:
        if segment.tenant is not None:
            message = _unknown("tenant", segment.tenant, known.tenants)
            if message:
                issues.append(Issue(file, (*loc, "tenant"), message))
    return issues


def filter_issues(valid: Valid, known: Known) -> list[Issue]:
    """References of every filter (even inside otherwise invalid items), pool-alias limits,
    and nested-segment cycles."""
    issues = []
    for site in valid.filters:
        issues += reference_issues(site.file, site.loc, site.node, known)
        if site.context == "pool_alias":
            issues += _pool_alias_issues(site)
    return issues + segment_cycle_issues(
        [site for site in valid.filters if site.context == "segment"]
    )


def _pool_alias_issues(site: FilterSite) -> list[Issue]:
    """Pool aliases run inside the database on every read (row-level security), so they
    compare contact and account fields only (a derived field would make tenant_code
    circular and every read of the tenant's view as slow as a nightly build)."""
    issues = []
    for path, node in walk(site.node):
        if isinstance(node, FieldCondition) and node.spec.source == "derived":
            message = f"field {node.field!r} is derived; pool aliases use contact/account fields"
            issues.append(Issue(site.file, (*site.loc, *path, "field"), message))
        elif not isinstance(node, FieldCondition | AllOf | AnyOf | Not):
            message = "pool aliases are all/any/not of field comparisons only"
            issues.append(Issue(site.file, (*site.loc, *path), message))
    return issues


def segment_cycle_issues(sites: list[FilterSite]) -> list[Issue]:
    """Nested segments must not refer back to themselves, directly or through others."""
    references: dict[str, list[tuple[Loc, str]]] = {}
    where: dict[str, Path] = {}
    for site in sites:
        name = str(site.owner)
        where[name] = site.file
        references.setdefault(name, []).extend(
            ((*site.loc, *path), child.segment)
            for path, child in walk(site.node)
            if isinstance(child, InSegment)
        )
    issues, reported = [], set()
    for name in references:
        cycle = _find_cycle(name, references)
        if cycle is None or frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        file = where[name]
        successor = cycle[1 % len(cycle)]
        first_reference = next(ref for ref, target in references[name] if target == successor)
        chain = " → ".join([*cycle, cycle[0]])
        issues.append(Issue(file, (*first_reference, "segment"), f"segments form a cycle: {chain}"))
    return issues


def _find_cycle(start: str, references: dict[str, list[tuple[Loc, str]]]) -> list[str] | None:
    """The segments of a cycle that starts and ends at `start`, if there is one."""
    stack = [(start, [start])]
    visited: set[str] = set()
    while stack:
        name, chain = stack.pop()
        for _, target in references.get(name, []):
            if target == start:
                return chain
            if target in references and target not in visited:
                visited.add(target)
                stack.append((target, [*chain, target]))
    return None


def campaign_issues(valid: Valid, known: Known, templates_dir: Path) -> list[Issue]:
    issues = []
    for file, campaign in valid.campaigns:
        issues += _campaign_id_issues(file, campaign)
        issues += [Issue(file, loc, message) for loc, message in flow_issues(campaign)]
        for index, code in enumerate(campaign.tenants):
            message = _unknown("tenant", code, known.tenants)
            if message:
                issues.append(Issue(file, ("tenants", index), message))
        issues += _trigger_issues(file, campaign, known)
        issues += _event_issues(file, campaign, known)
        issues += _branch_reference_issues(file, campaign, known)
        issues += message_template_issues(file, campaign, templates_dir)
        issues += content_block_issues(file, campaign, templates_dir)
    return issues


def _campaign_id_issues(file: Path, campaign: Campaign) -> list[Issue]:
    if campaign.id == file.stem:
        return []
    return [
        Issue(file, ("id",), f"campaign id {campaign.id!r} must match the file name {file.name}")
    ]


def _trigger_issues(file: Path, campaign: Campaign, known: Known) -> list[Issue]:
    trigger = campaign.trigger
    if isinstance(trigger, SegmentEntryTrigger):
        name = trigger.segment_entry.segment
        message = _unknown("segment", name, known.segments)
        return [Issue(file, ("trigger", "segment_entry", "segment"), message)] if message else []
    if isinstance(trigger, EventTrigger):
        return _event_spec_issues(file, ("trigger", "event"), trigger.event, known)
    if isinstance(trigger, DateRelativeTrigger):
        spec = trigger.date_relative
        return _product_issues(file, ("trigger", "date_relative"), spec, known)
    return []


def _event_issues(file: Path, campaign: Campaign, known: Known) -> list[Issue]:
    issues = []
    conditions = [(("goal",), campaign.goal)] if campaign.goal else []
    conditions += [(("exit_rules", index), rule) for index, rule in enumerate(campaign.exit_rules)]
    for loc, condition in conditions:
        if condition.event is not None:
            issues += _event_spec_issues(file, (*loc, "event"), condition.event, known)
    return issues


def _event_spec_issues(file: Path, loc: Loc, event: EventSpec, known: Known) -> list[Issue]:
    issues = _product_issues(file, loc, event, known)
    for key, kind, ids in (("asset", "asset", known.assets), ("fair", "fair", known.fairs)):
        value = getattr(event, key)
        message = _unknown(kind, value, ids) if value is not None else None
        if message:
            issues.append(Issue(file, (*loc, key), message))
    return issues


def _product_issues(file: Path, loc: Loc, spec: Any, known: Known) -> list[Issue]:
    issues = []
    for key, kind, ids in (
        ("product", "product", known.products),
        ("product_family", "product family", known.families),
    ):
        value = getattr(spec, key)
        message = _unknown(kind, value, ids) if value is not None else None
        if message:
            issues.append(Issue(file, (*loc, key), message))
    return issues


def _branch_reference_issues(file: Path, campaign: Campaign, known: Known) -> list[Issue]:
    issues = []
    for index, step in enumerate(campaign.steps):
        if not isinstance(step, BranchStep):
            continue
        loc = ("steps", index, "branch")
        issues += _product_issues(file, loc, step.branch, known)
        if step.branch.asset is not None:
            message = _unknown("asset", step.branch.asset, known.assets)
            if message:
                issues.append(Issue(file, (*loc, "asset"), message))
    return issues


def message_template_issues(file: Path, campaign: Campaign, templates_dir: Path) -> list[Issue]:
    """Each message needs templates/messages/<campaign>/<message>.* once that folder exists
    (so a campaign can be validated before its templates are written)."""
    folder = templates_dir / "messages" / campaign.id
    if not folder.is_dir():
        return []
    return [
        Issue(
            file,
            ("steps", index, kind, "message"),
            f"no template for message {message!r}: expected {folder}/{message}.*",
        )
        for index, kind, message in campaign.messages()
        if not any(folder.glob(f"{message}.*"))
    ]


def content_block_issues(file: Path, campaign: Campaign, templates_dir: Path) -> list[Issue]:
    """Each content block a send step names needs content/<key>.yaml (the folder beside the
    templates folder) once that folder exists; blocks are resolved by key at send time."""
    folder = templates_dir.parent / "content"
    if not folder.is_dir():
        return []
    issues = []
    for index, step in enumerate(campaign.steps):
        if not isinstance(step, SendStep):
            continue
        for position, key in enumerate(step.send.content):
            if not (folder / f"{key}.yaml").is_file():
                issues.append(
                    Issue(
                        file,
                        ("steps", index, "send", "content", position),
                        f"unknown content block {key!r}: expected {folder}/{key}.yaml",
                    )
                )
    return issues


def cost_issues(valid: Valid, known: Known) -> list[Issue]:
    issues = []
    for file, loc, item in valid.costs:
        if item.tenant is not None:
            message = _unknown("tenant", item.tenant, known.tenants)
            if message:
                issues.append(Issue(file, (*loc, "tenant"), message))
        campaign = getattr(item, "campaign", None)
        if campaign is not None:
            message = _unknown("campaign", campaign, known.campaigns)
            if message:
                issues.append(Issue(file, (*loc, "campaign"), message))
    return issues


def company_issues(file: Path, company: Company, directory: Path) -> list[Issue]:
    issues = []
    machine = company.tracking.machine_traffic
    for key in ("user_agents", "ip_ranges"):
        patterns = getattr(machine, key)
        if patterns.file is not None and not (directory / patterns.file).is_file():
            issues.append(
                Issue(
                    file,
                    ("tracking", "machine_traffic", key),
                    f"file {patterns.file!r} not found (relative to {directory})",
                )
            )
    issues += _ownership_issues(file, company)
    return issues


def _ownership_issues(file: Path, company: Company) -> list[Issue]:
    owner_of: dict[str, str] = {}
    issues = []
    ownership = company.crm.field_ownership
    for owner in ("crm", "leadflow", "shared"):
        for index, name in enumerate(getattr(ownership, owner)):
            if name in owner_of:
                issues.append(
                    Issue(
                        file,
                        ("crm", "field_ownership", owner, index),
                        f"field {name!r} is already owned by {owner_of[name]}",
                    )
                )
            owner_of.setdefault(name, owner)
    return issues


def all_issues(valid: Valid, known: Known, directory: Path, templates_dir: Path) -> Iterable[Issue]:
    if valid.company is not None:
        yield from company_issues(valid.company[0], valid.company[1], directory)
    yield from tenant_issues(valid, known, templates_dir)
    yield from product_issues(valid, known)
    yield from scoring_issues(valid, known)
    yield from routing_issues(valid, known)
    yield from segment_issues(valid, known)
    yield from filter_issues(valid, known)
    yield from campaign_issues(valid, known, templates_dir)
    yield from cost_issues(valid, known)
