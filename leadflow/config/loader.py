"""Load a configuration directory: read every YAML file, validate, check, report all errors.

    load_config(Path("include/config")) -> Config

Files are read with ruamel.yaml's round-trip loader, so every key and list item knows its
line; each file is validated by its pydantic model, then the checks that span items and
files run (references, duplicates, cycles, templates). Every problem found on the way is
collected, and if there is any, one `ConfigError` lists them all as
`path/to/file.yaml:LINE: key.path: what is wrong`. Loading never writes anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from leadflow.config import checks
from leadflow.config.campaigns import Campaign
from leadflow.config.checks import FilterSite, Known, Valid
from leadflow.config.filters import Filter, FilterNode
from leadflow.config.issues import Document, Issue, Loc, format_issues
from leadflow.config.issues import issues_from_validation_error as _validation_issues
from leadflow.config.models import (
    ActivityRule,
    Asset,
    Company,
    CostItem,
    Costs,
    Fair,
    Persona,
    PersonasFile,
    Product,
    ProductFamily,
    ProductsFile,
    ProfileRule,
    Routing,
    RoutingRule,
    Scoring,
    Segment,
    SegmentsFile,
    Team,
    Tenant,
    TenantsFile,
)
from leadflow.errors import ConfigError

# file name → (kind, root model, required)
FILES: dict[str, tuple[str, type[BaseModel], bool]] = {
    "company.yaml": ("company", Company, True),
    "tenants.yaml": ("tenants", TenantsFile, True),
    "products.yaml": ("products", ProductsFile, True),
    "personas.yaml": ("personas", PersonasFile, True),
    "scoring.yaml": ("scoring", Scoring, True),
    "routing.yaml": ("routing", Routing, True),
    "segments.yaml": ("segments", SegmentsFile, True),
    "costs.yaml": ("costs", Costs, False),
}
CAMPAIGNS_DIR = "campaigns"

# kind → collection → item model: validated one by one when the whole file is invalid, so
# the valid items can still be checked against each other and the other files.
ITEMS: dict[str, dict[str, type[BaseModel]]] = {
    "company": {"assets": Asset},
    "tenants": {"tenants": Tenant},
    "products": {"families": ProductFamily, "products": Product},
    "personas": {"personas": Persona},
    "scoring": {"profile_rules": ProfileRule, "activity_rules": ActivityRule},
    "routing": {"teams": Team, "rules": RoutingRule},
    "segments": {"segments": Segment},
    "costs": {"fairs": Fair, "other": CostItem},
}


@dataclass(frozen=True)
class Config:
    """A whole, valid configuration with every default filled in."""

    directory: Path
    templates_dir: Path
    company: Company
    tenants: list[Tenant]
    families: list[ProductFamily]
    products: list[Product]
    personas: list[Persona]
    scoring: Scoring
    routing: Routing
    segments: dict[str, Segment]
    campaigns: dict[str, Campaign]
    costs: Costs

    def summary(self) -> str:
        rules = len(self.scoring.profile_rules) + len(self.scoring.activity_rules)
        counts = [
            (len(self.tenants), "tenant"),
            (len(self.products), "product"),
            (len(self.personas), "persona"),
            (rules, "scoring rule"),
            (len(self.routing.rules), "routing rule"),
            (len(self.segments), "segment"),
            (len(self.costs.fairs), "fair"),
            (len(self.campaigns), "campaign"),
        ]
        return ", ".join(f"{count} {noun}{'' if count == 1 else 's'}" for count, noun in counts)

    @property
    def global_tenant(self) -> Tenant:
        return next(tenant for tenant in self.tenants if tenant.is_global)

    def tenant(self, code: str) -> Tenant:
        return _one(self.tenants, "code", code, "tenant")

    def product(self, product_id: str) -> Product:
        return _one(self.products, "id", product_id, "product")

    def persona(self, persona_id: str) -> Persona:
        return _one(self.personas, "id", persona_id, "persona")

    def segment(self, name: str) -> Segment:
        if name not in self.segments:
            raise KeyError(f"unknown segment {name!r}")
        return self.segments[name]

    def campaign(self, campaign_id: str) -> Campaign:
        if campaign_id not in self.campaigns:
            raise KeyError(f"unknown campaign {campaign_id!r}")
        return self.campaigns[campaign_id]

    def products_in_family(self, family: str) -> list[Product]:
        return [product for product in self.products if product.family == family]

    def snapshot(self) -> dict[str, Any]:
        """The whole configuration as JSON-ready data (for the ops config snapshot).

        Every part is in the YAML form its model accepts, with all defaults filled in.
        """

        def dump(model: BaseModel) -> Any:
            return model.model_dump(mode="json", by_alias=True, exclude_none=True)

        return {
            "company": dump(self.company),
            "tenants": [dump(tenant) for tenant in self.tenants],
            "families": [dump(family) for family in self.families],
            "products": [dump(product) for product in self.products],
            "personas": [dump(persona) for persona in self.personas],
            "scoring": dump(self.scoring),
            "routing": dump(self.routing),
            "segments": {name: dump(segment) for name, segment in self.segments.items()},
            "campaigns": {name: dump(campaign) for name, campaign in self.campaigns.items()},
            "costs": dump(self.costs),
        }


def _one(items: list[Any], key: str, value: str, noun: str) -> Any:
    for item in items:
        if getattr(item, key) == value:
            return item
    raise KeyError(f"unknown {noun} {value!r}")


def load_config(directory: Path) -> Config:
    """Load and validate `directory`; raise ConfigError listing every problem found."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"configuration directory {directory} not found")
    loading = _Loading(directory)
    loading.run()
    if loading.issues:
        lines = format_issues(loading.issues, loading.documents)
        noun = "error" if len(lines) == 1 else "errors"
        raise ConfigError(
            f"invalid configuration in {directory} ({len(lines)} {noun}):\n" + "\n".join(lines)
        )
    return loading.config()


