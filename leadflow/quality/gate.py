"""The quality gate: validate every suite of a stage with Great Expectations, record, report.

`run_gate("raw", engine)` validates the raw tables, `run_gate("marts", engine)` the marts.
Every expectation's outcome is written to `ops.quality_results` (all rows of one gate run
share one `checked_at`) and to a browsable page under `<leadflow home>/quality/`. The
result only stops something when asked: `GateResult.raise_if_failed()` raises if any
critical expectation failed, naming each one with its table. Warnings are logged.

Great Expectations is imported lazily (it takes seconds), with analytics switched off
before the import, and one ephemeral context with one datasource serves a whole gate run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from leadflow.errors import LeadflowError
from leadflow.quality.suites import PII_COLUMNS, Check, Suite, suites_for

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5
# Not a GX expectation: recorded when a suite's table is missing (e.g. dbt never built it).
TABLE_EXISTS = Check("expect_table_to_exist")


class QualityGateFailed(LeadflowError):
    """A critical expectation failed; the message names every failed expectation and table."""

    def __init__(self, result: GateResult) -> None:
        self.result = result
        failures = "; ".join(outcome.describe() for outcome in result.failures)
        super().__init__(f"quality gate '{result.stage}' failed: {failures}")


@dataclass(frozen=True)
class Outcome:
    """The result of one expectation on one table."""

    suite: str
    table: str
    check: Check
    success: bool
    rows: int | None = None
    unexpected: int | None = None
    observed_value: Any = None
    examples: tuple[Any, ...] = ()
    error: str | None = None

    @property
    def severity(self) -> str:
        return self.check.severity

    @property
    def expectation(self) -> str:
        return self.check.describe()

    def describe(self) -> str:
        """E.g. `raw.contacts: expect_column_values_to_match_regex(email) — 2 unexpected of 300`."""
        return f"{self.table}: {self.expectation} — {self.detail()}"

    def detail(self) -> str:
        if self.error:
            return f"error: {self.error}"
        if self.check is TABLE_EXISTS:
            return "ok" if self.success else "table does not exist"
        if self.unexpected is not None:
            of = f" of {self.rows}" if self.rows is not None else ""
            return f"{self.unexpected} unexpected{of}"
        if self.observed_value is not None:
            return f"observed {self.observed_value}"
        return "ok" if self.success else "failed"

    def observed(self) -> dict[str, Any]:
        """What ops.quality_results.observed records."""
        observed = {
            "rows": self.rows,
            "unexpected": self.unexpected,
            "observed_value": self.observed_value,
            "examples": list(self.examples) or None,
            "error": self.error,
            "detail": self.detail(),
        }
        return {key: value for key, value in observed.items() if value is not None}


@dataclass
class GateResult:
    stage: str
    checked_at: dt.datetime
    outcomes: list[Outcome] = field(default_factory=list)
    report: Path | None = None

    @property
    def failures(self) -> list[Outcome]:
        """Failed critical expectations: these stop the run."""
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]

    @property
    def success(self) -> bool:
        return not self.failures

    def raise_if_failed(self) -> None:
        if self.failures:
            raise QualityGateFailed(self)

    def describe(self) -> str:
        passed = sum(o.success for o in self.outcomes)
        lines = [
            f"quality gate '{self.stage}': {passed}/{len(self.outcomes)} expectations passed, "
            f"{len(self.failures)} critical failure(s), {len(self.warnings)} warning(s)"
        ]
        lines += [f"  FAILED  {o.describe()}" for o in self.failures]
        lines += [f"  WARNING {o.describe()}" for o in self.warnings]
        if self.report:
            lines.append(f"  report: {self.report}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "checked_at": self.checked_at.isoformat(),
            "success": self.success,
            "outcomes": [
                {
                    "suite": o.suite,
                    "table": o.table,
                    "expectation": o.expectation,
                    "severity": o.severity,
                    "success": o.success,
                    "observed": o.observed(),
                }
                for o in self.outcomes
            ],
        }


def run_gate(stage: str, engine: Engine, report_dir: Path | None = None) -> GateResult:
    """Validate every suite of `stage` ("raw" or "marts"); record and report every outcome."""
    suites = suites_for(stage)
    result = GateResult(stage=stage, checked_at=dt.datetime.now(dt.UTC))
    context, datasource = _gx_datasource(engine.url)
    existing = _existing_tables(engine, suites)
    for suite in suites:
        if suite.qualified_table not in existing:
            result.outcomes.append(Outcome(suite.name, suite.qualified_table, TABLE_EXISTS, False))
            continue
        rows = _row_count(engine, suite)
        result.outcomes += _validate_suite(context, datasource, suite, rows)
    record_results(engine, result)
    result.report = _write_report(result, report_dir)
    _log(result)
    return result


# --- Great Expectations -----------------------------------------------------------------


def _import_gx():
    # GX must never phone home, and its import-time chatter is noise in task logs.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


def gx_connection(url: URL) -> tuple[str, dict[str, Any]]:
    """A connection string GX accepts, plus engine kwargs.

    GX validates the string as a URL with a host, so a Unix socket directory (the
    embedded server's `?host=/dir`) goes to the driver through `connect_args` instead.
    """
    socket_dir = url.query.get("host")
    if url.host is None and socket_dir:
        url = url.difference_update_query(["host"]).set(host="localhost")
        return url.render_as_string(hide_password=False), {"connect_args": {"host": socket_dir}}
    return url.render_as_string(hide_password=False), {}


def _gx_datasource(url: URL):
    gx = _import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    connection_string, kwargs = gx_connection(url)
    datasource = context.data_sources.add_postgres(
        "warehouse", connection_string=connection_string, kwargs=kwargs
    )
    return context, datasource


def _validate_suite(context, datasource, suite: Suite, rows: int) -> list[Outcome]:
    gx = _import_gx()
    from great_expectations.expectations.registry import get_expectation_impl

    asset = datasource.add_table_asset(
        suite.qualified_table, table_name=suite.table, schema_name=suite.schema
    )
    batch = asset.add_batch_definition_whole_table("whole table")
    expectations = [
        get_expectation_impl(check.expectation)(**check.kwargs, meta={"check": index})
        for index, check in enumerate(suite.checks)
    ]
    gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name, expectations=expectations))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)
    )
    run = validation.run(result_format="SUMMARY")
    return [_outcome(suite, rows, result) for result in run.results]


def _outcome(suite: Suite, rows: int, result) -> Outcome:
    check = suite.checks[int(result.expectation_config.meta["check"])]
    details = result.result or {}
    unexpected = details.get("unexpected_count")
    observed_value = details.get("observed_value")
    if check.expectation == "unexpected_rows_expectation":
        # Its observed value is the number of rows the query returned.
        unexpected, observed_value = observed_value, None
    examples = ()
    if check.column not in PII_COLUMNS:
        examples = tuple(_plain(v) for v in details.get("partial_unexpected_list") or [])
    return Outcome(
        suite=suite.name,
        table=suite.qualified_table,
        check=check,
        success=bool(result.success),
        rows=rows,
        unexpected=unexpected,
        observed_value=_plain(observed_value),
        examples=examples[:MAX_EXAMPLES],
        error=_exception_message(result.exception_info or {}),
    )


def _exception_message(info: dict[str, Any]) -> str | None:
    """The first error GX caught; `info` is flat, or keyed by metric when a metric failed."""
    candidates = [info] if "raised_exception" in info else list(info.values())
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("raised_exception"):
            message = str(candidate.get("exception_message") or "unknown error")
            return message.strip().splitlines()[0]
    return None


def _plain(value: Any) -> Any:
    """JSON-safe: dates, decimals and the like become strings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# --- the warehouse ----------------------------------------------------------------------


def _existing_tables(engine: Engine, suites: tuple[Suite, ...]) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "select table_schema || '.' || table_name from information_schema.tables "
                "where table_schema = any(:schemas)"
            ),
            {"schemas": sorted({s.schema for s in suites})},
        )
        return {name for (name,) in rows}


