"""Fixtures for the import tests: CSV files written on the fly, the product catalogue, queries."""

from __future__ import annotations

import codecs
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

DATA = Path(__file__).parent / "data"

# The example company's seven products (prices are illustrative).
CATALOGUE = [
    ("HS2000", "HydroStat 2000", "hydrostat", 38500, 21000, 12),
    ("HS3000", "HydroStat 3000", "hydrostat", 52000, 27000, 12),
    ("CLN-10", "HydroClean Konzentrat 10 l", "cleaning_agent", 79, 21, None),
    ("CLN-25", "HydroClean Konzentrat 25 l", "cleaning_agent", 140, 36, None),
    ("MNT-KIT", "HydroStat Wartungsset", "maintenance_device", 1200, 540, None),
    ("MNT-DIAG", "HydroStat Diagnosegerät", "maintenance_device", 4900, 2300, None),
    ("SW-SCOPE", "HydroScope Fehleranalyse", "software", 2400, 300, None),
]


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def write_csv(tmp_path):
    """Write a CSV (dedented text) and return its path; options for BOM, CRLF and encoding."""

    def write(
        text: str,
        name: str = "import.csv",
        *,
        newline: str = "\n",
        bom: bool = False,
        encoding: str = "utf-8",
    ) -> Path:
        content = textwrap.dedent(text).lstrip("\n").replace("\n", newline)
        data = content.encode(encoding)
        path = tmp_path / name
        path.write_bytes(codecs.BOM_UTF8 + data if bom else data)
        return path

    return write


@pytest.fixture
def query(warehouse):
    """Run one SQL statement on the test warehouse and return its rows as tuples."""

    def run(statement: str, **params) -> list[tuple]:
        with warehouse.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(statement), params)]

    return run


@pytest.fixture
def quarantined(query):
    """{line: reason} of the quarantine rows recorded for one file."""

    def lines(path: Path) -> dict[int, str]:
        rows = query("select line, reason from ops.quarantine where file = :f", f=str(path))
        return dict(rows)

    return lines


@pytest.fixture
def products(warehouse):
    with warehouse.begin() as connection:
        connection.execute(
            sa.text(
                "insert into raw.products (product_id, sku, name, family, list_price, "
                "unit_cost, maintenance_interval_months) "
                "values (:id, :id, :name, :family, :price, :cost, :months)"
            ),
            [
                dict(id=i, name=n, family=f, price=p, cost=c, months=m)
                for i, n, f, p, c, m in CATALOGUE
            ],
        )
    return [row[0] for row in CATALOGUE]
