"""One file, one transaction: read, validate, stage, check, land, quarantine, record.

The file is streamed: records are validated in chunks of CHUNK_ROWS and copied (COPY) into
temporary tables, so memory stays flat however large the file is. Checks that need the
whole file (duplicate keys, an order's lines, emails against the pool) and the upserts run
set-based on the staging table once the file has been read: a key's first occurrence may
be anywhere in the file. Any unexpected error rolls the whole import back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from psycopg import Cursor
from sqlalchemy.engine import Engine

from leadflow.errors import LeadflowError
from leadflow.imports.csvfile import CsvFile
from leadflow.imports.kind import Kind, RowValidator, Verdict, check_header
from leadflow.imports.sqlkit import (
    REJECTS,
    STAGING,
    copy_rows,
    count,
    create_work_tables,
    reject_duplicate_keys,
)
from leadflow.imports.summary import ImportSummary

CHUNK_ROWS = 10_000
FIRST_REASONS = 5


def run_import(engine: Engine, kind: Kind, path: Path) -> ImportSummary:
    if engine.dialect.driver != "psycopg":
        driver = engine.dialect.driver
        raise LeadflowError(
            f"Imports need the psycopg driver (postgresql+psycopg://), not '{driver}'."
        )
    with CsvFile(path) as source:
        present = check_header(kind, source.header, path)
        validator = RowValidator(kind, source.header)
        with engine.begin() as connection:
            cursor = connection.connection.driver_connection.cursor()
            # One import of a kind at a time, so its checks against raw stay true until commit.
            cursor.execute(
                "select pg_advisory_xact_lock(hashtext(%s))", (f"leadflow.import.{kind.name}",)
            )
            create_work_tables(cursor, source.header, kind.staged_columns)
            rows_read = stage(cursor, kind, validator, source.records())
            digest = source.sha256()
            cursor.execute(f"analyze {STAGING}")
            reject_duplicate_keys(cursor, kind.key_label_sql)
            kind.check(cursor, present)
            landing = kind.land(cursor, present)
            quarantined, newly_quarantined = record_quarantine(cursor, kind, path, digest)
            summary = ImportSummary(
                import_id=0,
                kind=kind.name,
                target=kind.target,
                file=str(path),
                file_sha256=digest,
                rows_read=rows_read,
                inserted=landing.inserted,
                updated=landing.updated,
                unchanged=rows_read - quarantined - landing.inserted - landing.updated,
                quarantined=quarantined,
                newly_quarantined=newly_quarantined,
                first_reasons=first_reasons(cursor),
                related=landing.related,
            )
            import_id = record_run(cursor, summary)
    return dataclasses.replace(summary, import_id=import_id)


def stage(cursor: Cursor, kind: Kind, validator: RowValidator, records: Iterator) -> int:
    """Validate and COPY every record; the number of records read."""
    staged_columns = ["line", "cells", "dedup_key", *(name for name, _ in kind.staged_columns)]
    rejected_columns = ["line", "row_data", "reason", "dedup_key"]
    rows_read = 0
    chunk: list[Verdict] = []
    for record in records:
        rows_read += 1
        chunk.append(validator.validate(record.line, record.values))
        if len(chunk) >= CHUNK_ROWS:
            flush(cursor, chunk, staged_columns, rejected_columns)
            chunk = []
    flush(cursor, chunk, staged_columns, rejected_columns)
    return rows_read


def flush(cursor: Cursor, chunk: list[Verdict], staged_columns, rejected_columns) -> None:
    good = [(v.line, v.row_data, v.key, *v.staged) for v in chunk if v.staged is not None]
    bad = [(v.line, v.row_data, v.reason, v.key) for v in chunk if v.staged is None]
    if good:
        copy_rows(cursor, STAGING, staged_columns, good)
    if bad:
        copy_rows(cursor, REJECTS, rejected_columns, bad)


def record_quarantine(cursor: Cursor, kind: Kind, path: Path, digest: str) -> tuple[int, int]:
    """Write this file's rejects to ops.quarantine once; (rejected now, newly recorded)."""
    cursor.execute(
        "insert into ops.quarantine (source, file, file_sha256, line, row_data, reason) "
        "select %s, %s, %s, line, row_data::jsonb, reason from import_rejects order by line "
        "on conflict (source, file_sha256, line) do nothing",
        (kind.name, str(path), digest),
    )
    newly_recorded = cursor.rowcount
    return count(cursor, REJECTS), newly_recorded


def first_reasons(cursor: Cursor) -> tuple[tuple[int, str], ...]:
    cursor.execute(
        "select line, reason from import_rejects order by line limit %s", (FIRST_REASONS,)
    )
    return tuple((line, reason) for line, reason in cursor.fetchall())


def record_run(cursor: Cursor, summary: ImportSummary) -> int:
    cursor.execute(
        "insert into ops.import_runs (source, file, file_sha256, rows_read, rows_inserted, "
        "rows_updated, rows_unchanged, rows_quarantined) values (%s, %s, %s, %s, %s, %s, %s, %s) "
        "returning import_id",
        (
            summary.kind,
            summary.file,
            summary.file_sha256,
            summary.rows_read,
            summary.inserted,
            summary.updated,
            summary.unchanged,
            summary.quarantined,
        ),
    )
    return cursor.fetchone()[0]
