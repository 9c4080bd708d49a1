"""The synthetic example company: a German maker of industrial hydraulics and its market.

`generate` replaces the generated data in the raw schema — accounts, contacts, products,
orders, order lines, installed base, tracking events — and writes a snapADDY-style fair-lead
export next to it (importing that file is `leadflow import fair-leads`' job). The same
settings and seed give the same rows, down to the last event (only the load-time columns
`raw.events.event_seq` / `loaded_at` differ between runs).

It scales to millions of contacts in bounded memory: a small skeleton of all accounts is
drawn first, then accounts are processed in chunks of about 50,000 contacts, each from its
own random stream, and streamed to PostgreSQL with COPY. Everything happens in one
transaction that starts with TRUNCATE, so readers see the old company or the new one,
never half of it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy.engine import Engine

from leadflow import paths
from leadflow.demo import copytext as ct
from leadflow.demo import vocabulary as v
from leadflow.demo.commerce import PRODUCT_IDS, Orders, draw_first_orders, draw_orders
from leadflow.demo.fair_export import KnownPerson, known_count, write_export
from leadflow.demo.population import (
    CONSENT,
    LIFECYCLE,
    SALUTATIONS,
    Accounts,
    Contacts,
    DomainRegistry,
    Skeleton,
    draw_accounts,
    draw_contacts,
    draw_skeleton,
)
from leadflow.demo.timeline import Timeline
from leadflow.demo.tracking import (
    EVENT_COLUMNS,
    ChunkTracking,
    Mailings,
    TrackingModel,
    Writer,
    people_of,
)
from leadflow.errors import LeadflowError

CONTACTS_PER_CHUNK = 50_000
EVENT_ROWS_PER_WRITE = 100_000
MINIMUM_HISTORY_YEARS = 5
# Drop the indexes of the generated tables for the load and rebuild them once at the end.
DEFER_INDEXES = True

GENERATED_TABLES = (
    "raw.accounts",
    "raw.contacts",
    "raw.products",
    "raw.orders",
    "raw.order_items",
    "raw.installed_base",
    "raw.events",
    "raw.fair_leads",
)
COLUMNS = {
    "raw.accounts": "account_id, name, industry, employee_count, annual_revenue, country, "
    "region, postcode, created_at, updated_at",
    "raw.contacts": "contact_id, email, salutation, first_name, last_name, language, country, "
    "position, decision_role, account_id, owner, source, tags, interests, consent_status, "
    "consent_at, lifecycle_stage, created_at, updated_at",
    "raw.products": "product_id, sku, name, family, list_price, unit_cost, "
    "maintenance_interval_months",
    "raw.orders": "order_id, account_id, contact_id, ordered_at, status, net_amount, currency, "
    "source",
    "raw.order_items": "order_id, line_no, product_id, quantity, net_amount",
    "raw.installed_base": "installation_id, account_id, contact_id, product_id, serial_no, "
    "installed_on, next_maintenance_date",
    "raw.events": EVENT_COLUMNS,
}

# Independent random streams: (seed, stream, chunk) → numpy SeedSequence.
SKELETON, ACCOUNTS, ORDERS, CONTACTS, EVENTS, KNOWN, FAIR = range(7)


@dataclass(frozen=True)
class GeneratorSettings:
    contacts: int
    seed: int = 42
    events_per_contact: float = 20.0
    as_of: dt.date = field(default_factory=dt.date.today)  # last day of generated history
    years_of_history: int = 6

    def __post_init__(self) -> None:
        problems = []
        if self.contacts < 1:
            problems.append(f"contacts must be at least 1, got {self.contacts}")
        if self.seed < 0:
            problems.append(f"seed must not be negative, got {self.seed}")
        if not self.events_per_contact >= 0:
            problems.append(
                f"events_per_contact must not be negative, got {self.events_per_contact}"
            )
        if self.years_of_history < MINIMUM_HISTORY_YEARS:
            problems.append(
                f"years_of_history must be at least {MINIMUM_HISTORY_YEARS} (the up-sell segment "
                f"needs HydroStats installed more than 3 years ago), got {self.years_of_history}"
            )
        if problems:
            raise LeadflowError("Invalid generator settings: " + "; ".join(problems) + ".")


@dataclass
class GenerationSummary:
    counts: dict[str, int]  # rows written per raw table
    fair_leads_csv: Path  # the snapADDY-style CSV written
    fair_lead_rows: int = 0


def generate(
    engine: Engine,
    settings: GeneratorSettings,
    progress: bool = False,
    out_dir: Path | None = None,
) -> GenerationSummary:
    """Replace the generated data in raw and write the fair-lead CSV; see the module doc."""
    plan = Plan(settings)
    csv_path = (out_dir or paths.demo_dir()) / "fair_leads.csv"
    pending = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.tmp")
    try:
        with (
            _psycopg(engine) as connection,
            _progress(progress, settings) as bar,
            connection.transaction(),
        ):
            connection.execute(f"truncate {', '.join(GENERATED_TABLES)}")
            rebuild = drop_indexes(connection, GENERATED_TABLES) if DEFER_INDEXES else []
            with Loader(connection) as loader:
                loader.copy("raw.products", [_products()])
                known: list[KnownPerson] = []
                for index, span in enumerate(plan.chunks):
                    # Built while PostgreSQL still ingests the previous chunk's events.
                    chunk = plan.build(index, span)
                    _write_chunk(loader, plan, chunk)
                    known += chunk.known
                    bar.advance(chunk.contacts.size, plan.next_event - 1)
                bar.phase("writing the fair-lead export")
                fair_rows = plan.write_fair_export(pending, known)
                bar.phase("loading the last events")
            bar.phase("rebuilding indexes")
            for statement in rebuild:
                connection.execute(statement)
            bar.phase("analyzing")
            connection.execute(f"analyze {', '.join(GENERATED_TABLES)}")
            bar.phase("committing")
        pending.replace(csv_path)
        bar.phase("done")
    finally:
        pending.unlink(missing_ok=True)
    return GenerationSummary(
        counts=loader.counts, fair_leads_csv=csv_path, fair_lead_rows=fair_rows
    )


# --- the plan: settings, calendar, skeleton, streams ----------------------------------------------


@dataclass
class Chunk:
    index: int
    accounts: Accounts
    contacts: Contacts
    orders: Orders
    order_contact: np.ndarray  # per order: index of the buying contact in `contacts`
    tracking: ChunkTracking
    writer: Writer
    known: list[KnownPerson]


class Plan:
    """Everything fixed before the first chunk, and the counters that run across chunks."""

    def __init__(self, settings: GeneratorSettings) -> None:
        self.settings = settings
        self.timeline = Timeline(settings.as_of, settings.years_of_history)
        self.skeleton: Skeleton = draw_skeleton(settings.contacts, self.rng(SKELETON))
        self.chunks = self.skeleton.chunks(CONTACTS_PER_CHUNK)
        self.mailings = Mailings(self.timeline)
        self.domains = DomainRegistry()
        self.next_order = 1
        self.next_installation = 1
        self.next_event = 1
        self.known_total = known_count(settings.contacts)

    def rng(self, stream: int, chunk: int = 0) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.settings.seed, stream, chunk]))

    def build(self, index: int, span: slice) -> Chunk:
        """Draw one chunk of accounts with everything that belongs to them."""
        t = self.timeline
        accounts = draw_accounts(self.skeleton, span, self.rng(ACCOUNTS, index), self.domains)
        order_rng = self.rng(ORDERS, index)
        first = draw_first_orders(accounts.customer, accounts.upsell, t, order_rng)
        contacts = draw_contacts(accounts, first.day, t, self.rng(CONTACTS, index))
        orders = draw_orders(
            accounts.customer,
            accounts.employees,
            accounts.upsell,
            first,
            t,
            order_rng,
            self.next_order,
            self.next_installation,
        )
        self.next_order += orders.number.size
        self.next_installation += orders.install_number.size
        buyer_of_account = np.full(accounts.size, -1)
        buyer_of_account[contacts.account[contacts.buyer]] = np.flatnonzero(contacts.buyer)
        order_contact = buyer_of_account[orders.account]
        event_rng = self.rng(EVENTS, index)
        people = people_of(contacts, accounts, first.day, t)
        budget = contacts.size * self.settings.events_per_contact
        model = TrackingModel(people, orders, order_contact, self.mailings, t, event_rng, budget)
        tracking = model.events()
        writer = Writer(
            self.settings.seed,
            contacts.ids,
            event_rng.integers(0, 1 << 62, contacts.size),
            contacts.language,
            self.mailings,
        )
        return Chunk(
            index,
            accounts,
            contacts,
            orders,
            order_contact,
            tracking,
            writer,
            self._known_people(index, accounts, contacts),
        )

    def _known_people(
        self, index: int, accounts: Accounts, contacts: Contacts
    ) -> list[KnownPerson]:
        """This chunk's share of the pool's people who turn up in the fair export."""
        start = int(contacts.number[0]) - 1
        end = start + contacts.size
        total = self.settings.contacts
        wanted = self.known_total * end // total - self.known_total * start // total
        chosen = np.sort(self.rng(KNOWN, index).choice(contacts.size, size=wanted, replace=False))
        return [
            KnownPerson(
                email=contacts.email[i],
                salutation=SALUTATIONS[contacts.salutation[i]],
                first_name=contacts.first_name[i],
                last_name=contacts.last_name[i],
                company=accounts.name[contacts.account[i]],
                position=contacts.position[i],
                country=v.COUNTRIES[contacts.country[i]],
            )
            for i in chosen.tolist()
        ]

    def write_fair_export(self, path: Path, known: list[KnownPerson]) -> int:
        return write_export(
            path, known, self.settings.contacts, self.timeline, self.domains, self.rng(FAIR)
        )


# --- writing --------------------------------------------------------------------------------------


INDEXES = """
    select i.indexrelid::regclass::text as index_name,
           i.indrelid::regclass::text as table_name,
           quote_ident(c.conname) as constraint_name,
           pg_get_indexdef(i.indexrelid) as index_definition,
           pg_get_constraintdef(c.oid) as constraint_definition
    from pg_index i
    left join pg_constraint c on c.conindid = i.indexrelid and c.conrelid = i.indrelid
    where i.indrelid = any(%s::regclass[])
      -- an index a foreign key relies on stays
      and not exists (
          select 1 from pg_constraint f where f.contype = 'f' and f.conindid = i.indexrelid
      )
    order by 2, 1
