"""The nightly run: config → raw gate → activity → dbt → segments → marts gate → routing.

1. The configuration is validated and written to the `ops.config_*` snapshot dbt reads.
2. The raw quality gate validates the landed data.
3. The incremental activity state is brought up to the run's cut-off
   (`leadflow.scoring.update_activity_state`), so the scoring models can use it.
4. dbt builds (runs and tests) every model for `as_of` except marts.segment_members and what
   depends on it (`--exclude segment_members+`).
5. Every configured segment is materialised into ops.segment_members with the one filter
   compiler (`leadflow.segments.materialize`): segments may compare what step 4 derived.
6. dbt builds marts.segment_members and what depends on it (`--select segment_members+`).
7. The marts quality gate validates what the campaigns send from.
8. MQLs without an owner are routed and their owners notified (`leadflow.routing`).

`leadflow build --as-of D` runs it in one process through `run_nightly`; the
`leadflow_nightly` DAG runs the same step functions one task each (dbt through Cosmos, one
task per model). Either way the run is recorded in `ops.runs` (kind `nightly`): `running`
when it starts, each step's outcome in `detail.steps`, then `success` or `failed` with the
error. A failed critical expectation stops the run before anything downstream is built.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadflow.errors import LeadflowError
from leadflow.quality import GateResult, run_gate

if TYPE_CHECKING:
    from leadflow.routing import RoutingReport

KIND = "nightly"
# marts.segment_members and everything built on it come after the segments are materialised.
SEGMENT_MARTS = "segment_members+"
RunStatus = Literal["success", "failed"]


@dataclass(frozen=True)
class NightlyResult:
    run_id: int
    as_of: dt.date
    config: str
    activity: str
    raw_gate: GateResult
    marts_gate: GateResult
    segments: dict[str, int]
    routing: RoutingReport
    seconds: float

    def describe(self) -> str:
        """What `leadflow build` prints."""
        return "\n".join(
            [
                f"nightly run {self.run_id} for {self.as_of}: success in {self.seconds:.0f} s",
                f"configuration: {self.config}",
                self.raw_gate.describe(),
                self.activity,
                "dbt build: ok",
                describe_segments(self.segments),
                self.marts_gate.describe(),
                self.routing.describe(),
            ]
        )


def describe_segments(counts: dict[str, int]) -> str:
    sizes = ", ".join(f"{name} {members:,}" for name, members in counts.items())
    return f"segments: {len(counts)} materialised ({sizes})"


# --- the run's date ---------------------------------------------------------------------


def as_of_for_run(logical_date: dt.datetime | None, run_after: dt.datetime | None) -> dt.date:
    """The `as_of` date of an Airflow run.

    A scheduled or `dags test` run has a logical date: its (UTC) date is `as_of`. Airflow 3
    runs may have none (manual or asset-triggered); then `as_of` is the last complete day
    before the run, the date a scheduled run at that moment would have used.
    """
    if logical_date is not None:
        return _utc(logical_date).date()
    if run_after is None:
        raise LeadflowError("an Airflow run with neither a logical date nor run_after has no as_of")
    return (_utc(run_after) - dt.timedelta(days=1)).date()


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


# --- ops.runs ---------------------------------------------------------------------------


def start_run(engine: Engine, as_of: dt.date, origin: dict[str, Any] | None = None) -> int:
    """Record a `running` nightly run in ops.runs and return its id."""
    _require_migrated(engine)
    with engine.begin() as connection:
        return connection.execute(
            sa.text(
                "insert into ops.runs (kind, as_of, status, detail) "
                "values (:kind, :as_of, 'running', cast(:detail as jsonb)) returning run_id"
            ),
            {"kind": KIND, "as_of": as_of, "detail": json.dumps({**(origin or {}), "steps": {}})},
        ).scalar_one()


def record_step(engine: Engine, run_id: int, step: str, outcome: dict[str, Any]) -> None:
    """Add one step's outcome to the run's `detail.steps`."""
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "update ops.runs set detail = detail || jsonb_build_object('steps', "
                "coalesce(detail -> 'steps', '{}'::jsonb) "
                "|| jsonb_build_object(cast(:step as text), cast(:outcome as jsonb))) "
                "where run_id = :run_id"
            ),
            {"run_id": run_id, "step": step, "outcome": json.dumps(outcome, default=str)},
        )


def finish_run(engine: Engine, run_id: int, status: RunStatus, error: str | None = None) -> None:
    """Mark the run finished; a failed run keeps the error that stopped it."""
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "update ops.runs set status = :status, finished_at = now(), "
                "detail = detail || cast(:extra as jsonb) where run_id = :run_id"
            ),
            {
                "run_id": run_id,
                "status": status,
                "extra": json.dumps({"error": error} if error else {}),
            },
        )


def _require_migrated(engine: Engine) -> None:
    """The run writes ops tables of every migration: an older schema is a clear error."""
    from alembic.script import ScriptDirectory

    from leadflow.warehouse.migrate import MIGRATIONS, current_revision

    current = current_revision(engine)
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    if current not in heads:
        at = f"at revision {current}" if current else "not migrated"
        raise LeadflowError(
            f"the warehouse is {at} (latest: {', '.join(heads)}): run `leadflow db migrate` first"
        )


# --- the steps --------------------------------------------------------------------------


def snapshot_configuration(engine: Engine, config_dir: Path) -> dict[str, str]:
    """Validate the configuration and write it to the ops.config_* snapshot dbt reads."""
    from leadflow.config import load_config
    from leadflow.scoring import config_hash, snapshot_config

    config = load_config(config_dir)
    snapshot_config(engine, config)
    return {"summary": config.summary(), "config_hash": config_hash(config)}


def begin(
    engine: Engine, as_of: dt.date, config_dir: Path, origin: dict[str, Any]
) -> tuple[int, str]:
    """Record the run, then validate and snapshot the configuration: (run_id, summary).

    The run is recorded first so that an invalid configuration is a failed run too.
    """
    run_id = start_run(engine, as_of, origin)
    try:
        config = snapshot_configuration(engine, config_dir)
    except Exception as error:
        finish_run(engine, run_id, "failed", str(error))
        raise
    record_step(engine, run_id, "validate_config", config)
    return run_id, config["summary"]


def update_activity(
    engine: Engine, config_dir: Path, as_of: dt.date, run_id: int | None = None
) -> str:
    """Bring the incremental activity state up to `as_of`'s cut-off; what it did, in words.

    Without this the scoring models still compute every activity score from the events, but
    a state left at this cut-off by an earlier run would miss the events since.
    """
    from leadflow.config import load_config
    from leadflow.scoring import update_activity_state

    update = update_activity_state(engine, load_config(config_dir), as_of)
    if run_id is not None:
        record_step(
            engine, run_id, "activity_state", {"mode": update.mode, "seconds": update.seconds}
        )
    return update.describe()


def check_raw(engine: Engine, run_id: int | None = None) -> GateResult:
    """The raw quality gate; raises `QualityGateFailed` on a failed critical expectation."""
    return _gate("raw", engine, run_id)


def check_marts(engine: Engine, run_id: int | None = None) -> GateResult:
    """The marts quality gate; raises `QualityGateFailed` on a failed critical expectation."""
    return _gate("marts", engine, run_id)


def _gate(stage: str, engine: Engine, run_id: int | None) -> GateResult:
    result = run_gate(stage, engine)
    if run_id is not None:
        record_step(engine, run_id, f"{stage}_quality_gate", gate_summary(result))
    result.raise_if_failed()
    return result


def gate_summary(result: GateResult) -> dict[str, Any]:
    return {
        "success": result.success,
        "expectations": len(result.outcomes),
        "failures": [o.describe() for o in result.failures],
        "warnings": [o.describe() for o in result.warnings],
        "report": str(result.report) if result.report else None,
    }


def build_marts(as_of: dt.date) -> None:
    """dbt build (models and their tests) for `as_of`, up to the segment marts."""
    from leadflow.transform.dbt import run_dbt

    run_dbt(["build", "--exclude", SEGMENT_MARTS], as_of=as_of)


def materialize(
    engine: Engine, config_dir: Path, as_of: dt.date, run_id: int | None = None
) -> dict[str, int]:
    """Write every configured segment's members for `as_of` to ops; members per segment."""
    from leadflow.config import load_config
    from leadflow.segments.materialize import materialize_segments

    started = time.monotonic()
    counts = materialize_segments(engine, load_config(config_dir), as_of)
    if run_id is not None:
        record_step(
            engine,
            run_id,
            "segments",
            {"members": counts, "seconds": round(time.monotonic() - started, 3)},
        )
    return counts


