"""Contacts (and their accounts) → raw.contacts and raw.accounts.

One row per contact; the account columns repeat the contact's company. With `account_name`
in the header the accounts are created or updated too; without it `account_id` only links
the contact. Beyond the per-row checks the whole file is judged for: a contact_id twice, an
email twice, an email that already belongs to another contact in the pool (one pool, one
address, compared trimmed and case-insensitive), and one account given with different values.
"""

from __future__ import annotations

from psycopg import Cursor, sql

from leadflow.config.fields import CONSENT_STATUSES
from leadflow.imports import fields as f
from leadflow.imports.fields import Column
from leadflow.imports.kind import Kind, Landing, Values
from leadflow.imports.sqlkit import (
    STAGING,
    Upsert,
    count,
    differing_columns_sql,
    reject,
    rows_differ_sql,
)
from leadflow.imports.summary import TableCounts

DECISION_ROLES = ("purchaser", "production_manager", "managing_director", "other")
LIFECYCLE_STAGES = ("lead", "mql", "sql", "opportunity", "customer")

CONTACT_COLUMNS = (
    Column("contact_id", f.identifier, required=True),
    Column("email", f.email, required=True),
    Column("salutation", f.text),
    Column("first_name", f.text),
    Column("last_name", f.text),
    Column("language", f.language, "char(2)"),
    Column("country", f.country, "char(2)"),
    Column("position", f.text),
    Column("decision_role", f.one_of(*DECISION_ROLES)),
    Column("owner", f.text),
    Column("source", f.text),
    Column("tags", f.array, "text[]", default=f.EMPTY_ARRAY),
    Column("interests", f.array, "text[]", default=f.EMPTY_ARRAY),
    Column("consent_status", f.one_of(*CONSENT_STATUSES), default="none"),
    Column("consent_at", f.timestamp, "timestamptz"),
    Column("lifecycle_stage", f.one_of(*LIFECYCLE_STAGES)),
    Column("created_at", f.timestamp, "timestamptz"),
    Column("updated_at", f.timestamp, "timestamptz"),
)
ACCOUNT_COLUMNS = (
    Column("account_id", f.identifier),
    Column("account_name", f.text),
    Column("industry", f.text),
    Column("employee_count", f.integer(minimum=0), "integer"),
    Column("annual_revenue", f.decimal(integer_digits=14), "numeric(16, 2)"),
    Column("account_country", f.country, "char(2)"),
    Column("region", f.text),
    Column("postcode", f.text),
)
# CSV column → raw.accounts column (account_id is the key).
ACCOUNT_FIELDS = {
    "account_name": "name",
    "industry": "industry",
    "employee_count": "employee_count",
    "annual_revenue": "annual_revenue",
    "account_country": "country",
    "region": "region",
    "postcode": "postcode",
}
# Columns copied into raw.contacts as they are (created_at/updated_at have their own rules).
CONTACT_FIELDS = (
    "email", "salutation", "first_name", "last_name", "language", "country", "position",
    "decision_role", "account_id", "owner", "source", "tags", "interests", "consent_status",
    "consent_at", "lifecycle_stage",
)  # fmt: skip


# --- header and row rules ---------------------------------------------------------------


def account_columns_need_a_name(present: frozenset[str]) -> list[str]:
    orphans = sorted(present & (set(ACCOUNT_FIELDS) - {"account_name"}))
    if orphans and "account_name" not in present:
        return [
            f"the account column(s) {', '.join(orphans)} need the account_name column "
            "(accounts are only created or updated with their name)"
        ]
    return []


def account_needs_id_and_name(
    values: Values, failed: set[str], present: frozenset[str]
) -> list[str]:
    if "account_id" in failed:
        return []
    if values["account_id"] is None:
        filled = [name for name in ACCOUNT_FIELDS if values[name] is not None]
        if filled:
            return [f"account_id: required when account columns are filled ({', '.join(filled)})"]
        return []
    if (
        "account_name" in present
        and "account_name" not in failed
        and values["account_name"] is None
    ):
        return ["account_name: required when account_id is given"]
    return []


# --- file-level checks ------------------------------------------------------------------


def check(cursor: Cursor, present: frozenset[str]) -> None:
    """File-level checks after the duplicate-key check every kind gets."""
    # The pool first: a row claiming an address that another contact owns must not push
    # that owner's own row out as a duplicate of it.
    reject_emails_of_other_contacts(cursor)
    reject_duplicate_emails(cursor)
    if "account_name" in present:
        reject_conflicting_accounts(cursor, present)


