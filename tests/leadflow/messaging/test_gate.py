"""Sending is blocked unless the latest nightly run succeeded (its quality gates passed)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from leadflow.messaging.gate import SendingBlocked, require_clean_marts


def record_run(engine, as_of: dt.date, status: str, error: str | None = None) -> None:
    detail = json.dumps({"error": error} if error else {})
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "insert into ops.runs (kind, as_of, status, detail) "
                "values ('nightly', :as_of, :status, cast(:detail as jsonb))"
            ),
            {"as_of": as_of, "status": status, "detail": detail},
        )


def test_no_nightly_run_blocks_sending(warehouse):
    with pytest.raises(SendingBlocked, match="no nightly run yet"):
        require_clean_marts(warehouse)


def test_a_failed_gate_in_the_latest_run_blocks_sending(warehouse):
    record_run(warehouse, dt.date(2026, 11, 26), "success")
    record_run(
        warehouse, dt.date(2026, 11, 27), "failed", "quality gate 'marts' failed: lead_scores"
    )

    with pytest.raises(SendingBlocked) as raised:
        require_clean_marts(warehouse)

    assert "as_of 2026-11-27) is failed: quality gate 'marts' failed: lead_scores" in str(
        raised.value
    )


def test_a_running_nightly_blocks_sending_and_its_success_opens_it(warehouse):
    record_run(warehouse, dt.date(2026, 11, 27), "running")
    with pytest.raises(SendingBlocked, match="is running"):
        require_clean_marts(warehouse)

    with warehouse.begin() as connection:
        connection.execute(sa.text("update ops.runs set status = 'success'"))

    require_clean_marts(warehouse)  # no error: mail may go out