def build_segment_marts(as_of: dt.date) -> None:
    """dbt build of marts.segment_members (and what depends on it) for `as_of`."""
    from leadflow.transform.dbt import build

    build(as_of, select=SEGMENT_MARTS)


def route_mqls(
    engine: Engine,
    config_dir: Path,
    as_of: dt.date,
    run_id: int | None = None,
    *,
    notify: bool = True,
) -> RoutingReport:
    """Route the MQLs waiting for an owner; with `notify`, mail the owners too.

    A retried step routes nobody again; its empty result does not replace the recorded
    outcome of the attempt that routed.
    """
    from leadflow.config import load_config
    from leadflow.routing import RoutingReport, route, route_leads

    config = load_config(config_dir)
    if notify:
        report = route(engine, config, as_of)
    else:
        from leadflow.routing import require_marts_built_for

        require_marts_built_for(engine, as_of)
        report = RoutingReport(route_leads(engine, config, as_of))
    if run_id is not None and (report.routing.batch_id or not _has_step(engine, run_id, "routing")):
        record_step(engine, run_id, "routing", report.summary())
    return report


def notify_owners(engine: Engine, config_dir: Path, run_id: int | None = None) -> str:
    """Send every pending routing notification; what was sent, in words."""
    from leadflow.config import load_config
    from leadflow.routing import SmtpSettings, send_pending_notifications

    config = load_config(config_dir)
    smtp = SmtpSettings.from_env(config)
    sent = send_pending_notifications(engine, config, smtp)
    if run_id is not None and sent:
        record_step(engine, run_id, "routing_notifications", {"sent": len(sent), "smtp": str(smtp)})
    return f"routing notifications: {len(sent)} mail(s) sent via SMTP {smtp}"