# --- reading ----------------------------------------------------------------------------


def read_yaml(path: Path) -> tuple[Any, list[Issue]]:
    """The round-trip tree of one file, or None and the issue that stops reading it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        return None, [Issue(path, (), f"not UTF-8 text ({error.reason} at byte {error.start})")]
    try:
        return YAML(typ="rt").load(text), []
    except MarkedYAMLError as error:
        return None, [_syntax_issue(path, error)]
    except YAMLError as error:
        return None, [Issue(path, (), f"invalid YAML: {error}")]


def _syntax_issue(path: Path, error: MarkedYAMLError) -> Issue:
    mark = error.problem_mark or error.context_mark
    message = f"invalid YAML: {error.problem or error}"
    if error.context:
        message += f" ({error.context}"
        if error.context_mark is not None and error.context_mark is not mark:
            message += f" started on line {error.context_mark.line + 1}"
        message += ")"
    if "chomping or indentation" in message or "found character" in message:
        message += "; quote operators and other values with special characters: op: '>='"
    return Issue(path, (), message, line=mark.line + 1 if mark else None)


def to_plain(node: Any, loc: Loc = ()) -> tuple[Any, list[tuple[Loc, str]]]:
    """Plain dicts/lists/scalars for pydantic, plus problems found on the way (YAML tags).

    Keys become strings (`1:` → "1"). An unquoted `=` or `!=` (which YAML reads as a value
    tag and a local tag) is taken for the operator the user meant.
    """
    problems: list[tuple[Loc, str]] = []
    if isinstance(node, CommentedMap | dict):
        plain = {}
        for key, value in node.items():
            name = key.isoformat() if isinstance(key, dt.date) else str(key)
            if isinstance(key, bool):
                name = str(key).lower()
            plain[name], found = to_plain(value, (*loc, name))
            problems += found
        return plain, problems
    if isinstance(node, CommentedSeq | list):
        items = []
        for index, value in enumerate(node):
            item, found = to_plain(value, (*loc, index))
            items.append(item)
            problems += found
        return items, problems
    if isinstance(node, TaggedScalar):
        return _tagged(node, loc)
    return _scalar(node), problems


def _tagged(node: TaggedScalar, loc: Loc) -> tuple[Any, list[tuple[Loc, str]]]:
    tag = str(node.tag.value if hasattr(node.tag, "value") else node.tag)
    if tag == "tag:yaml.org,2002:value" and node.value == "=":
        return "=", []
    if tag == "!=" and not node.value:
        return "!=", []
    return node.value, [(loc, f"YAML tags like {tag} are not supported here")]


def _scalar(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    for plain_type in (str, int, float):
        if isinstance(value, plain_type):
            return plain_type(value)
    return value


# --- the loading run --------------------------------------------------------------------


@dataclass
class _Loading:
    directory: Path
    documents: dict[Path, Document] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    models: dict[str, BaseModel] = field(default_factory=dict)
    campaigns: dict[Path, Campaign] = field(default_factory=dict)
    valid: Valid = field(default_factory=Valid)
    known: Known = field(default_factory=Known)

    def run(self) -> None:
        plain_by_kind = self._read_files()
        for kind, (path, plain) in plain_by_kind.items():
            self._validate_file(kind, path, plain)
        self._collect_known()
        self._check_duplicate_ids()
        self.issues += checks.all_issues(
            self.valid, self.known, self.directory, self._templates_dir()
        )

    # reading

    def _read_files(self) -> dict[str, tuple[Path, Any]]:
        plain_by_kind: dict[str, tuple[Path, Any]] = {}
        for path in sorted(self.directory.iterdir()):
            if path.is_file() and path.suffix in (".yaml", ".yml") and path.name not in FILES:
                expected = ", ".join(FILES)
                self.issues.append(
                    Issue(path, (), f"unknown configuration file (expected {expected})")
                )
        for name, (kind, _model, required) in FILES.items():
            path = self.directory / name
            if not path.is_file():
                if required:
                    self.issues.append(Issue(path, (), "required file is missing"))
                continue
            plain = self._read(path, kind)
            if plain is not None:
                plain_by_kind[kind] = (path, plain)
        for path in self._campaign_files():
            plain = self._read(path, "campaign")
            if plain is not None:
                self._validate_campaign(path, plain)
        return plain_by_kind

    def _campaign_files(self) -> list[Path]:
        folder = self.directory / CAMPAIGNS_DIR
        if not folder.is_dir():
            return []
        for path in sorted(folder.glob("*.yml")):
            self.issues.append(Issue(path, (), "campaign files end in .yaml, not .yml"))
        return sorted(folder.glob("*.yaml"))

    def _read(self, path: Path, kind: str) -> Any:
        data, problems = read_yaml(path)
        self.issues += problems
        self.documents[path] = Document(path, kind, data)
        if problems:
            return None
        plain, tag_problems = to_plain(data if data is not None else {})
        self.issues += [Issue(path, loc, message) for loc, message in tag_problems]
        if not isinstance(plain, dict):
            self.issues.append(Issue(path, (), "expected a mapping of keys at the top level"))
            return None
        return plain

    # validating

    def _validate_file(self, kind: str, path: Path, plain: dict[str, Any]) -> None:
        model_type = FILES[path.name][1]
        self._add_filter_sites(kind, path, plain)
        try:
            model = model_type.model_validate(plain)
        except ValidationError as error:
            self.issues += _validation_issues(path, error)
            self._salvage_items(kind, path, plain)
            return
        self.models[kind] = model
        self._register_items(kind, path, model)

    def _validate_campaign(self, path: Path, plain: dict[str, Any]) -> None:
        self._add_filter_sites("campaign", path, plain)
        try:
            campaign = Campaign.model_validate(plain)
        except ValidationError as error:
            self.issues += _validation_issues(path, error)
            return
        self.campaigns[path] = campaign
        self.valid.campaigns.append((path, campaign))

    def _register_items(self, kind: str, path: Path, model: BaseModel) -> None:
        items = {
            collection: list(_keyed(getattr(model, collection)))
            for collection in ITEMS.get(kind, {})
        }
        self._add_valid(kind, path, items, whole=model)

    def _salvage_items(self, kind: str, path: Path, plain: dict[str, Any]) -> None:
        items: dict[str, list[tuple[str | int, Any]]] = {}
        for collection, item_model in ITEMS.get(kind, {}).items():
            items[collection] = []
            for key, raw in _keyed(plain.get(collection)):
                try:
                    items[collection].append((key, item_model.model_validate(raw)))
                except ValidationError:
                    continue  # already reported by the whole-file validation
        self._add_valid(kind, path, items, whole=None)

    def _add_valid(
        self, kind: str, path: Path, items: dict[str, list[tuple[Any, Any]]], whole: Any
    ) -> None:
        def located(collection: str) -> list[tuple[Path, Loc, Any]]:
            return [(path, (collection, key), item) for key, item in items.get(collection, [])]

        valid = self.valid
        if kind == "company" and whole is not None:
            valid.company = (path, whole)
        elif kind == "tenants":
            valid.tenants = located("tenants")
            valid.tenants_complete = whole is not None
        elif kind == "products":
            valid.products = located("products")
        elif kind == "scoring":
            valid.profile_rules = located("profile_rules")
            valid.activity_rules = located("activity_rules")
        elif kind == "routing":
            valid.routing_rules = located("rules")
        elif kind == "segments":
            valid.segments = located("segments")
        elif kind == "costs":
            valid.costs = located("fairs") + located("other")

    def _add_filter_sites(self, kind: str, path: Path, plain: dict[str, Any]) -> None:
        # From the raw data, so references inside an otherwise invalid item are checked too.
        for loc, raw, context, owner in filter_locations(kind, plain):
            self.valid.filters += [
                FilterSite(path, node_loc, node, context, owner)
                for node_loc, node in salvage_filter(raw, loc)
            ]

    # cross-file

    def _collect_known(self) -> None:
        def ids(name: str, collection: str, id_key: str | None, optional: bool = False) -> Any:
            path = self.directory / name
            document = self.documents.get(path)
            if document is None:
                return set() if optional and not path.exists() else None
            if document.data is None and not self._unreadable(path):
                return set()  # an empty file declares nothing
            return checks.ids_in(document.data, collection, id_key)

        known = self.known
        known.tenants = ids("tenants.yaml", "tenants", "code")
        known.families = ids("products.yaml", "families", "id")
        known.products = ids("products.yaml", "products", "id")
        known.personas = ids("personas.yaml", "personas", "id")
        known.segments = ids("segments.yaml", "segments", None)
        known.assets = ids("company.yaml", "assets", "id")
        known.fairs = ids("costs.yaml", "fairs", "id", optional=True)
        known.teams = ids("routing.yaml", "teams", "id")
        known.campaigns = {campaign.id for campaign in self.campaigns.values()} | {
            path.stem for path, document in self.documents.items() if document.kind == "campaign"
        }

    def _check_duplicate_ids(self) -> None:
        for kind, collection, id_key in checks.UNIQUE_IDS:
            for path, document in self.documents.items():
                if document.kind == kind and isinstance(document.data, dict):
                    self.issues += checks.duplicate_id_issues(
                        path, document.data, collection, id_key
                    )

    def _unreadable(self, path: Path) -> bool:
        return any(issue.file == path and not issue.loc for issue in self.issues)

    def _templates_dir(self) -> Path:
        company = self.models.get("company")
        relative = company.templates_dir if isinstance(company, Company) else "../templates"
        return (self.directory / relative).resolve()

    # the result

    def config(self) -> Config:
        company: Company = _read_pattern_files(self.models["company"], self.directory)
        defaults = company.defaults
        scoring: Scoring = self.models["scoring"]
        scoring = scoring.model_copy(
            update={
                "activity_half_life_days": scoring.activity_half_life_days
                or defaults.activity_half_life_days,
                "grade_thresholds": scoring.grade_thresholds or defaults.grade_thresholds,
                "band_thresholds": scoring.band_thresholds or defaults.band_thresholds,
                "mql_cells": scoring.mql_cells or defaults.mql_cells,
            }
        )
        personas = [
            persona
            if persona.threshold is not None
            else persona.model_copy(update={"threshold": defaults.persona_threshold})
            for persona in self.models["personas"].personas
        ]
        products_file: ProductsFile = self.models["products"]
        campaigns = sorted(self.campaigns.values(), key=lambda campaign: campaign.id)
        return Config(
            directory=self.directory,
            templates_dir=self._templates_dir(),
            company=company,
            tenants=list(self.models["tenants"].tenants),
            families=list(products_file.families),
            products=list(products_file.products),
            personas=personas,
            scoring=scoring,
            routing=self.models["routing"],
            segments=dict(self.models["segments"].segments),
            campaigns={campaign.id: campaign for campaign in campaigns},
            costs=self.models.get("costs") or Costs(),
        )


_FILTER = TypeAdapter(Filter)


def filter_locations(kind: str, plain: dict[str, Any]) -> Iterator[tuple[Loc, Any, str, Any]]:
    """(loc, raw filter, context, owner) of every filter a file's raw data holds."""
    if kind == "segments":
        for name, segment in _keyed(plain.get("segments")):
            if isinstance(segment, dict) and "filter" in segment:
                yield ("segments", name, "filter"), segment["filter"], "segment", name
    elif kind == "tenants":
        for index, tenant in _keyed(plain.get("tenants")):
            if isinstance(tenant, dict) and tenant.get("pool_alias") is not None:
                yield ("tenants", index, "pool_alias"), tenant["pool_alias"], "pool_alias", None
    elif kind == "routing":
        for index, rule in _keyed(plain.get("rules")):
            if isinstance(rule, dict) and rule.get("match") is not None:
                yield ("rules", index, "match"), rule["match"], "routing", None
    elif kind == "campaign":
        yield from _campaign_filter_locations(plain)