"""


def drop_indexes(connection: psycopg.Connection, tables: Iterable[str]) -> list[str]:
    """Drop the tables' indexes (and the keys they back); return the statements that rebuild
    them. Building an index once over the loaded rows is cheaper than maintaining it row by
    row, and inside the load's transaction nobody sees the tables without them."""
    rebuild = []
    for index, table, constraint, index_sql, constraint_sql in connection.execute(
        INDEXES, [list(tables)]
    ).fetchall():
        if constraint:
            connection.execute(f"alter table {table} drop constraint {constraint}")
            rebuild.append(f"alter table {table} add constraint {constraint} {constraint_sql}")
        else:
            connection.execute(f"drop index {index}")
            rebuild.append(index_sql)
    return rebuild


def _write_chunk(loader: Loader, plan: Plan, chunk: Chunk) -> None:
    a, c, o = chunk.accounts, chunk.contacts, chunk.orders
    # Formatted before the first COPY, while PostgreSQL still ingests the last events.
    small = {
        "raw.accounts": _account_rows(a),
        "raw.contacts": _contact_rows(a, c),
        "raw.orders": _order_rows(a, c, o, chunk.order_contact),
        "raw.order_items": _item_rows(o),
        "raw.installed_base": _installation_rows(a, c, o, chunk.order_contact),
    }
    for table, rows in small.items():
        loader.copy(table, [rows])
    loader.copy("raw.events", _event_rows(plan, chunk), keep_open=True)


