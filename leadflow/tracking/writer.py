"""Buffered, batched writes of tracking events into raw.events with COPY.

An open or a click must be answered in a millisecond or two, and one INSERT with its own
commit per request would cost more than everything else the request does. So request
handlers only `add` the event to an in-memory buffer and answer; a background thread writes
the buffer with one `COPY raw.events ... FROM STDIN` and one commit per batch. It starts a
batch as soon as `batch_size` events are waiting, or `flush_interval` seconds after the
oldest waiting event arrived, whichever comes first.

Durability bound — what a crash can lose. `close()` (the service's graceful shutdown, e.g.
on SIGTERM) writes everything, so a clean stop loses nothing. A crash (kill -9, power loss)
loses the events accepted but not yet committed: the buffer plus the batch being written at
that moment. While the warehouse keeps up that is at most `2 × batch_size` events (a full
batch in flight plus a buffer that triggers the next one when it is full) and never older
than `flush_interval` seconds plus one COPY's duration. `bound()` returns the event count;
tests/leadflow/tracking/test_serve.py kills a served process and checks it.

If the warehouse is unreachable the events stay in the buffer and the writer retries with a
growing pause; beyond `max_buffered` events `add` refuses more (BufferFull), so a long
outage costs bounded memory and the request handlers can still answer (an open pixel is
always returned; it then records nothing).

Writes that must be durable before the response (an unsubscribe) do not go through the
buffer: `add_now` writes and commits in the caller's thread, and `insert_events` writes in
the caller's own transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadflow.config.filters import EventType
from leadflow.errors import LeadflowError
from leadflow.warehouse.tables import EVENT_COLUMNS, EVENTS

log = logging.getLogger(__name__)

COLUMNS = EVENT_COLUMNS
# The event types raw.events accepts (its CHECK constraint; the filter language's list).
EVENT_TYPES = frozenset(get_args(EventType))
COPY_STATEMENT = f"COPY raw.events ({', '.join(COLUMNS)}) FROM STDIN"


class EventError(LeadflowError):
    """An event that is not a valid raw.events row."""


class BufferFull(LeadflowError):
    """The warehouse has not taken events for a while and the buffer reached its limit."""


class WriterClosed(LeadflowError):
    """The writer was closed; it takes no more events."""


def event_row(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """The raw.events row of `event` in COLUMNS order (event_id generated when missing).

    Checked here, in the request, so a bad event fails its caller instead of a whole batch.
    """
    unknown = set(event) - set(COLUMNS)
    if unknown:
        raise EventError(f"unknown raw.events column(s): {', '.join(sorted(unknown))}")
    event_type = event.get("event_type")
    if event_type not in EVENT_TYPES:
        raise EventError(f"unknown event type {event_type!r}")
    values = dict(event)
    values["event_id"] = str(values.get("event_id") or uuid.uuid4().hex)
    occurred_at = values.get("occurred_at") or dt.datetime.now(dt.UTC)
    if not isinstance(occurred_at, dt.datetime) or occurred_at.tzinfo is None:
        raise EventError("occurred_at must be a timezone-aware datetime")
    values["occurred_at"] = occurred_at
    values["is_machine"] = bool(values.get("is_machine", False))
    properties = values.get("properties")
    values["properties"] = None if properties is None else json.dumps(properties)
    return tuple(values.get(name) for name in COLUMNS)


def insert_events(connection: Connection, events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Insert events in the caller's transaction (durable with whatever else it commits);
    their event ids."""
    rows = [event_row(event) for event in events]
    _insert_rows(connection, rows)
    return [row[0] for row in rows]


