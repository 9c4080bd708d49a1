"""Running one step for all its due journeys at once (SET-based; no loop over contacts).

`run_step(connection, scope, index)` takes the active journeys at `campaign.steps[index]`
that are due (`due_at <= now`) into the temporary table `campaign_moves` — one row per
journey with the outcome, the step it goes to next and its arrival time there — does the
step's work for all of them with a few INSERT/UPDATE ... SELECT statements, then writes one
history row per journey and moves the journeys on (step_seq + 1; due time of the next step,
see state.py). A journey without a next step is completed (`end_reason` 'end', or the exit
step's reason / 'exit').

Per kind:
- send: one `ops.outbox` campaign mail per journey, requested at now and scheduled by the
  send-time planner (timing.py: tenant send window, frequency cap); the journey arrives at
  the next step when the mail is scheduled to go out.
- wait (duration): due `duration` after arriving; moves on at its due time, so a chain of
  waits keeps its exact rhythm whenever the runs happen.
- wait (until): when due inside the weekly window (tenant time zone) it moves on now; else
  it stays and becomes due at the next window start.
- branch: `then` when the contact did `on` since the `since_step` completed (the latest time
  this journey passed it) and before now — opens/clicks of this campaign's mail of that step
  (clicks narrowed by link / link tag), downloads (of the asset), won orders (with the
  product / family); all human only — or when the filter holds for as_of; else `else`
  (default: the following step). A journey that never passed `since_step` goes `else`.
- update: raw.contacts (and the contacts relation, so filters see it before the next build)
  get the tag added / removed, the stage or the fields; `ops.contact_changes` logs it.
- notify_owner: an `owner_notification` (category service) to the contact's owner — an
  e-mail address, or a routing team member's name resolved to their address; without an
  owner the step is skipped (outcome `skipped_no_owner`), as with an owner no one can mail
  (`skipped_unknown_owner`). The journey moves on at once.
- crm_task: an `ops.crm_outbox` row (entity 'task') for the CRM sync.
- exit: the journey completes with the step's reason (or 'exit').
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from leadflow.campaigns.conditions import event_table, human_events, purchased_between
from leadflow.campaigns.state import (
    ENROLMENTS,
    HISTORY,
    due_on_arrival,
    filter_predicate,
)
from leadflow.campaigns.timing import (
    next_window_start,
    plan_capped,
    plan_sends_into,
    with_window_moments,
)
from leadflow.config.campaigns import (
    BranchStep,
    Campaign,
    CrmTaskStep,
    ExitStep,
    NotifyOwnerStep,
    SendStep,
    StepNode,
    UpdateStep,
    WaitStep,
    step_kind,
)
from leadflow.config.dates import RelativeDate
from leadflow.config.filters import FilterNode
from leadflow.config.loader import Config
from leadflow.segments.relations import Relations, contact_row

MOVES = sa.table(
    "campaign_moves",
    sa.column("enrolment_id", sa.BigInteger()),
    sa.column("contact_id", sa.Text()),
    sa.column("tenant_code", sa.Text()),
    sa.column("step_seq", sa.Integer()),
    sa.column("arrived_at", sa.DateTime(timezone=True)),
    sa.column("outcome", sa.Text()),
    sa.column("next_step", sa.Text()),
    sa.column("arrival", sa.DateTime(timezone=True)),
    sa.column("detail", postgresql.JSONB()),
    sa.column("category", sa.Text()),
    sa.column("scheduled_at", sa.DateTime(timezone=True)),
    sa.column("deferred_reason", sa.Text()),
)
SEND_BATCH = "campaign_send_batch"
_TEMP_TABLES = (
    "create temp table if not exists campaign_moves (enrolment_id bigint primary key, "
    "contact_id text not null, tenant_code text, step_seq integer not null, "
    "arrived_at timestamptz, outcome text not null, next_step text, "
    "arrival timestamptz not null, detail jsonb not null default '{}', "
    # a send step's mail, planned in place (timing.plan_capped)
    "category text, scheduled_at timestamptz, deferred_reason text) on commit drop",
    "create temp table if not exists campaign_send_batch (enrolment_id bigint primary key, "
    "contact_id text not null, tenant_code text, category text not null, "
    "scheduled_at timestamptz, deferred_reason text) on commit drop",
    "create temp table if not exists campaign_owners (owner text primary key, "
    "email text not null) on commit drop",
)


@dataclass(frozen=True)
class StepScope:
    """What every step of one advance shares."""

    config: Config
    campaign: Campaign
    now: dt.datetime
    as_of: dt.date
    relations: Relations
    segments: Mapping[str, FilterNode]


def prepare(connection: Connection, config: Config) -> None:
    """Create this transaction's working tables and the owner directory (routing teams)."""
    for statement in _TEMP_TABLES:
        connection.execute(sa.text(statement))
    connection.execute(sa.text("truncate campaign_owners"))
    directory: dict[str, str] = {}
    for team in config.routing.teams:
        for member in team.members:
            directory.setdefault(member.name, member.email)
            directory.setdefault(member.email, member.email)
    if directory:
        connection.execute(
            sa.text("insert into campaign_owners (owner, email) values (:owner, :email)"),
            [{"owner": owner, "email": email} for owner, email in directory.items()],
        )