class Loader:
    """COPYs blocks of text rows into the raw tables, counting rows per table.

    A queued writer sends from a second thread, so Python formats the next block while
    PostgreSQL parses the previous one. The last COPY may stay open (`keep_open`): the
    events of one chunk are still being ingested while the next chunk is drawn; the
    next `copy` (or leaving the loader) waits for them.
    """

    def __init__(self, connection: psycopg.Connection) -> None:
        self.connection = connection
        self.counts = dict.fromkeys(COLUMNS, 0)
        self._open: contextlib.ExitStack | None = None

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._open is not None:
            # Passes an error on to COPY, which then fails instead of committing rows.
            self._open.__exit__(*exc_info)
            self._open = None

    def copy(self, table: str, blocks: Iterable[bytes], keep_open: bool = False) -> None:
        self.finish()
        stack = contextlib.ExitStack()
        with contextlib.ExitStack() as guard:
            guard.push(stack)
            cursor = stack.enter_context(self.connection.cursor())
            statement = f"copy {table} ({COLUMNS[table]}) from stdin"
            copy = stack.enter_context(cursor.copy(statement, writer=QueuedLibpqWriter(cursor)))
            for block in blocks:
                if block:
                    copy.write(block)
                    self.counts[table] += block.count(b"\n")
            if keep_open:
                guard.pop_all()
                self._open = stack

    def finish(self) -> None:
        """Wait until the open COPY, if any, is complete."""
        if self._open is not None:
            stack, self._open = self._open, None
            stack.close()


