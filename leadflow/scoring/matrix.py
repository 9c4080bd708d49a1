"""The scoring matrix as sales managers read it: 4 × 4 counts per tenant, and the leads of a cell.

    matrix(engine)                    -> {tenant_code: Matrix}   (marts.scoring_matrix)
    export_cell(engine, "A1", "fr", Path("a1.csv"))              (rows of marts.dim_contacts)

Both read the marts of the last nightly run; neither computes anything.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadflow.config.fields import BANDS, GRADES, MATRIX_CELLS
from leadflow.errors import LeadflowError

EXPORT_COLUMNS = (
    "contact_id",
    "email",
    "salutation",
    "first_name",
    "last_name",
    "account_name",
    "tenant_code",
    "country",
    "owner",
    "best_persona",
    "profile_score",
    "grade",
    "activity_score",
    "band",
    "matrix_cell",
    "lifecycle_stage",
    "is_mql",
    "as_of",
)


@dataclass(frozen=True)
class Matrix:
    """One tenant's scoring matrix: contacts per cell (grade A-D × band 1-4)."""

    tenant_code: str
    as_of: dt.date
    contacts: dict[str, int]
    leads: dict[str, int]
    mqls: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.contacts.values())

    def rows(self) -> list[tuple[str, list[int]]]:
        """(grade, [contacts in band 1, 2, 3, 4]) for grades A to D."""
        return [(grade, [self.contacts[f"{grade}{band}"] for band in BANDS]) for grade in GRADES]


def matrix(engine: Engine, tenant: str | None = None) -> dict[str, Matrix]:
    """The matrix of every tenant (or of `tenant`), in tenant order of the configuration."""
    with engine.connect() as connection:
        _require_marts(connection)
        if tenant is not None:
            _require_tenant(connection, tenant)
        rows = connection.execute(
            sa.text(
                """
                select m.tenant_code, m.matrix_cell, m.contacts, m.leads, m.mqls, m.as_of,
                       t.position
                from marts.scoring_matrix as m
                left join ops.config_tenants as t on t.tenant_code = m.tenant_code
                where cast(:tenant as text) is null or m.tenant_code = :tenant
                order by t.position nulls last, m.tenant_code, m.matrix_cell
                """
            ),
            {"tenant": tenant},
        ).all()
    matrices: dict[str, Matrix] = {}
    for tenant_code, cell, contacts, leads, mqls, as_of, _position in rows:
        if tenant_code not in matrices:
            matrices[tenant_code] = Matrix(tenant_code, as_of, {}, {}, {})
        found = matrices[tenant_code]
        found.contacts[cell], found.leads[cell], found.mqls[cell] = contacts, leads, mqls
    return matrices


def matrix_table(found: Matrix) -> Any:
    """One tenant's matrix for rich: a heading line, then grades down and bands across, with
    the MQLs of a cell in parentheses."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    heading = Text(
        f"scoring matrix {found.tenant_code} as of {found.as_of}: {found.total:,} contacts "
        "(per cell: contacts, MQLs in parentheses; grade = fit, band = engagement)",
        style="bold",
    )
    table = Table()
    table.add_column("grade")
    for band in BANDS:
        table.add_column(f"band {band}", justify="right")
    for grade, counts in found.rows():
        cells = []
        for band, count in zip(BANDS, counts, strict=True):
            mqls = found.mqls[f"{grade}{band}"]
            cells.append(f"{count:,} ({mqls:,})" if mqls else f"{count:,}")
        table.add_row(grade, *cells)
    return Group(heading, table)


def normalize_cell(cell: str) -> str:
    """`a1` → `A1`; anything but A1 … D4 is an error naming the valid cells."""
    normalized = cell.strip().upper()
    if normalized not in MATRIX_CELLS:
        raise LeadflowError(
            f"unknown matrix cell {cell!r}: a cell is a grade A-D and a band 1-4, "
            f"e.g. A1 ({', '.join(MATRIX_CELLS)})"
        )
    return normalized


def export_cell(engine: Engine, cell: str, tenant: str | None, path: Path) -> int:
    """Write the contacts of `cell` (of `tenant`, or of all tenants) to the CSV `path`.

    Returns the number of contacts written. The file is written completely or not at all.
    """
    cell = normalize_cell(cell)
    path = Path(path)
    if not path.parent.is_dir():
        raise LeadflowError(f"cannot write {path}: the directory {path.parent} does not exist")
    with engine.connect() as connection:
        _require_marts(connection)
        if tenant is not None:
            _require_tenant(connection, tenant)
        result = connection.execute(
            sa.text(
                f"select {', '.join(EXPORT_COLUMNS)} from marts.dim_contacts "  # noqa: S608
                "where matrix_cell = :cell "
                "and (cast(:tenant as text) is null or tenant_code = :tenant) "
                "order by profile_score desc, activity_score desc, contact_id"
            ),
            {"cell": cell, "tenant": tenant},
        )
        return _write_csv(path, result)


def _write_csv(path: Path, rows: sa.CursorResult) -> int:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    count = 0
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(EXPORT_COLUMNS)
            for row in rows:
                writer.writerow(["" if value is None else value for value in row])
                count += 1
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count


def _require_marts(connection: Connection) -> None:
    missing = [
        name
        for name in ("marts.scoring_matrix", "marts.dim_contacts")
        if connection.execute(sa.text("select to_regclass(:name)"), {"name": name}).scalar() is None
    ]
    if missing:
        raise LeadflowError(
            f"{' and '.join(missing)} not built yet: run `leadflow build --as-of DATE` first"
        )


def _require_tenant(connection: Connection, tenant: str) -> None:
    known = connection.execute(
        sa.text("select distinct tenant_code from marts.scoring_matrix order by 1")
    ).scalars()
    known = list(known)
    if tenant not in known:
        raise LeadflowError(f"unknown tenant {tenant!r} (known: {', '.join(known) or 'none'})")
