"""The suppression list: addresses that must not be mailed (SPEC §2.1, §2.8; ops.suppressions).

One row per (normalised address, scope, reason). The address is normalised the way the pool
compares e-mail addresses (trimmed, lower case), so " Anna@Example.COM" and
"anna@example.com" are one address. `scope` is `all` or a tenant code: an address is
suppressed for a tenant's mail when it has a row in scope `all` or in that tenant's scope.

Reasons and who writes them:
- `unsubscribe` — the recipient asked (one-click unsubscribe, preference page). The only
  reason a re-subscribe removes.
- `hard_bounce` — a permanent delivery failure (bounces.py), at once.
- `soft_bounces` — too many temporary failures in a window (bounces.py).
- `complaint` — the recipient reported the mail as spam (ARF feedback report): suppresses
  like an unsubscribe, but a later re-subscribe does not clear it.
- `erased` — GDPR erasure; `manual` — an operator.

A re-subscribe deletes only `unsubscribe` rows of the given scope: a mailbox that does not
exist does not start to exist because someone ticked a box, and a complaint or an erasure
is not undone by a form.

Every function takes an open connection and leaves the transaction to the caller, so a
suppression is committed together with whatever caused it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from leadflow.errors import LeadflowError

ALL = "all"
REASONS = ("unsubscribe", "hard_bounce", "soft_bounces", "complaint", "erased", "manual")

SUPPRESSIONS = sa.table(
    "suppressions",
    sa.column("email_normalized", sa.Text()),
    sa.column("scope", sa.Text()),
    sa.column("reason", sa.Text()),
    sa.column("source", sa.Text()),
    sa.column("detail", postgresql.JSONB()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    schema="ops",
)


class SuppressionError(LeadflowError):
    """An address or reason the suppression list cannot take."""


def normalize_email(email: str) -> str:
    """The address as the pool compares it: trimmed and lower case."""
    return email.strip().lower()


def _checked_address(email: str) -> str:
    normalized = normalize_email(email)
    if not normalized:
        raise SuppressionError("an empty e-mail address cannot be suppressed")
    return normalized


def suppress(
    connection: Connection,
    email: str,
    reason: str,
    source: str,
    scope: str = ALL,
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Add the address to the list for `reason` in `scope`; True when the row is new.

    Suppressing again for the same reason and scope keeps the first row (its time and detail
    say when and why it started), so repeating the cause changes nothing.
    """
    if reason not in REASONS:
        raise SuppressionError(
            f"unknown suppression reason {reason!r}: use one of {', '.join(REASONS)}"
        )
    statement = (
        postgresql.insert(SUPPRESSIONS)
        .values(
            email_normalized=_checked_address(email),
            scope=scope,
            reason=reason,
            source=source,
            detail=dict(detail or {}),
        )
        .on_conflict_do_nothing()
        .returning(SUPPRESSIONS.c.reason)
    )
    return connection.execute(statement).first() is not None


def resubscribe(connection: Connection, email: str, scope: str = ALL) -> int:
    """Remove the address's `unsubscribe` row of `scope`; the number of rows removed (0 or 1).

    Hard bounces, soft-bounce suppressions, complaints, erasures and manual rows stay: after
    this the address may still be suppressed (see `reasons`).
    """
    statement = sa.delete(SUPPRESSIONS).where(
        SUPPRESSIONS.c.email_normalized == _checked_address(email),
        SUPPRESSIONS.c.scope == scope,
        SUPPRESSIONS.c.reason == "unsubscribe",
    )
    return connection.execute(statement).rowcount


def applies_to(
    email: ColumnElement[str] | str, tenant_code: ColumnElement[str] | str | None = None
) -> ColumnElement[bool]:
    """EXISTS a suppression row for the address that applies to mail of the tenant.

    `email` and `tenant_code` may be columns of an outer query (the dispatcher checks a whole
    batch in one statement) or plain values. A row applies when its scope is `all` or the
    tenant's code; without a tenant only `all` rows apply.
    """
    value = sa.literal(email) if isinstance(email, str) else email
    scope = SUPPRESSIONS.c.scope == ALL
    if tenant_code is not None:
        scope = sa.or_(scope, SUPPRESSIONS.c.scope == tenant_code)
    return (
        sa.select(sa.literal(1))
        .select_from(SUPPRESSIONS)
        .where(SUPPRESSIONS.c.email_normalized == sa.func.lower(sa.func.btrim(value)), scope)
        .exists()
    )


def is_suppressed(connection: Connection, email: str, tenant_code: str | None = None) -> bool:
    """Whether mail of the tenant (None: any tenant-independent mail) must not go to `email`."""
    return bool(connection.execute(sa.select(applies_to(email, tenant_code))).scalar())


def reasons(connection: Connection, email: str, tenant_code: str | None = None) -> list[str]:
    """The reasons that suppress the address for the tenant, sorted (empty: not suppressed)."""
    scopes = [ALL] if tenant_code is None else [ALL, tenant_code]
    statement = (
        sa.select(SUPPRESSIONS.c.reason)
        .where(
            SUPPRESSIONS.c.email_normalized == normalize_email(email),
            SUPPRESSIONS.c.scope.in_(scopes),
        )
        .distinct()
        .order_by(SUPPRESSIONS.c.reason)
    )
    return list(connection.execute(statement).scalars())


def forget_mail_state(engine: Engine) -> None:
    """Delete every suppression, bounce, tracked link, consent record, opt-in request and
    known visitor.

    Only for replacing the whole pool with a different one (the demo regenerates its
    company): these name the addresses and contacts of the old pool, and kept they would
    change what the new pool is sent (an unsubscribe of the last demo run would hold back a
    mail of this one).
    """
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "truncate ops.suppressions, ops.bounces, ops.bounce_messages, ops.links, "
                "ops.consents, ops.opt_in_requests, ops.visitors restart identity"
            )
        )
