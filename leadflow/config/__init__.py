"""The YAML configuration: pydantic models, the filter language, the loader.

    from leadflow.config import load_config
    config = load_config(Path("include/config"))   # raises ConfigError listing every error
    config.segments["hs2000_upsell"].filter         # a typed filter tree (filters.py)

See docs/configuration.md for every file and key.
"""

from leadflow.config.campaigns import Campaign, flow_issues, step_kind
from leadflow.config.dates import Duration, RelativeDate
from leadflow.config.fields import FIELDS, FieldSpec
from leadflow.config.filters import Filter, FilterNode, walk
from leadflow.config.loader import Config, load_config
from leadflow.config.models import (
    ActivityRule,
    Company,
    Costs,
    Criterion,
    Fair,
    Persona,
    Product,
    ProductFamily,
    ProfileRule,
    Routing,
    RoutingRule,
    Scoring,
    Segment,
    Team,
    Tenant,
)

__all__ = [
    "FIELDS",
    "ActivityRule",
    "Campaign",
    "Company",
    "Config",
    "Costs",
    "Criterion",
    "Duration",
    "Fair",
    "FieldSpec",
    "Filter",
    "FilterNode",
    "Persona",
    "Product",
    "ProductFamily",
    "ProfileRule",
    "RelativeDate",
    "Routing",
    "RoutingRule",
    "Scoring",
    "Segment",
    "Team",
    "Tenant",
    "flow_issues",
    "load_config",
    "step_kind",
    "walk",
]
