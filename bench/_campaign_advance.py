"""Benchmark: advancing N enrolled contacts one step against one set-based UPDATE of the same rows.

    .venv/bin/python bench/_campaign_advance.py                  # 100,000 contacts
    .venv/bin/python bench/_campaign_advance.py --contacts 10000

Runs in a dedicated database `leadflow_bench_campaigns` on the warehouse's server (the
`leadflow` demo database is never touched). Not timed: a contacts relation of N contacts
(`public.bench_contacts`, the columns the engine reads) and N journeys of one campaign
(send `hello` → wait 3d → send `again`) written straight into ops.campaign_enrolments.

Timed, each in its own transaction, from the same starting state:
- baseline: `UPDATE ops.campaign_enrolments SET step_id = ..., due_at = ...` over the N rows;
- send step: `advance(..., step_id="hello")` — ending checks (consent, unsubscribes,
  audience/tenant), N outbox rows planned by the send-time planner (window + cap), N history
  rows, N moves;
- wait step: the N journeys due at `pause`, `advance(..., step_id="pause")`.
The three run in turn `--rounds` times (3): on a shared machine one sample of each can be
far off, so each round gives a ratio of neighbours in time, and their median is reported.
Target: each ≤ 3 × the baseline (issue 4).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import statistics
import time
from collections.abc import Callable

import sqlalchemy as sa

from leadflow import paths
from leadflow.campaigns import advance
from leadflow.config import Campaign, Config, load_config
from leadflow.segments.relations import Relations

DATABASE = "leadflow_bench_campaigns"
ROUNDS = 3
CAMPAIGN_ID = "bench_advance"
# Wednesday 10:00 UTC: inside every example tenant's send window.
NOW = dt.datetime(2026, 6, 17, 10, 0, tzinfo=dt.UTC)
RELATIONS = Relations(
    contacts="public.bench_contacts",
    events="raw.events",
    orders="raw.orders",
    order_items="raw.order_items",
    products="raw.products",
    installed_base="raw.installed_base",
    product_family_column="family",
)
CAMPAIGN = {
    "id": CAMPAIGN_ID,
    "name": "Benchmark",
    "tenants": ["hq", "fr", "it", "es"],
    "trigger": {"one_off": {"at": "2026-06-01"}},
    "steps": [
        {"id": "hello", "send": {"message": "hello"}},
        {"id": "pause", "wait": {"duration": "3d"}},
        {"id": "again", "send": {"message": "again"}},
    ],
}


def measure_advance(
    engine: sa.Engine, contacts: int = 100_000, rounds: int = ROUNDS
) -> dict[str, list[float]]:
    """Seconds of the baseline UPDATE, the send step and the wait step over `contacts`
    journeys, one of each per round."""
    config = _config()
    _prepare(engine, contacts)
    actions = {
        "baseline": ("hello", _baseline),
        "send": ("hello", lambda _c: _advance(engine, config, "hello")),
        "wait": ("pause", lambda _c: _advance(engine, config, "pause")),
    }
    timings: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(rounds):
        for name, (step_id, action) in actions.items():
            timings[name].append(_timed(engine, contacts, step_id, action))
    return timings


def ratios(timings: dict[str, list[float]], name: str) -> list[float]:
    """`name`'s time over the baseline's, round by round."""
    return [
        seconds / baseline
        for seconds, baseline in zip(timings[name], timings["baseline"], strict=True)
    ]


def describe(timings: dict[str, list[float]], contacts: int) -> list[str]:
    """Median seconds and ratios (each round's ratio, and their median) as report lines."""
    lines = [f"advancing {contacts:,} journeys one step, {len(timings['baseline'])} rounds"]
    for name, seconds in timings.items():
        spread = ", ".join(f"{value:.2f}" for value in seconds)
        line = f"  {name:<10} {statistics.median(seconds):6.2f} s ({spread})"
        if name != "baseline":
            each = ratios(timings, name)
            line += (
                f" = {statistics.median(each):.2f} × baseline"
                f" (rounds: {', '.join(f'{ratio:.2f}' for ratio in each)}; target ≤ 3 ×)"
            )
        lines.append(line)
    return lines


def _advance(engine: sa.Engine, config: Config, step_id: str) -> None:
    advance(engine, config, CAMPAIGN_ID, NOW, relations=RELATIONS, step_id=step_id)


def _config() -> Config:
    config = load_config(paths.config_dir())
    return dataclasses.replace(config, campaigns={CAMPAIGN_ID: Campaign.model_validate(CAMPAIGN)})


def _prepare(engine: sa.Engine, contacts: int) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("drop table if exists public.bench_contacts")
        connection.exec_driver_sql(
            "create table public.bench_contacts (contact_id text primary key, "
            "tenant_code text, consent_status text, owner text, account_id text)"
        )
        connection.execute(
            sa.text(
                "insert into public.bench_contacts (contact_id, tenant_code, consent_status) "
                "select 'c' || n, (array['hq', 'fr', 'it', 'es'])[1 + n % 4], 'confirmed' "
                "from generate_series(1, :n) as n"
            ),
            {"n": contacts},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("vacuum analyze public.bench_contacts")


def _reset(engine: sa.Engine, contacts: int, step_id: str) -> None:
    """N active journeys at `step_id`, due now, and no outbox or history rows."""
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "truncate ops.campaign_enrolments, ops.campaign_step_history, ops.outbox "
            "restart identity cascade"
        )
        connection.execute(
            sa.text(
                "insert into ops.campaign_enrolments (campaign_id, contact_id, tenant_code, "
                "trigger_key, enrolled_at, status, step_id, step_seq, arrived_at, due_at) "
                "select :campaign_id, c.contact_id, c.tenant_code, 'one_off', :now, 'active', "
                ":step_id, 0, :now, :now from public.bench_contacts c"
            ),
            {"campaign_id": CAMPAIGN_ID, "now": NOW, "step_id": step_id},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("vacuum analyze ops.campaign_enrolments")
        connection.exec_driver_sql("analyze ops.outbox")
    del contacts


def _baseline(connection: sa.Connection) -> None:
    connection.execute(
        sa.text(
            "update ops.campaign_enrolments set step_id = 'pause', "
            "due_at = :now + interval '3 days' "
            "where campaign_id = :campaign_id and status = 'active' and step_id = 'hello'"
        ),
        {"now": NOW, "campaign_id": CAMPAIGN_ID},
    )


def _timed(
    engine: sa.Engine, contacts: int, step_id: str, action: Callable[[sa.Connection], object]
) -> float:
    _reset(engine, contacts, step_id)
    started = time.perf_counter()
    with engine.begin() as connection:
        action(connection)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    from _common import bench_database

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    engine = bench_database(DATABASE)
    timings = measure_advance(engine, args.contacts, args.rounds)
    print("\n".join(describe(timings, args.contacts)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