def _row_count(engine: Engine, suite: Suite) -> int:
    table = sa.table(suite.table, schema=suite.schema)
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def record_results(engine: Engine, result: GateResult) -> None:
    """One row per expectation in ops.quality_results, all with the gate's `checked_at`."""
    rows = [
        {
            "suite": o.suite,
            "table_name": o.table,
            "expectation": o.expectation,
            "severity": o.severity,
            "success": o.success,
            "observed": json.dumps({"stage": result.stage, **o.observed()}),
            "checked_at": result.checked_at,
        }
        for o in result.outcomes
    ]
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "insert into ops.quality_results "
                "(suite, table_name, expectation, severity, success, observed, checked_at) "
                "values (:suite, :table_name, :expectation, :severity, :success, "
                "cast(:observed as jsonb), :checked_at)"
            ),
            rows,
        )


# --- reporting --------------------------------------------------------------------------


def _write_report(result: GateResult, report_dir: Path | None) -> Path | None:
    from leadflow.quality.report import write_report

    try:
        return write_report(result, report_dir)
    except OSError as error:
        # The results are in ops.quality_results already; a read-only home must not fail a run.
        log.warning("could not write the quality report: %s", error)
        return None


def _log(result: GateResult) -> None:
    log.info("%s", result.describe().splitlines()[0])
    for outcome in result.warnings:
        log.warning("quality warning: %s", outcome.describe())
    for outcome in result.failures:
        # Not an error here: raise_if_failed() reports failures, if the caller wants them to stop.
        log.info("quality failure: %s", outcome.describe())
