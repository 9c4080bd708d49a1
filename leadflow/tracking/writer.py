"""Buffered, batched writes of tracking events into raw.events with COPY.

An open or a click must be answered in a millisecond or two, and one INSERT with its own
commit per request would cost more than everything else the request does. So request
handlers only `add` the event to an in-memory buffer and answer; a background thread writes
the buffer with one `COPY raw.events ... FROM STDIN` and one commit per batch. It starts a
batch as soon as `batch_size` events are waiting, or `flush_interval` seconds after the
oldest waiting event arrived, whichever comes first. A batch takes every full batch waiting,
up to `max_batch` events (10 × `batch_size` by default): when traffic outpaces the commits,
batches grow instead of the queue, and each event costs the warehouse less.

The request pays only for checking the event and making its row (`event_row`: a few
microseconds, no system call — event ids are a per-process random prefix and a counter,
properties are serialised by msgspec; opens and clicks skip the checks with
`mail_event_row`); the COPY formats the rows in psycopg's C code.

Durability bound — what a crash can lose. `close()` (the service's graceful shutdown, e.g.
on SIGTERM) writes everything, so a clean stop loses nothing. A crash (kill -9, power loss)
loses the events accepted but not yet committed: the buffer plus the batch being written at
that moment. While the warehouse keeps up (a batch is committed before `batch_size` more
events arrive) that is at most `2 × batch_size` events (a full batch in flight plus a buffer
that triggers the next one when it is full) and never older than `flush_interval` seconds
plus one COPY's duration. `bound()` returns the event count;
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
import itertools
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args

import msgspec
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadflow.config.filters import EventType
from leadflow.errors import LeadflowError
from leadflow.warehouse.tables import EVENT_COLUMNS, EVENTS

log = logging.getLogger(__name__)

COLUMNS = EVENT_COLUMNS
_COLUMN_SET = frozenset(COLUMNS)
_EVENT_ID, _OCCURRED_AT, _IS_MACHINE, _PROPERTIES = (
    COLUMNS.index(name) for name in ("event_id", "occurred_at", "is_machine", "properties")
)
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
    if not _COLUMN_SET.issuperset(event):
        unknown = ", ".join(sorted(set(event) - _COLUMN_SET))
        raise EventError(f"unknown raw.events column(s): {unknown}")
    event_type = event.get("event_type")
    if event_type not in EVENT_TYPES:
        raise EventError(f"unknown event type {event_type!r}")
    occurred_at = event.get("occurred_at") or dt.datetime.now(dt.UTC)
    if not isinstance(occurred_at, dt.datetime) or occurred_at.tzinfo is None:
        raise EventError("occurred_at must be a timezone-aware datetime")
    row = list(map(event.get, COLUMNS))
    row[_EVENT_ID] = str(row[_EVENT_ID] or new_event_id())
    row[_OCCURRED_AT] = occurred_at
    row[_IS_MACHINE] = bool(row[_IS_MACHINE])
    if row[_PROPERTIES] is not None:
        row[_PROPERTIES] = _encode_json(row[_PROPERTIES]).decode()
    return tuple(row)


def mail_event_row(
    event_type: str,
    occurred_at: dt.datetime,
    *,
    contact_id: str | None,
    campaign_id: str | None,
    step_id: str | None,
    is_machine: bool,
    user_agent: str | None,
    properties: Mapping[str, Any],
    link_id: str | None = None,
    link_tag: str | None = None,
    url: str | None = None,
) -> tuple[Any, ...]:
    """The row of an open or a click, made straight from values the service itself took
    (ops.outbox / ops.links rows, its own clock): nothing to check, so none of
    `event_row`'s checks on the path of every open and click. Same row as `event_row`
    makes of the same event (tests/leadflow/tracking/test_writer.py compares them)."""
    return (
        new_event_id(),
        contact_id,
        None,  # visitor_id
        event_type,
        occurred_at,
        campaign_id,
        step_id,
        None,  # mailing_id
        link_id,
        link_tag,
        None,  # asset_id
        url,
        None,  # bounce_type
        is_machine,
        user_agent,
        _encode_json(properties).decode(),
    )


_encode_json = msgspec.json.Encoder().encode


class _EventIds:
    """Event ids: 16 random hex digits per process, then a 16-digit counter.

    As unique as uuid4's 32 hex digits for our purposes (a fresh random prefix in every
    process, and again in a forked child) without a system call per event.
    """

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()  # next() on it is atomic: threads share it

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_event_id = _EventIds()


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
        max_batch: int | None = None,
        max_buffered: int | None = None,
    ) -> None:
        if engine.dialect.driver != "psycopg":
            raise EventError("the event writer needs the psycopg driver (postgresql+psycopg://)")
        self.engine = engine
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_batch = max(max_batch or 10 * batch_size, batch_size)
        self.max_buffered = max_buffered or 200 * batch_size
        self.written = 0
        self._buffer: list[tuple[Any, ...]] = []
        self._oldest: float | None = None  # monotonic time the oldest buffered event arrived
        self._in_flight = 0
        # add() takes the lock itself (cheaper than through the Condition: every request).
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)
        self._write_lock = threading.Lock()
        self._closing = False
        self._closed = False
        self._connection: Any = None
        self._thread: threading.Thread | None = None

    # --- the request side ----------------------------------------------------------------

    def add(self, event: Mapping[str, Any]) -> str:
        """Buffer one event; its event_id. Never waits for the warehouse."""
        return self.add_row(event_row(event))

    def add_row(self, row: tuple[Any, ...]) -> str:
        """Buffer a row made by `event_row` or `mail_event_row`; its event_id."""
        with self._lock:
            if self._closing:
                raise WriterClosed("the event writer is closed")
            if len(self._buffer) + self._in_flight >= self.max_buffered:
                raise BufferFull(f"{self.max_buffered} events are waiting for the warehouse")
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.append(row)
            # Once, when a batch fills: the writing thread checks the buffer again after
            # every batch, so later events need no wake-up (notify costs more than append).
            if len(self._buffer) == self.batch_size:
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
            # Whole batches while any is full (the rest waits for its interval), else all.
            full = len(self._buffer) // self.batch_size * self.batch_size
            size = min(full or len(self._buffer), self.max_batch)
            batch = self._buffer[:size]
            del self._buffer[:size]
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
