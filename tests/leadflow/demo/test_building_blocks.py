"""The generator's building blocks, without a database: calendar arithmetic, COPY text,
names and addresses, chunking. Expected values are worked out by hand."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from leadflow.demo import copytext as ct
from leadflow.demo import vocabulary
from leadflow.demo.population import (
    DomainRegistry,
    Skeleton,
    ascii_slug,
    draw_skeleton,
    email_local_part,
)
from leadflow.demo.timeline import Timeline, add_months, years_before


def day(text: str) -> int:
    return ct.day_number(dt.date.fromisoformat(text))


def days(*texts: str) -> np.ndarray:
    return np.array([day(t) for t in texts])


def as_dates(numbers) -> list[str]:
    return [d.decode() for d in ct.dates(np.asarray(numbers))]


# --- calendar -------------------------------------------------------------------------------------


def test_add_months_clips_to_the_end_of_the_month():
    start = days("2024-01-31", "2023-01-31", "2024-02-29", "2021-03-19")
    assert as_dates(add_months(start, np.array([1, 1, 12, 24]))) == [
        "2024-02-29",
        "2023-02-28",
        "2025-02-28",
        "2023-03-19",
    ]


def test_years_before_handles_leap_days():
    assert years_before(dt.date(2024, 2, 29), 3) == dt.date(2021, 2, 28)
    assert years_before(dt.date(2026, 11, 27), 6) == dt.date(2020, 11, 27)


def test_next_maintenance_is_the_first_due_date_after_as_of():
    timeline = Timeline(dt.date(2026, 11, 27), 6)
    installed = days("2021-03-19", "2024-11-27", "2026-11-27", "2025-06-30")
    # 2021-03-19: due 2023, 2025 (passed), 2027. 2024-11-27: due exactly on as_of → next one.
    assert as_dates(timeline.next_maintenance(installed, 24)) == [
        "2027-03-19",
        "2028-11-27",
        "2028-11-27",
        "2027-06-30",
    ]
    # Every 36 months (HydroStat 3000): 2021-03-19 → 2024-03-19 (passed) → 2027-03-19.
    assert as_dates(timeline.next_maintenance(installed, 36)) == [
        "2027-03-19",
        "2027-11-27",
        "2029-11-27",
        "2028-06-30",
    ]


def test_cutoff_and_history_window():
    timeline = Timeline(dt.date(2026, 11, 27), 6)
    assert timeline.cutoff == day("2026-11-28") * 86_400
    assert timeline.history_start_day == day("2020-11-28")
    assert timeline.tracking_start == timeline.cutoff - 730 * 86_400


def test_upsell_install_days():
    timeline = Timeline(dt.date(2026, 11, 27), 6)
    valid = set(timeline.upsell_install_days.tolist())
    assert day("2021-03-19") in valid  # maintenance due 2027-03-19
    assert day("2023-11-01") in valid  # more than 3 years ago, due 2025-11-01 then 2027-11-01
    assert day("2022-03-19") not in valid  # next due 2028-03-19
    # Due 2027-11-25: next calendar year, but not within a year (and its margin) of as_of.
    assert day("2021-11-25") not in valid
    assert day("2023-11-25") not in valid  # less than 3 years (and the margin) ago
    assert day("2021-01-10") not in valid  # due 2027-01-10, but ordered before the history


def test_upsell_needs_five_years_of_history():
    with pytest.raises(ValueError, match="too short"):
        _ = Timeline(dt.date(2026, 1, 1), 3).upsell_install_days
    for as_of in (dt.date(2026, 1, 1), dt.date(2026, 5, 30), dt.date(2026, 12, 31)):
        assert Timeline(as_of, 5).upsell_install_days.size > 0


def test_newsletter_goes_out_on_tuesday_mornings():
    timeline = Timeline(dt.date(2026, 11, 27), 6)
    sends = timeline.newsletter_issues
    instants = [dt.datetime.fromtimestamp(int(s), dt.UTC) for s in sends]
    assert {i.strftime("%A %H:%M") for i in instants} == {"Tuesday 08:00"}
    assert len(instants) == 104  # two years of weeks
    assert instants[-1].date() == dt.date(2026, 11, 24)


def test_fair_editions_are_the_ones_held_by_as_of():
    timeline = Timeline(dt.date(2026, 11, 27), 6)
    assert timeline.latest_occurrence("Hannover Messe").name == "Hannover Messe 2026"
    assert (
        timeline.latest_occurrence("Global Industrie Paris").name == "Global Industrie Paris 2026"
    )
    # EMO is in Hannover in odd years only.
    assert timeline.latest_occurrence("EMO Hannover").name == "EMO Hannover 2025"
    emo = [o.year for o in timeline.fair_occurrences if o.fair.name == "EMO Hannover"]
    assert emo == [2021, 2023, 2025]
    # During the fair, its last edition is the one before.
    during = Timeline(dt.date(2026, 4, 23), 6)
    assert during.latest_occurrence("Hannover Messe").name == "Hannover Messe 2025"


# --- COPY text ------------------------------------------------------------------------------------


def test_timestamps_and_dates():
    seconds = np.array([0, 86_399, day("2026-11-27") * 86_400 + 8 * 3600 + 5 * 60 + 9])
    assert ct.timestamps(seconds) == [
        b"1970-01-01 00:00:00+00",
        b"1970-01-01 23:59:59+00",
        b"2026-11-27 08:05:09+00",
    ]
    assert ct.dates(days("2024-02-29", "1999-12-31")) == [b"2024-02-29", b"1999-12-31"]


def test_ids_amounts_and_arrays():
    assert ct.padded_ids("ACC-", np.array([1, 42]), 7) == [b"ACC-0000001", b"ACC-0000042"]
    assert ct.cents(np.array([0, 5, 123_456])) == [b"0.00", b"0.05", b"1234.56"]
    assert ct.flag_arrays(("x", "y")).tolist() == [b"{}", b"{x}", b"{y}", b"{x,y}"]


def test_rows_join_columns_and_constants():
    assert ct.rows([[b"a", b"b"], ct.NULL, [b"1", b"2"]]) == b"a\t\\N\t1\nb\t\\N\t2\n"
    assert ct.rows([[], b"x"]) == b""


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _strings(item)
    elif dataclasses.is_dataclass(value):
        for item in dataclasses.astuple(value):
            yield from _strings(item)


def test_vocabulary_needs_no_copy_escaping():
    data = [getattr(vocabulary, name) for name in dir(vocabulary) if name.isupper()]
    texts = list(_strings(data))
    assert len(texts) > 500
    assert [t for t in texts if any(ch in t for ch in "\t\n\r\\")] == []


# --- names and addresses --------------------------------------------------------------------------


def test_ascii_slug_spells_out_umlauts_and_drops_accents():
    assert ascii_slug("Müller & Söhne", "-") == "mueller-soehne"
    assert ascii_slug("D'Angelo") == "dangelo"
    assert ascii_slug("Établissements Gauthier", "-") == "etablissements-gauthier"
    assert ascii_slug("Iñaki Weiß") == "inakiweiss"


def test_email_local_parts_follow_the_company_convention():
    assert email_local_part("{first}.{last}", "Jörg", "Weiß") == "joerg.weiss"
    assert email_local_part("{f}.{last}", "Élodie", "Lefèvre") == "e.lefevre"
    assert email_local_part("{last}", "Anna", "De Luca") == "deluca"


def test_company_domains_are_unique_and_reserved():
    registry = DomainRegistry()
    assert registry.claim("Huber Metallbau", "DE") == "huber-metallbau.de.example"
    assert registry.claim("Huber Metallbau", "DE") == "huber-metallbau-2.de.example"
    assert registry.claim("Huber Metallbau", "AT") == "huber-metallbau.at.example"


# --- skeleton and chunks --------------------------------------------------------------------------


def test_chunks_split_accounts_by_their_contacts():
    contacts = np.array([3, 1, 4, 1, 5])
    empty = np.zeros(5, dtype=bool)
    skeleton = Skeleton(empty, empty, contacts, contacts, empty, empty)
    # Running totals 3, 4, 8, 9, 14: chunks close once they reach 4 contacts.
    assert skeleton.chunks(4) == [slice(0, 2), slice(2, 3), slice(3, 5)]
    assert skeleton.chunks(100) == [slice(0, 5)]
    assert skeleton.first_contact.tolist() == [0, 3, 4, 8, 9]


def test_skeleton_has_every_contact_and_an_upsell_customer():
    skeleton = draw_skeleton(1_001, np.random.default_rng(3))
    assert skeleton.size == 250
    assert skeleton.contacts.sum() == 1_001
    assert skeleton.contacts.min() >= 1
    assert skeleton.customer[0] and skeleton.upsell[0]
    assert (skeleton.upsell <= skeleton.customer).all()
    assert 0.25 <= skeleton.customer.mean() <= 0.55
    assert ((skeleton.employees >= 10) & (skeleton.employees <= 5000)).all()
