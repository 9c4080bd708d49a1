"""Ending journeys before their steps run: unsubscribes, exit rules, leaving the audience, goals.

Every advance first ends the active journeys that must not go on, in this order (a journey
ends for the first reason that applies):
1. `exited`/`unsubscribed`: the contact's consent is withdrawn (consent_status `objected` or
   `unsubscribed` in the contacts relation) or an `unsubscribe` event (human or not: an
   unsubscribe is always honoured) occurred since the enrolment, before now.
2. `exited`/`<rule id>`: an exit rule holds — its filter (for as_of), or its event since the
   enrolment (conditions.py). A rule without an id is named `exit_rule_<n>` (1-based).
3. `exited`/`left_audience`: the contact is gone from the contacts relation, its tenant is no
   longer one of the campaign's, or the audience filter no longer holds.
4. `converted`/`goal`: the goal's filter holds, or its event happened since the enrolment;
   `converted_step` is the last step the journey completed (its current step if none).

Set-based: one INSERT ... SELECT per reason into a temporary table (the first reason wins by
its primary key), then one statement each to write a history row at the journey's current
position (outcome `exited`/`converted`, the reason in `detail`), end the enrolments, and
cancel their pending outbox rows (status `cancelled`, the reason in `status_reason`), so
nothing is sent after an unsubscribe or a conversion. A mail still deferred when its journey
completed is cancelled as well once the contact unsubscribes.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Alias

from leadflow.campaigns.conditions import event_table, happened
from leadflow.campaigns.state import ENROLMENTS, HISTORY, filter_predicate, step_kinds
from leadflow.config.campaigns import Campaign, JourneyCondition
from leadflow.config.loader import Config
from leadflow.segments.relations import Relations, contact_row
from leadflow.warehouse.tables import OUTBOX

WITHDRAWN_CONSENT = ("objected", "unsubscribed")

ENDINGS = sa.table(
    "campaign_endings",
    sa.column("enrolment_id", sa.BigInteger()),
    sa.column("status", sa.Text()),
    sa.column("reason", sa.Text()),
)
_ENDINGS_DDL = (
    "create temp table if not exists campaign_endings (enrolment_id bigint primary key, "
    "status text not null, reason text not null) on commit drop"
)


@dataclass(frozen=True)
class _Scope:
    config: Config
    campaign: Campaign
    now: dt.datetime
    as_of: dt.date
    relations: Relations


def end_journeys(
    connection: Connection,
    config: Config,
    campaign: Campaign,
    now: dt.datetime,
    as_of: dt.date,
    relations: Relations,
) -> Counter[tuple[str, str]]:
    """End the journeys that must stop; (status, reason) → how many ended for it."""
    scope = _Scope(config, campaign, now, as_of, relations)
    connection.execute(sa.text(_ENDINGS_DDL))
    connection.execute(sa.text("truncate campaign_endings"))
    journey = ENROLMENTS.alias("journey")
    for status, reason, condition in _reasons(scope, journey):
        rows = sa.select(
            journey.c.enrolment_id, sa.literal(status, sa.Text()), sa.literal(reason, sa.Text())
        ).where(
            journey.c.campaign_id == campaign.id,
            journey.c.status == "active",
            condition,
        )
        connection.execute(
            postgresql.insert(ENDINGS)
            .from_select(["enrolment_id", "status", "reason"], rows)
            .on_conflict_do_nothing()
        )
    ended = Counter(
        {
            (status, reason): count
            for status, reason, count in connection.execute(
                sa.text("select status, reason, count(*) from campaign_endings group by 1, 2")
            )
        }
    )
    if ended:
        _write_history(connection, scope)
        _end_enrolments(connection, scope)
        _cancel_outbox(connection)
    _cancel_after_journey(connection, scope)
    return ended


def _reasons(scope: _Scope, journey: Alias) -> list[tuple[str, str, ColumnElement[bool]]]:
    campaign = scope.campaign
    reasons = [("exited", "unsubscribed", _unsubscribed(scope, journey))]
    for number, rule in enumerate(campaign.exit_rules, start=1):
        name = rule.id or f"exit_rule_{number}"
        reasons.append(("exited", name, _holds(scope, journey, rule, f"exit rule {name!r}")))
    reasons.append(("exited", "left_audience", ~_in_audience(scope, journey)))
    if campaign.goal is not None:
        reasons.append(("converted", "goal", _holds(scope, journey, campaign.goal, "goal")))
    return reasons


def _contact_where(
    scope: _Scope, journey: Alias, *conditions: ColumnElement[bool]
) -> ColumnElement[bool]:
    """The journey's contact is in the contacts relation and satisfies the conditions."""
    contact = contact_row(scope.relations)
    return (
        sa.select(sa.literal_column("1"))
        .select_from(contact)
        .where(contact.c.contact_id == journey.c.contact_id, *conditions)
        .exists()
    )


