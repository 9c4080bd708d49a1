"""segments and routing: segment membership per run, lead assignments, notifications, CRM outbox

Segments (SPEC §2.5, leadflow.segments.materialize): every nightly run writes each configured
segment's members for its `as_of` into `ops.segment_members` (replacing that date's rows in
one transaction) and one row per segment into `ops.segment_materializations` (so a segment
with no members still has a count); dbt's `marts.segment_members` selects the run's date.

Lead routing (SPEC §2.4, leadflow.routing):
- `ops.routing_batches`: one row per routing run that assigned at least one lead.
- `ops.lead_assignments`: who got which MQL, by which rule, in which batch. `contact_id` is
  the primary key: a contact is routed once, whatever runs concurrently or again.
- `ops.routing_cursors`: per team the member who got the last lead, so the round-robin
  continues across batches.
- `ops.routing_notifications`: one mail per owner and batch; `sent_at` NULL = still to send,
  so a crash between routing and mailing resends without routing again.
- `ops.crm_outbox`: changes waiting to be pushed to the CRM (drained by the CRM sync).

Revision ID: 0004_segments_and_routing
Revises: 0003_scoring
"""

from alembic import op

revision = "0004_segments_and_routing"
down_revision = "0003_scoring"
branch_labels = None
depends_on = None

SEGMENTS = """
create table ops.segment_members (
    as_of           date not null,
    segment         text not null,
    contact_id      text not null,
    primary key (as_of, segment, contact_id)
);

create table ops.segment_materializations (
    as_of           date not null,
    segment         text not null,
    members         integer not null check (members >= 0),
    -- sha256 of the compiled SQL with its parameters: tells a changed definition apart
    sql_sha256      text not null,
    materialized_at timestamptz not null default now(),
    primary key (as_of, segment)
);
"""

ROUTING = """
create table ops.routing_batches (
    batch_id        bigserial primary key,
    as_of           date not null,
    routed_at       timestamptz not null default now(),
    routed          integer not null check (routed > 0),
    -- MQLs no rule matched in this run (not routed; reported)
    unmatched       integer not null default 0,
    config_hash     text
);

create table ops.lead_assignments (
    contact_id      text primary key,
    team_id         text not null,
    owner_name      text not null,
    owner_email     text not null,
    rule_id         text not null,
    routed_at       timestamptz not null,
    batch_id        bigint not null references ops.routing_batches,
    as_of           date not null,
    -- position in the batch's round-robin order (contacts by contact_id)
    batch_position  integer not null,
    -- the lead as the owner's notification shows it (name, company, cell, scores, why)
    lead            jsonb not null,
    unique (batch_id, batch_position)
);
create index lead_assignments_batch_owner_idx on ops.lead_assignments (batch_id, owner_email);

create table ops.routing_cursors (
    team_id          text primary key,
    last_owner_email text not null,
    assigned         bigint not null default 0 check (assigned >= 0),
    updated_at       timestamptz not null default now()
);

create table ops.routing_notifications (
    batch_id        bigint not null references ops.routing_batches,
    owner_email     text not null,
    owner_name      text not null,
    leads           integer not null check (leads > 0),
    message_id      text not null unique,
    attempts        integer not null default 0,
    last_error      text,
    sent_at         timestamptz,
    primary key (batch_id, owner_email)
);
create index routing_notifications_pending_idx on ops.routing_notifications (batch_id)
    where sent_at is null;

create table ops.crm_outbox (
    outbox_id       bigserial primary key,
    entity          text not null,
    entity_id       text not null,
    payload         jsonb not null,
    created_at      timestamptz not null default now(),
    pushed_at       timestamptz
);
create index crm_outbox_pending_idx on ops.crm_outbox (outbox_id) where pushed_at is null;
"""


def upgrade() -> None:
    op.execute(SEGMENTS)
    op.execute(ROUTING)


def downgrade() -> None:
    # The dbt tables built from these (marts.segment_members, dim_contacts' owners) are
    # copies, not views: they stay until the next dbt build, which then fails loudly.
    op.execute(
        "drop table ops.crm_outbox, ops.routing_notifications, ops.routing_cursors, "
        "ops.lead_assignments, ops.routing_batches, ops.segment_materializations, "
        "ops.segment_members cascade"
    )