def _insert_rows(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    position = COLUMNS.index("properties")
    values = []
    for row in rows:
        value = dict(zip(COLUMNS, row, strict=True))
        # event_row serialised the properties for COPY; the JSONB type serialises again.
        value["properties"] = None if row[position] is None else json.loads(row[position])
        values.append(value)
    connection.execute(sa.insert(EVENTS), values)


def copy_rows(connection: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """COPY rows (COLUMNS order) into raw.events and commit."""
    with connection.cursor() as cursor, cursor.copy(COPY_STATEMENT) as copy:
        for row in rows:
            copy.write_row(row)
    connection.commit()


class EventWriter:
    """Buffers events and writes them in batches with COPY (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_buffered: int | None = None,
    ) -> None:
        if engine.dialect.driver != "psycopg":
            raise EventError("the event writer needs the psycopg driver (postgresql+psycopg://)")
        self.engine = engine
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffered = max_buffered or 200 * batch_size
        self.written = 0
        self._buffer: list[tuple[Any, ...]] = []
        self._oldest: float | None = None  # monotonic time the oldest buffered event arrived
        self._in_flight = 0
        self._condition = threading.Condition()
        self._write_lock = threading.Lock()
        self._closing = False
        self._closed = False
        self._connection: Any = None
        self._thread: threading.Thread | None = None

    # --- the request side ----------------------------------------------------------------

    def add(self, event: Mapping[str, Any]) -> str:
        """Buffer one event; its event_id. Never waits for the warehouse."""
        row = event_row(event)
        with self._condition:
            if self._closing:
                raise WriterClosed("the event writer is closed")
            if len(self._buffer) + self._in_flight >= self.max_buffered:
                raise BufferFull(f"{self.max_buffered} events are waiting for the warehouse")
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.append(row)
            if len(self._buffer) >= self.batch_size:
                self._condition.notify()
        return row[0]

    def add_now(self, event: Mapping[str, Any]) -> str:
        """Write one event and commit before returning (for writes that must be durable)."""
        row = event_row(event)
        with self.engine.begin() as connection:
            _insert_rows(connection, [row])
        return row[0]

    def pending(self) -> int:
        """Events accepted and not yet committed."""
        with self._condition:
            return len(self._buffer) + self._in_flight

    def bound(self) -> int:
        """The most events a crash can lose while the warehouse keeps up."""
        return 2 * self.batch_size

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> EventWriter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
            self._thread.start()
        return self

    def flush(self) -> int:
        """Write everything buffered now, in the caller's thread; the number written."""
        total = 0
        while batch := self._take():
            try:
                self._write(batch)
            except BaseException:
                self._give_back(batch)
                raise
            self._done(len(batch))
            total += len(batch)
        return total

    def close(self, *, retries: int = 5) -> None:
        """Stop taking events, write all of them, release the connection."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join()
        for attempt in range(retries):
            try:
                self.flush()
                break
            except (psycopg.Error, sa.exc.SQLAlchemyError) as error:
                log.warning("flushing events on close failed (attempt %d): %s", attempt + 1, error)
                self._reset()
                time.sleep(min(0.2 * 2**attempt, 2.0))
        lost = self.pending()
        if lost:
            log.error("%d tracking events could not be written before shutdown", lost)
        self._reset()
        self._closed = True

    def __enter__(self) -> EventWriter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the writing thread ------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while True:
            with self._condition:
                while not self._closing and not self._due():
                    self._condition.wait(self._wait_time())
                if self._closing:
                    return
            batch = self._take()
            if not batch:
                continue
            try:
                self._write(batch)
            except (psycopg.Error, sa.exc.SQLAlchemyError, OSError) as error:
                failures += 1
                log.warning("writing %d events failed, will retry: %s", len(batch), error)
                self._give_back(batch)
                self._reset()
                with self._condition:
                    self._condition.wait_for(lambda: self._closing, min(0.1 * 2**failures, 5.0))
                continue
            failures = 0
            self._done(len(batch))

    def _due(self) -> bool:
        if len(self._buffer) >= self.batch_size:
            return True
        return self._oldest is not None and time.monotonic() - self._oldest >= self.flush_interval

    def _wait_time(self) -> float:
        if self._oldest is None:
            return self.flush_interval
        return max(self.flush_interval - (time.monotonic() - self._oldest), 0.001)

    def _take(self) -> list[tuple[Any, ...]]:
        with self._condition:
            batch = self._buffer[: self.batch_size]
            del self._buffer[: self.batch_size]
            self._in_flight += len(batch)
            if not self._buffer:
                self._oldest = None
            return batch

    def _give_back(self, batch: list[tuple[Any, ...]]) -> None:
        with self._condition:
            self._buffer[:0] = batch
            self._in_flight -= len(batch)
            self._oldest = self._oldest or time.monotonic()

    def _done(self, count: int) -> None:
        with self._condition:
            self._in_flight -= count
            self.written += count

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        # One connection, one COPY at a time: flush() may run beside the writing thread.
        with self._write_lock:
            connection = self._psycopg()
            try:
                copy_rows(connection, batch)
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as error:
                # One bad row (e.g. a repeated event_id) must not block the good ones forever.
                connection.rollback()
                log.warning("a batch was rejected (%s); writing its rows one by one", error)
                self._write_one_by_one(connection, batch)

    def _write_one_by_one(self, connection: psycopg.Connection, batch: list[tuple]) -> None:
        for row in batch:
            try:
                copy_rows(connection, [row])
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as error:
                connection.rollback()
                log.error("dropped tracking event %s: %s", row[0], error)

    def _psycopg(self) -> psycopg.Connection:
        if self._connection is None:
            self._connection = self.engine.raw_connection()
        return self._connection.driver_connection

    def _reset(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # A broken connection may fail even to close.
            with contextlib.suppress(Exception):
                connection.invalidate()