def _event_rows(plan: Plan, chunk: Chunk) -> Iterator[bytes]:
    for kind, batch in chunk.tracking.batches:
        for first in range(0, batch.size, EVENT_ROWS_PER_WRITE):
            part = batch.keep(np.arange(first, min(first + EVENT_ROWS_PER_WRITE, batch.size)))
            yield chunk.writer.rows(kind, part, plan.next_event)
            plan.next_event += part.size


def _text(values) -> list[bytes]:
    return [ct.NULL if value is None else value.encode() for value in values]


def _products() -> bytes:
    return ct.rows(
        [
            _text(p.product_id for p in v.PRODUCTS),
            _text(p.sku for p in v.PRODUCTS),
            _text(p.name for p in v.PRODUCTS),
            _text(p.family for p in v.PRODUCTS),
            ct.cents(np.array([p.list_price_cents for p in v.PRODUCTS])),
            ct.cents(np.array([p.unit_cost_cents for p in v.PRODUCTS])),
            [
                ct.NULL
                if p.maintenance_interval_months is None
                else b"%d" % p.maintenance_interval_months
                for p in v.PRODUCTS
            ],
        ]
    )


def _account_rows(a: Accounts) -> bytes:
    return ct.rows(
        [
            a.ids,
            _text(a.name),
            ct.encode_table(v.INDUSTRIES)[a.industry].tolist(),
            ct.integers(a.employees),
            ct.integers(a.revenue),
            ct.encode_table(v.COUNTRIES)[a.country].tolist(),
            _text(a.region),
            _text(a.postcode),
            ct.timestamps(a.created),
            ct.timestamps(a.updated),
        ]
    )


def _contact_rows(a: Accounts, c: Contacts) -> bytes:
    account_ids = np.array(a.ids, dtype=object)
    return ct.rows(
        [
            c.ids,
            _text(c.email),
            ct.encode_table(SALUTATIONS)[c.salutation].tolist(),
            _text(c.first_name),
            _text(c.last_name),
            ct.encode_table(v.LANGUAGES)[c.language].tolist(),
            ct.encode_table(v.COUNTRIES)[c.country].tolist(),
            _text(c.position),
            ct.encode_table(v.DECISION_ROLES)[c.role].tolist(),
            account_ids[c.account].tolist(),
            _text(a.owner[i] for i in c.account.tolist()),
            _text(c.source),
            ct.flag_arrays(v.TAGS)[c.tags].tolist(),
            ct.flag_arrays(v.INTERESTS)[c.interests].tolist(),
            ct.encode_table(CONSENT)[c.consent].tolist(),
            _optional_timestamps(c.consent_at),
            ct.encode_table(LIFECYCLE)[c.lifecycle].tolist(),
            ct.timestamps(c.created),
            ct.timestamps(c.updated),
        ]
    )


