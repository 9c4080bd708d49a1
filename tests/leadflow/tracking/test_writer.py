"""EventWriter: batches by size and by time, close writes everything, outages keep events."""

from __future__ import annotations

import datetime as dt
import os
import string
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
    mail_event_row,
    new_event_id,
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
    assert len(row[0]) == 32 and row[-1] == '{"a":1}' and row[-3] is False


@pytest.mark.parametrize(
    "link",
    [{}, {"link_id": "L-1", "link_tag": "product", "url": "https://www.example.com/p?q=1"}],
)
def test_the_row_of_an_open_or_click_is_the_row_of_the_same_event(link):
    event = {
        "event_type": "email_click" if link else "email_open",
        "occurred_at": AT,
        "contact_id": "C-1",
        "campaign_id": "newsletter",
        "step_id": "send_1",
        "is_machine": True,
        "user_agent": "Barracuda",
        "properties": {"outbox_id": 7, "machine_reason": "user_agent"},
        **link,
    }
    fields = {
        name: value for name, value in event.items() if name not in ("event_type", "occurred_at")
    }
    row = mail_event_row(event["event_type"], AT, **fields)
    assert row[1:] == event_row(event)[1:]  # all but the new event id
    assert len(row[0]) == 32 and row[0] != event_row(event)[0]


def test_a_full_batch_is_written_without_waiting_for_the_interval(warehouse):
    with EventWriter(warehouse, batch_size=10, flush_interval=3600) as writer:
        for n in range(25):
            writer.add(click(n))
        wait_for(lambda: count(warehouse, "raw.events") == 20)
        assert writer.pending() == 5  # the rest waits for a full batch or the interval
    assert count(warehouse, "raw.events") == 25  # close wrote it


def test_waiting_full_batches_go_in_one_copy_up_to_max_batch(warehouse):
    writer = EventWriter(warehouse, batch_size=10, flush_interval=3600, max_batch=20)
    for n in range(35):  # the thread is not started yet: 3 full batches and 5 more wait
        writer.add(click(n))
    writer.start()
    wait_for(lambda: count(warehouse, "raw.events") == 30)
    assert writer.pending() == 5  # not a full batch: it waits for the interval
    writer.close()
    # One transaction per COPY: 20 (max_batch), then the third full batch, then the rest.
    assert rows_per_transaction(warehouse) == [20, 10, 5]


def rows_per_transaction(engine) -> list[int]:
    rows = events(engine, "xmin::text::bigint")
    sizes: dict[int, int] = {}
    for (transaction,) in rows:
        sizes[transaction] = sizes.get(transaction, 0) + 1
    return [sizes[transaction] for transaction in sorted(sizes)]


def test_event_ids_are_unique_also_in_a_forked_child():
    ids = {new_event_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    hex_digits = set(string.hexdigits.lower())
    assert all(len(event_id) == 32 and set(event_id) <= hex_digits for event_id in ids)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report its next id and leave at once
        os.write(writer, new_event_id().encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    child_id = os.read(reader, 64).decode()
    os.close(reader)
    assert len(child_id) == 32 and child_id[:16] != next(iter(ids))[:16]


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
