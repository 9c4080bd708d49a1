"""Lead routing (SPEC §2.4): assign the waiting MQLs round-robin and record it, once.

    result = route_leads(engine, config, as_of)                 # one routing batch
    result = route_leads(engine, config, as_of, dry_run=True)   # what it would do; writes nothing

Within a team the leads go to its members in turn, in the order routing.yaml lists them; the
leads of a batch are taken by contact_id, and the turn continues across batches: after each
batch `ops.routing_cursors` remembers per team who got the last lead, and the next batch
starts with the member after them (if they left the team, with the first member).

Everything a batch decides is written in one transaction, under a transaction-level advisory
lock so that concurrent runs take turns: the batch, one `ops.lead_assignments` row per lead
(contact_id is its primary key: nobody is routed twice), the cursors, one
`ops.crm_outbox` row per lead for the CRM push, one pending `ops.routing_notifications` row
per owner (sent afterwards by leadflow.routing.notify), and the new owners in the contacts
relation (marts.dim_contacts), so the marts show them before the next build derives the same
from ops.lead_assignments.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadflow.config.loader import Config
from leadflow.config.models import Team
from leadflow.routing.rules import LEAD_COLUMNS, WaitingLead, waiting_lead, waiting_leads_query
from leadflow.segments.execute import explained_errors, fields_used
from leadflow.segments.preview import segment_filters
from leadflow.segments.relations import DEFAULT_RELATIONS, Relations

LOCK_KEY = "leadflow.routing"
CRM_ENTITY = "owner_assignment"


@dataclass(frozen=True)
class Assignment:
    """One lead given to one team member by one rule."""

    contact_id: str
    team_id: str
    owner_name: str
    owner_email: str
    rule_id: str
    details: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RoutingResult:
    as_of: dt.date
    assignments: list[Assignment]
    # MQLs waiting for an owner that no rule matched: not routed.
    unmatched: list[str]
    batch_id: int | None = None
    routed_at: dt.datetime | None = None
    dry_run: bool = False

    def per_owner(self) -> dict[tuple[str, str], int]:
        """Leads per (team, owner name), in the order they were first assigned."""
        return dict(Counter((a.team_id, a.owner_name) for a in self.assignments))

    def describe(self) -> str:
        if not self.assignments:
            lines = ["routing: no MQL waiting for an owner matched a rule"]
        else:
            verb = "would route" if self.dry_run else "routed"
            batch = f" in batch {self.batch_id}" if self.batch_id is not None else ""
            lines = [f"routing: {verb} {len(self.assignments)} MQL(s){batch}"]
            lines += [
                f"  {team}: {owner} {count}" for (team, owner), count in self.per_owner().items()
            ]
        if self.unmatched:
            shown = ", ".join(self.unmatched[:10]) + (" ..." if len(self.unmatched) > 10 else "")
            lines.append(f"  {len(self.unmatched)} MQL(s) matched no routing rule: {shown}")
        return "\n".join(lines)


# --- the decision ------------------------------------------------------------------------


def round_robin(
    leads: Sequence[WaitingLead],
    config: Config,
    last_owner: Mapping[str, str],
) -> tuple[list[Assignment], dict[str, str]]:
    """Assign `leads` (matched ones, in order) to team members in turn.

    `last_owner` maps team id → e-mail of the member who got the team's previous lead.
    Returns the assignments and the updated map (only teams that got leads change).
    """
    team_of_rule = {rule.id: rule.team for rule in config.routing.rules}
    teams = {team.id: team for team in config.routing.teams}
    last = dict(last_owner)
    assignments = []
    for lead in leads:
        if lead.rule_id is None:
            continue
        team = teams[team_of_rule[lead.rule_id]]
        member = next_member(team, last.get(team.id))
        last[team.id] = member.email
        assignments.append(
            Assignment(
                contact_id=lead.contact_id,
                team_id=team.id,
                owner_name=member.name,
                owner_email=member.email,
                rule_id=lead.rule_id,
                details=lead.details,
            )
        )
    return assignments, {team: email for team, email in last.items() if team in teams}


def next_member(team: Team, last_owner_email: str | None):
    """The member after the one who got the team's last lead; the first if none or gone."""
    emails = [member.email.lower() for member in team.members]
    if last_owner_email is None or last_owner_email.lower() not in emails:
        return team.members[0]
    return team.members[(emails.index(last_owner_email.lower()) + 1) % len(team.members)]


