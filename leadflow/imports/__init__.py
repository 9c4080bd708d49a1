"""CSV imports into the raw schema: contacts (with accounts), orders, events, fair leads.

`import_file(engine, kind, path)` reads one UTF-8 CSV file, validates every row, lands the
valid rows in `raw` with upserts on natural keys (re-importing a file changes nothing),
puts every invalid row in `ops.quarantine` with its line number and a reason, records the
import in `ops.import_runs`, and does all of it in one transaction. The columns of each kind
are documented in docs/imports.md.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from leadflow.errors import LeadflowError
from leadflow.imports import contacts, events, fair_leads, orders
from leadflow.imports.fair_leads import fair_lead_id
from leadflow.imports.kind import Kind
from leadflow.imports.runner import run_import
from leadflow.imports.summary import ImportSummary, TableCounts

KINDS: dict[str, Kind] = {
    kind.name: kind for kind in (contacts.KIND, orders.KIND, events.KIND, fair_leads.KIND)
}


def import_file(engine: Engine, kind: str, path: Path | str) -> ImportSummary:
    """Import one CSV file of `kind` (contacts, orders, events, fair_leads) into the warehouse.

    Raises LeadflowError, with nothing written, for an unknown kind, a missing or
    unreadable file, or a wrong header; invalid rows are quarantined, not raised.
    """
    spec = KINDS.get(kind.replace("-", "_"))
    if spec is None:
        raise LeadflowError(
            f"{path}: unknown import kind '{kind}'; choose one of {', '.join(KINDS)}."
        )
    return run_import(engine, spec, Path(path))


__all__ = ["KINDS", "ImportSummary", "TableCounts", "fair_lead_id", "import_file"]