def run_step(connection: Connection, scope: StepScope, index: int) -> int:
    """Run steps[index] for its due journeys; how many journeys moved on."""
    step = scope.campaign.steps[index]
    connection.execute(sa.text("truncate campaign_moves"))
    targets = dict(scope.campaign.successors(index))
    if isinstance(step, WaitStep) and step.wait.until is not None:
        _defer_outside_window(connection, scope, step)
    if isinstance(step, BranchStep):
        taken = _take_due(connection, scope, step, "else", targets.get("else"))
    elif isinstance(step, ExitStep):
        taken = _take_due(connection, scope, step, "exit", None)
    else:
        following = targets.get("next")
        taken = _take_due(
            connection,
            scope,
            step,
            "next" if following else "end",
            following,
            # a duration wait moves on at its due time: chained waits keep their rhythm
            arrival=ENROLMENTS.c.due_at if _is_duration_wait(step) else None,
            mail_category=scope.campaign.category if isinstance(step, SendStep) else None,
        )
    if not taken:
        return 0
    _STEP_WORK.get(type(step), _no_work)(connection, scope, step, targets)
    return _finish(connection, scope, step)


def _is_duration_wait(step: StepNode) -> bool:
    return isinstance(step, WaitStep) and step.wait.duration is not None


# --- taking the due journeys and moving them on ----------------------------------------


def _due(scope: StepScope, step: StepNode) -> list[ColumnElement[bool]]:
    return [
        ENROLMENTS.c.campaign_id == scope.campaign.id,
        ENROLMENTS.c.status == "active",
        ENROLMENTS.c.step_id == step.id,
        ENROLMENTS.c.due_at <= scope.now,
    ]


def _take_due(
    connection: Connection,
    scope: StepScope,
    step: StepNode,
    outcome: str,
    next_step: str | None,
    arrival: ColumnElement | None = None,
    mail_category: str | None = None,
) -> int:
    """The due journeys into the moves; with `mail_category` (a send step) each with its
    mail at its tenant's send-window moment, for the planner to apply the cap in place."""
    rows = sa.select(
        ENROLMENTS.c.enrolment_id,
        ENROLMENTS.c.contact_id,
        ENROLMENTS.c.tenant_code,
        ENROLMENTS.c.step_seq,
        ENROLMENTS.c.arrived_at,
        sa.literal(outcome, sa.Text()),
        sa.literal(next_step, sa.Text()),
        arrival if arrival is not None else sa.literal(scope.now, sa.DateTime(timezone=True)),
    ).where(*_due(scope, step))
    columns = [
        "enrolment_id",
        "contact_id",
        "tenant_code",
        "step_seq",
        "arrived_at",
        "outcome",
        "next_step",
        "arrival",
    ]
    if mail_category is not None:
        rows = with_window_moments(
            rows.add_columns(sa.literal(mail_category, sa.Text())),
            ENROLMENTS.c.tenant_code,
            scope.now,
            scope.config,
        )
        columns += ["category", "scheduled_at", "deferred_reason"]
    inserted = connection.execute(
        MOVES.insert().from_select(columns, rows), execution_options={"preserve_rowcount": True}
    )
    return inserted.rowcount


