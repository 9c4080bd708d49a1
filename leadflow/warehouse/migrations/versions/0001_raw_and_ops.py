"""raw landing tables and the first ops tables (quarantine, imports, runs, quality results)

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RAW = """
create schema if not exists raw;

create table raw.accounts (
    account_id      text primary key,
    name            text not null,
    industry        text,
    employee_count  integer check (employee_count >= 0),
    annual_revenue  numeric(16, 2) check (annual_revenue >= 0),
    country         char(2),
    region          text,
    postcode        text,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);

create table raw.contacts (
    contact_id      text primary key,
    email           text not null,
    salutation      text,
    first_name      text,
    last_name       text,
    language        char(2),
    country         char(2),
    position        text,
    decision_role   text,
    account_id      text,
    owner           text,
    source          text,
    tags            text[] not null default '{}',
    interests       text[] not null default '{}',
    consent_status  text not null default 'none'
        check (consent_status in ('none', 'pending', 'confirmed', 'objected')),
    consent_at      timestamptz,
    lifecycle_stage text,
    custom          jsonb not null default '{}',
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);
-- One pool, one address: emails compare trimmed and case-insensitive (SPEC 2.1).
create unique index contacts_email_key on raw.contacts (lower(btrim(email)));

create table raw.products (
    product_id      text primary key,
    sku             text not null unique,
    name            text not null,
    family          text not null,
    list_price      numeric(14, 2) not null check (list_price >= 0),
    unit_cost       numeric(14, 2) not null check (unit_cost >= 0),
    maintenance_interval_months integer
);

create table raw.orders (
    order_id        text primary key,
    account_id      text,
    contact_id      text,
    ordered_at      timestamptz not null,
    status          text not null default 'won' check (status in ('won', 'cancelled')),
    net_amount      numeric(14, 2) not null,
    currency        char(3) not null default 'EUR',
    source          text
);
create index orders_contact_idx on raw.orders (contact_id, ordered_at);

create table raw.order_items (
    order_id        text not null,
    line_no         integer not null,
    product_id      text not null,
    quantity        integer not null check (quantity > 0),
    net_amount      numeric(14, 2) not null,
    primary key (order_id, line_no)
);

create table raw.installed_base (
    installation_id       text primary key,
    account_id            text not null,
    contact_id            text,
    product_id            text not null,
    serial_no             text,
    installed_on          date not null,
    next_maintenance_date date
);

create table raw.events (
    event_id        text primary key,
    -- Arrival order: incremental runs read the events past the last seen sequence number.
    event_seq       bigint generated always as identity,
    contact_id      text,
    visitor_id      text,
    event_type      text not null check (event_type in (
        'email_sent', 'email_delivered', 'email_bounced', 'email_open', 'email_click',
        'unsubscribe', 'download', 'form_submit', 'web_visit', 'purchase', 'fair_visit')),
    occurred_at     timestamptz not null,
    campaign_id     text,
    step_id         text,
    mailing_id      text,
    link_id         text,
    link_tag        text,
    asset_id        text,
    url             text,
    bounce_type     text check (bounce_type in ('hard', 'soft')),
    is_machine      boolean not null default false,
    user_agent      text,
    properties      jsonb,
    loaded_at       timestamptz not null default now()
);
create index events_seq_brin on raw.events using brin (event_seq);

create table raw.fair_leads (
    fair_lead_id    text primary key,
    fair            text not null,
    captured_at     timestamptz not null,
    captured_by     text,
    salutation      text,
    first_name      text,
    last_name       text,
    email           text not null,
    company         text,
    position        text,
    phone           text,
    country         char(2),
    notes           text,
    interests       text[] not null default '{}',
    consent_proof   text,
    landed_at       timestamptz not null default now()
);
"""

OPS = """
create schema if not exists ops;

create table ops.import_runs (
    import_id        bigserial primary key,
    source           text not null,
    file             text not null,
    file_sha256      text not null,
    started_at       timestamptz not null default now(),
    rows_read        integer not null default 0,
    rows_inserted    integer not null default 0,
    rows_updated     integer not null default 0,
    rows_unchanged   integer not null default 0,
    rows_quarantined integer not null default 0
);

create table ops.quarantine (
    quarantine_id   bigserial primary key,
    source          text not null,
    file            text not null,
    file_sha256     text not null,
    line            integer not null,
    row_data        jsonb not null,
    reason          text not null,
    quarantined_at  timestamptz not null default now(),
    -- Re-importing the same file quarantines the same rows once.
    unique (source, file_sha256, line)
);

create table ops.runs (
    run_id          bigserial primary key,
    kind            text not null,
    as_of           date not null,
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    status          text not null default 'running'
        check (status in ('running', 'success', 'failed')),
    detail          jsonb not null default '{}'
);

create table ops.quality_results (
    result_id       bigserial primary key,
    suite           text not null,
    table_name      text not null,
    expectation     text not null,
    severity        text not null check (severity in ('critical', 'warning')),
    success         boolean not null,
    observed        jsonb,
    checked_at      timestamptz not null default now()
);
"""


def upgrade() -> None:
    op.execute(RAW)
    op.execute(OPS)


def downgrade() -> None:
    op.execute("drop schema raw cascade")
    op.execute("drop table ops.quality_results, ops.runs, ops.quarantine, ops.import_runs cascade")
