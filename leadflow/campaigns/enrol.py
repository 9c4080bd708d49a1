"""Enrolling contacts into a campaign: the trigger's occurrences, the audience, re-entry.

`enrol(engine, config, campaign_id, now)` finds the trigger occurrences a run at `now` sees,
keeps those of contacts in the campaign's tenants and audience (compiled for `as_of`, see
clock.py), applies the re-entry policy and starts one journey per remaining contact at the
first step. Everything is set-based: one INSERT ... SELECT of the occurrences into a
temporary table, one INSERT ... SELECT of the new enrolments.

Trigger occurrences and their keys (the key is part of the enrolment's unique key, so a run
repeated, or a later run that still sees the same occurrence, enrols nobody again). Runs look
back `TRIGGER_LOOKBACK` so that a missed run is caught up by the next one:
- event: a human event of the type (qualified by asset / fair / form) that occurred in
  [now − lookback, now); key `event:<event_id>`. Purchases are won orders containing the
  product (or an item of the family) ordered in that span; key `order:<order_id>`.
- segment_entry: the members of `ops.segment_members` at the segment's latest materialised
  date ≤ as_of who were not members at the materialised date before it (at the first
  materialisation every member enters); key `segment:<that date>`.
- date_relative: the field's date + offset_days is a day in (as_of − lookback, as_of]; for
  `next_maintenance_date` once per installation of the contact (at its account or naming
  it, installed by as_of; narrowed by product / family), key
  `date:<installation_id>:<maintenance date>`; other fields key `date:<field>:<date>`
  (a timestamp field by its UTC date).
- inactivity: the contact's last human activity (events of ACTIVITY_EVENT_TYPES before the
  cut-off; none: its created_at) + N days is a day in (as_of − lookback, as_of], i.e. the
  first day the filter `inactive: {days: N}` holds; key `inactive:<that day>`.
- one_off: once `now` has reached `at` (a date means 00:00 UTC that day, a date-time without
  zone is UTC), the whole audience; key `one_off`.

Contacts whose consent is withdrawn (endings.py) are not enrolled. Re-entry: `never` — no
journey if the contact ever had one in this campaign; `lockout N` — none active and none
ended less than N days before now; `always` — none active. Beyond that, an occurrence only
enrols if every earlier journey of the contact in the campaign had ended before it happened
(a journey active at that moment, or enrolled after it by a run that saw it, absorbs it), so
repeating a run changes nothing even when a journey ended in between. A contact gets at most
one journey per run (its earliest occurrence).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Select

from leadflow.campaigns.clock import as_of_for, checked_now
from leadflow.campaigns.conditions import (
    event_qualifiers,
    event_table,
    human_events,
    installation_table,
    won_orders_with,
)
from leadflow.campaigns.endings import WITHDRAWN_CONSENT
from leadflow.campaigns.report_text import table
from leadflow.campaigns.state import (
    ENROLMENTS,
    CampaignError,
    campaign_for,
    due_on_arrival,
    filter_predicate,
    lock_campaign,
    use_utc,
)
from leadflow.config.campaigns import (
    Campaign,
    DateRelativeSpec,
    DateRelativeTrigger,
    EventTrigger,
    InactivityTrigger,
    OneOffTrigger,
    SegmentEntryTrigger,
)
from leadflow.config.fields import FIELDS
from leadflow.config.loader import Config
from leadflow.segments.compiler import ACTIVITY_EVENT_TYPES
from leadflow.segments.relations import DEFAULT_RELATIONS, Relations, contact_row, tables
from leadflow.segments.timing import cutoff, start_of_day

TRIGGER_LOOKBACK = dt.timedelta(days=7)
ONE_DAY = dt.timedelta(days=1)

CANDIDATES = sa.table(
    "campaign_candidates",
    sa.column("contact_id", sa.Text()),
    sa.column("trigger_key", sa.Text()),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
)
_CANDIDATES_DDL = (
    "create temp table if not exists campaign_candidates "
    "(contact_id text not null, trigger_key text not null, occurred_at timestamptz not null) "
    "on commit drop"
)


@dataclass(frozen=True)
class EnrolReport:
    """What one enrolment run found and did."""

    campaign_id: str
    now: dt.datetime
    as_of: dt.date
    # trigger occurrences the run saw (in the look-back), of how many contacts
    occurrences: int
    contacts: int
    # of those contacts, the ones in the campaign's tenants and audience
    in_audience: int
    # new journeys started (the rest: already enrolled for it, or re-entry said no)
    enrolled: int

    def describe(self) -> str:
        rows = [
            ("trigger occurrences", self.occurrences),
            ("contacts triggered", self.contacts),
            ("in tenants and audience", self.in_audience),
            ("enrolled", self.enrolled),
        ]
        title = f"campaign {self.campaign_id}: enrol at {self.now:%Y-%m-%d %H:%M} UTC"
        return f"{title} (as_of {self.as_of})\n" + table(["", "count"], rows)


def enrol(
    engine: Engine,
    config: Config,
    campaign_id: str,
    now: dt.datetime,
    *,
    relations: Relations = DEFAULT_RELATIONS,
) -> EnrolReport:
    """Start journeys for the trigger occurrences a run at `now` sees (see the module doc)."""
    campaign = campaign_for(config, campaign_id)
    with engine.begin() as connection:
        return enrol_on(connection, config, campaign, now, relations=relations)


def enrol_on(
    connection: Connection,
    config: Config,
    campaign: Campaign,
    now: dt.datetime,
    *,
    relations: Relations = DEFAULT_RELATIONS,
) -> EnrolReport:
    """`enrol` inside the caller's transaction."""
    now = checked_now(now)
    as_of = as_of_for(now)
    use_utc(connection)
    lock_campaign(connection, campaign.id)
    connection.execute(sa.text(_CANDIDATES_DDL))
    connection.execute(sa.text("truncate campaign_candidates"))
    if campaign.enabled:
        occurrences = trigger_occurrences(connection, config, campaign, now, relations)
        if occurrences is not None:
            connection.execute(
                CANDIDATES.insert().from_select(
                    ["contact_id", "trigger_key", "occurred_at"], occurrences
                )
            )
    counts = connection.execute(
        sa.text("select count(*), count(distinct contact_id) from campaign_candidates")
    ).one()
    eligible = _eligible(config, campaign, as_of, relations).subquery("eligible")
    in_audience = connection.execute(
        sa.select(sa.func.count(sa.distinct(eligible.c.contact_id)))
    ).scalar_one()
    inserted = connection.execute(
        _insert_enrolments(campaign, now, eligible), execution_options={"preserve_rowcount": True}
    )
    return EnrolReport(
        campaign_id=campaign.id,
        now=now,
        as_of=as_of,
        occurrences=counts[0],
        contacts=counts[1],
        in_audience=in_audience,
        enrolled=inserted.rowcount,
    )


