"""`leadflow import ...`: prints the summary, exits non-zero with a message on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from leadflow.cli import app

LEADFLOW = Path(sys.executable).parent / "leadflow"


def leadflow(*args: str) -> subprocess.CompletedProcess:
    """The installed command, as a user runs it (its errors are printed by `main`)."""
    return subprocess.run(
        [str(LEADFLOW), *args], capture_output=True, text=True, env=os.environ, timeout=120
    )


def test_import_prints_the_summary(warehouse, data_dir, query):
    result = CliRunner().invoke(app, ["import", "contacts", str(data_dir / "contacts.csv")])

    assert result.exit_code == 0, result.output
    assert f"contacts import of {data_dir / 'contacts.csv'} into raw.contacts" in result.output
    assert "rows read            4" in result.output
    assert "inserted             4" in result.output
    assert "raw.accounts: 3 inserted, 0 updated, 0 unchanged" in result.output
    assert query("select count(*) from raw.contacts") == [(4,)]


def test_import_lists_the_first_quarantined_rows(warehouse, write_csv):
    path = write_csv("fair,captured_at,email\nEMO Hannover,2024-09-18T10:00:00Z,max(at)x.de\n")

    result = CliRunner().invoke(app, ["import", "fair-leads", str(path)])

    assert result.exit_code == 0, result.output
    assert "quarantined          1" in result.output
    assert "line 2: email: 'max(at)x.de' is not a valid email address" in result.output
    assert f"where file = '{path}'" in result.output


def test_a_missing_file_exits_non_zero_with_a_message(warehouse, tmp_path, query):
    missing = tmp_path / "contacts.csv"

    result = leadflow("import", "contacts", str(missing))

    assert result.returncode == 1
    assert f"{missing}: no such file" in result.stderr
    assert query("select count(*) from ops.import_runs") == [(0,)]


def test_a_wrong_header_exits_non_zero_naming_the_column(warehouse, write_csv):
    path = write_csv("event_id,event_type,occurred_at,contact,visitor_id\n")

    result = leadflow("import", "events", str(path))

    assert result.returncode == 1
    assert "unknown column(s): contact" in result.stderr
