"""The set-based SQL every import kind shares: staging, rejecting, upserting.

All SQL is composed with `psycopg.sql` from names and fragments written in this package,
never from file contents: cell values only ever travel through COPY or query parameters.

Tables (temporary, dropped at commit):
- `import_header`: the file's column names,
- `import_staging`: valid rows (line, cells joined by U+001F, dedup_key, one typed column per
  CSV column),
- `import_rejects`: quarantined rows (line, row_data as a JSON object, reason, dedup_key).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from psycopg import Cursor, sql

STAGING = "import_staging"
REJECTS = "import_rejects"


def create_work_tables(
    cursor: Cursor, header: Sequence[str], staged_columns: Sequence[tuple[str, str]]
) -> None:
    cursor.execute(
        "create temp table import_header on commit drop as select %s::text[] as names",
        (list(header),),
    )
    typed = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type))
        for name, sql_type in staged_columns
    )
    cursor.execute(
        sql.SQL(
            "create temp table {} (line integer primary key, cells text not null, "
            "dedup_key text, {}) on commit drop"
        ).format(sql.Identifier(STAGING), typed)
    )
    cursor.execute(
        sql.SQL(
            "create temp table {} (line integer primary key, row_data text not null, "
            "reason text not null, dedup_key text) on commit drop"
        ).format(sql.Identifier(REJECTS))
    )


def copy_rows(cursor: Cursor, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    statement = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def reject(cursor: Cursor, bad_rows: sql.Composable, params: Sequence = ()) -> int:
    """Move staged rows into the rejects; `bad_rows` selects (line, reason), one row per line."""
    cursor.execute(
        sql.SQL(
            "with bad (line, reason) as ({bad}), "
            "moved as (delete from import_staging s using bad, import_header h "
            "where s.line = bad.line returning s.line, "
            "json_object(h.names, string_to_array(s.cells, chr(31)))::text as row_data, "
            "bad.reason, s.dedup_key) "
            "insert into import_rejects (line, row_data, reason, dedup_key) "
            "select line, row_data, reason, dedup_key from moved"
        ).format(bad=bad_rows),
        # Without parameters psycopg leaves '%' alone, which format('... %L ...') needs.
        params or None,
    )
    return cursor.rowcount


def reject_duplicate_keys(cursor: Cursor, key_label_sql: str) -> int:
    """A second row with a key seen earlier in the file (valid or not) is a duplicate."""
    return reject(
        cursor,
        sql.SQL(
            "with keyed as ("
            "  select line, dedup_key from import_staging"
            "  union all select line, dedup_key from import_rejects where dedup_key is not null"
            "), firsts as ("
            "  select dedup_key, min(line) as first_line from keyed group by dedup_key"
            ") "
            "select s.line, format('duplicate %s (first seen on line %s)', {label}, f.first_line) "
            "from import_staging s join firsts f using (dedup_key) where s.line > f.first_line"
        ).format(label=sql.SQL(key_label_sql)),
    )


def count(cursor: Cursor, table: str) -> int:
    cursor.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table)))
    return cursor.fetchone()[0]


def differing_columns_sql(columns: Sequence[str], left: str, right: str) -> sql.Composable:
    """SQL text listing which of `columns` differ between two aliases, e.g. 'status, currency'."""
    cases = [
        sql.SQL("case when {l}.{c} is distinct from {r}.{c} then {name} end").format(
            l=sql.Identifier(left),
            r=sql.Identifier(right),
            c=sql.Identifier(c),
            name=sql.Literal(c),
        )
        for c in columns
    ]
    return sql.SQL("concat_ws(', ', {})").format(sql.SQL(", ").join(cases))


def rows_differ_sql(columns: Sequence[str], left: str, right: str) -> sql.Composable:
    """`row(l.a, l.b) is distinct from row(r.a, r.b)` for the given columns."""
    return _rows_differ([(c, c) for c in columns], left, right)


def _rows_differ(pairs: Sequence[tuple[str, str]], left: str, right: str) -> sql.Composable:
    def row(alias: str, names: Iterable[str]) -> sql.Composable:
        return sql.SQL("row({})").format(
            sql.SQL(", ").join(sql.Identifier(alias, name) for name in names)
        )

    return sql.SQL("{} is distinct from {}").format(
        row(left, [target for target, _ in pairs]), row(right, [source for _, source in pairs])
    )


@dataclass(frozen=True)
class Upsert:
    """Bring `table` in line with `source` on `keys`: update rows that differ, insert new ones.

    Two statements instead of INSERT ... ON CONFLICT DO UPDATE, because an update needs the
    staged row itself (not only `excluded`): an empty created_at must keep the stored one,
    while a new row gets now(). Imports of one kind are serialised by an advisory lock, and
    the insert still says ON CONFLICT DO NOTHING so a concurrent writer cannot fail a file.
    """

    table: tuple[str, str]
    source: str
    keys: tuple[str, ...]
    # (target column, staged column) compared and copied.
    columns: tuple[tuple[str, str], ...]
    # (target column, SQL over t = target row and s = staged row) set on update only.
    update_also: tuple[tuple[str, str], ...] = ()
    # Extra SQL conditions that also make a row "changed".
    differs_also: tuple[str, ...] = ()
    # (target column, SQL over s) given on insert only.
    insert_also: tuple[tuple[str, str], ...] = ()

    def update_changed(self, cursor: Cursor, record_into: str | None = None) -> int:
        """Update the existing rows whose staged version differs; the count of rows updated."""
        assignments = [
            sql.SQL("{} = s.{}").format(sql.Identifier(target), sql.Identifier(source))
            for target, source in self.columns
        ] + [
            sql.SQL("{} = {}").format(sql.Identifier(target), sql.SQL(expression))
            for target, expression in self.update_also
        ]
        changed = [_rows_differ(self.columns, "t", "s")] if self.columns else []
        changed += [sql.SQL("({})").format(sql.SQL(condition)) for condition in self.differs_also]
        if not changed:
            return 0
        statement = sql.SQL(
            "update {table} as t set {assignments} from {source} as s where {keys} and ({changed})"
        ).format(
            table=sql.Identifier(*self.table),
            assignments=sql.SQL(", ").join(assignments),
            source=sql.Identifier(self.source),
            keys=self._keys_match("t", "s"),
            changed=sql.SQL(" or ").join(changed),
        )
        return self._run(cursor, statement, record_into)

    def insert_missing(self, cursor: Cursor, record_into: str | None = None) -> int:
        """Insert the staged rows whose key is not in the table yet; the count inserted."""
        targets = list(self.keys) + [target for target, _ in self.columns]
        values = [sql.SQL("s.{}").format(sql.Identifier(key)) for key in self.keys]
        values += [sql.SQL("s.{}").format(sql.Identifier(source)) for _, source in self.columns]
        targets += [target for target, _ in self.insert_also]
        values += [sql.SQL(expression) for _, expression in self.insert_also]
        statement = sql.SQL(
            "insert into {table} as t ({targets}) select {values} from {source} as s "
            "where not exists (select from {table} as e where {keys}) "
            "order by s.line on conflict do nothing"
        ).format(
            table=sql.Identifier(*self.table),
            targets=sql.SQL(", ").join(map(sql.Identifier, targets)),
            values=sql.SQL(", ").join(values),
            source=sql.Identifier(self.source),
            keys=self._keys_match("e", "s"),
        )
        return self._run(cursor, statement, record_into)

    def _keys_match(self, left: str, right: str) -> sql.Composable:
        return sql.SQL(" and ").join(
            sql.SQL("{} = {}").format(sql.Identifier(left, key), sql.Identifier(right, key))
            for key in self.keys
        )

    def _run(self, cursor: Cursor, statement: sql.Composable, record_into: str | None) -> int:
        if record_into is not None:
            keys = sql.SQL(", ").join(sql.Identifier("t", key) for key in self.keys)
            statement = sql.SQL(
                "with changed as ({statement} returning {keys}) "
                "insert into {into} select * from changed"
            ).format(statement=statement, keys=keys, into=sql.Identifier(record_into))
        cursor.execute(statement)
        return cursor.rowcount
