"""Benchmark: rows per second of the demo generator against a plain COPY of the same rows.

    .venv/bin/python bench/generate.py                       # 1,000,000 contacts, 20,000,000 events
    .venv/bin/python bench/generate.py --contacts 100000 --events-per-contact 20

Runs against the warehouse of `get_engine()` (the embedded one unless LEADFLOW_WAREHOUSE_URL
says otherwise), in a dedicated database `leadflow_bench` on that server, created and
migrated here, so the `leadflow` demo database is never touched.

1. generator: `generate()` with the given sizes, timed end to end (TRUNCATE, drawing,
   formatting, COPY, ANALYZE, fair-lead CSV).
2. baseline, in the same run: the generated tables are dumped with COPY TO into files, the
   tables truncated, and the files loaded back with COPY FROM STDIN in one transaction —
   the same rows, columns and indexes, with nothing to compute.
The ratio generator/baseline is the figure of merit (target ≥ 50 %). The generator drops
the tables' indexes for its load and rebuilds them once at the end; so the same plain COPY
is also timed with that treatment, to show what the drawing and formatting cost.
LEADFLOW_BENCH_SCALE (e.g. 0.1) scales the default contact count, as for every script in
bench/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa
from _common import bench_database
from psycopg.copy import QueuedLibpqWriter

from leadflow.demo.generator import COLUMNS, GeneratorSettings, drop_indexes, generate
from leadflow.warehouse.engine import connection_params

DATABASE = "leadflow_bench"
DEFAULT_CONTACTS = 1_000_000
DEFAULT_EVENTS_PER_CONTACT = 20.0
READ_BLOCK = 1 << 20


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    engine = _bench_database()
    settings = GeneratorSettings(
        contacts=args.contacts,
        seed=args.seed,
        events_per_contact=args.events_per_contact,
        as_of=args.as_of,
    )
    print(
        f"generator: {settings.contacts:,} contacts × {settings.events_per_contact:g} events "
        f"(seed {settings.seed}, as_of {settings.as_of}) into {DATABASE}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-") as scratch:
        began = time.perf_counter()
        summary = generate(engine, settings, progress=True, out_dir=Path(scratch))
        generator_seconds = time.perf_counter() - began
        rows = sum(summary.counts.values())
        _report("generator", rows, generator_seconds)
        for table, count in summary.counts.items():
            print(f"  {table:<20} {count:>12,}")
        params = connection_params(engine.url)
        with psycopg.connect(params.libpq_url()) as connection:
            print("baseline: dumping the generated tables with COPY TO ...", flush=True)
            files = _dump(connection, Path(scratch))
            print("baseline: truncate + COPY FROM the dumped files ...", flush=True)
            baseline_rows, baseline_seconds = _timed_load(connection, files, defer=False)
            _report("baseline (plain COPY)", baseline_rows, baseline_seconds)
            print("baseline: the same with indexes dropped and rebuilt ...", flush=True)
            deferred_rows, deferred_seconds = _timed_load(connection, files, defer=True)
            _report("baseline (COPY, deferred indexes)", deferred_rows, deferred_seconds)
    speed = rows / generator_seconds
    ratio = speed / (baseline_rows / baseline_seconds)
    print(f"ratio generator / plain COPY: {ratio:.0%} (target ≥ 50 %)")
    same = speed / (deferred_rows / deferred_seconds)
    print(f"ratio generator / COPY with deferred indexes: {same:.0%}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:,.0f} MiB")
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    scale = float(os.environ.get("LEADFLOW_BENCH_SCALE", "1"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=max(1, round(DEFAULT_CONTACTS * scale)))
    parser.add_argument("--events-per-contact", type=float, default=DEFAULT_EVENTS_PER_CONTACT)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--as-of", type=dt.date.fromisoformat, default=dt.date.today(), help="YYYY-MM-DD"
    )
    return parser.parse_args(argv)


def _bench_database() -> sa.Engine:
    return bench_database(DATABASE)


def _dump(connection: psycopg.Connection, directory: Path) -> dict[str, Path]:
    files = {}
    with connection.cursor() as cursor:
        for table, columns in COLUMNS.items():
            path = directory / f"{table}.copy"
            with path.open("wb") as out, cursor.copy(f"copy {table} ({columns}) to stdout") as copy:
                for block in copy:
                    out.write(block)
            files[table] = path
    connection.commit()
    return files


def _timed_load(
    connection: psycopg.Connection, files: dict[str, Path], defer: bool
) -> tuple[int, float]:
    began = time.perf_counter()
    rows = _load(connection, files, defer)
    return rows, time.perf_counter() - began


def _load(connection: psycopg.Connection, files: dict[str, Path], defer: bool) -> int:
    rows = 0
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(f"truncate {', '.join(files)}")
        rebuild = drop_indexes(connection, files) if defer else []
        for table, path in files.items():
            statement = f"copy {table} ({COLUMNS[table]}) from stdin"
            with (
                path.open("rb") as source,
                cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy,
            ):
                while block := source.read(READ_BLOCK):
                    copy.write(block)
                    rows += block.count(b"\n")
        for statement in rebuild:
            cursor.execute(statement)
    connection.commit()
    return rows


def _report(name: str, rows: int, seconds: float) -> None:
    print(f"{name}: {rows:,} rows in {seconds:,.1f} s = {rows / seconds:,.0f} rows/s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
