"""Airflow-side helpers of the nightly run: its date, its errors and its ops.runs record."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from leadflow.errors import LeadflowError, WarehouseUnavailable

log = logging.getLogger(__name__)

# The task that resolves the run's date and records the run; the others read its XComs.
START_TASK = "validate_config"
# Its XCom with the ops.runs id ("run_id" is taken: Airflow's own run id in the context).
RUN_ID_KEY = "nightly_run_id"


def as_of_from_context(context: Any) -> dt.date:
    """The run's as_of: the logical date's date, else the last full day before run_after."""
    from leadflow.nightly import as_of_for_run

    dag_run = context["dag_run"]
    return as_of_for_run(dag_run.logical_date, getattr(dag_run, "run_after", None))


def origin(context: Any) -> dict[str, str]:
    """What ops.runs.detail records about the Airflow run."""
    return {"origin": "airflow", "dag_id": context["dag"].dag_id, "run_id": context["run_id"]}


@contextmanager
def fail_fast_on_user_errors() -> Iterator[None]:
    """A LeadflowError (bad data, bad config) fails the task without retries.

    Retrying cannot fix a failed expectation or an invalid configuration; only an
    unreachable warehouse is worth retrying, so that keeps Airflow's retry behaviour.
    """
    try:
        yield
    except WarehouseUnavailable:
        raise
    except LeadflowError as error:
        raise AirflowFailException(str(error)) from error


def mark_run_failed(context: Any) -> None:
    """on_failure_callback: mark the run's ops.runs row failed with the task's error."""
    run_id = context["ti"].xcom_pull(task_ids=START_TASK, key=RUN_ID_KEY)
    if run_id is None:
        return  # the run was never recorded (or START_TASK recorded its own failure)
    from leadflow.nightly import finish_run
    from leadflow.warehouse.engine import get_engine

    error = context.get("exception")
    message = f"{context['ti'].task_id}: {error}" if error else context["ti"].task_id
    try:
        finish_run(get_engine(), int(run_id), "failed", message)
    except LeadflowError as problem:
        log.warning("could not mark nightly run %s failed: %s", run_id, problem)
