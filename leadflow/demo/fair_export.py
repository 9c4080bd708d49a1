"""The trade-fair lead export: a snapADDY-style CSV as the fair team would hand it over.

Scans from the latest editions of three fairs. About a third are people already in the pool
(their address sometimes typed in another case or with stray spaces), the rest are new, one
person was scanned twice, and a few rows are unusable (no email, an invalid email, an
unknown country) so the import's quarantine has something to do. The file is not loaded by
the generator: importing it is `leadflow import fair-leads`' job.

Columns (SPEC 2.12): fair, captured_at (ISO 8601 with the fair's local offset), captured_by,
salutation (mr/ms), first_name, last_name, email, company, position, phone, country (ISO
3166 alpha-2), notes, interests (';'-separated), consent_proof.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from leadflow.demo import vocabulary as v
from leadflow.demo.copytext import EPOCH
from leadflow.demo.population import (
    SALUTATIONS,
    DomainRegistry,
    company_names,
    email_local_part,
)
from leadflow.demo.timeline import FairOccurrence, Timeline

HEADER = (
    "fair",
    "captured_at",
    "captured_by",
    "salutation",
    "first_name",
    "last_name",
    "email",
    "company",
    "position",
    "phone",
    "country",
    "notes",
    "interests",
    "consent_proof",
)
SHARE_OF_CONTACTS = 0.03
MINIMUM_ROWS = 20
KNOWN_SHARE = 1 / 3
BAD_SHARE = 0.03
MINIMUM_BAD = 3
BAD_KINDS = ("missing_email", "invalid_email", "unknown_country")
UNKNOWN_COUNTRY = "XX"
FAIR_SHARES = {"Hannover Messe": 0.45, "EMO Hannover": 0.3, "Global Industrie Paris": 0.25}


def export_size(contacts: int) -> int:
    return max(MINIMUM_ROWS, round(SHARE_OF_CONTACTS * contacts))


def known_count(contacts: int) -> int:
    return round(export_size(contacts) * KNOWN_SHARE)


@dataclass(frozen=True)
class KnownPerson:
    """A contact of the pool who was scanned at a fair (as stored in raw.contacts)."""

    email: str
    salutation: str
    first_name: str
    last_name: str
    company: str
    position: str
    country: str


def write_export(
    path: Path,
    known: list[KnownPerson],
    contacts: int,
    timeline: Timeline,
    domains: DomainRegistry,
    rng: np.random.Generator,
) -> int:
    """Write the CSV to `path`; returns the number of data rows."""
    fairs = {name: timeline.latest_occurrence(name) for name in v.EXPORT_FAIRS}
    total = export_size(contacts)
    bad = max(MINIMUM_BAD, round(BAD_SHARE * total))
    rows = [_known_row(person, fairs, rng) for person in known]
    new = max(total - len(rows) - bad - 1, 1)
    fresh = [_new_row(fairs, domains, rng) for _ in range(new + bad)]
    rows += fresh[:new]
    rows += [_spoil(row, BAD_KINDS[i % len(BAD_KINDS)]) for i, row in enumerate(fresh[new:])]
    rows.append(_scanned_again(fresh[0], fairs, rng))
    rows.sort(key=lambda row: (row["fair"], row["captured_at"], row["email"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def _fair_for(country: str, rng: np.random.Generator) -> str:
    home = {"FR": "Global Industrie Paris"}.get(country)
    if country in ("DE", "AT", "CH"):
        home = "Hannover Messe"
    return home if home and rng.random() < 0.7 else "EMO Hannover"


def _captured(occurrence: FairOccurrence, rng: np.random.Generator) -> tuple[str, dt.datetime]:
    day = EPOCH + dt.timedelta(days=occurrence.first_day + int(rng.integers(occurrence.fair.days)))
    local = dt.datetime.combine(day, dt.time(9), ZoneInfo(occurrence.fair.time_zone))
    local += dt.timedelta(seconds=int(rng.integers(0, 9 * 3600)))
    return local.isoformat(timespec="seconds"), local


def _base_row(fair: str, occurrence, country: str, rng) -> dict[str, str]:
    captured_at, local = _captured(occurrence, rng)
    reps = _booth_staff(country)
    interests = rng.choice(len(v.INTERESTS), size=int(rng.integers(1, 3)), replace=False)
    notes = v.FAIR_NOTES[v.LANGUAGE_OF_COUNTRY[country]]
    consented = rng.random() < 0.85
    proof = f"snapADDY consent form v3, signed {local:%Y-%m-%d %H:%M}" if consented else ""
    return {
        "fair": occurrence.name,
        "captured_at": captured_at,
        "captured_by": reps[int(rng.integers(len(reps)))],
        "phone": _phone(country, rng),
        "country": country,
        "notes": notes[int(rng.integers(len(notes)))],
        "interests": ";".join(v.INTERESTS[i] for i in sorted(interests)),
        "consent_proof": proof,
    }


def _known_row(person: KnownPerson, fairs, rng) -> dict[str, str]:
    fair = _fair_for(person.country, rng)
    row = _base_row(fair, fairs[fair], person.country, rng)
    row.update(
        salutation=person.salutation,
        first_name=person.first_name,
        last_name=person.last_name,
        email=_retyped(person.email, rng),
        company=person.company,
        position=person.position,
    )
    return row


def _retyped(email: str, rng) -> str:
    """How the scanner app captured a known address: mostly as is, sometimes not quite."""
    u = rng.random()
    if u < 0.2:
        local, domain = email.split("@")
        return f"{local.title()}@{domain}"
    if u < 0.3:
        return email.upper()
    if u < 0.45:
        return f" {email} "
    return email


def _new_row(fairs, domains: DomainRegistry, rng) -> dict[str, str]:
    fair = str(rng.choice(list(FAIR_SHARES), p=list(FAIR_SHARES.values())))
    countries = _fair_countries(fair)
    country = str(rng.choice(list(countries), p=list(countries.values())))
    salutation = SALUTATIONS[int(rng.random() < 0.3)]
    first = _pick(v.FIRST_NAMES[country][salutation], rng)
    last = _pick(v.LAST_NAMES[country], rng)
    industry = rng.choice(len(v.INDUSTRIES), size=1, p=v.INDUSTRY_WEIGHTS)
    (company,), (core,) = company_names(country, industry, rng)
    domain = domains.claim(core, country)
    language = v.LANGUAGE_OF_COUNTRY[country]
    role = str(rng.choice(v.DECISION_ROLES, p=v.ROLE_WEIGHTS))
    position = _pick(v.POSITIONS[language][role], rng)[SALUTATIONS.index(salutation)]
    row = _base_row(fair, fairs[fair], country, rng)
    row.update(
        salutation=salutation,
        first_name=first,
        last_name=last,
        email=f"{email_local_part('{first}.{last}', first, last)}@{domain}",
        company=company,
        position=position,
    )
    return row


def _fair_countries(fair: str) -> dict[str, float]:
    if fair == "Hannover Messe":
        return {"DE": 0.7, "AT": 0.15, "CH": 0.15}
    if fair == "Global Industrie Paris":
        return {"FR": 0.9, "ES": 0.05, "IT": 0.05}
    total = sum(v.COUNTRY_WEIGHTS)
    return {c: w / total for c, w in zip(v.COUNTRIES, v.COUNTRY_WEIGHTS, strict=True)}


def _spoil(row: dict[str, str], kind: str) -> dict[str, str]:
    spoiled = dict(row)
    if kind == "missing_email":
        spoiled["email"] = ""
    elif kind == "invalid_email":
        spoiled["email"] = spoiled["email"].replace("@", "(at)")
    else:
        spoiled["country"] = UNKNOWN_COUNTRY
    return spoiled


def _scanned_again(row: dict[str, str], fairs, rng) -> dict[str, str]:
    """The same visitor scanned at a second booth later that day (same fair, same email)."""
    again = dict(row)
    captured = dt.datetime.fromisoformat(row["captured_at"])
    again["captured_at"] = (captured + dt.timedelta(minutes=int(rng.integers(20, 240)))).isoformat(
        timespec="seconds"
    )
    reps = _booth_staff(row["country"])
    again["captured_by"] = reps[int(rng.integers(len(reps)))]
    return again


def _booth_staff(country: str) -> tuple[str, ...]:
    """Who scans a visitor: a sales rep of the visitor's territory."""
    if country == "DE":
        teams = ("dach_north", "dach_south", "key_accounts")
        return tuple(name for team in teams for name in v.SALES_TEAMS[team])
    return v.SALES_TEAMS[v.TEAM_OF_COUNTRY[country]]


def _pick(options, rng):
    return options[int(rng.integers(len(options)))]


def _phone(country: str, rng) -> str:
    digits = "".join(str(d) for d in rng.integers(0, 10, 8))
    area = str(int(rng.integers(2, 10))) + str(int(rng.integers(0, 10)))
    return f"{v.PHONE_PREFIX[country]} {area} {digits[:4]} {digits[4:]}"
