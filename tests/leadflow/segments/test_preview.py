"""`preview`: count, a sample by contact_id and the SQL of a configured segment."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from leadflow.config import load_config
from leadflow.errors import LeadflowError
from leadflow.paths import PROJECT_ROOT
from leadflow.segments import (
    DEFAULT_RELATIONS,
    PreviewContact,
    SegmentQueryError,
    fields_used,
    member_ids,
    preview,
    segment_filters,
)
from tests.leadflow.segments.data import TEST_RELATIONS, add_contacts, add_events, at

D = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def config():
    return load_config(PROJECT_ROOT / "include" / "config")


@pytest.fixture(scope="module")
def engine(segments_engine):
    """Committed rows: preview opens its own connections."""
    with segments_engine.begin() as connection:
        add_contacts(
            connection,
            *(
                {
                    "contact_id": f"c{number:02d}",
                    "email": f"c{number}@example.com",
                    "country": "DE" if number % 2 else "FR",
                    "customer_status": "existing_customer" if number % 3 == 0 else "lead",
                }
                for number in range(1, 13)
            ),
        )
        add_events(
            connection,
            *(
                {
                    "contact_id": f"c{number:02d}",
                    "event_type": "download",
                    "occurred_at": at("2025-06-01"),
                    "asset_id": "ebook_antriebslosigkeit",
                }
                for number in (2, 5, 7, 11)
            ),
        )
    return segments_engine


def test_preview_counts_and_samples_in_contact_id_order(engine, config):
    result = preview(engine, "ebook_downloaders", D, config, limit=3, relations=TEST_RELATIONS)
    assert result.segment == "ebook_downloaders"
    assert result.as_of == D
    assert result.count == 4
    assert result.sample == [
        PreviewContact("c02", "c2@example.com", "FR", "lead"),
        PreviewContact("c05", "c5@example.com", "DE", "lead"),
        PreviewContact("c07", "c7@example.com", "DE", "lead"),
    ]
    assert "FROM raw.events AS event" in result.sql
    assert "ebook_antriebslosigkeit" not in result.sql
    assert "ebook_antriebslosigkeit" in result.parameters.values()


def test_preview_of_field_segments(engine, config):
    # Existing customers: c03, c06, c09, c12; customers = new or existing.
    result = preview(engine, "customers", D, config, relations=TEST_RELATIONS)
    assert result.count == 4
    assert [contact.contact_id for contact in result.sample] == ["c03", "c06", "c09", "c12"]
    assert preview(engine, "customers", D, config, limit=0, relations=TEST_RELATIONS).sample == []


def test_member_ids_resolve_nested_segments(engine, config):
    filters = segment_filters(config)
    with engine.connect() as connection:
        ids = member_ids(
            connection,
            filters["fr_existing_customers"],
            D,
            relations=TEST_RELATIONS,
            segments=filters,
        )
    # tenant_code is NULL in the test facts: nobody is in the French tenant.
    assert ids == []
    assert fields_used(filters["fr_existing_customers"], filters) == [
        "customer_status",
        "tenant_code",
    ]


def test_unknown_segment(engine, config):
    with pytest.raises(
        LeadflowError, match=r"unknown segment 'custmers' \(did you mean 'customers'"
    ):
        preview(engine, "custmers", D, config, relations=TEST_RELATIONS)


def test_missing_column_is_a_clear_error_when_the_query_runs(engine, config):
    # raw.contacts has no customer_status column.
    relations = replace(TEST_RELATIONS, contacts="raw.contacts")
    with pytest.raises(SegmentQueryError) as raised:
        preview(engine, "customers", D, config, relations=relations)
    message = str(raised.value)
    assert "segment 'customers' cannot run" in message
    assert "column contact.customer_status does not exist" in message
    assert "raw.contacts must have a column per field the filter uses (customer_status)" in message


def test_missing_relation_says_to_build_first(engine, config):
    with pytest.raises(
        SegmentQueryError, match=r'"marts.dim_contacts" does not exist .*leadflow build'
    ):
        preview(engine, "customers", D, config, relations=DEFAULT_RELATIONS)
