"""Fair leads: the deterministic id, exact landing, quarantine, idempotence, headers."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from leadflow.errors import LeadflowError
from leadflow.imports import fair_lead_id, import_file

UTC = dt.UTC


def test_fair_lead_id_is_one_id_per_fair_address_and_instant():
    berlin = dt.datetime(2024, 4, 22, 10, 15, tzinfo=ZoneInfo("Europe/Berlin"))
    utc = dt.datetime(2024, 4, 22, 8, 15, tzinfo=UTC)
    reference = fair_lead_id("Hannover Messe", "anna@firma.de", utc)

    assert fair_lead_id("Hannover Messe", "  Anna@FIRMA.de ", berlin) == reference
    assert fair_lead_id("Hannover Messe", "anna@firma.de", utc.replace(tzinfo=None)) == reference
    assert fair_lead_id("EMO Hannover", "anna@firma.de", utc) != reference
    assert fair_lead_id("Hannover Messe", "anna@firma.de", utc + dt.timedelta(seconds=1)) != (
        reference
    )
    assert len(reference) == 32 and int(reference, 16) >= 0


def test_good_file_lands_exactly(warehouse, data_dir, query):
    summary = import_file(warehouse, "fair_leads", data_dir / "fair_leads.csv")

    assert (summary.rows_read, summary.inserted, summary.quarantined) == (3, 3, 0)
    jonas = fair_lead_id(
        "Hannover Messe",
        "jonas.becker@becker-antriebe.de",
        dt.datetime(2024, 4, 22, 8, 15, tzinfo=UTC),
    )
    assert query(
        "select fair_lead_id, fair, captured_at, captured_by, salutation, first_name, last_name, "
        "email, company, position, phone, country, notes, interests, consent_proof "
        "from raw.fair_leads where email like 'jonas%'"
    ) == [
        (jonas, "Hannover Messe", dt.datetime(2024, 4, 22, 8, 15, tzinfo=UTC), "rep-de-2",
         "mr", "Jonas", "Becker", "jonas.becker@becker-antriebe.de", "Becker Antriebe GmbH",
         "Technischer Leiter", "+49 30 1234 5678", "DE",
         "Wants a quote for 2 units, call after the fair", ["HS3000", "MNT-DIAG"],
         "snapADDY consent form v3, signed 2024-04-22 10:15"),
    ]  # fmt: skip
    assert query("select email, country, notes, interests from raw.fair_leads order by 1") == [
        ("jonas.becker@becker-antriebe.de", "DE", "Wants a quote for 2 units, call after the fair",
         ["HS3000", "MNT-DIAG"]),
        ("l.bernard@meca-ouest.fr", "FR", "Déjà client HS2000", ["HS3000"]),
        ("sabine.wolf@wolf-kunststoff.ch", "CH", None, ["CLN-10"]),
    ]  # fmt: skip


BAD_LEADS = """
    fair,captured_at,email,first_name,country
    Hannover Messe,2024-04-22T10:00:00+02:00,anna@firma.de,Anna,DE
    Hannover Messe,2024-04-22T08:00:00Z, ANNA@firma.de ,Anna B.,DE
    Hannover Messe,2024-04-22T11:00:00+02:00,ben(at)firma.de,Ben,DE
    Hannover Messe,2024-04-22T11:00:00+02:00,cem@firma.de,Cem,Germany
    ,2024-04-22T11:00:00+02:00,dora@firma.de,Dora,DE
    Hannover Messe,22.04.2024,eva@firma.de,Eva,DE
    Hannover Messe,2024-04-22T12:00:00+02:00,,Finn,DE
    Hannover Messe,2024-04-22T12:30:00+02:00,anna@firma.de,Anna,AT
    """


def test_bad_rows_are_quarantined_with_line_and_reason(warehouse, write_csv, query, quarantined):
    path = write_csv(BAD_LEADS)
    summary = import_file(warehouse, "fair_leads", path)

    assert (summary.rows_read, summary.inserted, summary.quarantined) == (8, 2, 6)
    assert query("select email, country from raw.fair_leads order by captured_at") == [
        ("anna@firma.de", "DE"),
        ("anna@firma.de", "AT"),
    ]
    reasons = quarantined(path)
    assert reasons[3] == (
        "duplicate fair lead (fair 'Hannover Messe', email 'ANNA@firma.de', "
        "captured_at 2024-04-22T08:00:00Z) (first seen on line 2)"
    )
    assert reasons[4].startswith("email: 'ben(at)firma.de' is not a valid email address")
    assert reasons[5].startswith("country: 'Germany' is not an ISO 3166 alpha-2 country code")
    assert reasons[6] == "fair: a value is required"
    assert reasons[7].startswith("captured_at: '22.04.2024' is not an ISO-8601 timestamp")
    assert reasons[8] == "email: a value is required"
    assert sorted(reasons) == list(range(3, 9))


def test_reimport_changes_nothing_and_a_changed_lead_is_updated(
    warehouse, data_dir, write_csv, query
):
    import_file(warehouse, "fair_leads", data_dir / "fair_leads.csv")
    ids = query("select fair_lead_id from raw.fair_leads order by 1")
    text = (data_dir / "fair_leads.csv").read_text(encoding="utf-8")
    changed = write_csv(text.replace("Déjà client HS2000", "Client HS2000 depuis 2015"), "v2.csv")

    again = import_file(warehouse, "fair_leads", data_dir / "fair_leads.csv")
    second_version = import_file(warehouse, "fair_leads", changed)

    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert (second_version.inserted, second_version.updated, second_version.unchanged) == (
        0, 1, 2,
    )  # fmt: skip
    assert query("select notes from raw.fair_leads where country = 'FR'") == [
        ("Client HS2000 depuis 2015",)
    ]
    assert query("select fair_lead_id from raw.fair_leads order by 1") == ids


def test_wrong_header_names_the_columns_and_writes_nothing(warehouse, write_csv, query):
    path = write_csv("fair,email,badge_id\nHannover Messe,anna@firma.de,4711\n")

    with pytest.raises(LeadflowError) as raised:
        import_file(warehouse, "fair_leads", path)

    assert "missing required column(s): captured_at" in str(raised.value)
    assert "unknown column(s): badge_id" in str(raised.value)
    assert query("select count(*) from ops.import_runs") == [(0,)]
    assert query("select count(*) from raw.fair_leads") == [(0,)]
