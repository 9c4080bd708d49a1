"""scoring: the configuration snapshot dbt reads, and the incremental activity-scoring state

Configuration as data (SPEC §2.3/§2.4, DESIGN §4): every nightly run replaces the rows of the
`ops.config_*` tables with the personas, persona criteria, profile rules, activity rules,
thresholds and tenants of the YAML (`leadflow.scoring.snapshot`), and generic dbt models
evaluate whatever they find there.

Incremental activity scoring (`leadflow.scoring.activity`, docs/scoring.md):
- a b-tree index on raw.events (event_seq), so an update reads only the events past its
  watermark;
- `ops.activity_totals` keeps per contact S = Σ points × 2^((t − epoch) / half-life), so new
  events only add to S; `ops.activity_state` holds the epoch, the cut-off and the event_seq
  watermark of the last update and the hash of the rules it is valid for.
- `ops.activity_pending` remembers contacts with events at/after the last cut-off, which
  count in a later run.
- Updates and deletes of `raw.events` (a visitor's events attached to a contact, erasure,
  a re-flagged machine open) cannot be seen through event_seq: statement triggers log the
  contacts whose events changed in `ops.activity_changes`, and the next update recomputes
  them. TRUNCATE of raw.events drops the state, so the next update is a full rebuild.
- `ops.activity_event_points` is the one definition of "which activity rules an event
  matches" (SPEC §2.4), read by the state update and by dbt alike.

Revision ID: 0003_scoring
Revises: 0002_event_lookup_indexes
"""

from alembic import op

revision = "0003_scoring"
down_revision = "0002_event_lookup_indexes"
branch_labels = None
depends_on = None

CONFIG = """
create table ops.config_snapshot (
    singleton       boolean primary key default true check (singleton),
    -- sha256 of the whole configuration and of what activity scores depend on (rules and
    -- half-life): the incremental activity state is only valid for its activity_hash.
    config_hash     text not null,
    activity_hash   text not null,
    config_dir      text,
    config          jsonb not null,
    taken_at        timestamptz not null default now()
);

create table ops.config_scoring (
    singleton               boolean primary key default true check (singleton),
    persona_threshold       numeric not null,
    activity_half_life_days double precision not null check (activity_half_life_days > 0),
    grade_a                 numeric not null,
    grade_b                 numeric not null,
    grade_c                 numeric not null,
    band_1                  numeric not null,
    band_2                  numeric not null,
    band_3                  numeric not null,
    mql_cells               text[] not null,
    clv_retention           numeric not null check (clv_retention between 0 and 1),
    clv_horizon_years       integer not null check (clv_horizon_years > 0),
    new_customer_days       integer not null check (new_customer_days > 0)
);

create table ops.config_tenants (
    tenant_code     text primary key,
    position        integer not null unique,
    name            text not null,
    is_global       boolean not null
);

create table ops.config_personas (
    persona_id      text primary key,
    -- order in personas.yaml: on equal match_pct the persona listed first wins
    position        integer not null unique,
    name            text not null,
    threshold       numeric not null
);

-- A condition is `field op value` over the field catalogue (leadflow/config/fields.py);
-- `value` is the checked value in its YAML form (lists, relative dates like "-3y").
create table ops.config_persona_criteria (
    persona_id      text not null references ops.config_personas on delete cascade,
    position        integer not null,
    field           text not null,
    field_type      text not null,
    op              text not null,
    value           jsonb,
    weight          numeric not null check (weight > 0),
    primary key (persona_id, position)
);

create table ops.config_profile_rules (
    rule_id         text primary key,
    position        integer not null unique,
    field           text not null,
    field_type      text not null,
    op              text not null,
    value           jsonb,
    points          numeric not null,
    description     text
);

create table ops.config_activity_rules (
    rule_id         text primary key,
    position        integer not null unique,
    event_type      text not null,
    link_tag        text,
    asset_id        text,
    mailing_id      text,
    -- the glob as written, and as a LIKE pattern (escape '\\'); a glob starting with '/'
    -- matches the URL's path, any other the whole URL (as the filter compiler's `visited`)
    url_pattern     text,
    url_like        text,
    url_is_path     boolean,
    points          double precision not null,
    description     text,
    check ((url_pattern is null) = (url_like is null)),
    check ((url_like is null) = (url_is_path is null))
);
"""

