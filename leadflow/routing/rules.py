"""Which MQLs are waiting for an owner, and which routing rule matches each (SPEC §2.4).

The rules of routing.yaml are tried in order; the first whose `match` holds routes the lead
(a rule without `match` matches everyone). Each `match` is a filter compiled by the one filter
compiler, so the whole decision is one SQL query: the waiting MQLs with
`CASE WHEN <rule 1> THEN 'id1' WHEN <rule 2> THEN 'id2' ... END AS rule_id`, every value a
bound parameter. A lead no rule matches gets rule_id NULL (not routed, reported).

Waiting = an MQL (`is_mql`) whose owner is NULL (no owner from the CRM, none from an earlier
routing shown in dim_contacts) and who has no row in ops.lead_assignments (routed since the
contacts relation was built).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import Select

from leadflow.config.loader import Config
from leadflow.errors import LeadflowError
from leadflow.segments.compiler import FilterError, compile_filter
from leadflow.segments.preview import segment_filters
from leadflow.segments.relations import Relations, contact_row

ASSIGNMENTS = sa.table(
    "lead_assignments",
    sa.column("contact_id", sa.Text()),
    schema="ops",
)

# What the owner's notification and the CRM payload show about a lead.
LEAD_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "account_name",
    "country",
    "matrix_cell",
    "grade",
    "band",
    "profile_score",
    "activity_score",
    "best_persona",
)


class RoutingRuleError(LeadflowError):
    """A routing rule's `match` cannot be compiled; the message names the rule."""


@dataclass(frozen=True)
class WaitingLead:
    """An MQL without an owner, with the first routing rule that matches it (None: none)."""

    contact_id: str
    rule_id: str | None
    details: dict[str, Any]


def rule_case(config: Config, as_of: dt.date, relations: Relations) -> sa.ColumnElement[Any]:
    """`CASE WHEN <match 1> THEN <rule 1 id> ... END`: the id of the first matching rule."""
    filters = segment_filters(config)
    whens = []
    for rule in config.routing.rules:
        if rule.match is None:
            predicate: sa.ColumnElement[bool] = sa.true()
        else:
            try:
                predicate = compile_filter(
                    rule.match, as_of=as_of, relations=relations, segments=filters
                )
            except FilterError as error:
                raise RoutingRuleError(f"routing rule {rule.id!r}: {error}") from None
        whens.append((predicate, sa.literal(rule.id, sa.Text())))
    return sa.case(*whens, else_=sa.null())


def waiting_leads_query(config: Config, as_of: dt.date, relations: Relations) -> Select:
    """The MQLs waiting for an owner with their matching rule, by contact_id (byte order)."""
    contact = contact_row(relations)
    already_routed = sa.exists().where(ASSIGNMENTS.c.contact_id == contact.c.contact_id)
    return (
        sa.select(
            contact.c.contact_id,
            rule_case(config, as_of, relations).label("rule_id"),
            *(contact.c[column] for column in LEAD_COLUMNS),
        )
        .where(
            contact.c.is_mql == sa.true(),
            contact.c.owner.is_(None),
            ~already_routed,
        )
        # "C": the order Python sorts strings in, whatever the database's collation.
        .order_by(contact.c.contact_id.collate("C"))
    )


def waiting_lead(row: Any) -> WaitingLead:
    mapping = row._mapping
    details = {column: _plain(mapping[column]) for column in LEAD_COLUMNS}
    return WaitingLead(
        contact_id=mapping["contact_id"], rule_id=mapping["rule_id"], details=details
    )


def _plain(value: Any) -> Any:
    """JSON-ready: scores (numeric) as floats."""
    return float(value) if isinstance(value, Decimal) else value