def _optional_timestamps(seconds: np.ndarray) -> list[bytes]:
    formatted = np.array(ct.timestamps(np.maximum(seconds, 0)), dtype=object)
    return np.where(seconds >= 0, formatted, ct.NULL).tolist()


def _order_rows(a: Accounts, c: Contacts, o: Orders, order_contact: np.ndarray) -> bytes:
    account_ids = np.array(a.ids, dtype=object)
    contact_ids = np.array(c.ids, dtype=object)
    return ct.rows(
        [
            o.ids,
            account_ids[o.account].tolist(),
            contact_ids[order_contact].tolist(),
            ct.timestamps(o.ordered_at),
            np.where(o.cancelled, b"cancelled", b"won").tolist(),
            ct.cents(o.net_cents),
            b"EUR",
            o.source,
        ]
    )


def _item_rows(o: Orders) -> bytes:
    order_ids = np.array(o.ids, dtype=object)
    return ct.rows(
        [
            order_ids[o.item_order].tolist(),
            ct.integers(o.item_line),
            ct.encode_table(PRODUCT_IDS)[o.item_product].tolist(),
            ct.integers(o.item_quantity),
            ct.cents(o.item_cents),
        ]
    )


def _installation_rows(a: Accounts, c: Contacts, o: Orders, order_contact: np.ndarray) -> bytes:
    account_ids = np.array(a.ids, dtype=object)
    contact_ids = np.array(c.ids, dtype=object)
    model = np.array([b"HS2", b"HS3"], dtype=object)[o.install_product]
    years = o.install_day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    serials = [
        b"%s-%d-%07d" % (m, y, n)
        for m, y, n in zip(model.tolist(), years.tolist(), o.install_number.tolist(), strict=True)
    ]
    return ct.rows(
        [
            ct.padded_ids("INS-", o.install_number, 8),
            account_ids[o.account[o.install_order]].tolist(),
            contact_ids[order_contact[o.install_order]].tolist(),
            ct.encode_table(PRODUCT_IDS)[o.install_product].tolist(),
            serials,
            ct.dates(o.install_day),
            ct.dates(o.next_maintenance_day),
        ]
    )


# --- plumbing -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _psycopg(engine: Engine) -> Iterator[psycopg.Connection]:
    """The engine's own psycopg 3 connection (same URL, pool and settings), or a new one."""
    pooled = engine.raw_connection()
    try:
        connection = pooled.driver_connection
        if isinstance(connection, psycopg.Connection):
            # A pre-ping may have left a transaction open; in autocommit mode
            # `connection.transaction()` is a real BEGIN ... COMMIT, not a savepoint.
            connection.rollback()
            connection.autocommit = True
            try:
                yield connection
            finally:
                connection.autocommit = False
        else:
            from leadflow.warehouse.engine import connection_params

            with psycopg.connect(connection_params(engine.url).libpq_url()) as own:
                yield own
    finally:
        pooled.close()


class _Bar:
    def __init__(self, progress, task) -> None:
        self._progress, self._task = progress, task

    def advance(self, contacts: int, events: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=contacts, events=events)

    def phase(self, description: str) -> None:
        """After the last chunk: say what the remaining (unmetered) work is."""
        if self._progress is not None:
            self._progress.update(self._task, description=description)


@contextlib.contextmanager
def _progress(enabled: bool, settings: GeneratorSettings) -> Iterator[_Bar]:
    if not enabled:
        yield _Bar(None, None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as bar:
        task = bar.add_task("generating contacts", total=settings.contacts, events=0)
        yield _Bar(bar, task)