def _finish(connection: Connection, scope: StepScope, step: StepNode) -> int:
    """One history row per move, then every moving journey to its next step (or its end)."""
    moves = _sent_moves() if isinstance(step, SendStep) else MOVES
    history = sa.select(
        moves.c.enrolment_id,
        moves.c.step_seq,
        sa.literal(step.id, sa.Text()),
        sa.literal(step_kind(step), sa.Text()),
        moves.c.arrived_at,
        sa.literal(scope.now, sa.DateTime(timezone=True)),
        moves.c.outcome,
        moves.c.detail,
    )
    connection.execute(
        postgresql.insert(HISTORY)
        .from_select(
            list(HISTORY.c.keys()),
            history,
        )
        .on_conflict_do_nothing()
    )
    ended = moves.c.next_step.is_(None)
    end_reason = "end"
    if isinstance(step, ExitStep):
        end_reason = step.exit.reason or "exit"
    moved = connection.execute(
        ENROLMENTS.update()
        .where(
            ENROLMENTS.c.enrolment_id == moves.c.enrolment_id,
            ENROLMENTS.c.step_seq == moves.c.step_seq,
            ENROLMENTS.c.status == "active",
        )
        .values(
            step_seq=ENROLMENTS.c.step_seq + 1,
            step_id=moves.c.next_step,
            arrived_at=sa.case((ended, ENROLMENTS.c.arrived_at), else_=moves.c.arrival),
            due_at=sa.case(
                (ended, ENROLMENTS.c.due_at),
                else_=due_on_arrival(scope.campaign, moves.c.next_step, moves.c.arrival),
            ),
            status=sa.case((ended, "completed"), else_="active"),
            ended_at=sa.case((ended, scope.now), else_=sa.null()),
            end_reason=sa.case((ended, end_reason), else_=sa.null()),
            updated_at=scope.now,
        ),
        execution_options={"preserve_rowcount": True},
    )
    return moved.rowcount


def _no_work(connection: Connection, scope: StepScope, step: Any, targets: dict) -> None:
    """wait and exit steps only move the journeys."""


# --- wait until a window ---------------------------------------------------------------


def _defer_outside_window(connection: Connection, scope: StepScope, step: WaitStep) -> None:
    """Due journeys whose tenant's window is closed now become due at its next start."""
    window = step.wait.until
    assert window is not None
    later = {}
    for tenant in scope.config.tenants:
        start = next_window_start(scope.now, window, tenant.time_zone)
        if start > scope.now:
            later[tenant.code] = start
    if not later:
        return
    starts = sa.values(
        sa.column("tenant_code", sa.Text()),
        sa.column("starts_at", sa.DateTime(timezone=True)),
        name="window_start",
    ).data(list(later.items()))
    connection.execute(
        ENROLMENTS.update()
        .where(*_due(scope, step), ENROLMENTS.c.tenant_code == starts.c.tenant_code)
        .values(due_at=starts.c.starts_at, updated_at=scope.now)
    )


# --- send ------------------------------------------------------------------------------


def _plan(connection: Connection, scope: StepScope, category: str, only: Any = None) -> None:
    """Fill the send batch with the moving journeys (or those `only` selects) and plan it."""
    connection.execute(sa.text("truncate campaign_send_batch"))
    rows = sa.select(
        MOVES.c.enrolment_id,
        MOVES.c.contact_id,
        MOVES.c.tenant_code,
        sa.literal(category, sa.Text()).label("category"),
    )
    if only is not None:
        rows = rows.where(only)
    plan_sends_into(connection, SEND_BATCH, rows, scope.now, scope.config)