# --- the batch ---------------------------------------------------------------------------


def route_leads(
    engine: Engine,
    config: Config,
    as_of: dt.date,
    *,
    relations: Relations = DEFAULT_RELATIONS,
    dry_run: bool = False,
) -> RoutingResult:
    """Route every MQL waiting for an owner (see the module docstring); one batch."""
    query = waiting_leads_query(config, as_of, relations)
    with engine.begin() as connection:
        if not dry_run:
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(LOCK_KEY))))
        with explained_errors("lead routing", relations, _fields_read(config)):
            leads = [waiting_lead(row) for row in connection.execute(query)]
        unmatched = [lead.contact_id for lead in leads if lead.rule_id is None]
        assignments, cursors = round_robin(leads, config, _cursors(connection))
        result = RoutingResult(as_of, assignments, unmatched, dry_run=dry_run)
        if dry_run or not assignments:
            return result
        routed_at = dt.datetime.now(dt.UTC)
        batch_id = _insert_batch(connection, config, as_of, routed_at, result)
        _insert_assignments(connection, batch_id, as_of, routed_at, assignments, config)
        _save_cursors(connection, assignments, cursors)
        _queue_for_crm(connection, batch_id, as_of, routed_at, assignments)
        if config.routing.notify_owner:
            _queue_notifications(connection, batch_id, assignments, config)
        _show_owners(connection, relations, batch_id)
    return RoutingResult(
        as_of, assignments, unmatched, batch_id=batch_id, routed_at=routed_at, dry_run=False
    )


def _fields_read(config: Config) -> list[str]:
    """The contact fields routing reads: for the message when the contacts relation lacks one."""
    filters = segment_filters(config)
    fields = {"contact_id", "is_mql", "owner", *LEAD_COLUMNS}
    for rule in config.routing.rules:
        if rule.match is not None:
            fields.update(fields_used(rule.match, filters))
    return sorted(fields)


def _cursors(connection: Connection) -> dict[str, str]:
    rows = connection.execute(sa.text("select team_id, last_owner_email from ops.routing_cursors"))
    return {team_id: email for team_id, email in rows}


def _config_hash(config: Config) -> str | None:
    from leadflow.scoring.snapshot import config_hash

    return config_hash(config)


def _insert_batch(
    connection: Connection,
    config: Config,
    as_of: dt.date,
    routed_at: dt.datetime,
    result: RoutingResult,
) -> int:
    return connection.execute(
        sa.text(
            "insert into ops.routing_batches (as_of, routed_at, routed, unmatched, config_hash) "
            "values (:as_of, :routed_at, :routed, :unmatched, :config_hash) returning batch_id"
        ),
        {
            "as_of": as_of,
            "routed_at": routed_at,
            "routed": len(result.assignments),
            "unmatched": len(result.unmatched),
            "config_hash": _config_hash(config),
        },
    ).scalar_one()


def _lead_record(assignment: Assignment, config: Config) -> dict:
    """What the notification shows about the lead, including why it was routed."""
    rule = next(rule for rule in config.routing.rules if rule.id == assignment.rule_id)
    team = next(team for team in config.routing.teams if team.id == assignment.team_id)
    return {
        **assignment.details,
        "rule_id": rule.id,
        "rule_description": " ".join((rule.description or "").split()) or None,
        "team_name": team.name or team.id,
    }


def _insert_assignments(
    connection: Connection,
    batch_id: int,
    as_of: dt.date,
    routed_at: dt.datetime,
    assignments: Sequence[Assignment],
    config: Config,
) -> None:
    connection.execute(
        sa.text(
            "insert into ops.lead_assignments (contact_id, team_id, owner_name, owner_email, "
            "rule_id, routed_at, batch_id, as_of, batch_position, lead) values (:contact_id, "
            ":team_id, :owner_name, :owner_email, :rule_id, :routed_at, :batch_id, :as_of, "
            ":batch_position, cast(:lead as jsonb))"
        ),
        [
            {
                "contact_id": a.contact_id,
                "team_id": a.team_id,
                "owner_name": a.owner_name,
                "owner_email": a.owner_email,
                "rule_id": a.rule_id,
                "routed_at": routed_at,
                "batch_id": batch_id,
                "as_of": as_of,
                "batch_position": position,
                "lead": json.dumps(_lead_record(a, config), default=str),
            }
            for position, a in enumerate(assignments, start=1)
        ],
    )