def _campaign_filter_locations(plain: dict[str, Any]) -> Iterator[tuple[Loc, Any, str, Any]]:
    if plain.get("audience") is not None:
        yield ("audience",), plain["audience"], "campaign", None
    goal = plain.get("goal")
    if isinstance(goal, dict) and goal.get("filter") is not None:
        yield ("goal", "filter"), goal["filter"], "campaign", None
    for index, rule in _keyed(plain.get("exit_rules")):
        if isinstance(rule, dict) and rule.get("filter") is not None:
            yield ("exit_rules", index, "filter"), rule["filter"], "campaign", None
    for index, step in _keyed(plain.get("steps")):
        branch = step.get("branch") if isinstance(step, dict) else None
        if isinstance(branch, dict) and branch.get("filter") is not None:
            yield ("steps", index, "branch", "filter"), branch["filter"], "campaign", None


def salvage_filter(raw: Any, loc: Loc) -> list[tuple[Loc, FilterNode]]:
    """The largest valid subtrees of a raw filter, with their locs (all of it if valid)."""
    try:
        return [(loc, _FILTER.validate_python(raw))]
    except ValidationError:
        pass
    if not isinstance(raw, dict):
        return []
    for key in ("all", "any"):
        if isinstance(raw.get(key), list):
            return [
                salvaged
                for index, child in enumerate(raw[key])
                for salvaged in salvage_filter(child, (*loc, key, index))
            ]
    if "not" in raw:
        return salvage_filter(raw["not"], (*loc, "not"))
    return []


def _keyed(collection: Any) -> list[tuple[str | int, Any]]:
    if isinstance(collection, dict):
        return list(collection.items())
    if isinstance(collection, list):
        return list(enumerate(collection))
    return []


def _read_pattern_files(company: Company, directory: Path) -> Company:
    machine = company.tracking.machine_traffic
    update = {
        key: getattr(machine, key).read_file(directory)
        for key in ("user_agents", "ip_ranges")
        if getattr(machine, key).file is not None
    }
    if not update:
        return company
    tracking = company.tracking.model_copy(
        update={"machine_traffic": machine.model_copy(update=update)}
    )
    return company.model_copy(update={"tracking": tracking})


__all__ = ["CAMPAIGNS_DIR", "FILES", "Config", "load_config", "read_yaml", "to_plain"]