_OUTBOX_FROM_PLAN = """
insert into ops.outbox (kind, campaign_id, step_id, enrolment_id, step_seq, contact_id,
    tenant_code, message, content, category, recipient_email, requested_at, scheduled_at,
    deferred_reason)
select :kind, :campaign_id, :step_id, m.enrolment_id, m.step_seq, m.contact_id, m.tenant_code,
    :message, :content, {p}.category, {recipient}, :now, {p}.scheduled_at, {p}.deferred_reason
from {source}
on conflict (enrolment_id, step_seq) do nothing
"""
# A send step's mails are planned in the moves themselves (every move sends one), an owner
# notification's in the send batch (only the moves with an owner to notify).
_CAMPAIGN_MAIL = sa.text(
    _OUTBOX_FROM_PLAN.format(p="m", recipient="null", source="campaign_moves as m")
)
_OWNER_NOTIFICATION = sa.text(
    _OUTBOX_FROM_PLAN.format(
        p="b",
        recipient="m.detail ->> 'recipient'",
        source=f"campaign_moves as m join {SEND_BATCH} as b on b.enrolment_id = m.enrolment_id",
    )
)


def _send(connection: Connection, scope: StepScope, step: SendStep, targets: dict) -> None:
    # The moves arrived at their window moments (_take_due): the cap in place, then the mails.
    plan_capped(connection, "campaign_moves", scope.now, scope.config)
    connection.execute(
        _CAMPAIGN_MAIL.bindparams(sa.bindparam("content", type_=postgresql.ARRAY(sa.Text()))),
        {
            "kind": "campaign_mail",
            "campaign_id": scope.campaign.id,
            "step_id": step.id,
            "message": step.send.message,
            "content": list(step.send.content),
            "now": scope.now,
        },
    )


def _sent_moves() -> sa.Subquery:
    """The moves of a send step as `_finish` reads them: each journey reaches the next step
    when its mail goes out, and its history says when and why that is later than now.

    Read from the planned columns rather than copied into `arrival` and `detail` first: for
    a big batch that copy (an UPDATE of every move) cost as much as writing the history.
    """
    return sa.select(
        MOVES.c.enrolment_id,
        MOVES.c.step_seq,
        MOVES.c.arrived_at,
        MOVES.c.outcome,
        MOVES.c.next_step,
        MOVES.c.scheduled_at.label("arrival"),
        sa.func.jsonb_strip_nulls(
            sa.func.jsonb_build_object(
                "scheduled_at", MOVES.c.scheduled_at, "deferred_reason", MOVES.c.deferred_reason
            ),
            type_=postgresql.JSONB(),
        ).label("detail"),
    ).subquery("moves")


# --- notify_owner ----------------------------------------------------------------------


# The owner's address: a routing team member's by name (or address), else the owner itself
# when it is an address.
_RESOLVE_OWNERS = sa.text(
    "update campaign_moves as m set detail = jsonb_strip_nulls(m.detail || jsonb_build_object("
    "'recipient', coalesce((select o.email from campaign_owners as o "
    "where o.owner = m.detail ->> 'owner'), "
    "case when strpos(m.detail ->> 'owner', '@') > 0 then m.detail ->> 'owner' end))) "
    "where m.detail ? 'owner'"
)


