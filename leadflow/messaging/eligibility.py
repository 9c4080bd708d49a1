"""May this outbox row be mailed now? Consent, the suppression list and the frequency cap.

The dispatcher asks this for the rows it has just locked, in the claiming transaction, so what
it decides holds when the rows are claimed (SPEC §2.1, §2.6, §2.8):

- **Recipient**: a campaign mail goes to the contact's current address in `raw.contacts`
  (an address changed since the journey queued the mail is the one used); an owner
  notification goes to the sales rep in `recipient_email`. A campaign mail whose contact is
  gone (erased) or has no address is suppressed (`no_contact`, `no_email`).
- **Consent** (marketing mail only; `category = 'service'` needs none): consent_status
  `confirmed`, or — when the tenant's `consent.existing_customer_exemption` is true — a
  customer (`customer_status` new_customer / existing_customer in the contacts mart) who has
  not objected (consent_status none or pending; objected and unsubscribed are objections).
  Otherwise suppressed with `consent_<status>` (consent_none, consent_pending,
  consent_objected). The consent status is read from `raw.contacts`, where
  an unsubscribe or objection lands at once, the customer status from the mart. The tenant
  is the row's (or the contact's, for a row without one).
- **Suppression list** (every mail, also service and owner notifications):
  `ops.suppressions` rows for the recipient's normalised address (trimmed, lower case) with
  scope `all` or the row's tenant, any reason → suppressed `suppression_<reason>` (the first
  reason in alphabetical order when there are several).
- **Frequency cap** (marketing campaign mails only): at most `max_mails` in any `per_days`
  days. Counted are the contact's marketing campaign mails that left or may have left —
  status claimed, sending, sent, ambiguous — at their send time (sent_at, else claimed_at)
  in (now − per_days, now], plus the rows claimed earlier in the same batch. If one more now
  would exceed the cap, the row is not suppressed but re-deferred: status stays pending and
  `scheduled_at` moves to `earliest_allowed(...)` (leadflow.campaigns.timing, the planner's
  own rule, also counting the contact's other pending mails by scheduled_at) within the
  tenant's send window; `deferred_reason` becomes `frequency_cap`. The planner already keeps
  the cap by scheduled_at; this catches mails that bunched up later (retries, a dispatcher
  that was down).

Two dispatchers claiming different rows of one contact at once could both see room for one
more mail; so the claim takes a transaction-level advisory lock per contact with a
marketing row (in hash order, so two claims never wait for each other in a cycle) before it
counts.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadflow.campaigns.timing import earliest_allowed, next_window_start
from leadflow.config.loader import Config
from leadflow.config.models import Tenant
from leadflow.segments.relations import _split

CUSTOMER_STATUSES = ("new_customer", "existing_customer")
# Consent statuses of a contact who has not objected (unsubscribing is objecting).
NOT_OBJECTED = ("none", "pending")
# Outbox statuses of a mail that left or may have left: the frequency cap counts them.
LEFT_STATUSES = ("claimed", "sending", "sent", "ambiguous")
# Raw contact fields that win over the mart's copy: they change between nightly builds.
RAW_FIELDS = ("email", "consent_status", "salutation", "first_name", "last_name", "language")
CAP_LOCK_NAMESPACE = "leadflow.dispatch.frequency_cap"
FREQUENCY_CAP = "frequency_cap"


@dataclass(frozen=True)
class ContactRelations:
    """Where contacts are read: raw contact records and the contacts mart (`schema.table`)."""

    raw_contacts: str = "raw.contacts"
    dim_contacts: str = "marts.dim_contacts"

    def __post_init__(self) -> None:
        _split(self.raw_contacts, "raw_contacts")
        _split(self.dim_contacts, "dim_contacts")

    def table(self, name: str, *columns: str) -> sa.TableClause:
        schema, table = _split(getattr(self, name), name)
        return sa.table(table, *(sa.column(column) for column in columns), schema=schema)


DEFAULT_CONTACT_RELATIONS = ContactRelations()


@dataclass(frozen=True)
class Verdict:
    """What eligibility decided for one row."""

    outbox_id: int
    action: str  # 'claim' | 'suppress' | 'defer'
    recipient: str | None = None
    reason: str | None = None
    scheduled_at: dt.datetime | None = None


@dataclass
class Judgement:
    """Verdicts of a batch, in the batch's order, and the contacts they were based on."""

    verdicts: list[Verdict] = field(default_factory=list)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)