# --- trigger occurrences ---------------------------------------------------------------


def trigger_occurrences(
    connection: Connection,
    config: Config,
    campaign: Campaign,
    now: dt.datetime,
    relations: Relations,
) -> Select | None:
    """SELECT contact_id, trigger_key, occurred_at of the trigger's occurrences (None: none)."""
    trigger = campaign.trigger
    as_of = as_of_for(now)
    if isinstance(trigger, EventTrigger):
        return _event_occurrences(trigger, now, relations)
    if isinstance(trigger, SegmentEntryTrigger):
        return _segment_entries(connection, trigger.segment_entry.segment, as_of)
    if isinstance(trigger, DateRelativeTrigger):
        return _date_occurrences(trigger.date_relative, as_of, relations)
    if isinstance(trigger, InactivityTrigger):
        return _inactivity_occurrences(trigger.inactivity.days, as_of, relations)
    if isinstance(trigger, OneOffTrigger):
        return _one_off(trigger.one_off.at, now, relations)
    raise CampaignError(f"campaign {campaign.id!r}: unsupported trigger {trigger!r}")


def _key(prefix: str, *parts: ColumnElement) -> ColumnElement:
    expression: ColumnElement = sa.literal(prefix, sa.Text())
    for index, part in enumerate(parts):
        if index:
            expression = expression + sa.literal(":", sa.Text())
        expression = expression + sa.cast(part, sa.Text())
    return expression


def _event_occurrences(trigger: EventTrigger, now: dt.datetime, relations: Relations) -> Select:
    spec = trigger.event
    since = now - TRIGGER_LOOKBACK
    if spec.type == "purchase":
        from_, order, narrowing = won_orders_with(relations, spec.product, spec.product_family)
        return (
            sa.select(
                order.c.contact_id,
                _key("order:", order.c.order_id),
                order.c.ordered_at,
            )
            .select_from(from_)
            .where(
                order.c.contact_id.is_not(None),
                order.c.status == "won",
                order.c.ordered_at >= since,
                order.c.ordered_at < now,
                *narrowing,
            )
            .distinct()
        )
    event = event_table(relations).alias("trigger_event")
    return sa.select(
        event.c.contact_id, _key("event:", event.c.event_id), event.c.occurred_at
    ).where(
        event.c.contact_id.is_not(None),
        *human_events(event, spec.type, since, now),
        *event_qualifiers(event, spec),
    )