def _notify_owner(
    connection: Connection, scope: StepScope, step: NotifyOwnerStep, targets: dict
) -> None:
    contact = contact_row(scope.relations)
    connection.execute(
        MOVES.update()
        .where(contact.c.contact_id == MOVES.c.contact_id, contact.c.owner.is_not(None))
        .values(detail=sa.func.jsonb_build_object("owner", contact.c.owner))
    )
    connection.execute(_RESOLVE_OWNERS)
    connection.execute(
        sa.text(
            "update campaign_moves set outcome = case when detail ? 'owner' "
            "then 'skipped_unknown_owner' else 'skipped_no_owner' end "
            "where not detail ? 'recipient'"
        )
    )
    _plan(connection, scope, "service", only=MOVES.c.detail.has_key("recipient"))
    connection.execute(
        _OWNER_NOTIFICATION.bindparams(sa.bindparam("content", type_=postgresql.ARRAY(sa.Text()))),
        {
            "kind": "owner_notification",
            "campaign_id": scope.campaign.id,
            "step_id": step.id,
            "message": step.notify_owner.message,
            "content": [],
            "now": scope.now,
        },
    )


# --- crm_task --------------------------------------------------------------------------


def _crm_task(connection: Connection, scope: StepScope, step: CrmTaskStep, targets: dict) -> None:
    task = step.crm_task
    due_date = (scope.now + dt.timedelta(days=task.due_in_days)).date()
    connection.execute(
        sa.text(
            "insert into ops.crm_outbox (entity, entity_id, payload) "
            "select 'task', m.entity_id, jsonb_build_object("
            "  'contact_id', m.contact_id, 'subject', cast(:subject as text), "
            "  'type', cast(:type as text), 'due_date', cast(:due_date as date), "
            "  'description', cast(:description as text), "
            "  'campaign_id', cast(:campaign_id as text), 'step_id', cast(:step_id as text), "
            "  'enrolment_id', m.enrolment_id, 'step_seq', m.step_seq) "
            "from (select *, cast(:campaign_id as text) || ':' || enrolment_id || ':' || step_seq "
            "      as entity_id "
            "      from campaign_moves) as m "
            "where not exists (select from ops.crm_outbox as o "
            "                  where o.entity = 'task' and o.entity_id = m.entity_id)"
        ),
        {
            "subject": task.subject,
            "type": task.type,
            "due_date": due_date,
            "description": task.description,
            "campaign_id": scope.campaign.id,
            "step_id": step.id,
        },
    )


# --- update ----------------------------------------------------------------------------


def _update(connection: Connection, scope: StepScope, step: UpdateStep, targets: dict) -> None:
    change = _change(step, scope.as_of)
    raw_contacts = sa.table(
        "contacts",
        *(sa.column(name) for name in ("contact_id", "tags", "lifecycle_stage", "updated_at")),
        *(sa.column(name) for name in change["fields"]),
        schema="raw",
    )
    _apply_change(connection, raw_contacts, change, {"updated_at": scope.now})
    schema, _, name = scope.relations.contacts.rpartition(".")
    relation = sa.table(
        name,
        *(sa.column(column) for column in ("contact_id", "tags", "lifecycle_stage")),
        *(sa.column(field) for field in change["fields"]),
        schema=schema or None,
    )
    _apply_change(connection, relation, change, {})
    connection.execute(
        sa.text(
            "insert into ops.contact_changes (contact_id, campaign_id, step_id, enrolment_id, "
            "step_seq, change, changed_at) "
            "select contact_id, :campaign_id, :step_id, enrolment_id, step_seq, "
            "cast(:change as jsonb), :now from campaign_moves "
            "on conflict (enrolment_id, step_seq) do nothing"
        ),
        {
            "campaign_id": scope.campaign.id,
            "step_id": step.id,
            "change": json.dumps(_logged(change), default=str),
            "now": scope.now,
        },
    )


def _change(step: UpdateStep, as_of: dt.date) -> dict[str, Any]:
    wanted = step.update.set
    fields = {
        name: value.resolve(as_of) if isinstance(value, RelativeDate) else value
        for name, value in wanted.fields.items()
    }
    return {
        "add_tag": wanted.tag,
        "remove_tag": wanted.remove_tag,
        "lifecycle_stage": wanted.stage,
        "fields": fields,
    }


