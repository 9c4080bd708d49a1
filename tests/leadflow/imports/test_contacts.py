"""Contacts (with accounts): exact landing, quarantine, idempotence, updates, headers."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest

from leadflow.errors import LeadflowError
from leadflow.imports import import_file, runner

UTC = dt.UTC


def test_good_file_lands_exactly(warehouse, data_dir, query):
    path = data_dir / "contacts.csv"
    summary = import_file(warehouse, "contacts", path)

    assert (summary.rows_read, summary.inserted, summary.updated) == (4, 4, 0)
    assert (summary.unchanged, summary.quarantined) == (0, 0)
    assert summary.related["raw.accounts"].inserted == 3
    assert query(
        "select contact_id, email, salutation, first_name, last_name, language, country, "
        "position, decision_role, account_id, owner, source, tags, interests, consent_status, "
        "consent_at, lifecycle_stage, created_at from raw.contacts where contact_id = 'c-1001'"
    ) == [
        (
            "c-1001", "peter.produzent@kraemer-werkzeugbau.de", "Herr", "Peter", "Produzent",
            "de", "DE", "Produktionsleiter", "production_manager", "a-100", "rep-de-1", "ebook",
            ["newsletter", "hydrostat"], ["HS3000", "MNT-KIT"], "confirmed",
            dt.datetime(2024, 2, 1, 8, 15, tzinfo=UTC), "lead",
            dt.datetime(2024, 2, 1, 8, 10, tzinfo=UTC),
        )
    ]  # fmt: skip
    # Stored as given (case kept); empty arrays and consent defaults for empty cells.
    assert query(
        "select contact_id, email, tags, interests, consent_status, consent_at "
        "from raw.contacts order by contact_id"
    ) == [
        ("c-1001", "peter.produzent@kraemer-werkzeugbau.de", ["newsletter", "hydrostat"],
         ["HS3000", "MNT-KIT"], "confirmed", dt.datetime(2024, 2, 1, 8, 15, tzinfo=UTC)),
        ("c-1002", "E.Einkauf@kraemer-werkzeugbau.de", [], ["CLN-10"], "none", None),
        ("c-1003", "g.fuehrer@alpen-hydraulik.at", [], [], "pending", None),
        ("c-1004", "claire.martin@plastiques-lyon.fr", [], [], "objected",
         dt.datetime(2023, 11, 3, 14, 0, tzinfo=UTC)),
    ]  # fmt: skip
    assert query(
        "select account_id, name, industry, employee_count, annual_revenue, country, region, "
        "postcode from raw.accounts order by account_id"
    ) == [
        ("a-100", "Krämer Werkzeugbau GmbH", "machine_tools", 240, Decimal("38000000.00"),
         "DE", "Bayern", "80331"),
        ("a-200", "Alpen Hydraulik GmbH, Linz", "metalworking", 55, Decimal("7200000.00"),
         "AT", "Oberösterreich", "4020"),
        ("a-300", "Plastiques de Lyon SA", "plastics", 120, Decimal("15500000.50"),
         "FR", "Auvergne-Rhône-Alpes", "69007"),
    ]  # fmt: skip
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert query(
        "select source, file, file_sha256, rows_read, rows_inserted, rows_updated, "
        "rows_unchanged, rows_quarantined from ops.import_runs"
    ) == [("contacts", str(path), digest, 4, 4, 0, 0, 0)]
    assert summary.file_sha256 == digest


BAD_CONTACTS = (
    # Indented like the rows below, which write_csv dedents.
    "    contact_id,email,country,consent_status,consent_at,decision_role,"
    "account_id,account_name,annual_revenue"
    """
    c-1,anna@firma.de,DE,confirmed,2024-01-05T10:00:00Z,purchaser,a-1,Firma GmbH,1000000
    c-2,max(at)firma.de,DE,,,,,,
    c-3,lea@firma.de,Germany,,,,,,
    c-4,tom@firma.de,XX,,,,,,
    c-5,ida@firma.de,AT,confirmed,2024-13-01,,,,
    c-6,uwe@firma.de,CH,,,,a-2,Negativ AG,-5
    c-7,eva@firma.de,FR,maybe,,boss,,,
    c-8,,IT,,,,,,
    ,ole@firma.de,ES,,,,,,
    c-1,anna2@firma.de,DE,,,,,,
    c-9, ANNA@Firma.de ,DE,,,,,,
    c-10,ben@firma.de,DE,,,,,,
    """
)


def test_bad_rows_are_quarantined_with_line_and_reason(warehouse, write_csv, query, quarantined):
    path = write_csv(BAD_CONTACTS)
    summary = import_file(warehouse, "contacts", path)

    assert (summary.rows_read, summary.inserted, summary.quarantined) == (12, 2, 10)
    assert query("select contact_id from raw.contacts order by contact_id") == [("c-1",), ("c-10",)]
    reasons = quarantined(path)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert reasons[3].startswith("email: 'max(at)firma.de' is not a valid email address")
    assert reasons[4].startswith("country: 'Germany' is not an ISO 3166 alpha-2 country code")
    assert reasons[5].startswith("country: 'XX' is not an ISO 3166 alpha-2 country code")
    assert reasons[6].startswith("consent_at: '2024-13-01' is not an ISO-8601 timestamp")
    assert reasons[7] == "annual_revenue: '-5' must not be negative"
    assert reasons[8] == (
        "consent_status: 'maybe' is not one of none, pending, confirmed, objected; "
        "decision_role: 'boss' is not one of purchaser, production_manager, "
        "managing_director, other"
    )
    assert reasons[9] == "email: a value is required"
    assert reasons[10] == "contact_id: a value is required"
    assert reasons[11] == "duplicate contact_id 'c-1' (first seen on line 2)"
    assert reasons[12] == "email 'ANNA@Firma.de' is already used by contact_id 'c-1' on line 2"
    # The row as given, cell for cell (spaces included).
    assert query("select row_data from ops.quarantine where line = 12") == [
        ({"contact_id": "c-9", "email": " ANNA@Firma.de ", "country": "DE",
          "consent_status": "", "consent_at": "", "decision_role": "", "account_id": "",
          "account_name": "", "annual_revenue": ""},)
    ]  # fmt: skip
    assert query("select account_id from raw.accounts") == [("a-1",)]


def test_email_of_another_contact_in_the_pool_is_quarantined(warehouse, write_csv, quarantined):
    import_file(warehouse, "contacts", write_csv("contact_id,email\nc-1,anna@firma.de\n", "a.csv"))
    second = write_csv("contact_id,email\nc-99, Anna@FIRMA.de\nc-1,anna@firma.de\n", "b.csv")

    summary = import_file(warehouse, "contacts", second)

    assert (summary.inserted, summary.unchanged, summary.quarantined) == (0, 1, 1)
    assert quarantined(second) == {
        2: "email 'Anna@FIRMA.de' belongs to contact_id 'c-1', already in raw.contacts"
    }


def test_reimport_changes_nothing(warehouse, data_dir, write_csv, query):
    good = data_dir / "contacts.csv"
    bad = write_csv(BAD_CONTACTS)
    import_file(warehouse, "contacts", good)
    import_file(warehouse, "contacts", bad)
    before = query("select contact_id, updated_at from raw.contacts order by 1")
    accounts_before = query("select account_id, updated_at from raw.accounts order by 1")

    again = import_file(warehouse, "contacts", good)
    bad_again = import_file(warehouse, "contacts", bad)

    assert (again.inserted, again.updated, again.unchanged, again.quarantined) == (0, 0, 4, 0)
    assert again.related["raw.accounts"].unchanged == 3
    assert (bad_again.inserted, bad_again.updated, bad_again.unchanged) == (0, 0, 2)
    assert (bad_again.quarantined, bad_again.newly_quarantined) == (10, 0)
    assert "(10 already recorded by an earlier import)" in bad_again.describe()
    assert query("select count(*) from ops.quarantine") == [(10,)]
    assert query("select contact_id, updated_at from raw.contacts order by 1") == before
    assert query("select account_id, updated_at from raw.accounts order by 1") == accounts_before
    assert query("select count(*) from ops.import_runs") == [(4,)]


def test_changed_rows_in_a_new_version_are_updated(warehouse, data_dir, write_csv, query):
    import_file(warehouse, "contacts", data_dir / "contacts.csv")
    first = dict(query("select contact_id, created_at from raw.contacts"))
    stamps = dict(query("select contact_id, updated_at from raw.contacts"))
    text = (data_dir / "contacts.csv").read_text(encoding="utf-8")
    changed = (
        text.replace("Geschäftsführer", "Inhaber").replace(  # c-1003 position
            ",plastics,120,", ",plastics,135,"
        )  # account a-300
        + "c-1005,neu@alpen-hydraulik.at,,,,de,AT,,,,,,,,,,,,a-200,"
        '"Alpen Hydraulik GmbH, Linz",metalworking,55,7200000.00,AT,Oberösterreich,4020\n'
    )
    path = write_csv(changed, "contacts-v2.csv")

    summary = import_file(warehouse, "contacts", path)

    assert (summary.inserted, summary.updated, summary.unchanged, summary.quarantined) == (
        1, 1, 3, 0,
    )  # fmt: skip
    accounts = summary.related["raw.accounts"]
    assert (accounts.inserted, accounts.updated, accounts.unchanged) == (0, 1, 2)
    assert query("select position from raw.contacts where contact_id = 'c-1003'") == [("Inhaber",)]
    assert query("select employee_count from raw.accounts where account_id = 'a-300'") == [(135,)]
    after = dict(query("select contact_id, updated_at from raw.contacts"))
    assert after["c-1003"] > stamps["c-1003"]
    assert after["c-1001"] == stamps["c-1001"]
    # c-1003 has no created_at in the file: the stored one stays.
    assert query("select created_at from raw.contacts where contact_id = 'c-1003'") == [
        (first["c-1003"],)
    ]


def test_columns_absent_from_the_header_are_left_alone(warehouse, data_dir, write_csv, query):
    import_file(warehouse, "contacts", data_dir / "contacts.csv")
    path = write_csv(
        """
        contact_id,email,owner
        c-1001,peter.produzent@kraemer-werkzeugbau.de,rep-de-7
        c-1002,E.Einkauf@kraemer-werkzeugbau.de,rep-de-1
        """
    )

    summary = import_file(warehouse, "contacts", path)

    assert (summary.updated, summary.unchanged) == (1, 1)
    assert "raw.accounts" not in summary.related
    assert query(
        "select owner, tags, consent_status, account_id from raw.contacts "
        "where contact_id = 'c-1001'"
    ) == [("rep-de-7", ["newsletter", "hydrostat"], "confirmed", "a-100")]


def test_one_account_with_different_values_is_quarantined(warehouse, write_csv, quarantined):
    path = write_csv(
        """
        contact_id,email,account_id,account_name,industry
        c-1,a@firma.de,a-1,Firma GmbH,plastics
        c-2,b@firma.de,a-1,Firma GmbH,chemicals
        c-3,c@firma.de,,,chemicals
        """
    )

    summary = import_file(warehouse, "contacts", path)

    assert (summary.inserted, summary.quarantined) == (1, 2)
    assert quarantined(path) == {
        3: "account 'a-1': this row differs in industry from line 2 of the same account",
        4: "account_id: required when account columns are filled (industry)",
    }


def test_array_cells_keep_quotes_commas_and_backslashes(warehouse, write_csv, query):
    path = write_csv('contact_id,email,tags\nc-1,a@firma.de,"say ""hi""; a,b ;c\\d;{e};;"\n')

    import_file(warehouse, "contacts", path)

    assert query("select tags from raw.contacts") == [(['say "hi"', "a,b", "c\\d", "{e}"],)]


def test_wrong_header_names_the_columns_and_writes_nothing(warehouse, write_csv, query):
    path = write_csv("contact_id,emial,phone\nc-1,a@firma.de,123\n")

    with pytest.raises(LeadflowError) as raised:
        import_file(warehouse, "contacts", path)

    message = str(raised.value)
    assert str(path) in message
    assert "missing required column(s): email" in message
    assert "unknown column(s): emial, phone" in message
    assert query("select count(*) from ops.import_runs") == [(0,)]
    assert query("select count(*) from ops.quarantine") == [(0,)]
    assert query("select count(*) from raw.contacts") == [(0,)]


def test_account_columns_without_account_name_are_a_header_error(warehouse, write_csv):
    path = write_csv("contact_id,email,account_id,industry\nc-1,a@firma.de,a-1,plastics\n")

    with pytest.raises(LeadflowError, match="industry need the account_name column"):
        import_file(warehouse, "contacts", path)


def test_bom_and_windows_line_endings_are_accepted(warehouse, write_csv, query, quarantined):
    path = write_csv(
        """
        contact_id,email,country
        c-1,a@firma.de,DE
        c-2,b(at)firma.de,AT
        c-3,c@firma.de,CH
        """,
        newline="\r\n",
        bom=True,
    )

    summary = import_file(warehouse, "contacts", path)

    assert (summary.inserted, summary.quarantined) == (2, 1)
    assert query("select contact_id, email, country from raw.contacts order by 1") == [
        ("c-1", "a@firma.de", "DE"),
        ("c-3", "c@firma.de", "CH"),
    ]
    assert list(quarantined(path)) == [3]


def test_line_numbers_are_physical_lines(warehouse, write_csv, quarantined):
    path = write_csv(
        """
        contact_id,email,position

        c-1,a@firma.de,"Leiter
        Einkauf"
        c-2,b(at)firma.de,Einkauf
        """
    )

    import_file(warehouse, "contacts", path)

    assert list(quarantined(path)) == [5]


def test_duplicates_are_found_across_chunks(warehouse, write_csv, quarantined, monkeypatch):
    monkeypatch.setattr(runner, "CHUNK_ROWS", 2)
    rows = "".join(f"c-{i},p{i}@firma.de\n" for i in range(1, 8))
    path = write_csv("contact_id,email\n" + rows + "c-2,late@firma.de\nc-8,P7@firma.de\n")

    summary = import_file(warehouse, "contacts", path)

    assert (summary.rows_read, summary.inserted, summary.quarantined) == (9, 7, 2)
    assert quarantined(path) == {
        9: "duplicate contact_id 'c-2' (first seen on line 3)",
        10: "email 'P7@firma.de' is already used by contact_id 'c-7' on line 8",
    }
