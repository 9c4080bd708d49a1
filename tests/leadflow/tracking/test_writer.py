"""EventWriter: batches by size and by time, close writes everything, outages keep events."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa

from leadflow.tracking.writer import (
    BufferFull,
    EventError,
    EventWriter,
    WriterClosed,
    event_row,
    insert_events,
)
from tests.leadflow.tracking.data import count, events

AT = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)


def click(n: int, **extra):
    return {"event_type": "email_click", "contact_id": f"C-{n}", "occurred_at": AT, **extra}


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_event_rows_are_checked_before_buffering():
    with pytest.raises(EventError, match="unknown event type 'email_opened'"):
        event_row({"event_type": "email_opened"})
    with pytest.raises(EventError, match=r"unknown raw\.events column"):
        event_row({"event_type": "email_open", "colour": "red"})
    with pytest.raises(EventError, match="timezone-aware"):
        event_row({"event_type": "email_open", "occurred_at": dt.datetime(2026, 1, 1)})
    row = event_row({"event_type": "email_open", "properties": {"a": 1}})
    assert len(row[0]) == 32 and row[-1] == '{"a": 1}' and row[-3] is False


def test_a_full_batch_is_written_without_waiting_for_the_interval(warehouse):
    with EventWriter(warehouse, batch_size=10, flush_interval=3600) as writer:
        for n in range(25):
            writer.add(click(n))
        wait_for(lambda: count(warehouse, "raw.events") == 20)
        assert writer.pending() == 5  # the rest waits for a full batch or the interval
    assert count(warehouse, "raw.events") == 25  # close wrote it


def test_a_partial_batch_is_written_after_the_interval(warehouse):
    with EventWriter(warehouse, batch_size=1000, flush_interval=0.1) as writer:
        for n in range(3):
            writer.add(click(n, properties={"n": n}))
        wait_for(lambda: count(warehouse, "raw.events") == 3, timeout=2)
        assert writer.written == 3
    assert events(warehouse, "contact_id, occurred_at, properties->>'n', is_machine") == [
        (f"C-{n}", AT, str(n), False) for n in range(3)
    ]


def test_a_closed_writer_takes_nothing(warehouse):
    writer = EventWriter(warehouse, batch_size=10, flush_interval=1).start()
    writer.close()
    with pytest.raises(WriterClosed):
        writer.add(click(1))


def test_a_warehouse_outage_keeps_events_and_caps_the_buffer(warehouse, warehouse_url):
    gone = sa.create_engine(warehouse_url.set(database="no_such_database_here"))
    writer = EventWriter(gone, batch_size=5, flush_interval=0.01, max_buffered=12).start()
    for n in range(12):
        writer.add(click(n))
    with pytest.raises(BufferFull):
        writer.add(click(12))
    time.sleep(0.3)  # several failed attempts
    assert writer.pending() == 12 and writer.written == 0
    writer.engine = warehouse  # the warehouse is back
    wait_for(lambda: writer.pending() == 0)
    writer.close()
    assert count(warehouse, "raw.events") == 12
    gone.dispose()


def test_a_bad_row_does_not_block_the_others(warehouse):
    with warehouse.begin() as connection:
        insert_events(connection, [click(0, event_id="taken")])
    with EventWriter(warehouse, batch_size=100, flush_interval=3600) as writer:
        writer.add(click(1))
        writer.add(click(2, event_id="taken"))  # the primary key exists
        writer.add(click(3))
    assert [row[0] for row in events(warehouse, "contact_id")] == ["C-0", "C-1", "C-3"]


def test_add_now_is_durable_on_return(warehouse):
    writer = EventWriter(warehouse, batch_size=100, flush_interval=3600)
    event_id = writer.add_now(click(7, properties={"scope": "all"}))
    assert events(warehouse, "event_id, contact_id, properties") == [
        (event_id, "C-7", {"scope": "all"})
    ]
    assert writer.bound() == 200