ACTIVITY = r"""
-- The incremental update reads the events past its watermark. The BRIN index of 0001 cannot
-- serve that once rows land in free space anywhere in the table (after VACUUM, new small rows
-- fill the slack of old pages): measured with 20M events, 1 % new rows made half of the
-- table's block ranges match. A b-tree finds exactly the new rows.
create index events_seq_idx on raw.events (event_seq);

create table ops.activity_state (
    singleton       boolean primary key default true check (singleton),
    activity_hash   text not null,
    half_life_days  double precision not null check (half_life_days > 0),
    -- S is relative to this instant; moved forward (rebased) when exponents grow large
    epoch           timestamptz not null,
    cutoff          timestamptz not null,
    event_watermark bigint not null,
    rebuilt_at      timestamptz not null,
    updated_at      timestamptz not null default now()
);

create table ops.activity_totals (
    contact_id       text primary key,
    weighted_sum     double precision not null,
    last_activity_at timestamptz
);

create table ops.activity_pending (
    contact_id      text primary key,
    -- the earliest event of the contact at/after the last cut-off
    next_at         timestamptz not null
);

create table ops.activity_changes (
    change_id       bigserial primary key,
    contact_id      text not null,
    changed_at      timestamptz not null default now()
);

create function ops.log_event_updates() returns trigger language plpgsql as $$
begin
    -- Only changes that can move a score or the last activity: the contact, the time, the
    -- machine flag and what the rules match on.
    insert into ops.activity_changes (contact_id)
    select contact_id from (
        select old_row.contact_id as old_contact, new_row.contact_id as new_contact
        from old_rows as old_row
        full join new_rows as new_row on new_row.event_seq = old_row.event_seq
        where (old_row.contact_id, old_row.event_type, old_row.occurred_at, old_row.is_machine,
               old_row.link_tag, old_row.asset_id, old_row.mailing_id, old_row.url)
              is distinct from
              (new_row.contact_id, new_row.event_type, new_row.occurred_at, new_row.is_machine,
               new_row.link_tag, new_row.asset_id, new_row.mailing_id, new_row.url)
    ) as changed
    cross join lateral (values (old_contact), (new_contact)) as touched (contact_id)
    where contact_id is not null
    group by contact_id;
    return null;
end $$;

create function ops.log_event_deletes() returns trigger language plpgsql as $$
begin
    insert into ops.activity_changes (contact_id)
    select distinct contact_id from old_rows where contact_id is not null;
    return null;
end $$;

create function ops.drop_activity_state() returns trigger language plpgsql as $$
begin
    -- Nothing of the old events is left to subtract: the next update rebuilds from scratch.
    delete from ops.activity_state;
    return null;
end $$;

create trigger events_log_updates_for_activity
    after update on raw.events
    referencing old table as old_rows new table as new_rows
    for each statement execute function ops.log_event_updates();

create trigger events_log_deletes_for_activity
    after delete on raw.events
    referencing old table as old_rows
    for each statement execute function ops.log_event_deletes();

create trigger events_truncate_drops_activity_state
    after truncate on raw.events
    for each statement execute function ops.drop_activity_state();

-- Human events of known contacts with the activity rules each matches (SPEC §2.4): a row
-- per (event, matching rule), or one row with rule_id NULL for an event of the activity kinds
-- that no rule matches (it still counts for last_activity_at). Rule filters: link tag, asset
-- and mailing compare exactly; a URL pattern is matched as by the filter compiler's `visited`
-- (leadflow.segments.compiler.url_matches). The activity kinds (`is_activity`) are the
-- compiler's ACTIVITY_EVENT_TYPES, the events `inactive` looks at (checked by the tests).
create view ops.activity_event_points as
select
    event.event_id,
    event.event_seq,
    event.contact_id,
    event.event_type,
    event.occurred_at,
    event.is_activity,
    rule.rule_id,
    rule.points
from (
    select
        events.event_id,
        events.event_seq,
        events.contact_id,
        events.event_type,
        events.occurred_at,
        events.link_tag,
        events.asset_id,
        events.mailing_id,
        events.url,
        events.event_type in (
            'email_open', 'email_click', 'download', 'form_submit', 'web_visit', 'fair_visit',
            'purchase'
        ) as is_activity,
        -- what a URL pattern starting with '/' matches: the URL after scheme://host
        coalesce(
            nullif(regexp_replace(events.url, '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*', ''), ''),
            '/'
        ) as url_path
    from raw.events as events
    where
        not events.is_machine
        and events.contact_id is not null
        -- sent/delivered/bounced mails count for nothing unless a rule scores them
        and (
            events.event_type in (
                'email_open', 'email_click', 'download', 'form_submit', 'web_visit',
                'fair_visit', 'purchase'
            )
            or events.event_type in (select rule.event_type from ops.config_activity_rules as rule)
        )
) as event
left join ops.config_activity_rules as rule
    on rule.event_type = event.event_type
    and (rule.link_tag is null or event.link_tag = rule.link_tag)
    and (rule.asset_id is null or event.asset_id = rule.asset_id)
    and (rule.mailing_id is null or event.mailing_id = rule.mailing_id)
    -- url_like escapes with '\', LIKE's default escape character
    and (
        rule.url_like is null
        or (
            event.url is not null
            and (case when rule.url_is_path then event.url_path else event.url end)
            like rule.url_like
        )
    )
where rule.rule_id is not null or event.is_activity;
"""


def upgrade() -> None:
    op.execute(CONFIG)
    op.execute(ACTIVITY)


def downgrade() -> None:
    # CASCADE: the dbt views reading these (staging/intermediate/marts) go with them; the
    # next dbt build recreates what still applies.
    op.execute("drop view ops.activity_event_points cascade")
    op.execute("drop index if exists raw.events_seq_idx")
    op.execute("drop trigger events_truncate_drops_activity_state on raw.events")
    op.execute("drop trigger events_log_deletes_for_activity on raw.events")
    op.execute("drop trigger events_log_updates_for_activity on raw.events")
    op.execute(
        "drop function ops.drop_activity_state(), ops.log_event_deletes(), ops.log_event_updates()"
    )
    op.execute(
        "drop table ops.activity_changes, ops.activity_pending, ops.activity_totals, "
        "ops.activity_state, ops.config_activity_rules, ops.config_profile_rules, "
        "ops.config_persona_criteria, ops.config_personas, ops.config_tenants, "
        "ops.config_scoring, ops.config_snapshot cascade"
    )
