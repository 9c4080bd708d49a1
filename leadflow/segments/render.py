"""Printing compiled filters as SQL text, with placeholders or with escaped literals.

- `render_sql`: the SQL as the driver receives it, values as placeholders (`%(country_1)s`):
  what `leadflow segment preview` shows next to the parameter values.
- `literal_sql`: the SQL with every value inlined as a literal, escaped by SQLAlchemy's
  `literal_binds` rendering (quotes doubled, LIKE wildcards escaped by the compiler): for
  statements that cannot take bind parameters, such as `CREATE VIEW` for tenant views. The
  text is what PostgreSQL reads (a `%` is one `%`), for a server with
  `standard_conforming_strings = on` (the default since PostgreSQL 9.1).
- `execute_literal_sql`: runs such a text on a connection without parameters, refusing a
  server where backslashes in string literals would be escapes.
"""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.sql.expression import ClauseElement

from leadflow.errors import LeadflowError

EngineOrDialect = Engine | Connection | Dialect | None


def _dialect(engine_or_dialect: EngineOrDialect) -> Dialect:
    if engine_or_dialect is None:
        return psycopg.dialect()
    if isinstance(engine_or_dialect, Engine | Connection):
        return engine_or_dialect.dialect
    return engine_or_dialect


def render_sql(statement: ClauseElement, engine_or_dialect: EngineOrDialect = None) -> str:
    """`statement` as SQL with placeholders for its values (PostgreSQL/psycopg by default)."""
    compiled = statement.compile(
        dialect=_dialect(engine_or_dialect), compile_kwargs={"render_postcompile": True}
    )
    return str(compiled)


def _literal_dialect(engine_or_dialect: EngineOrDialect) -> Dialect:
    dialect = _dialect(engine_or_dialect)
    if dialect.name != "postgresql":
        raise ValueError(f"literal SQL is rendered for PostgreSQL, not {dialect.name}")
    # A driver with pyformat placeholders would get every `%` doubled (`'%%'`), which only
    # its own parameter parsing turns back; the "named" style leaves the SQL as PostgreSQL
    # reads it.
    return psycopg.dialect(paramstyle="named")


def literal_sql(statement: ClauseElement, engine_or_dialect: EngineOrDialect = None) -> str:
    """`statement` as PostgreSQL text with its values as literals escaped by SQLAlchemy.

    Raises if a value has no literal form (SQLAlchemy's literal_binds rendering refuses it
    rather than guessing).
    """
    compiled = statement.compile(
        dialect=_literal_dialect(engine_or_dialect),
        compile_kwargs={"literal_binds": True, "render_postcompile": True},
    )
    return str(compiled)


def execute_literal_sql(connection: Connection, sql: str) -> None:
    """Run a literal SQL text (e.g. `CREATE VIEW ... AS <literal_sql(...)>`) as written."""
    conforming = connection.exec_driver_sql("show standard_conforming_strings").scalar()
    if conforming != "on":
        raise LeadflowError(
            "the warehouse has standard_conforming_strings off; literal SQL is rendered for "
            "'on' (the PostgreSQL default): set it to on"
        )
    # exec_driver_sql passes parameters (an empty tuple) to the driver, so a pyformat driver
    # such as psycopg parses `%` in the text: double it so it reaches PostgreSQL as one `%`.
    if connection.dialect.paramstyle in ("format", "pyformat"):
        sql = sql.replace("%", "%%")
    connection.exec_driver_sql(sql)
