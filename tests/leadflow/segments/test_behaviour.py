"""Behaviour conditions: human events only, before the cut-off, inside the window.

As of D = 2025-06-30 the cut-off is 2025-07-01 00:00 UTC; `within: 30d` starts at
2025-06-01 00:00 UTC (dates in (D − 30, D]).
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.leadflow.segments.data import add_contacts, add_events, at, members

D = dt.date(2025, 6, 30)
JUST_BEFORE_CUTOFF = at("2025-06-30T23:59:59.999999")
CUTOFF = at("2025-07-01T00:00:00")
WINDOW_30D_START = at("2025-06-01T00:00:00")
JUST_BEFORE_WINDOW = at("2025-05-31T23:59:59.999999")


def _contacts(db, *ids):
    add_contacts(db, *({"contact_id": contact_id} for contact_id in ids))


def test_opened_counts_human_opens_before_the_cutoff(db):
    _contacts(db, "last_moment", "at_cutoff", "machine", "berlin", "clicked", "anonymous")
    add_events(
        db,
        {
            "contact_id": "last_moment",
            "event_type": "email_open",
            "occurred_at": JUST_BEFORE_CUTOFF,
        },
        {"contact_id": "at_cutoff", "event_type": "email_open", "occurred_at": CUTOFF},
        {
            "contact_id": "machine",
            "event_type": "email_open",
            "occurred_at": at("2025-06-01T10:00"),
            "is_machine": True,
        },
        # 01:30 in Berlin on 1 July is 23:30 UTC on 30 June: before the cut-off.
        {
            "contact_id": "berlin",
            "event_type": "email_open",
            "occurred_at": at("2025-07-01T01:30+02:00"),
        },
        {"contact_id": "clicked", "event_type": "email_click", "occurred_at": at("2025-06-02")},
        {"contact_id": None, "event_type": "email_open", "occurred_at": at("2025-06-02")},
    )
    assert members(db, {"opened": {}}, D) == {"last_moment", "berlin"}


def test_window_of_30_days_starts_at_d_minus_29(db):
    _contacts(db, "first_instant", "just_before", "inside")
    add_events(
        db,
        {
            "contact_id": "first_instant",
            "event_type": "email_open",
            "occurred_at": WINDOW_30D_START,
        },
        {
            "contact_id": "just_before",
            "event_type": "email_open",
            "occurred_at": JUST_BEFORE_WINDOW,
        },
        {"contact_id": "inside", "event_type": "email_open", "occurred_at": at("2025-06-15T12:00")},
    )
    assert members(db, {"opened": {"within": "30d"}}, D) == {"first_instant", "inside"}
    assert members(db, {"opened": {"within": "31d"}}, D) == {
        "first_instant",
        "just_before",
        "inside",
    }


@pytest.mark.parametrize(
    ("as_of", "window", "first_instant"),
    [
        # Months and years are calendar units: (D − 1m, D], day of month clamped.
        (dt.date(2025, 6, 15), "1m", "2025-05-16T00:00"),
        (dt.date(2025, 3, 30), "1m", "2025-03-01T00:00"),  # 30 Mar − 1m = 28 Feb
        (dt.date(2024, 2, 29), "1y", "2023-03-01T00:00"),  # 29 Feb − 1y = 28 Feb 2023
        (dt.date(2025, 6, 30), "2w", "2025-06-17T00:00"),
    ],
)
def test_calendar_windows(db, as_of, window, first_instant):
    _contacts(db, "inside", "outside")
    start = at(first_instant)
    add_events(
        db,
        {"contact_id": "inside", "event_type": "download", "occurred_at": start},
        {
            "contact_id": "outside",
            "event_type": "download",
            "occurred_at": start - dt.timedelta(microseconds=1),
        },
    )
    assert members(db, {"downloaded": {"within": window}}, as_of) == {"inside"}


def test_opened_a_mailing(db):
    _contacts(db, "m1", "m2", "no_mailing")
    add_events(
        db,
        {
            "contact_id": "m1",
            "event_type": "email_open",
            "occurred_at": at("2025-06-01"),
            "mailing_id": "m1",
        },
        {
            "contact_id": "m2",
            "event_type": "email_open",
            "occurred_at": at("2025-06-01"),
            "mailing_id": "m2",
        },
        {"contact_id": "no_mailing", "event_type": "email_open", "occurred_at": at("2025-06-01")},
    )
    assert members(db, {"opened": {"mailing": "m1"}}, D) == {"m1"}


def test_clicked_by_link_tag_and_mailing(db):
    _contacts(db, "link", "tag", "both", "machine")
    day = at("2025-06-10")
    add_events(
        db,
        {
            "contact_id": "link",
            "event_type": "email_click",
            "occurred_at": day,
            "link_id": "l1",
            "link_tag": "pricing",
            "mailing_id": "m1",
        },
        {
            "contact_id": "tag",
            "event_type": "email_click",
            "occurred_at": day,
            "link_id": "l2",
            "link_tag": "hydrostat_3000",
            "mailing_id": "m2",
        },
        {
            "contact_id": "both",
            "event_type": "email_click",
            "occurred_at": day,
            "link_id": "l3",
            "link_tag": "hydrostat_3000",
            "mailing_id": "m1",
        },
        {
            "contact_id": "machine",
            "event_type": "email_click",
            "occurred_at": day,
            "link_id": "l1",
            "link_tag": "hydrostat_3000",
            "mailing_id": "m1",
            "is_machine": True,
        },
    )
    assert members(db, {"clicked": {"link": "l1"}}, D) == {"link"}
    assert members(db, {"clicked": {"tag": "hydrostat_3000"}}, D) == {"tag", "both"}
    assert members(db, {"clicked": {"tag": "hydrostat_3000", "mailing": "m1"}}, D) == {"both"}
    assert members(db, {"clicked": {}}, D) == {"link", "tag", "both"}


def test_downloaded_an_asset(db):
    _contacts(db, "ebook", "datasheet", "old")
    add_events(
        db,
        {
            "contact_id": "ebook",
            "event_type": "download",
            "occurred_at": at("2025-06-20"),
            "asset_id": "ebook_antriebslosigkeit",
        },
        {
            "contact_id": "datasheet",
            "event_type": "download",
            "occurred_at": at("2025-06-20"),
            "asset_id": "datasheet_hs3000",
        },
        {
            "contact_id": "old",
            "event_type": "download",
            "occurred_at": at("2024-01-01"),
            "asset_id": "ebook_antriebslosigkeit",
        },
    )
    assert members(db, {"downloaded": {"asset": "ebook_antriebslosigkeit"}}, D) == {"ebook", "old"}
    condition = {"downloaded": {"asset": "ebook_antriebslosigkeit", "within": "90d"}}
    assert members(db, condition, D) == {"ebook"}


VISITS = {
    "hs3000": "https://www.hydro-example.de/produkte/hydrostat-3000",
    "hs3000_query": "https://www.hydro-example.de/produkte/hydrostat-3000?utm=mail",
    "english": "https://www.hydro-example.de/en/produkte/hydrostat-3000",
    "pricing": "https://www.hydro-example.fr/fr/preise?x=1",
    "home": "https://www.hydro-example.de",
    "path_only": "/produkte/hydrostat-2000",
    "upper": "https://www.hydro-example.de/Produkte/hydrostat-3000",
    "percent": "https://www.hydro-example.de/50%_off/now",
    "lookalike": "https://www.hydro-example.de/50xyoff/now",
}


@pytest.fixture
def visits(db):
    _contacts(db, *VISITS, "no_url")
    add_events(
        db,
        *(
            {
                "contact_id": name,
                "event_type": "web_visit",
                "occurred_at": at("2025-06-20"),
                "url": url,
            }
            for name, url in VISITS.items()
        ),
        {"contact_id": "no_url", "event_type": "web_visit", "occurred_at": at("2025-06-20")},
    )
    return db


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # A pattern starting with / matches the path (after scheme://host), query included.
        ("/produkte/hydrostat-3000*", {"hs3000", "hs3000_query"}),
        ("/produkte/hydrostat-3000", {"hs3000"}),
        ("/produkte/*", {"hs3000", "hs3000_query", "path_only"}),
        ("/", {"home"}),  # no path is the root path
        ("*/preise*", {"pricing"}),  # any other pattern matches the whole URL
        ("https://www.hydro-example.de/*3000", {"hs3000", "english", "upper"}),
        ("/50%_off/*", {"percent"}),  # % and _ are literal
        ("*", set(VISITS)),  # a NULL url matches nothing
    ],
)
def test_visited_url_patterns(visits, pattern, expected):
    assert members(visits, {"visited": {"url_pattern": pattern}}, D) == expected


def test_events_min_count_within_a_window(db):
    _contacts(db, "three", "one_machine", "one_early", "one_at_cutoff", "other_type")
    inside = [at("2025-06-25"), at("2025-06-28"), JUST_BEFORE_CUTOFF]
    rows = [{"contact_id": "three", "occurred_at": moment} for moment in inside]
    rows += [{"contact_id": "one_machine", "occurred_at": moment} for moment in inside[:2]]
    rows += [{"contact_id": "one_machine", "occurred_at": inside[2], "is_machine": True}]
    rows += [{"contact_id": "one_early", "occurred_at": moment} for moment in inside[:2]]
    rows += [{"contact_id": "one_early", "occurred_at": at("2025-06-23T23:59:59.999999")}]
    rows += [{"contact_id": "one_at_cutoff", "occurred_at": moment} for moment in inside[:2]]
    rows += [{"contact_id": "one_at_cutoff", "occurred_at": CUTOFF}]
    add_events(db, *({"event_type": "fair_visit", **row} for row in rows))
    add_events(
        db,
        *(
            {"contact_id": "other_type", "event_type": "web_visit", "occurred_at": moment}
            for moment in inside
        ),
    )
    # within 7d as of 30 June: from 24 June 00:00 UTC.
    condition = {"events": {"type": "fair_visit", "min_count": 3, "within": "7d"}}
    assert members(db, condition, D) == {"three"}
    condition = {"events": {"type": "fair_visit", "min_count": 3, "within": "8d"}}
    assert members(db, condition, D) == {"three", "one_early"}
    condition = {"events": {"type": "fair_visit", "min_count": 2}}
    assert members(db, condition, D) == {"three", "one_machine", "one_early", "one_at_cutoff"}


def test_inactive(db):
    _contacts(
        db,
        "never",
        "visited_at_start",
        "machine_only",
        "sent_only",
        "just_before",
        "purchase",
        "after_cutoff",
    )
    add_events(
        db,
        {
            "contact_id": "visited_at_start",
            "event_type": "web_visit",
            "occurred_at": WINDOW_30D_START,
        },
        {
            "contact_id": "machine_only",
            "event_type": "email_open",
            "occurred_at": at("2025-06-20"),
            "is_machine": True,
        },
        # Sends and deliveries are not the contact's activity.
        {"contact_id": "sent_only", "event_type": "email_sent", "occurred_at": at("2025-06-20")},
        {
            "contact_id": "sent_only",
            "event_type": "email_delivered",
            "occurred_at": at("2025-06-20"),
        },
        {"contact_id": "just_before", "event_type": "download", "occurred_at": JUST_BEFORE_WINDOW},
        {"contact_id": "purchase", "event_type": "purchase", "occurred_at": at("2025-06-20")},
        {"contact_id": "after_cutoff", "event_type": "email_click", "occurred_at": CUTOFF},
    )
    assert members(db, {"inactive": {"days": 30}}, D) == {
        "never",
        "machine_only",
        "sent_only",
        "just_before",
        "after_cutoff",
    }
    assert members(db, {"inactive": {"days": 31}}, D) == {
        "never",
        "machine_only",
        "sent_only",
        "after_cutoff",
    }
