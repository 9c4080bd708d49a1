"""What capture writes to the pool: contacts from forms, visitors tied to contacts, fair leads.

Contacts (SPEC §2.1). A form submission is matched to the pool by its address, trimmed and
compared case-insensitively (the pool's unique key). A new address becomes a contact with
source `web:<form>` and consent_status `pending`; the address is stored trimmed and in lower
case. For a known address the submission fills blank fields and replaces a filled one only
when the record was last changed before the submission ("fill blanks, never overwrite newer
data", the rule fair-lead merges follow too): a record the CRM sync touched after the form
was sent keeps its values. The company name has no column of its own in `raw.contacts` —
accounts come from the CRM and imports, keyed by account id — so it is kept in
`custom.company` for the CRM and sales to match. Consent moves only from `none` to
`pending`: a submission never downgrades a confirmed consent, and never re-opts-in somebody
who objected (only a confirmed double opt-in does that).

Visitors (SPEC §2.2). Web events of a visitor nobody knows yet carry only a visitor id. When
a form submission, a confirmed opt-in or a signed link ties that id to a contact, the tie is
stored in `ops.visitors`, later events of the visitor get the contact at once, and the
visitor's earlier anonymous events in `raw.events` are given the contact
(`attach_visitor_events`).

Fair leads (SPEC §2.12). The endpoint lands leads in `raw.fair_leads` with the column
parsers and the lead id of the fair-lead file import (leadflow.imports.fair_leads), so a lead
sent twice — or sent by the endpoint and exported in a file — is one row.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from leadflow.imports import fair_leads as fair_lead_import
from leadflow.imports import fields as f
from leadflow.imports.fields import FieldError

# Contact columns a form may fill, in raw.contacts; `company` goes to custom.company.
FORM_COLUMNS = ("salutation", "first_name", "last_name", "position", "country", "language")
CONTACTS = sa.table(
    "contacts",
    sa.column("contact_id", sa.Text),
    *(sa.column(column, sa.Text) for column in FORM_COLUMNS),
    sa.column("consent_status", sa.Text),
    sa.column("custom", postgresql.JSONB),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    schema="raw",
)


@dataclass(frozen=True)
class FormLead:
    """One person as a capture form gave them (values already validated)."""

    email: str
    salutation: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    position: str | None = None
    country: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class UpsertedContact:
    contact_id: str
    email: str
    created: bool
    changed_fields: tuple[str, ...]
    consent_status: str


def normalized_email(email: str) -> str:
    return email.strip().lower()


def new_contact_id() -> str:
    """A contact id for a contact first seen on the web (random, so it reveals nothing)."""
    return f"web-{uuid.uuid4().hex}"


def upsert_form_contact(
    connection: Connection, lead: FormLead, *, source: str, submitted_at: dt.datetime
) -> UpsertedContact:
    """The contact of this address, created or updated per the module docstring.

    Runs in the caller's transaction; the row stays locked until it commits, so two
    submissions for one address apply one after the other.
    """
    email = normalized_email(lead.email)
    existing = _lock_contact(connection, email)
    if existing is None:
        created = _insert_contact(connection, lead, email, source, submitted_at)
        if created is not None:
            return created
        # Another submission created it in the meantime: update that one instead.
        existing = _lock_contact(connection, email)
        assert existing is not None
    return _update_contact(connection, existing, lead, submitted_at)


def _lock_contact(connection: Connection, email: str) -> Mapping[str, Any] | None:
    return (
        connection.execute(
            sa.text(
                "select contact_id, email, salutation, first_name, last_name, position, "
                "country, language, custom ->> 'company' as company, consent_status, "
                "updated_at from raw.contacts where lower(btrim(email)) = :email for update"
            ),
            {"email": email},
        )
        .mappings()
        .first()
    )


def _insert_contact(
    connection: Connection, lead: FormLead, email: str, source: str, submitted_at: dt.datetime
) -> UpsertedContact | None:
    contact_id = new_contact_id()
    custom = {"company": lead.company} if lead.company else {}
    inserted = connection.execute(
        sa.text(
            "insert into raw.contacts (contact_id, email, salutation, first_name, last_name, "
            "position, country, language, source, consent_status, custom, created_at, "
            "updated_at) values (:contact_id, :email, :salutation, :first_name, :last_name, "
            ":position, :country, :language, :source, 'pending', :custom, :at, :at) "
            "on conflict (lower(btrim(email))) do nothing"
        ).bindparams(sa.bindparam("custom", type_=postgresql.JSONB)),
        {
            "contact_id": contact_id,
            "email": email,
            **{column: getattr(lead, column) for column in FORM_COLUMNS},
            "source": source,
            "custom": custom,
            "at": submitted_at,
        },
    )
    if inserted.rowcount == 0:
        return None
    changed = tuple(c for c in (*FORM_COLUMNS, "company") if getattr(lead, c) is not None)
    return UpsertedContact(contact_id, email, True, changed, "pending")


def _update_contact(
    connection: Connection, existing: Mapping[str, Any], lead: FormLead, submitted_at
) -> UpsertedContact:
    newer_than_record = existing["updated_at"] < submitted_at
    changes: dict[str, Any] = {}
    for column in (*FORM_COLUMNS, "company"):
        value = getattr(lead, column)
        current = existing[column]
        if value is None or value == current:
            continue
        if current is None or current == "" or newer_than_record:
            changes[column] = value
    consent_status = existing["consent_status"]
    if consent_status == "none":
        consent_status = "pending"
    if changes or consent_status != existing["consent_status"]:
        values: dict[str, Any] = {
            column: value for column, value in changes.items() if column != "company"
        }
        if "company" in changes:
            values["custom"] = CONTACTS.c.custom.op("||")(
                sa.func.jsonb_build_object("company", sa.cast(changes["company"], sa.Text))
            )
        connection.execute(
            sa.update(CONTACTS)
            .where(CONTACTS.c.contact_id == existing["contact_id"])
            .values(
                **values,
                consent_status=consent_status,
                updated_at=sa.func.greatest(CONTACTS.c.updated_at, submitted_at),
            )
        )
    return UpsertedContact(
        existing["contact_id"],
        existing["email"],
        False,
        tuple(sorted(changes)),
        consent_status,
    )


# --- visitors ----------------------------------------------------------------------------


def link_visitor(connection: Connection, visitor_id: str, contact_id: str, linked_by: str) -> None:
    """Store that `visitor_id` is `contact_id` (the latest tie wins for future events)."""
    connection.execute(
        sa.text(
            "insert into ops.visitors (visitor_id, contact_id, linked_by) "
            "values (:visitor_id, :contact_id, :linked_by) "
            "on conflict (visitor_id) do update set contact_id = excluded.contact_id, "
            "linked_at = now(), linked_by = excluded.linked_by "
            "where ops.visitors.contact_id <> excluded.contact_id"
        ),
        {"visitor_id": visitor_id, "contact_id": contact_id, "linked_by": linked_by},
    )


def contact_of_visitor(connection: Connection, visitor_id: str) -> str | None:
    return connection.execute(
        sa.text("select contact_id from ops.visitors where visitor_id = :visitor_id"),
        {"visitor_id": visitor_id},
    ).scalar()


def attach_visitor_events(connection: Connection, visitor_id: str, contact_id: str) -> int:
    """Give the visitor's anonymous events to the contact; the number of events attached."""
    result = connection.execute(
        sa.text(
            "update raw.events set contact_id = :contact_id "
            "where visitor_id = :visitor_id and contact_id is null"
        ),
        {"visitor_id": visitor_id, "contact_id": contact_id},
    )
    return result.rowcount


