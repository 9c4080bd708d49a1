"""Trade-fair leads (snapADDY-style exports, SPEC 2.12) → raw.fair_leads.

Here fair leads only land in raw; merging them into the contact pool comes later. A lead
is identified by `fair_lead_id`, a hash of (fair, lower(trim(email)), captured_at), so the
same scan exported twice, or sent by the tracking service's fair-lead endpoint too, is
one lead.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from psycopg import Cursor

from leadflow.imports import fields as f
from leadflow.imports.fields import Column
from leadflow.imports.kind import Derived, Kind, Landing, Values
from leadflow.imports.sqlkit import STAGING, Upsert

COLUMNS = (
    Column("fair", f.text, required=True),
    Column("captured_at", f.timestamp, "timestamptz", required=True),
    Column("captured_by", f.text),
    Column("salutation", f.text),
    Column("first_name", f.text),
    Column("last_name", f.text),
    Column("email", f.email, required=True),
    Column("company", f.text),
    Column("position", f.text),
    Column("phone", f.text),
    Column("country", f.country, "char(2)"),
    Column("notes", f.text),
    Column("interests", f.array, "text[]", default=f.EMPTY_ARRAY),
    Column("consent_proof", f.text),
)


def fair_lead_id(fair: str, email: str, captured_at: dt.datetime) -> str:
    """The id of a fair lead: 32 hex digits of SHA-256 over fair, lower(trim(email)), captured_at.

    captured_at enters as UTC with microseconds (naive means UTC), so the same instant
    written with any offset gives the same id.
    """
    if captured_at.tzinfo is None:
        captured_at = captured_at.replace(tzinfo=dt.UTC)
    instant = captured_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    material = "\x1f".join((fair.strip(), email.strip().lower(), instant))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _derive_id(values: Values) -> str | None:
    fair, email, captured_at = values["fair"], values["email"], values["captured_at"]
    if fair is None or email is None or captured_at is None:
        return None
    return fair_lead_id(fair, email, captured_at)


def check(cursor: Cursor, present: frozenset[str]) -> None:
    """Nothing beyond the duplicate-lead check every kind gets."""


def land(cursor: Cursor, present: frozenset[str]) -> Landing:
    upsert = Upsert(
        table=("raw", "fair_leads"),
        source=STAGING,
        keys=("fair_lead_id",),
        columns=tuple((c.name, c.name) for c in COLUMNS if c.name in present),
    )
    updated = upsert.update_changed(cursor)
    inserted = upsert.insert_missing(cursor)
    return Landing(inserted=inserted, updated=updated)


KIND = Kind(
    name="fair_leads",
    target="raw.fair_leads",
    columns=COLUMNS,
    key=("fair_lead_id",),
    key_label_sql=(
        "format('fair lead (fair %L, email %L, captured_at %s)', s.fair, s.email, "
        "to_char(s.captured_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"
    ),
    check=check,
    land=land,
    derived=(Derived("fair_lead_id", "text", _derive_id),),
)
