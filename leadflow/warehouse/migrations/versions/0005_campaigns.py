"""campaigns: enrolments, step history, the outbox, contact changes, campaign runs

Campaign journeys (SPEC §2.6, leadflow.campaigns):
- `ops.campaign_enrolments`: one row per journey of a contact through a campaign. The trigger
  occurrence that started it (`trigger_key`, e.g. `event:<event id>`, `segment:<as_of>`) is
  part of a unique key, so enrolling again for the same occurrence does nothing; a partial
  unique index allows at most one *active* journey per campaign and contact. `step_id` is the
  current step (NULL once the journey ended), `step_seq` the number of steps taken so far
  (it grows on every move, also around a loop), `due_at` when the current step may run.
- `ops.campaign_step_history`: one row per step a journey took, keyed by (enrolment,
  step_seq): a step position is done at most once, whatever runs again.
- `ops.outbox`: the mails the journeys produced, for the dispatcher (SPEC §2.8): campaign
  mails and mails to the contact's sales rep. Keyed by (enrolment, step_seq) like the
  history; `scheduled_at` is the earliest allowed send time (send window, frequency cap) and
  `deferred_reason` says why it is later than requested. Pending rows of an ended journey
  are cancelled, not deleted. The frequency cap counts the marketing campaign mails of a
  contact by `scheduled_at` (second index).
- `ops.contact_changes`: what `update` steps changed on a contact (the change itself is
  written to raw.contacts).
- `ops.campaign_runs`: one row per `leadflow campaign run` (also dry runs: they record what
  would have happened, in a transaction that is rolled back except for this row).

CRM tasks of `crm_task` steps go to the existing `ops.crm_outbox` (entity 'task').

Revision ID: 0005_campaigns
Revises: 0004_segments_and_routing
"""

from alembic import op

revision = "0005_campaigns"
down_revision = "0004_segments_and_routing"
branch_labels = None
depends_on = None

JOURNEYS = """
create table ops.campaign_enrolments (
    enrolment_id    bigserial primary key,
    campaign_id     text not null,
    contact_id      text not null,
    tenant_code     text,
    -- the trigger occurrence that enrolled the contact: enrolling again for it is a no-op
    trigger_key     text not null,
    enrolled_at     timestamptz not null,
    status          text not null default 'active'
        check (status in ('active', 'completed', 'exited', 'converted')),
    step_id         text,
    step_seq        integer not null default 0 check (step_seq >= 0),
    arrived_at      timestamptz,
    due_at          timestamptz,
    ended_at        timestamptz,
    end_reason      text,
    converted_step  text,
    updated_at      timestamptz not null default now(),
    unique (campaign_id, contact_id, trigger_key),
    check ((status = 'active') = (step_id is not null)),
    check ((status = 'active') = (ended_at is null))
);
create unique index campaign_enrolments_active_key on ops.campaign_enrolments
    (campaign_id, contact_id) where status = 'active';
create index campaign_enrolments_due_idx on ops.campaign_enrolments
    (campaign_id, step_id, due_at) where status = 'active';

-- No foreign key to the enrolments on the history and the outbox: a step inserts a row per
-- journey, and the per-row key checks cost as much as the insert itself (measured with
-- bench/campaigns.py); only the engine writes them, for the journeys it has just moved.
create table ops.campaign_step_history (
    enrolment_id    bigint not null,
    step_seq        integer not null,
    step_id         text not null,
    kind            text not null,
    entered_at      timestamptz not null,
    completed_at    timestamptz not null,
    -- next / then / else / exit / end / converted / exited / skipped_no_owner ...
    outcome         text not null,
    detail          jsonb not null default '{}',
    primary key (enrolment_id, step_seq)
);
"""

OUTBOX = """
create table ops.outbox (
    outbox_id       bigserial primary key,
    kind            text not null check (kind in ('campaign_mail', 'owner_notification')),
    campaign_id     text not null,
    step_id         text not null,
    enrolment_id    bigint not null,
    step_seq        integer not null,
    contact_id      text not null,
    tenant_code     text,
    message         text not null,
    content         text[] not null default '{}',
    category        text not null check (category in ('marketing', 'service')),
    -- owner notifications: the sales rep; campaign mails: resolved at send time
    recipient_email text,
    requested_at    timestamptz not null,
    -- earliest allowed send time (tenant send window, frequency cap)
    scheduled_at    timestamptz not null,
    deferred_reason text,
    status          text not null default 'pending' check (status in
        ('pending', 'claimed', 'sent', 'failed', 'cancelled', 'suppressed')),
    status_reason   text,
    created_at      timestamptz not null default now(),
    unique (enrolment_id, step_seq)
);
create index outbox_pending_idx on ops.outbox (status, scheduled_at) where status = 'pending';
create index outbox_cap_idx on ops.outbox (contact_id, scheduled_at)
    where kind = 'campaign_mail' and category = 'marketing';
"""

CHANGES_AND_RUNS = """
create table ops.contact_changes (
    change_id       bigserial primary key,
    contact_id      text not null,
    campaign_id     text not null,
    step_id         text not null,
    enrolment_id    bigint not null references ops.campaign_enrolments on delete cascade,
    step_seq        integer not null,
    change          jsonb not null,
    changed_at      timestamptz not null,
    unique (enrolment_id, step_seq)
);
create index contact_changes_contact_idx on ops.contact_changes (contact_id, changed_at);

create table ops.campaign_runs (
    run_id          bigserial primary key,
    campaign_id     text not null,
    now             timestamptz not null,
    as_of           date not null,
    dry_run         boolean not null default false,
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    enrolled        integer not null default 0,
    advanced        integer not null default 0,
    detail          jsonb not null default '{}'
);
create index campaign_runs_campaign_idx on ops.campaign_runs (campaign_id, started_at);
"""


def upgrade() -> None:
    op.execute(JOURNEYS)
    op.execute(OUTBOX)
    op.execute(CHANGES_AND_RUNS)


def downgrade() -> None:
    # CRM tasks already queued in ops.crm_outbox stay: they belong to the CRM sync.
    op.execute(
        "drop table ops.campaign_runs, ops.contact_changes, ops.outbox, "
        "ops.campaign_step_history, ops.campaign_enrolments cascade"
    )