def _unsubscribed(scope: _Scope, journey: Alias) -> ColumnElement[bool]:
    contact = contact_row(scope.relations)
    event = event_table(scope.relations).alias("unsubscribe")
    unsubscribe_event = (
        sa.select(sa.literal_column("1"))
        .select_from(event)
        .where(
            event.c.contact_id == journey.c.contact_id,
            event.c.event_type == "unsubscribe",
            event.c.occurred_at >= journey.c.enrolled_at,
            event.c.occurred_at < scope.now,
        )
        .exists()
    )
    withdrawn = _contact_where(scope, journey, contact.c.consent_status.in_(WITHDRAWN_CONSENT))
    return sa.or_(withdrawn, unsubscribe_event)


def _holds(
    scope: _Scope, journey: Alias, condition: JourneyCondition, where: str
) -> ColumnElement[bool]:
    if condition.event is not None:
        return happened(
            condition.event, scope.relations, journey.c.contact_id, journey.c.enrolled_at, scope.now
        )
    assert condition.filter is not None
    predicate = filter_predicate(
        condition.filter,
        config=scope.config,
        campaign=scope.campaign,
        where=where,
        as_of=scope.as_of,
        relations=scope.relations,
    )
    return _contact_where(scope, journey, predicate)


def _in_audience(scope: _Scope, journey: Alias) -> ColumnElement[bool]:
    contact = contact_row(scope.relations)
    conditions = [contact.c.tenant_code.in_(scope.campaign.tenants)]
    if scope.campaign.audience is not None:
        conditions.append(
            filter_predicate(
                scope.campaign.audience,
                config=scope.config,
                campaign=scope.campaign,
                where="audience",
                as_of=scope.as_of,
                relations=scope.relations,
            )
        )
    return _contact_where(scope, journey, *conditions)


def _write_history(connection: Connection, scope: _Scope) -> None:
    """A history row at each ending journey's current position, saying why it ended."""
    journey = ENROLMENTS
    rows = (
        sa.select(
            journey.c.enrolment_id,
            journey.c.step_seq,
            journey.c.step_id,
            step_kinds(scope.campaign, journey.c.step_id),
            journey.c.arrived_at,
            sa.literal(scope.now, sa.DateTime(timezone=True)),
            ENDINGS.c.status,
            sa.func.jsonb_build_object("reason", ENDINGS.c.reason),
        )
        .select_from(ENDINGS.join(journey, journey.c.enrolment_id == ENDINGS.c.enrolment_id))
        .where(journey.c.status == "active")
    )
    connection.execute(
        postgresql.insert(HISTORY)
        .from_select(
            list(HISTORY.c.keys()),
            rows,
        )
        .on_conflict_do_nothing()
    )


def _end_enrolments(connection: Connection, scope: _Scope) -> None:
    journey = ENROLMENTS
    earlier = HISTORY.alias("earlier")
    last_completed = (
        sa.select(earlier.c.step_id)
        .where(
            earlier.c.enrolment_id == journey.c.enrolment_id,
            earlier.c.step_seq < journey.c.step_seq,
        )
        .order_by(earlier.c.step_seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    connection.execute(
        journey.update()
        .where(journey.c.enrolment_id == ENDINGS.c.enrolment_id, journey.c.status == "active")
        .values(
            status=ENDINGS.c.status,
            step_id=None,
            ended_at=scope.now,
            end_reason=ENDINGS.c.reason,
            converted_step=sa.case(
                (
                    ENDINGS.c.status == "converted",
                    sa.func.coalesce(last_completed, journey.c.step_id),
                ),
                else_=sa.null(),
            ),
            updated_at=scope.now,
        )
    )


def _cancel_after_journey(connection: Connection, scope: _Scope) -> None:
    """A journey that completed with a mail still deferred, then the contact unsubscribed:
    that mail is cancelled too."""
    journey = ENROLMENTS.alias("journey")
    connection.execute(
        OUTBOX.update()
        .where(
            OUTBOX.c.enrolment_id == journey.c.enrolment_id,
            OUTBOX.c.status == "pending",
            journey.c.campaign_id == scope.campaign.id,
            journey.c.status != "active",
            _unsubscribed(scope, journey),
        )
        .values(status="cancelled", status_reason="contact unsubscribed")
    )


def _cancel_outbox(connection: Connection) -> None:
    connection.execute(
        sa.text(
            "update ops.outbox as o set status = 'cancelled', "
            "status_reason = 'journey ' || x.status || ': ' || x.reason "
            "from campaign_endings as x "
            "where o.enrolment_id = x.enrolment_id and o.status = 'pending'"
        )
    )


__all__ = ["WITHDRAWN_CONSENT", "end_journeys"]