def _save_cursors(
    connection: Connection, assignments: Sequence[Assignment], cursors: Mapping[str, str]
) -> None:
    counts = Counter(a.team_id for a in assignments)
    connection.execute(
        sa.text(
            "insert into ops.routing_cursors (team_id, last_owner_email, assigned, updated_at) "
            "values (:team_id, :last_owner_email, :assigned, now()) "
            "on conflict (team_id) do update set last_owner_email = excluded.last_owner_email, "
            "assigned = ops.routing_cursors.assigned + excluded.assigned, updated_at = now()"
        ),
        [
            {"team_id": team, "last_owner_email": cursors[team], "assigned": count}
            for team, count in counts.items()
        ],
    )


def _queue_for_crm(
    connection: Connection,
    batch_id: int,
    as_of: dt.date,
    routed_at: dt.datetime,
    assignments: Sequence[Assignment],
) -> None:
    """One outbox row per lead: the CRM sync pushes the new owner (SPEC §2.4, §2.11)."""
    connection.execute(
        sa.text(
            "insert into ops.crm_outbox (entity, entity_id, payload) "
            "values (:entity, :entity_id, cast(:payload as jsonb))"
        ),
        [
            {
                "entity": CRM_ENTITY,
                "entity_id": a.contact_id,
                "payload": json.dumps(
                    {
                        "contact_id": a.contact_id,
                        "owner_name": a.owner_name,
                        "owner_email": a.owner_email,
                        "team_id": a.team_id,
                        "rule_id": a.rule_id,
                        "routed_at": routed_at.isoformat(),
                        "batch_id": batch_id,
                        "as_of": as_of.isoformat(),
                    }
                ),
            }
            for a in assignments
        ],
    )


def notification_message_id(batch_id: int, owner_email: str, sender_email: str) -> str:
    """Stable per batch and owner: a resent notification is recognisably the same mail."""
    owner = hashlib.sha256(owner_email.lower().encode()).hexdigest()[:16]
    domain = sender_email.rpartition("@")[2] or "leadflow.invalid"
    return f"<leadflow-routing-{batch_id}-{owner}@{domain}>"


def _queue_notifications(
    connection: Connection, batch_id: int, assignments: Sequence[Assignment], config: Config
) -> None:
    leads: dict[str, list[Assignment]] = defaultdict(list)
    for assignment in assignments:
        leads[assignment.owner_email].append(assignment)
    sender = config.global_tenant.sender.email
    connection.execute(
        sa.text(
            "insert into ops.routing_notifications "
            "(batch_id, owner_email, owner_name, leads, message_id) "
            "values (:batch_id, :owner_email, :owner_name, :leads, :message_id)"
        ),
        [
            {
                "batch_id": batch_id,
                "owner_email": email,
                "owner_name": owned[0].owner_name,
                "leads": len(owned),
                "message_id": notification_message_id(batch_id, email, sender),
            }
            for email, owned in leads.items()
        ],
    )


def _show_owners(connection: Connection, relations: Relations, batch_id: int) -> None:
    """Write the batch's owners into the contacts relation (marts.dim_contacts).

    The next dbt build derives the same (coalesce(CRM owner, routed owner)); until then
    campaigns and BI reading the marts already see who owns the lead.
    """
    schema, _, name = relations.contacts.rpartition(".")
    contacts = sa.table(name, sa.column("contact_id"), sa.column("owner"), schema=schema or None)
    assignments = sa.table(
        "lead_assignments",
        sa.column("contact_id"),
        sa.column("owner_name"),
        sa.column("batch_id"),
        schema="ops",
    )
    connection.execute(
        contacts.update()
        .values(owner=assignments.c.owner_name)
        .where(
            assignments.c.batch_id == batch_id,
            assignments.c.contact_id == contacts.c.contact_id,
            contacts.c.owner.is_(None),
        )
    )


def forget_routing(engine: Engine) -> None:
    """Delete every assignment, batch, cursor, notification and queued CRM push.

    Only for replacing the whole pool with a different one (the demo regenerates its
    company): the assignments name contacts of the old pool.
    """
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "truncate ops.routing_notifications, ops.lead_assignments, ops.routing_batches, "
                "ops.routing_cursors, ops.crm_outbox restart identity"
            )
        )