def reject_duplicate_emails(cursor: Cursor) -> int:
    return reject(
        cursor,
        sql.SQL(
            "select line, format('email %L is already used by contact_id %L on line %s', "
            "email, first_contact, first_line) from ("
            "  select line, email, first_value(contact_id) over w as first_contact, "
            "  first_value(line) over w as first_line from import_staging "
            "  window w as (partition by lower(btrim(email)) order by line)"
            ") d where line > first_line"
        ),
    )


def reject_emails_of_other_contacts(cursor: Cursor) -> int:
    return reject(
        cursor,
        sql.SQL(
            "select s.line, format('email %L belongs to contact_id %L, already in raw.contacts', "
            "s.email, c.contact_id) from import_staging s "
            "join raw.contacts c on lower(btrim(c.email)) = lower(btrim(s.email)) "
            "where c.contact_id <> s.contact_id"
        ),
    )


def reject_conflicting_accounts(cursor: Cursor, present: frozenset[str]) -> int:
    """Every row of one account must give the same account values as its first row."""
    compared = [name for name in ACCOUNT_FIELDS if name in present]
    return reject(
        cursor,
        sql.SQL(
            "select s.line, format('account %L: this row differs in %s from line %s of the "
            "same account', s.account_id, {which}, f.line) from import_staging s "
            "join (select distinct on (account_id) * from import_staging "
            "      where account_id is not null order by account_id, line) f using (account_id) "
            "where s.line <> f.line and {differ}"
        ).format(
            which=differing_columns_sql(compared, "s", "f"),
            differ=rows_differ_sql(compared, "s", "f"),
        ),
    )


# --- landing ----------------------------------------------------------------------------


def land(cursor: Cursor, present: frozenset[str]) -> Landing:
    related = {}
    if "account_name" in present:
        related["raw.accounts"] = land_accounts(cursor, present)
    contacts = contacts_upsert(present)
    updated = contacts.update_changed(cursor)
    inserted = contacts.insert_missing(cursor)
    return Landing(inserted=inserted, updated=updated, related=related)


def land_accounts(cursor: Cursor, present: frozenset[str]) -> TableCounts:
    columns = [name for name in ACCOUNT_FIELDS if name in present]
    cursor.execute(
        sql.SQL(
            "create temp table import_accounts on commit drop as "
            "select distinct on (account_id) account_id, line, {columns} from import_staging "
            "where account_id is not null order by account_id, line"
        ).format(columns=sql.SQL(", ").join(map(sql.Identifier, columns)))
    )
    accounts = Upsert(
        table=("raw", "accounts"),
        source="import_accounts",
        keys=("account_id",),
        columns=tuple((ACCOUNT_FIELDS[name], name) for name in columns),
        update_also=(("updated_at", "now()"),),
    )
    updated = accounts.update_changed(cursor)
    inserted = accounts.insert_missing(cursor)
    total = count(cursor, "import_accounts")
    return TableCounts(inserted=inserted, updated=updated, unchanged=total - inserted - updated)


def contacts_upsert(present: frozenset[str]) -> Upsert:
    """The upsert for the header's columns: absent columns are left as they are."""
    update_also, differs_also, insert_also = [], [], []
    if "created_at" in present:
        # An empty created_at keeps the stored one; a new contact without one gets now().
        update_also.append(("created_at", "coalesce(s.created_at, t.created_at)"))
        differs_also.append(
            "s.created_at is not null and s.created_at is distinct from t.created_at"
        )
        insert_also.append(("created_at", "coalesce(s.created_at, now())"))
    if "updated_at" in present:
        update_also.append(("updated_at", "coalesce(s.updated_at, now())"))
        differs_also.append(
            "s.updated_at is not null and s.updated_at is distinct from t.updated_at"
        )
        insert_also.append(("updated_at", "coalesce(s.updated_at, now())"))
    else:
        update_also.append(("updated_at", "now()"))
    return Upsert(
        table=("raw", "contacts"),
        source=STAGING,
        keys=("contact_id",),
        columns=tuple((name, name) for name in CONTACT_FIELDS if name in present),
        update_also=tuple(update_also),
        differs_also=tuple(differs_also),
        insert_also=tuple(insert_also),
    )


KIND = Kind(
    name="contacts",
    target="raw.contacts",
    columns=CONTACT_COLUMNS + ACCOUNT_COLUMNS,
    key=("contact_id",),
    key_label_sql="format('contact_id %L', s.contact_id)",
    check=check,
    land=land,
    header_rules=(account_columns_need_a_name,),
    row_rules=(account_needs_id_and_name,),
)
