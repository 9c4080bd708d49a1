"""What an import kind is (its columns, rules and landing) and how one row is validated.

A kind is data plus two functions: `check` moves rows that only the whole file (or the
warehouse) can judge into quarantine, `land` writes the staged rows into `raw`. Both work
set-based on the staging table; everything that can be judged from one row alone is judged
here, in Python, before the row is staged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import Cursor

from leadflow.errors import LeadflowError
from leadflow.imports.fields import Column, FieldError, text
from leadflow.imports.summary import TableCounts

Values = dict[str, Any]
# A row rule sees the parsed values (None: empty, absent or invalid), the columns whose
# value was invalid (already reported) and the header's columns; it returns complaints,
# each starting with the column it is about.
RowRule = Callable[[Values, set[str], frozenset[str]], list[str]]
HeaderRule = Callable[[frozenset[str]], list[str]]


@dataclass(frozen=True)
class Derived:
    """A staged column computed from the parsed values (None when its inputs are missing)."""

    name: str
    sql_type: str
    compute: Callable[[Values], Any]


@dataclass(frozen=True)
class Landing:
    """What `land` did: file rows inserted and updated, plus counts for related tables."""

    inserted: int
    updated: int
    related: dict[str, TableCounts] = field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    """One kind of import file; `check` and `land` get the cursor and the header's columns."""

    name: str
    target: str
    columns: tuple[Column, ...]
    # The natural key of a file row (staged column names); a second row with it is a duplicate.
    key: tuple[str, ...]
    check: Callable[[Cursor, frozenset[str]], None]
    land: Callable[[Cursor, frozenset[str]], Landing]
    # SQL (over staging alias `s`) naming a duplicate's key in its quarantine reason.
    key_label_sql: str
    one_of_columns: tuple[tuple[str, ...], ...] = ()
    header_rules: tuple[HeaderRule, ...] = ()
    row_rules: tuple[RowRule, ...] = ()
    derived: tuple[Derived, ...] = ()

    def column(self, name: str) -> Column | None:
        return next((column for column in self.columns if column.name == name), None)

    @property
    def staged_columns(self) -> list[tuple[str, str]]:
        """(name, SQL type) of every typed staging column, in staging-tuple order."""
        return [(c.name, c.sql_type) for c in self.columns] + [
            (d.name, d.sql_type) for d in self.derived
        ]


def at_least_one_of(*names: str) -> RowRule:
    """A row rule: one of these columns needs a value (say e.g. contact_id or visitor_id)."""

    def rule(values: Values, failed: set[str], present: frozenset[str]) -> list[str]:
        if failed.intersection(names) or any(values[name] is not None for name in names):
            return []
        return [f"{', '.join(names)}: at least one is required"]

    return rule


# --- header -----------------------------------------------------------------------------


def check_header(kind: Kind, header: list[str], path: Path) -> frozenset[str]:
    """The header's columns, or a LeadflowError naming every missing, unknown or doubled one."""
    present = frozenset(header)
    known = [column.name for column in kind.columns]
    problems = []
    unnamed = [str(position) for position, name in enumerate(header, start=1) if not name]
    if unnamed:
        problems.append(f"column(s) at position {', '.join(unnamed)} have no name")
    doubled = sorted({name for name in header if name and header.count(name) > 1})
    if doubled:
        problems.append(f"column(s) appear twice: {', '.join(doubled)}")
    missing = [c.name for c in kind.columns if c.required and c.name not in present]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    unknown = [name for name in header if name and name not in known]
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)}")
    for group in kind.one_of_columns:
        if not present & set(group):
            problems.append(f"needs at least one of the columns {' or '.join(group)}")
    for rule in kind.header_rules:
        problems.extend(rule(present))
    if problems:
        required = [c.name for c in kind.columns if c.required]
        optional = [c.name for c in kind.columns if not c.required]
        raise LeadflowError(
            f"{path}: wrong header for a {kind.name} import: {'; '.join(problems)}. "
            f"Required columns: {', '.join(required)}; optional: {', '.join(optional)} "
            "(the first line must be the header; see docs/imports.md)."
        )
    return present


# --- rows -------------------------------------------------------------------------------