def _segment_entries(connection: Connection, segment: str, as_of: dt.date) -> Select | None:
    dates = (
        connection.execute(
            sa.text(
                "select as_of from ops.segment_materializations "
                "where segment = :segment and as_of <= :as_of order by as_of desc limit 2"
            ),
            {"segment": segment, "as_of": as_of},
        )
        .scalars()
        .all()
    )
    if not dates:
        return None
    latest = dates[0]
    members = sa.table(
        "segment_members",
        sa.column("as_of", sa.Date()),
        sa.column("segment", sa.Text()),
        sa.column("contact_id", sa.Text()),
        schema="ops",
    )
    now_member, before = members.alias("now_member"), members.alias("before")
    query = sa.select(
        now_member.c.contact_id,
        sa.literal(f"segment:{latest.isoformat()}", sa.Text()),
        sa.literal(cutoff(latest), sa.DateTime(timezone=True)),
    ).where(now_member.c.segment == segment, now_member.c.as_of == latest)
    if len(dates) == 2:
        query = query.where(
            ~sa.select(sa.literal_column("1"))
            .where(
                before.c.segment == segment,
                before.c.as_of == dates[1],
                before.c.contact_id == now_member.c.contact_id,
            )
            .exists()
        )
    return query


def _lookback_days(as_of: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of (as_of − lookback, as_of]."""
    return as_of - dt.timedelta(days=TRIGGER_LOOKBACK.days - 1), as_of


def _date_occurrences(spec: DateRelativeSpec, as_of: dt.date, relations: Relations) -> Select:
    first, last = _lookback_days(as_of)
    offset = dt.timedelta(days=spec.offset_days)
    low, high = first - offset, last - offset  # the field's dates that fire in the look-back
    contact = contact_row(relations)
    if spec.field == "next_maintenance_date":
        return _maintenance_occurrences(spec, low, high, as_of, relations)
    column = contact.c[spec.field]
    if FIELDS[spec.field].type == "timestamp":
        day = sa.cast(sa.func.timezone("UTC", column), sa.Date())
        in_range = sa.and_(column >= start_of_day(low), column < start_of_day(high + ONE_DAY))
    else:
        day, in_range = column, column.between(low, high)
    return sa.select(
        contact.c.contact_id,
        _key(f"date:{spec.field}:", day),
        sa.cast(day + spec.offset_days, sa.DateTime(timezone=True)),
    ).where(in_range)


def _maintenance_occurrences(
    spec: DateRelativeSpec, low: dt.date, high: dt.date, as_of: dt.date, relations: Relations
) -> Select:
    contact = contact_row(relations)
    installation = installation_table(relations).alias("installation")
    relation = tables(relations)
    from_ = installation.join(
        contact,
        sa.or_(
            installation.c.account_id == contact.c.account_id,
            installation.c.contact_id == contact.c.contact_id,
        ),
    )
    where = [
        installation.c.installed_on <= as_of,
        installation.c.next_maintenance_date.between(low, high),
    ]
    if spec.product is not None:
        where.append(installation.c.product_id == spec.product)
    if spec.product_family is not None:
        catalogue = relation.products.alias("product")
        from_ = from_.join(catalogue, catalogue.c.product_id == installation.c.product_id)
        where.append(catalogue.c[relation.product_family_column] == spec.product_family)
    maintenance = installation.c.next_maintenance_date
    return (
        sa.select(
            contact.c.contact_id,
            _key("date:", installation.c.installation_id, maintenance),
            sa.cast(maintenance + spec.offset_days, sa.DateTime(timezone=True)),
        )
        .select_from(from_)
        .where(*where)
        .distinct()
    )


def _inactivity_occurrences(days: int, as_of: dt.date, relations: Relations) -> Select:
    """Contacts whose last activity (or creation) + `days` falls in the look-back."""
    first, last = _lookback_days(as_of)
    low, high = first - dt.timedelta(days=days), last - dt.timedelta(days=days)
    span_start, span_end = start_of_day(low), start_of_day(high + ONE_DAY)
    contact = contact_row(relations)
    event = event_table(relations).alias("activity")

    def activity(since: object) -> list[ColumnElement[bool]]:
        return [
            event.c.event_type.in_(ACTIVITY_EVENT_TYPES),
            event.c.is_machine == sa.false(),
            event.c.occurred_at >= since,
            event.c.occurred_at < cutoff(as_of),
        ]

    # The last activity of contacts active since the span began (one index range scan) ...
    recent = (
        sa.select(event.c.contact_id, sa.func.max(event.c.occurred_at).label("last_at"))
        .where(*activity(span_start))
        .group_by(event.c.contact_id)
        .subquery("recent")
    )
    went_quiet = sa.select(recent.c.contact_id, recent.c.last_at).where(recent.c.last_at < span_end)
    # ... and contacts never active, by their creation.
    never = sa.select(contact.c.contact_id, contact.c.created_at).where(
        contact.c.created_at >= span_start,
        contact.c.created_at < span_end,
        ~sa.select(sa.literal_column("1"))
        .select_from(event)
        .where(event.c.contact_id == contact.c.contact_id, *activity(start_of_day(dt.date.min)))
        .exists(),
    )
    quiet = sa.union_all(went_quiet, never).subquery("quiet")
    day = sa.cast(sa.func.timezone("UTC", quiet.c.last_at), sa.Date()) + days
    return sa.select(
        quiet.c.contact_id,
        _key("inactive:", day),
        sa.cast(day, sa.DateTime(timezone=True)),
    )


def _one_off(at: dt.date, now: dt.datetime, relations: Relations) -> Select | None:
    if isinstance(at, dt.datetime):
        moment = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    else:
        moment = start_of_day(at)
    if now < moment:
        return None
    contact = contact_row(relations)
    return sa.select(
        contact.c.contact_id,
        sa.literal("one_off", sa.Text()),
        sa.literal(moment, sa.DateTime(timezone=True)),
    )


# --- audience, re-entry, insert --------------------------------------------------------


def _eligible(config: Config, campaign: Campaign, as_of: dt.date, relations: Relations) -> Select:
    """The occurrences of contacts in the campaign's tenants and audience, with their tenant."""
    contact = contact_row(relations)
    where = [
        contact.c.tenant_code.in_(campaign.tenants),
        # an unsubscribed contact would only be ended again by the next advance
        sa.func.coalesce(contact.c.consent_status.not_in(WITHDRAWN_CONSENT), sa.true()),
    ]
    if campaign.audience is not None:
        where.append(
            filter_predicate(
                campaign.audience,
                config=config,
                campaign=campaign,
                where="audience",
                as_of=as_of,
                relations=relations,
            )
        )
    return (
        sa.select(
            CANDIDATES.c.contact_id,
            CANDIDATES.c.trigger_key,
            CANDIDATES.c.occurred_at,
            contact.c.tenant_code,
        )
        .select_from(CANDIDATES.join(contact, contact.c.contact_id == CANDIDATES.c.contact_id))
        .where(*where)
    )


def _re_entry_allows(
    campaign: Campaign, now: dt.datetime, contact_id: ColumnElement, occurred_at: ColumnElement
) -> list[ColumnElement[bool]]:
    earlier = ENROLMENTS.alias("earlier")

    def none_where(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return ~(
            sa.select(sa.literal_column("1"))
            .select_from(earlier)
            .where(earlier.c.campaign_id == campaign.id, earlier.c.contact_id == contact_id)
            .where(*conditions)
            .exists()
        )

    policy = campaign.re_entry
    if policy.policy == "never":
        return [none_where()]
    # An occurrence is absorbed by any journey that had not ended when it happened (an
    # active one, or one enrolled later, whose run saw it): so a run repeated after the
    # journey ended in between enrols nobody new.
    infinity = sa.literal("infinity", sa.DateTime(timezone=True))
    allowed = [none_where(sa.func.coalesce(earlier.c.ended_at, infinity) > occurred_at)]
    if policy.policy == "lockout":
        locked_since = now - dt.timedelta(days=policy.lockout_days or 0)
        allowed.append(none_where(earlier.c.ended_at > locked_since))
    return allowed


def _insert_enrolments(campaign: Campaign, now: dt.datetime, eligible: sa.Subquery) -> sa.Insert:
    first = campaign.steps[0].id
    picked = (
        sa.select(eligible.c.contact_id, eligible.c.trigger_key, eligible.c.tenant_code)
        .where(*_re_entry_allows(campaign, now, eligible.c.contact_id, eligible.c.occurred_at))
        .distinct(eligible.c.contact_id)
        .order_by(eligible.c.contact_id, eligible.c.occurred_at, eligible.c.trigger_key)
        .subquery("picked")
    )
    moment = sa.literal(now, sa.DateTime(timezone=True))
    rows = sa.select(
        sa.literal(campaign.id, sa.Text()),
        picked.c.contact_id,
        picked.c.tenant_code,
        picked.c.trigger_key,
        moment,
        sa.literal("active", sa.Text()),
        sa.literal(first, sa.Text()),
        sa.literal(0, sa.Integer()),
        moment,
        due_on_arrival(campaign, sa.literal(first, sa.Text()), moment),
        moment,
    )
    columns = [
        "campaign_id",
        "contact_id",
        "tenant_code",
        "trigger_key",
        "enrolled_at",
        "status",
        "step_id",
        "step_seq",
        "arrived_at",
        "due_at",
        "updated_at",
    ]
    return postgresql.insert(ENROLMENTS).from_select(columns, rows).on_conflict_do_nothing()


__all__ = ["TRIGGER_LOOKBACK", "EnrolReport", "enrol", "enrol_on", "trigger_occurrences"]
