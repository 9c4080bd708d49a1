"""What can be wrong with a file as a whole, and that a failed import leaves nothing behind."""

from __future__ import annotations

import psycopg
import pytest

from leadflow.errors import LeadflowError
from leadflow.imports import import_file, runner

TABLES = ("raw.contacts", "raw.accounts", "ops.quarantine", "ops.import_runs")


@pytest.fixture
def nothing_written(query):
    def check() -> None:
        for table in TABLES:
            assert query(f"select count(*) from {table}") == [(0,)], table

    return check


def test_unknown_kind(warehouse, data_dir, nothing_written):
    path = data_dir / "contacts.csv"
    with pytest.raises(LeadflowError, match=f"{path}: unknown import kind 'leads'; choose one of"):
        import_file(warehouse, "leads", path)
    nothing_written()


def test_missing_file(warehouse, tmp_path, nothing_written):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(LeadflowError, match=f"{path}: no such file"):
        import_file(warehouse, "contacts", path)
    nothing_written()


def test_a_directory_is_not_a_file(warehouse, tmp_path):
    with pytest.raises(LeadflowError, match="is a directory"):
        import_file(warehouse, "contacts", tmp_path)


def test_empty_file(warehouse, write_csv, nothing_written):
    with pytest.raises(LeadflowError, match="the file is empty; a header row is required"):
        import_file(warehouse, "contacts", write_csv(""))
    nothing_written()


def test_header_names_are_trimmed_and_case_insensitive(warehouse, write_csv, query):
    import_file(warehouse, "contacts", write_csv(" Contact_ID , EMAIL \nc-1,a@firma.de\n"))
    assert query("select contact_id, email from raw.contacts") == [("c-1", "a@firma.de")]


def test_a_column_twice_is_a_header_error(warehouse, write_csv):
    with pytest.raises(LeadflowError, match="column\\(s\\) appear twice: email"):
        import_file(warehouse, "contacts", write_csv("contact_id,email,email\nc-1,a@x.de,b@x.de\n"))


def test_a_file_that_is_not_utf8_writes_nothing(warehouse, write_csv, nothing_written):
    path = write_csv("contact_id,email,last_name\nc-1,a@firma.de,Müller\n", encoding="latin-1")
    with pytest.raises(LeadflowError, match="not valid UTF-8"):
        import_file(warehouse, "contacts", path)
    nothing_written()


def test_an_error_late_in_the_file_rolls_back_the_chunks_already_staged(
    warehouse, write_csv, nothing_written, monkeypatch
):
    # Long rows, so the bad byte lies far beyond what the decoder reads at once (8 KiB) and
    # many chunks of two rows have been copied into the staging table before it is met.
    monkeypatch.setattr(runner, "CHUNK_ROWS", 2)
    good = "".join(f"c-{i},p{i}@firma.de,{'M' * 1000}\n" for i in range(100))
    path = write_csv("contact_id,email,last_name\n" + good + "c-x,x@firma.de,Müller\n")
    path.write_bytes(path.read_bytes().replace("Müller".encode(), "Müller".encode("latin-1")))

    with pytest.raises(LeadflowError, match=f"{path}: near line \\d+: the file is not valid UTF-8"):
        import_file(warehouse, "contacts", path)
    nothing_written()


def test_a_database_error_rolls_back_everything(warehouse, write_csv, query, nothing_written):
    # A real failure inside PostgreSQL half-way through the landing (after accounts, quarantine
    # rows staged): nothing of the file may remain.
    with warehouse.begin() as connection:
        connection.exec_driver_sql(
            "create function raw.refuse() returns trigger language plpgsql as "
            "$$ begin raise exception 'refused %%', new.contact_id; end $$; "
            "create trigger refuse before insert on raw.contacts for each row "
            "when (new.contact_id = 'boom') execute function raw.refuse()"
        )
    path = write_csv(
        """
        contact_id,email,account_id,account_name
        c-1,a@firma.de,a-1,Firma GmbH
        c-2,b(at)firma.de,,
        boom,c@firma.de,a-2,Zweite GmbH
        """
    )

    with pytest.raises(psycopg.errors.RaiseException, match="refused boom"):
        import_file(warehouse, "contacts", path)
    nothing_written()


def test_a_row_with_the_wrong_number_of_values_is_quarantined(warehouse, write_csv, query):
    path = write_csv("contact_id,email\nc-1,a@firma.de,extra\nc-2\nc-3,c@firma.de\n")

    summary = import_file(warehouse, "contacts", path)

    assert (summary.inserted, summary.quarantined) == (1, 2)
    assert query("select line, reason, row_data from ops.quarantine order by line") == [
        (
            2,
            "the row has 3 values but the header has 2 columns",
            {"contact_id": "c-1", "email": "a@firma.de", "_extra": ["extra"]},
        ),
        (3, "the row has 1 values but the header has 2 columns", {"contact_id": "c-2"}),
    ]


def test_control_characters_are_quarantined(warehouse, write_csv, query):
    path = write_csv("contact_id,email,last_name\nc-1,a@firma.de,Mu\x00ller\nc-2,b@firma.de,X\n")

    summary = import_file(warehouse, "contacts", path)

    assert (summary.inserted, summary.quarantined) == (1, 1)
    assert query("select reason, row_data ->> 'last_name' from ops.quarantine") == [
        ("last_name: contains the control character NUL (U+0000)", "Mu\ufffdller")
    ]


def test_blank_lines_are_skipped_and_a_header_only_file_imports_nothing(
    warehouse, write_csv, query
):
    summary = import_file(warehouse, "contacts", write_csv("contact_id,email\n\n,\n\n"))

    assert (summary.rows_read, summary.inserted, summary.quarantined) == (0, 0, 0)
    assert query("select rows_read from ops.import_runs") == [(0,)]