def _logged(change: dict[str, Any]) -> dict[str, Any]:
    logged = {key: value for key, value in change.items() if key != "fields" and value}
    if change["fields"]:
        logged["fields"] = change["fields"]
    return logged


def _apply_change(
    connection: Connection, contacts: Any, change: dict[str, Any], extra: dict[str, Any]
) -> None:
    values: dict[str, Any] = dict(extra)
    tags: ColumnElement = contacts.c.tags
    if change["remove_tag"]:
        tags = sa.func.array_remove(tags, sa.literal(change["remove_tag"], sa.Text()))
    if change["add_tag"]:
        tag = sa.literal(change["add_tag"], sa.Text())
        tags = sa.case(
            (sa.func.coalesce(tag == sa.any_(tags), sa.false()), tags),
            else_=sa.func.array_append(tags, tag),
        )
    if change["remove_tag"] or change["add_tag"]:
        values["tags"] = tags
    if change["lifecycle_stage"]:
        values["lifecycle_stage"] = change["lifecycle_stage"]
    values.update(change["fields"])
    connection.execute(
        contacts.update().where(contacts.c.contact_id == MOVES.c.contact_id).values(values)
    )


# --- branch ----------------------------------------------------------------------------


def _branch(connection: Connection, scope: StepScope, step: BranchStep, targets: dict) -> None:
    connection.execute(
        MOVES.update()
        .where(_branch_condition(scope, step))
        .values(outcome="then", next_step=targets.get("then"))
    )


def _branch_condition(scope: StepScope, step: BranchStep) -> ColumnElement[bool]:
    branch = step.branch
    if branch.filter is not None:
        contact = contact_row(scope.relations)
        predicate = filter_predicate(
            branch.filter,
            config=scope.config,
            campaign=scope.campaign,
            where=f"branch {step.id!r}",
            as_of=scope.as_of,
            relations=scope.relations,
            segments=scope.segments,
        )
        return (
            sa.select(sa.literal_column("1"))
            .select_from(contact)
            .where(contact.c.contact_id == MOVES.c.contact_id, predicate)
            .exists()
        )
    since = _since_step_completed(branch.since_step or "")
    if branch.on == "purchased":
        return purchased_between(
            scope.relations,
            MOVES.c.contact_id,
            since,
            scope.now,
            branch.product,
            branch.product_family,
        )
    event = event_table(scope.relations).alias("behaviour")
    event_type = {"opened": "email_open", "clicked": "email_click", "downloaded": "download"}
    where = [
        event.c.contact_id == MOVES.c.contact_id,
        *human_events(event, event_type[branch.on or ""], since, scope.now),
    ]
    if branch.on in ("opened", "clicked"):
        where += [event.c.campaign_id == scope.campaign.id, event.c.step_id == branch.since_step]
    if branch.link is not None:
        where.append(event.c.link_id == branch.link)
    if branch.link_tag is not None:
        where.append(event.c.link_tag == branch.link_tag)
    if branch.asset is not None:
        where.append(event.c.asset_id == branch.asset)
    return sa.select(sa.literal_column("1")).select_from(event).where(*where).exists()


def _since_step_completed(since_step: str) -> ColumnElement:
    """When this journey last completed `since_step` (NULL if it never did)."""
    passed = HISTORY.alias("passed")
    return (
        sa.select(passed.c.completed_at)
        .where(
            passed.c.enrolment_id == MOVES.c.enrolment_id,
            passed.c.step_id == since_step,
            passed.c.step_seq < MOVES.c.step_seq,
        )
        .order_by(passed.c.step_seq.desc())
        .limit(1)
        .scalar_subquery()
    )


_STEP_WORK = {
    SendStep: _send,
    NotifyOwnerStep: _notify_owner,
    CrmTaskStep: _crm_task,
    UpdateStep: _update,
    BranchStep: _branch,
}

__all__ = ["MOVES", "StepScope", "prepare", "run_step"]
