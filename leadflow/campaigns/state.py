"""The journey state in `ops` (migration 0005) as SQLAlchemy table clauses, and what every
part of the engine shares: finding a campaign, the per-campaign lock, when a step is due.

A journey (`ops.campaign_enrolments` row) sits at one step (`step_id`) at a time and may run
it once `due_at <= now`. `step_seq` counts the steps taken; the history, the outbox and the
contact changes are keyed by (enrolment, step_seq), so a step position is done at most once
however often a run repeats, and a loop through a wait step gets fresh keys each time round.

Due times: arriving at a wait step with a duration makes it due `duration` after the arrival
(calendar months and years for `m`/`y`, evaluated in UTC); every other step is due on arrival.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from leadflow.config.base import did_you_mean
from leadflow.config.campaigns import Campaign, WaitStep, step_kind
from leadflow.config.dates import Duration
from leadflow.config.filters import FilterNode
from leadflow.config.loader import Config
from leadflow.errors import LeadflowError
from leadflow.segments.compiler import FilterError, compile_filter
from leadflow.segments.preview import segment_filters
from leadflow.segments.relations import Relations

# Prefix of the advisory lock key that serialises runs of one campaign.
LOCK_PREFIX = "leadflow.campaigns:"

ENROLMENTS = sa.table(
    "campaign_enrolments",
    sa.column("enrolment_id", sa.BigInteger()),
    sa.column("campaign_id", sa.Text()),
    sa.column("contact_id", sa.Text()),
    sa.column("tenant_code", sa.Text()),
    sa.column("trigger_key", sa.Text()),
    sa.column("enrolled_at", sa.DateTime(timezone=True)),
    sa.column("status", sa.Text()),
    sa.column("step_id", sa.Text()),
    sa.column("step_seq", sa.Integer()),
    sa.column("arrived_at", sa.DateTime(timezone=True)),
    sa.column("due_at", sa.DateTime(timezone=True)),
    sa.column("ended_at", sa.DateTime(timezone=True)),
    sa.column("end_reason", sa.Text()),
    sa.column("converted_step", sa.Text()),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    schema="ops",
)

HISTORY = sa.table(
    "campaign_step_history",
    sa.column("enrolment_id", sa.BigInteger()),
    sa.column("step_seq", sa.Integer()),
    sa.column("step_id", sa.Text()),
    sa.column("kind", sa.Text()),
    sa.column("entered_at", sa.DateTime(timezone=True)),
    sa.column("completed_at", sa.DateTime(timezone=True)),
    sa.column("outcome", sa.Text()),
    sa.column("detail", postgresql.JSONB()),
    schema="ops",
)


class CampaignError(LeadflowError):
    """A campaign cannot run as configured against this warehouse; the message says why."""


class UnknownCampaignError(CampaignError):
    """No campaign has the id asked for."""


def campaign_for(config: Config, campaign_id: str) -> Campaign:
    """The campaign `campaign_id` of the configuration; unknown → error naming the known ids."""
    if campaign_id not in config.campaigns:
        known = ", ".join(sorted(config.campaigns)) or "none"
        raise UnknownCampaignError(
            f"unknown campaign {campaign_id!r}{did_you_mean(campaign_id, config.campaigns)}; "
            f"campaigns: {known}"
        )
    return config.campaigns[campaign_id]


def lock_campaign(connection: Connection, campaign_id: str) -> None:
    """Take the campaign's transaction-level advisory lock: its runs take turns."""
    key = sa.func.hashtext(sa.literal(LOCK_PREFIX + campaign_id, sa.Text()))
    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def use_utc(connection: Connection) -> None:
    """Date arithmetic of this transaction in UTC (`+ interval '1 month'` depends on it)."""
    connection.execute(sa.text("set local time zone 'UTC'"))


def filter_predicate(
    filter: FilterNode,
    *,
    config: Config,
    campaign: Campaign,
    where: str,
    as_of: object,
    relations: Relations,
    segments: Mapping[str, FilterNode] | None = None,
) -> ColumnElement[bool]:
    """A campaign filter compiled by the one compiler; errors name the campaign and the key."""
    try:
        return compile_filter(
            filter,
            as_of=as_of,  # type: ignore[arg-type]
            relations=relations,
            segments=segments if segments is not None else segment_filters(config),
        )
    except FilterError as error:
        raise CampaignError(
            f"campaign {campaign.id!r}: {where} cannot be compiled: {error}"
        ) from None


def duration_interval(duration: Duration) -> ColumnElement:
    """The duration as a PostgreSQL interval (calendar months/years, like Duration.after)."""
    return sa.func.make_interval(
        sa.literal(duration.years, sa.Integer()),
        sa.literal(duration.months, sa.Integer()),
        sa.literal(0, sa.Integer()),
        sa.literal(duration.days, sa.Integer()),
        sa.literal(duration.hours, sa.Integer()),
    )


def due_on_arrival(
    campaign: Campaign, step_id: ColumnElement, arrival: ColumnElement
) -> ColumnElement:
    """When the step `step_id` (an SQL expression) is due for a journey arriving at `arrival`."""
    waits = {
        step.id: arrival + duration_interval(step.wait.duration)
        for step in campaign.steps
        if isinstance(step, WaitStep) and step.wait.duration is not None
    }
    if not waits:
        return arrival
    return sa.case(waits, value=step_id, else_=arrival)


def step_kinds(campaign: Campaign, step_id: ColumnElement) -> ColumnElement:
    """The kind (send, wait, ...) of the step `step_id` (an SQL expression)."""
    return sa.case(
        {step.id: step_kind(step) for step in campaign.steps}, value=step_id, else_="unknown"
    )


def forget_journeys(engine: Engine) -> None:
    """Delete every journey, step taken, outbox row, contact change and campaign run.

    Only for replacing the whole pool with a different one (the demo regenerates its
    company): the journeys name contacts of the old pool.
    """
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "truncate ops.campaign_enrolments, ops.campaign_step_history, ops.outbox, "
                "ops.contact_changes, ops.campaign_runs restart identity"
            )
        )


__all__ = [
    "ENROLMENTS",
    "HISTORY",
    "CampaignError",
    "UnknownCampaignError",
    "campaign_for",
    "due_on_arrival",
    "duration_interval",
    "filter_predicate",
    "forget_journeys",
    "lock_campaign",
    "step_kinds",
    "use_utc",
]