def _has_step(engine: Engine, run_id: int, step: str) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.execute(
                sa.text("select (detail -> 'steps') ? :step from ops.runs where run_id = :run_id"),
                {"step": step, "run_id": run_id},
            ).scalar()
        )


# --- the whole run ----------------------------------------------------------------------


def run_nightly(as_of: dt.date, config_dir: Path) -> NightlyResult:
    """Run every step in this process; on failure the run is marked failed and the error raised."""
    from leadflow.warehouse.engine import get_engine

    engine = get_engine()
    started = time.monotonic()
    run_id, config = begin(engine, as_of, config_dir, {"origin": "cli"})
    try:
        raw_gate = check_raw(engine, run_id)
        activity = update_activity(engine, config_dir, as_of, run_id)
        build_marts(as_of)
        segments = materialize(engine, config_dir, as_of, run_id)
        build_segment_marts(as_of)
        record_step(engine, run_id, "dbt_build", {"success": True})
        marts_gate = check_marts(engine, run_id)
        routing = route_mqls(engine, config_dir, as_of, run_id)
    except Exception as error:
        finish_run(engine, run_id, "failed", str(error))
        raise
    finish_run(engine, run_id, "success")
    return NightlyResult(
        run_id=run_id,
        as_of=as_of,
        config=config,
        activity=activity,
        raw_gate=raw_gate,
        marts_gate=marts_gate,
        segments=segments,
        routing=routing,
        seconds=time.monotonic() - started,
    )
