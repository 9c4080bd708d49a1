"""Events: exact landing in file order, quarantine, immutability, headers."""

from __future__ import annotations

import datetime as dt

import pytest

from leadflow.errors import LeadflowError
from leadflow.imports import import_file

UTC = dt.UTC


def test_good_file_lands_exactly_in_file_order(warehouse, data_dir, query):
    summary = import_file(warehouse, "events", data_dir / "events.csv")

    assert (summary.rows_read, summary.inserted, summary.quarantined) == (6, 6, 0)
    assert query(
        "select event_id, event_type, occurred_at, contact_id, visitor_id, campaign_id, step_id, "
        "mailing_id, link_id, link_tag, asset_id, url, bounce_type, is_machine, user_agent "
        "from raw.events order by event_seq"
    ) == [
        ("ev-1", "email_sent", dt.datetime(2024, 6, 3, 8, tzinfo=UTC), "c-1001", None,
         "upsell", "s1", "m-upsell-1", None, None, None, None, None, False, None),
        ("ev-2", "email_open", dt.datetime(2024, 6, 3, 8, 0, 4, tzinfo=UTC), "c-1001", None,
         "upsell", "s1", "m-upsell-1", None, None, None, None, None, True, "GoogleImageProxy"),
        ("ev-3", "email_click", dt.datetime(2024, 6, 3, 7, 12, tzinfo=UTC), "c-1001", None,
         "upsell", "s1", "m-upsell-1", "l-7", "hydrostat3000", None,
         "https://example.com/hs3000", None, False, "Mozilla/5.0"),
        # No offset means UTC.
        ("ev-4", "web_visit", dt.datetime(2024, 6, 4, 10, tzinfo=UTC), None, "v-4711",
         None, None, None, None, None, None, "https://example.com/produkte/hydrostat", None,
         False, "Mozilla/5.0"),
        ("ev-5", "download", dt.datetime(2024, 6, 4, 10, 5, tzinfo=UTC), "c-1003", "v-4711",
         None, None, None, None, None, "ebook-hydraulik", None, None, False, None),
        ("ev-6", "email_bounced", dt.datetime(2024, 6, 5, 7, tzinfo=UTC), "c-1004", None,
         "upsell", "s1", "m-upsell-1", None, None, None, None, "hard", False, None),
    ]  # fmt: skip


BAD_EVENTS = """
    event_id,event_type,occurred_at,contact_id,visitor_id,bounce_type,is_machine
    e-1,email_open,2024-06-01T10:00:00Z,c-1,,,
    e-2,email_opened,2024-06-01T10:00:00Z,c-1,,,
    e-3,email_open,2024-06-31T10:00:00Z,c-1,,,
    e-4,email_open,2024-06-01T10:00:00Z,,,,
    e-5,email_bounced,2024-06-01T10:00:00Z,c-1,,,
    e-6,email_open,2024-06-01T10:00:00Z,c-1,,hard,
    e-7,email_open,2024-06-01T10:00:00Z,c-1,,,maybe
    e-1,email_click,2024-06-01T10:05:00Z,c-1,,,
    ,email_open,2024-06-01T10:00:00Z,c-1,,,
    e-8,web_visit,2024-06-01T10:00:00Z,,v-1,,
    """


def test_bad_rows_are_quarantined_with_line_and_reason(warehouse, write_csv, query, quarantined):
    path = write_csv(BAD_EVENTS)
    summary = import_file(warehouse, "events", path)

    assert (summary.rows_read, summary.inserted, summary.quarantined) == (10, 2, 8)
    assert query("select event_id from raw.events order by event_seq") == [("e-1",), ("e-8",)]
    reasons = quarantined(path)
    assert reasons[3].startswith("event_type: 'email_opened' is not one of email_sent,")
    assert reasons[4].startswith("occurred_at: '2024-06-31T10:00:00Z' is not an ISO-8601")
    assert reasons[5] == "contact_id, visitor_id: at least one is required"
    assert reasons[6] == "bounce_type: required for email_bounced events (hard or soft)"
    assert reasons[7] == "bounce_type: only email_bounced events have one, not email_open"
    assert reasons[8] == "is_machine: 'maybe' is not a boolean (true/false, yes/no, 1/0)"
    assert reasons[9] == "duplicate event_id 'e-1' (first seen on line 2)"
    assert reasons[10] == "event_id: a value is required"
    assert sorted(reasons) == list(range(3, 11))


def test_events_are_immutable_and_reimport_changes_nothing(warehouse, data_dir, write_csv, query):
    import_file(warehouse, "events", data_dir / "events.csv")
    before = query("select * from raw.events order by event_seq")
    text = (data_dir / "events.csv").read_text(encoding="utf-8")
    changed = write_csv(text.replace("GoogleImageProxy", "AppleMailProxy"), "events-v2.csv")

    again = import_file(warehouse, "events", data_dir / "events.csv")
    second_version = import_file(warehouse, "events", changed)

    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 6)
    assert (second_version.inserted, second_version.updated, second_version.unchanged) == (0, 0, 6)
    assert query("select * from raw.events order by event_seq") == before


def test_reimporting_bad_rows_records_them_once(warehouse, write_csv, query):
    path = write_csv(BAD_EVENTS)
    import_file(warehouse, "events", path)

    again = import_file(warehouse, "events", path)

    assert (again.inserted, again.unchanged, again.quarantined) == (0, 2, 8)
    assert query("select count(*) from ops.quarantine") == [(8,)]


def test_wrong_header_names_the_columns_and_writes_nothing(warehouse, write_csv, query):
    path = write_csv("event_id,event_type,contact_id,occured_at\ne-1,email_open,c-1,2024-06-01\n")

    with pytest.raises(LeadflowError) as raised:
        import_file(warehouse, "events", path)

    assert "missing required column(s): occurred_at" in str(raised.value)
    assert "unknown column(s): occured_at" in str(raised.value)
    assert query("select count(*) from ops.import_runs") == [(0,)]


def test_a_header_needs_contact_id_or_visitor_id(warehouse, write_csv):
    path = write_csv("event_id,event_type,occurred_at\ne-1,email_open,2024-06-01\n")

    with pytest.raises(LeadflowError, match="contact_id or visitor_id"):
        import_file(warehouse, "events", path)
