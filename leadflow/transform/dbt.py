"""Run leadflow's dbt project in-process, against the warehouse, for one `as_of` date.

dbt reads its connection from `dbt_project/profiles.yml`, which takes everything from the
LEADFLOW_DBT_* environment variables; `dbt_env()` derives them from the warehouse connection.
`run_dbt()` invokes dbt's programmatic runner with those variables set only for the duration
of the call, and turns a failed run into a `LeadflowError` naming every failed node.

dbt's runner keeps process-global state (flags, event logger, adapter factory) and reads
`os.environ`, so invocations in one process are serialised by a lock; Airflow runs each task
in its own process, where this costs nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from leadflow import paths
from leadflow.errors import LeadflowError, WarehouseUnavailable
from leadflow.warehouse.engine import ConnectionParams, connection_params

log = logging.getLogger(__name__)

# dbt commands that never open a connection: they must work with no warehouse at all
# (building Cosmos' manifest at setup or in CI), so they do not resolve the connection.
OFFLINE_COMMANDS = frozenset({"parse", "list", "ls", "clean"})

# Node statuses that make a run fail; `warn` (tests with severity warn) only gets logged.
FAILED_STATUSES = frozenset({"error", "fail", "runtime error", "partial success"})

_dbt_lock = threading.Lock()

# The run's date for the models (macros/run_values.sql reads it when no var `as_of` is set).
AS_OF_VARIABLE = "LEADFLOW_DBT_AS_OF"


def project_dir() -> Path:
    return paths.dbt_project_dir()


def target_dir() -> Path:
    """Where dbt writes manifest.json and run results; LEADFLOW_DBT_TARGET_PATH overrides it
    (tests, or several checkouts' runs that must not share compiled files)."""
    configured = os.environ.get("LEADFLOW_DBT_TARGET_PATH")
    return Path(configured).resolve() if configured else project_dir() / "target"


def log_dir() -> Path:
    return paths.home() / "dbt" / "logs"


def dbt_env(params: ConnectionParams | None = None) -> dict[str, str]:
    """The environment dbt needs to reach the warehouse (defaults to the configured one)."""
    params = params or connection_params()
    return {
        "LEADFLOW_DBT_HOST": params.host,
        "LEADFLOW_DBT_PORT": str(params.port),
        "LEADFLOW_DBT_USER": params.user,
        "LEADFLOW_DBT_PASSWORD": params.password,
        "LEADFLOW_DBT_DBNAME": params.dbname,
        **_settings_env(),
    }


def _settings_env() -> dict[str, str]:
    """What every dbt call needs, connection or not: the profile and no telemetry."""
    return {
        "DBT_PROFILES_DIR": str(project_dir()),
        # The machines have no internet: no anonymous usage stats, no version check.
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
    }


def run_dbt(args: list[str], *, as_of: date | None = None) -> None:
    """Run one dbt command (e.g. `["build", "--select", "dim_contacts"]`) in the project.

    `as_of` reaches the models as the environment variable LEADFLOW_DBT_AS_OF (YYYY-MM-DD,
    read by macros/run_values.sql); without it the models use today (UTC). Not `--vars`: dbt
    hashes the vars into its partial-parsing state, so a new date would make every nightly
    call parse the whole project again, while the variable is only read at execution. An
    explicit `--vars '{as_of: ...}'` in `args` (as Cosmos passes it) still wins.
    Raises `LeadflowError` naming the failed nodes and their messages.
    """
    from dbt.cli.main import dbtRunner  # dbt is heavy to import; only callers pay for it

    if not args:
        raise ValueError("run_dbt needs a dbt command, e.g. ['build'].")
    command = args[0]
    offline = command in OFFLINE_COMMANDS
    env = _settings_env() if offline else dbt_env()
    # Empty means "not given" (today), also when the caller's environment has a value.
    env = {**env, AS_OF_VARIABLE: as_of.isoformat() if as_of is not None else ""}
    invocation = [*args, *_location_args()]
    log_dir().mkdir(parents=True, exist_ok=True)
    log.info("dbt %s", " ".join(invocation))
    with _dbt_lock, _environment(env):
        result = dbtRunner().invoke(invocation)
    _log_warnings(result.result)
    if not result.success:
        raise _failure(command, result.exception, result.result)


def _location_args() -> list[str]:
    return [
        "--project-dir",
        str(project_dir()),
        "--profiles-dir",
        str(project_dir()),
        "--target-path",
        str(target_dir()),
        "--log-path",
        str(log_dir()),
    ]


def parse() -> Path:
    """Parse the project (no database needed) and return the path of its manifest.json."""
    run_dbt(["parse"])
    manifest = target_dir() / "manifest.json"
    if not manifest.is_file():
        raise LeadflowError(f"dbt parse succeeded but wrote no manifest at {manifest}.")
    return manifest


def build(as_of: date, select: str | None = None, *, full_refresh: bool = False) -> None:
    """Build (run and test) the models for `as_of`, all of them or the `select`ed ones.

    `full_refresh` rebuilds incremental models from scratch (dbt's --full-refresh).
    """
    args = ["build"]
    if select:
        args += ["--select", select]
    if full_refresh:
        args.append("--full-refresh")
    run_dbt(args, as_of=as_of)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a dbt call and restore them after.

    dbt snapshots os.environ at each invocation; leaving ours behind would leak one
    warehouse's credentials into the next call (or into other code in the process).
    """
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


def _node_results(execution: Any) -> list[Any]:
    """The per-node results of a run-like command (build, run, test); none for the others."""
    return list(getattr(execution, "results", None) or [])


def _log_warnings(execution: Any) -> None:
    for node_result in _node_results(execution):
        if str(node_result.status) == "warn":
            log.warning("dbt %s", _describe(node_result))


def _failure(command: str, exception: BaseException | None, execution: Any) -> LeadflowError:
    failed = [r for r in _node_results(execution) if str(r.status) in FAILED_STATUSES]
    if failed:
        details = "; ".join(_describe(r) for r in failed)
        skipped = sum(1 for r in _node_results(execution) if str(r.status) == "skipped")
        suffix = f" ({skipped} dependent nodes skipped)" if skipped else ""
        return LeadflowError(f"dbt {command} failed: {details}{suffix}")
    if exception is not None and _is_connection_failure(exception):
        reason = _summary(exception)
        return WarehouseUnavailable(f"dbt {command} cannot reach the warehouse: {reason}")
    reason = _summary(exception) if exception is not None else "see the dbt log"
    return LeadflowError(f"dbt {command} failed: {reason} (log: {log_dir() / 'dbt.log'})")


def _summary(exception: BaseException) -> str:
    """dbt's multi-line error text as one line, without the macro call chain ("> called by")."""
    lines = [line.strip() for line in str(exception).splitlines()]
    return ": ".join(line for line in lines if line and not line.startswith(">"))


def _describe(node_result: Any) -> str:
    """One readable line per node: tests by name and failing rows, other nodes by id."""
    node = node_result.node
    status = str(node_result.status)
    message = " ".join((node_result.message or "").split())
    if node.resource_type == "test" and status in ("fail", "warn"):
        rows = node_result.failures or 0
        verdict = "failed" if status == "fail" else "warned"
        return f"test {node.name} {verdict}: {rows} row{'s' if rows != 1 else ''}"
    return f"{node.unique_id}: {message or status}"


def _is_connection_failure(exception: BaseException) -> bool:
    from dbt.adapters.exceptions.connection import FailedToConnectError

    return isinstance(exception, FailedToConnectError)