# Staged rows keep their cells joined by this separator (turned into a JSON object only if a
# file-level check quarantines them), so a cell must not contain it, nor NUL (PostgreSQL
# text cannot hold NUL).
CELL_SEPARATOR = "\x1f"
_FORBIDDEN = {"\x00": "NUL (U+0000)", CELL_SEPARATOR: "unit separator (U+001F)"}


# Plain slotted dataclasses below: one is made per row, and frozen ones cost more to build.
@dataclass(slots=True)
class Verdict:
    """One validated row: `staged` (the staging tuple) or `reason`; `key` either way if known."""

    line: int
    # Staged: the cells joined by CELL_SEPARATOR; rejected: the row as a JSON object.
    row_data: str
    key: str | None
    staged: tuple | None = None
    reason: str | None = None


class RowValidator:
    """Validates the records of one file against its kind, column by column, then row rules."""

    def __init__(self, kind: Kind, header: list[str]) -> None:
        self.kind = kind
        self.header = header
        self.present = frozenset(header)
        # (position, name, parser or None for free text, required, default) per header column.
        self._slots: list[tuple[int, str, Callable[[str], Any] | None, bool, Any]] = []
        for position, name in enumerate(header):
            column = kind.column(name)
            parse = None if column.parse is text else column.parse
            self._slots.append((position, name, parse, column.required, column.default))
        # Every staged column in staging order, None until parsed: dict order is tuple order.
        self._blank = dict.fromkeys(name for name, _ in kind.staged_columns)

    def validate(self, line: int, cells: list[str]) -> Verdict:
        if len(cells) != len(self.header):
            reason = (
                f"the row has {len(cells)} values but the header has {len(self.header)} columns"
            )
            return Verdict(line, self._row_json(cells), None, reason=reason)
        joined = CELL_SEPARATOR.join(cells)
        values, failed, errors = self._parse(cells, joined)
        for rule in self.kind.row_rules:
            errors.extend(rule(values, failed, self.present))
        for derived in self.kind.derived:
            values[derived.name] = derived.compute(values)
        key = self._key(values)
        if errors:
            return Verdict(line, self._row_json(cells), key, reason="; ".join(errors))
        return Verdict(line, joined, key, staged=tuple(values.values()))

    def _parse(self, cells: list[str], joined: str) -> tuple[Values, set[str], list[str]]:
        """Parse each cell (the hot loop of an import: kept flat on purpose)."""
        values = self._blank.copy()
        failed: set[str] = set()
        errors: list[str] = []
        # The joined row holds exactly len(cells) - 1 separators unless a cell has one too.
        if "\x00" in joined or joined.count(CELL_SEPARATOR) != len(cells) - 1:
            self._reject_control_characters(cells, failed, errors)
        for position, name, parse, required, default in self._slots:
            if name in failed:
                continue
            cell = cells[position].strip()
            if not cell:
                if required:
                    failed.add(name)
                    errors.append(f"{name}: a value is required")
                else:
                    values[name] = default
            elif parse is None:
                values[name] = cell
            else:
                try:
                    values[name] = parse(cell)
                except FieldError as error:
                    failed.add(name)
                    errors.append(f"{name}: {error}")
        return values, failed, errors

    def _reject_control_characters(self, cells: list[str], failed: set[str], errors: list[str]):
        for position, name, *_ in self._slots:
            found = [label for char, label in _FORBIDDEN.items() if char in cells[position]]
            if found:
                failed.add(name)
                errors.append(f"{name}: contains the control character {', '.join(found)}")

    def _key(self, values: Values) -> str | None:
        parts = [values[name] for name in self.kind.key]
        if any(part is None for part in parts):
            return None
        return CELL_SEPARATOR.join(str(part) for part in parts)

    def _row_json(self, cells: list[str]) -> str:
        """A rejected row as given, as a JSON object (jsonb cannot hold NUL: it becomes U+FFFD)."""
        if any("\x00" in cell for cell in cells):
            cells = [cell.replace("\x00", "\ufffd") for cell in cells]
        data: dict[str, Any] = dict(zip(self.header, cells, strict=False))
        if len(cells) > len(self.header):
            data["_extra"] = cells[len(self.header) :]
        return json.dumps(data, ensure_ascii=False)
