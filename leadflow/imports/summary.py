"""What one import did, for the CLI and for callers (tests, DAG tasks)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableCounts:
    """Rows of a table the import also wrote (e.g. raw.accounts during a contacts import)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def describe(self) -> str:
        parts = [
            f"{self.inserted} inserted",
            f"{self.updated} updated",
            f"{self.unchanged} unchanged",
        ]
        if self.deleted:
            parts.append(f"{self.deleted} deleted")
        return ", ".join(parts)


@dataclass(frozen=True)
class ImportSummary:
    """Counts of one import; rows_read = inserted + updated + unchanged + quarantined."""

    import_id: int
    kind: str
    target: str
    file: str
    file_sha256: str
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    # Quarantined rows not yet recorded by an earlier import of the same file.
    newly_quarantined: int
    # (line, reason) of the first quarantined rows, by line.
    first_reasons: tuple[tuple[int, str], ...] = ()
    related: dict[str, TableCounts] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [
            f"{self.kind} import of {self.file} into {self.target} "
            f"(sha256 {self.file_sha256[:12]}…, import {self.import_id})",
            f"  rows read    {self.rows_read:>9,}",
            f"  inserted     {self.inserted:>9,}",
            f"  updated      {self.updated:>9,}",
            f"  unchanged    {self.unchanged:>9,}",
            f"  quarantined  {self.quarantined:>9,}{self._already_recorded()}",
        ]
        lines += [f"  {table}: {counts.describe()}" for table, counts in self.related.items()]
        if self.first_reasons:
            lines.append("first quarantined rows:")
            lines += [f"  line {line}: {reason}" for line, reason in self.first_reasons]
            literal = self.file.replace("'", "''")
            # Shown to the user to copy, never executed here.
            lines.append(
                "all of them: select line, reason, row_data from ops.quarantine "  # noqa: S608
                f"where file = '{literal}' and file_sha256 = '{self.file_sha256}' order by line;"
            )
        return "\n".join(lines)

    def _already_recorded(self) -> str:
        earlier = self.quarantined - self.newly_quarantined
        return f" ({earlier:,} already recorded by an earlier import)" if earlier else ""