# --- fair leads --------------------------------------------------------------------------

FAIR_LEAD_COLUMNS = {column.name: column for column in fair_lead_import.COLUMNS}
_FAIR_LEAD_TABLE = sa.table(
    "fair_leads",
    *(
        sa.column(name, postgresql.ARRAY(sa.Text) if name == "interests" else None)
        for name in ("fair_lead_id", *FAIR_LEAD_COLUMNS)
    ),
    schema="raw",
)


def parse_fair_lead(index: int, lead: Mapping[str, Any]) -> tuple[dict[str, Any], list]:
    """One lead's row for raw.fair_leads, or the problems with it (as the file import sees
    them: the same parsers, required columns and defaults)."""
    problems: list[tuple[int, str, str]] = []
    row: dict[str, Any] = {}
    for name in sorted(set(lead) - set(FAIR_LEAD_COLUMNS)):
        problems.append((index, name, "unknown field; known: " + ", ".join(FAIR_LEAD_COLUMNS)))
    for name, column in FAIR_LEAD_COLUMNS.items():
        try:
            row[name] = _parse_value(column, lead.get(name))
        except FieldError as error:
            problems.append((index, name, str(error)))
    if problems:
        return {}, problems
    row["fair_lead_id"] = fair_lead_import.fair_lead_id(
        row["fair"], row["email"], row["captured_at"]
    )
    return row, []


def _parse_value(column: f.Column, value: Any) -> Any:
    if isinstance(value, list):
        if column.parse is not f.array:
            raise FieldError("expected a single value, not a list")
        if not all(isinstance(item, str) for item in value):
            raise FieldError("expected a list of strings")
        value = ";".join(value)
    elif isinstance(value, dict | bool):
        raise FieldError(f"expected a string, not {type(value).__name__}")
    text = "" if value is None else str(value).strip()
    if "\x00" in text:
        raise FieldError("contains the control character NUL (U+0000)")
    if column.parse is f.array:
        # The file import writes a COPY literal; here the driver binds a real list.
        return f.items(text)
    if not text:
        if column.required:
            raise FieldError("a value is required")
        return column.default
    return column.parse(text)


@dataclass(frozen=True)
class FairLeadLanding:
    fair_lead_ids: tuple[str, ...]
    inserted: int
    updated: int
    unchanged: int


def land_fair_leads(connection: Connection, rows: Sequence[dict[str, Any]]) -> FairLeadLanding:
    """Insert new leads, update changed ones (by fair_lead_id); a resent lead changes nothing."""
    unique = {row["fair_lead_id"]: row for row in rows}
    columns = list(FAIR_LEAD_COLUMNS)
    inserted = updated = 0
    for row in unique.values():
        statement = postgresql.insert(_FAIR_LEAD_TABLE).values(
            fair_lead_id=row["fair_lead_id"], **{c: row[c] for c in columns}
        )
        changed = sa.tuple_(*(_FAIR_LEAD_TABLE.c[c] for c in columns)).is_distinct_from(
            sa.tuple_(*(statement.excluded[c] for c in columns))
        )
        statement = statement.on_conflict_do_update(
            index_elements=["fair_lead_id"],
            set_={c: statement.excluded[c] for c in columns},
            where=changed,
        ).returning(sa.literal_column("(xmax = 0)").label("inserted"))
        result = connection.execute(statement).first()
        if result is not None:
            inserted += int(result.inserted)
            updated += int(not result.inserted)
    total = len(unique)
    return FairLeadLanding(tuple(unique), inserted, updated, total - inserted - updated)