def judge_batch(
    connection: Connection,
    config: Config,
    rows: Sequence[Mapping[str, Any]],
    now: dt.datetime,
    relations: ContactRelations = DEFAULT_CONTACT_RELATIONS,
) -> Judgement:
    """The verdict for each outbox row of a locked batch (ordered by scheduled_at, outbox_id)."""
    contacts = load_contacts(connection, {row["contact_id"] for row in rows}, relations)
    recipients = {
        row["outbox_id"]: recipient_of(row, contacts.get(row["contact_id"])) for row in rows
    }
    suppressions = load_suppressions(connection, [r for r in recipients.values() if r])
    verdicts: list[Verdict] = []
    for row in rows:
        contact = contacts.get(row["contact_id"])
        tenant = tenant_of(config, row, contact)
        reason = refusal(row, contact, recipients[row["outbox_id"]], tenant, suppressions)
        if reason is not None:
            verdicts.append(Verdict(row["outbox_id"], "suppress", reason=reason))
        else:
            verdicts.append(
                Verdict(row["outbox_id"], "claim", recipient=recipients[row["outbox_id"]])
            )
    verdicts = apply_frequency_cap(connection, config, rows, verdicts, contacts, now)
    return Judgement(verdicts=verdicts, contacts=contacts)


# --- who and what ------------------------------------------------------------------------


def load_contacts(
    connection: Connection, contact_ids: Iterable[str], relations: ContactRelations
) -> dict[str, dict[str, Any]]:
    """contact_id → the mart's row overlaid with the raw contact fields (RAW_FIELDS).

    Contacts missing from raw.contacts (erased) are left out; a contact not yet in the mart
    (imported since the last nightly build) has only the raw fields.
    """
    ids = sorted(contact_ids)
    if not ids:
        return {}
    raw = relations.table("raw_contacts", "contact_id", *RAW_FIELDS)
    wanted = sa.literal(ids, sa.ARRAY(sa.Text))
    dim = relations.table("dim_contacts", "contact_id")
    marts = {
        row["contact_id"]: row
        for row in connection.execute(
            sa.select(sa.literal_column("*"))
            .select_from(dim)
            .where(dim.c.contact_id == sa.any_(wanted))
        ).mappings()
    }
    # The raw rows decide who exists; two queries, not a join: the mart may have columns
    # of the same names (its copies of RAW_FIELDS), and the raw values must win.
    contacts: dict[str, dict[str, Any]] = {}
    for row in connection.execute(
        sa.select(*raw.c).where(raw.c.contact_id == sa.any_(wanted))
    ).mappings():
        contact = dict(marts.get(row["contact_id"], {}))
        contact.update(row)
        contacts[row["contact_id"]] = contact
    return contacts


def recipient_of(row: Mapping[str, Any], contact: Mapping[str, Any] | None) -> str | None:
    """The address the row's mail goes to (see the module docstring)."""
    if row["kind"] == "owner_notification":
        address = row.get("recipient_email")
    else:
        address = contact.get("email") if contact else None
    address = (address or "").strip()
    return address or None


def tenant_of(
    config: Config, row: Mapping[str, Any], contact: Mapping[str, Any] | None
) -> Tenant | None:
    code = row.get("tenant_code") or (contact or {}).get("tenant_code")
    if code is None:
        return config.global_tenant
    try:
        return config.tenant(code)
    except KeyError:
        return None


def normalized(address: str) -> str:
    """An address as ops.suppressions keys it: trimmed, lower case."""
    return address.strip().lower()


def load_suppressions(
    connection: Connection, addresses: Iterable[str]
) -> dict[str, list[tuple[str, str]]]:
    """normalised address → [(scope, reason), ...] of its suppression rows."""
    keys = sorted({normalized(address) for address in addresses})
    if not keys:
        return {}
    rows = connection.execute(
        sa.text(
            "select email_normalized, scope, reason from ops.suppressions "
            "where email_normalized = any(:keys) order by email_normalized, reason, scope"
        ),
        {"keys": keys},
    )
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for address, scope, reason in rows:
        found[address].append((scope, reason))
    return found


def refusal(
    row: Mapping[str, Any],
    contact: Mapping[str, Any] | None,
    recipient: str | None,
    tenant: Tenant | None,
    suppressions: Mapping[str, list[tuple[str, str]]],
) -> str | None:
    """Why the row may not be mailed (its status_reason), or None when it may."""
    if row["kind"] == "campaign_mail" and contact is None:
        return "no_contact"
    if recipient is None:
        return "no_email"
    tenant_code = tenant.code if tenant is not None else row.get("tenant_code")
    for scope, reason in suppressions.get(normalized(recipient), ()):
        if scope in ("all", tenant_code):
            return f"suppression_{reason}"
    if row["category"] == "marketing" and not marketing_consent(contact, tenant):
        return f"consent_{(contact or {}).get('consent_status') or 'none'}"
    return None


