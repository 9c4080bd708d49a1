"""messaging: dispatch state on the outbox, suppressions, bounces, tracked links, translations

Delivery (SPEC §2.7, §2.8; leadflow.messaging):
- `ops.outbox` gains the dispatcher's columns. A row goes `pending` → `claimed` (a batch,
  with a lease) → `sending` (committed right before the SMTP transaction of that one mail)
  → `sent` | `failed` (permanent, 5xx) | back to `pending` with `next_attempt_at` (4xx). A
  `claimed` row whose lease ran out was never handed to SMTP and is claimed again; a
  `sending` row whose lease ran out may or may not have left: it becomes `ambiguous` and is
  never sent again without an operator. `suppressed` = not eligible at send time (consent,
  suppression list, frequency cap: `status_reason`), `held` = no translation and the
  fallback says hold.
- `ops.suppressions`: addresses that must not be mailed, by normalised address (trimmed,
  lower case), scope (`all` or a tenant code) and reason. A re-subscribe deletes only
  `unsubscribe` rows: hard bounces, complaints and erasures stay.
- `ops.bounce_messages`: every message read from the bounce mailbox, once (by its sha256),
  with what it was classified as; `ops.bounces`: one row per bouncing or complaining
  recipient in it.
- `ops.links`: every tracked link of a sent mail — the click redirect goes only to `url`.
- `ops.translation_memory`: DeepL results by source hash, target language, formality and
  glossary version, reused until the source text changes.

Revision ID: 0006_messaging
Revises: 0005_campaigns
"""

from alembic import op

revision = "0006_messaging"
down_revision = "0005_campaigns"
branch_labels = None
depends_on = None

OUTBOX_DISPATCH = """
alter table ops.outbox drop constraint outbox_status_check;
alter table ops.outbox add constraint outbox_status_check check (status in (
    'pending', 'claimed', 'sending', 'sent', 'failed', 'cancelled', 'suppressed',
    'ambiguous', 'held'));
alter table ops.outbox
    add column language        text,
    add column claimed_by      text,
    add column claimed_at      timestamptz,
    add column lease_until     timestamptz,
    add column attempts        integer not null default 0,
    add column next_attempt_at timestamptz,
    add column message_id      text unique,
    add column sent_at         timestamptz,
    add column smtp_response   text,
    add column last_error      text;
create index outbox_leased_idx on ops.outbox (lease_until) where status in ('claimed', 'sending');
"""

SUPPRESSIONS = """
create table ops.suppressions (
    email_normalized text not null check (email_normalized = lower(btrim(email_normalized))),
    scope            text not null default 'all',
    reason           text not null check (reason in
        ('unsubscribe', 'hard_bounce', 'soft_bounces', 'complaint', 'erased', 'manual')),
    source           text not null,
    detail           jsonb not null default '{}',
    created_at       timestamptz not null default now(),
    primary key (email_normalized, scope, reason)
);

create table ops.bounce_messages (
    message_sha256  text primary key,
    source          text not null,
    classified_as   text not null check (classified_as in
        ('hard_bounce', 'soft_bounce', 'complaint', 'auto_reply', 'not_a_bounce')),
    recipients      integer not null default 0,
    detail          jsonb not null default '{}',
    ingested_at     timestamptz not null default now()
);

create table ops.bounces (
    bounce_id        bigserial primary key,
    message_sha256   text not null references ops.bounce_messages,
    email_normalized text not null,
    kind             text not null check (kind in ('hard', 'soft', 'complaint')),
    status_code      text,
    diagnostic       text,
    message_id       text,
    received_at      timestamptz not null,
    unique (message_sha256, email_normalized)
);
create index bounces_email_idx on ops.bounces (email_normalized, received_at);
"""

LINKS_AND_TRANSLATIONS = """
create table ops.links (
    link_id         text primary key,
    outbox_id       bigint,
    campaign_id     text,
    step_id         text,
    contact_id      text,
    url             text not null,
    tag             text,
    created_at      timestamptz not null default now()
);
create index links_outbox_idx on ops.links (outbox_id);

create table ops.translation_memory (
    source_sha256    text not null,
    source_language  text not null,
    target_language  text not null,
    formality        text not null,
    glossary_version text not null,
    source_text      text not null,
    translated_text  text not null,
    provider         text not null,
    created_at       timestamptz not null default now(),
    primary key (source_sha256, source_language, target_language, formality, glossary_version)
);
"""


def upgrade() -> None:
    op.execute(OUTBOX_DISPATCH)
    op.execute(SUPPRESSIONS)
    op.execute(LINKS_AND_TRANSLATIONS)


def downgrade() -> None:
    op.execute(
        "drop table ops.translation_memory, ops.links, ops.bounces, ops.bounce_messages, "
        "ops.suppressions"
    )
    op.execute(
        "drop index ops.outbox_leased_idx;"
        "alter table ops.outbox drop column language, drop column claimed_by, "
        "drop column claimed_at, drop column lease_until, drop column attempts, "
        "drop column next_attempt_at, drop column message_id, drop column sent_at, "
        "drop column smtp_response, drop column last_error;"
        "alter table ops.outbox drop constraint outbox_status_check;"
        "alter table ops.outbox add constraint outbox_status_check check (status in "
        "('pending', 'claimed', 'sent', 'failed', 'cancelled', 'suppressed'))"
    )
