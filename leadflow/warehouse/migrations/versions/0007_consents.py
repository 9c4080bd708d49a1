"""consents: double opt-in requests, the consent record, visitors tied to contacts

Capture (SPEC §2.1, §2.9; leadflow.tracking.capture):
- `ops.opt_in_requests`: one row per double-opt-in mail. Only the SHA-256 of the token is
  stored, so a copy of the table cannot confirm anybody; the token itself travels only in
  the mail. A request is confirmed once (`confirmed_at`), and only before `expires_at`.
- `ops.consents`: the consent record — who (contact, address), when, from which IP and
  user agent, which version of the consent text they agreed to, and where (`source`, e.g.
  `web:ebook`). Rows are only ever added: a later objection is a new fact elsewhere
  (consent_status, suppressions), not an edit of this proof.
- `ops.visitors`: a web visitor id that has become known as a contact (form submit,
  confirmed link, signed link), so later anonymous events of that visitor are attributed
  at once and earlier ones are re-attributed.

Revision ID: 0007_consents
Revises: 0006_messaging
"""

from alembic import op

revision = "0007_consents"
down_revision = "0006_messaging"
branch_labels = None
depends_on = None

CONSENTS = """
create table ops.opt_in_requests (
    request_id           bigserial primary key,
    token_sha256         text not null unique,
    contact_id           text not null,
    email                text not null,
    asset_id             text,
    consent_text_version text not null,
    source               text not null,
    visitor_id           text,
    requested_at         timestamptz not null default now(),
    requested_ip         inet,
    requested_user_agent text,
    expires_at           timestamptz not null,
    confirmed_at         timestamptz,
    check (expires_at > requested_at)
);
create index opt_in_requests_contact_idx on ops.opt_in_requests (contact_id);

create table ops.consents (
    consent_id           bigserial primary key,
    contact_id           text not null,
    email                text not null,
    consented_at         timestamptz not null,
    ip                   inet,
    user_agent           text,
    consent_text_version text not null,
    source               text not null,
    request_id           bigint unique references ops.opt_in_requests,
    recorded_at          timestamptz not null default now()
);
create index consents_contact_idx on ops.consents (contact_id, consented_at);

create table ops.visitors (
    visitor_id           text primary key,
    contact_id           text not null,
    linked_at            timestamptz not null default now(),
    linked_by            text not null
);
create index events_anonymous_visitor_idx on raw.events (visitor_id)
    where contact_id is null and visitor_id is not null;
"""


def upgrade() -> None:
    op.execute(CONSENTS)


def downgrade() -> None:
    op.execute("drop index raw.events_anonymous_visitor_idx")
    op.execute("drop table ops.visitors, ops.consents, ops.opt_in_requests")