def marketing_consent(contact: Mapping[str, Any] | None, tenant: Tenant | None) -> bool:
    """SPEC §2.1: a confirmed opt-in, or the tenant's existing-customer exemption for a
    customer who has not objected."""
    if contact is None:
        return False
    status = contact.get("consent_status") or "none"
    if status == "confirmed":
        return True
    exempt = tenant is not None and tenant.consent.existing_customer_exemption
    return exempt and status in NOT_OBJECTED and contact.get("customer_status") in CUSTOMER_STATUSES


# --- the frequency cap -------------------------------------------------------------------


def is_capped(row: Mapping[str, Any]) -> bool:
    return row["kind"] == "campaign_mail" and row["category"] == "marketing"


def apply_frequency_cap(
    connection: Connection,
    config: Config,
    rows: Sequence[Mapping[str, Any]],
    verdicts: list[Verdict],
    contacts: Mapping[str, Mapping[str, Any]],
    now: dt.datetime,
) -> list[Verdict]:
    """The verdicts with each capped claim turned into a deferral (module docstring)."""
    by_id = {row["outbox_id"]: row for row in rows}
    capped = [v for v in verdicts if v.action == "claim" and is_capped(by_id[v.outbox_id])]
    if not capped:
        return verdicts
    contact_ids = sorted({by_id[v.outbox_id]["contact_id"] for v in capped})
    lock_contacts(connection, contact_ids)
    cap = config.company.defaults.frequency_cap
    width = dt.timedelta(days=cap.per_days)
    left, planned = cap_history(
        connection, contact_ids, now - width, [r["outbox_id"] for r in rows]
    )
    result = []
    for verdict in verdicts:
        row = by_id[verdict.outbox_id]
        if verdict.action != "claim" or not is_capped(row):
            result.append(verdict)
            continue
        sent = left[row["contact_id"]]
        if sum(1 for moment in sent if moment > now - width) < cap.max_mails:
            sent.append(now)
            result.append(verdict)
            continue
        tenant = tenant_of(config, row, contacts.get(row["contact_id"]))
        moment = earliest_allowed(
            now,
            [*sent, *planned[row["contact_id"]]],
            cap.max_mails,
            cap.per_days,
            _window_of(tenant),
        )
        result.append(
            Verdict(verdict.outbox_id, "defer", reason=FREQUENCY_CAP, scheduled_at=moment)
        )
    return result


def lock_contacts(connection: Connection, contact_ids: Sequence[str]) -> None:
    """Transaction-level advisory locks on these contacts' caps, taken in key order."""
    connection.execute(
        sa.text(
            "select count(pg_advisory_xact_lock(hashtext(:namespace), key)) from ("
            " select distinct hashtext(contact_id) as key from unnest(cast(:ids as text[]))"
            " as contact_id order by key) as keys"
        ),
        {"namespace": CAP_LOCK_NAMESPACE, "ids": list(contact_ids)},
    )


def cap_history(
    connection: Connection, contact_ids: Sequence[str], since: dt.datetime, batch: Sequence[int]
) -> tuple[dict[str, list[dt.datetime]], dict[str, list[dt.datetime]]]:
    """Per contact: send times of marketing campaign mails that left (or may have) after
    `since`, and scheduled times of their other pending ones (the batch's rows excluded)."""
    rows = connection.execute(
        sa.text(
            "select contact_id, status, coalesce(sent_at, claimed_at, scheduled_at) as moment "
            "from ops.outbox "
            "where kind = 'campaign_mail' and category = 'marketing' "
            "and contact_id = any(:ids) and outbox_id <> all(:batch) "
            "and (status = any(:left) and coalesce(sent_at, claimed_at, scheduled_at) > :since"
            "     or status = 'pending' and scheduled_at > :since)"
        ),
        {
            "ids": list(contact_ids),
            "batch": list(batch),
            "left": list(LEFT_STATUSES),
            "since": since,
        },
    )
    left: dict[str, list[dt.datetime]] = defaultdict(list)
    planned: dict[str, list[dt.datetime]] = defaultdict(list)
    for contact_id, status, moment in rows:
        (planned if status == "pending" else left)[contact_id].append(moment)
    return left, planned


def _window_of(tenant: Tenant | None):
    if tenant is None:
        return lambda moment: moment
    return lambda moment: next_window_start(moment, tenant.send_window, tenant.time_zone)


__all__ = [
    "DEFAULT_CONTACT_RELATIONS",
    "ContactRelations",
    "Judgement",
    "Verdict",
    "judge_batch",
    "load_contacts",
    "marketing_consent",
    "normalized",
    "recipient_of",
    "refusal",
]
