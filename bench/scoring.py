"""Benchmark: the nightly scoring build against one aggregate scan of the events, and the
incremental run after 1 % new events against the full build.

    .venv/bin/python bench/scoring.py                    # 1,000,000 contacts, 20,000,000 events
    .venv/bin/python bench/scoring.py --contacts 100000
    .venv/bin/python bench/scoring.py --contacts 100000 --reuse   # keep the generated company

Runs against the warehouse of `get_engine()` (the embedded one unless LEADFLOW_WAREHOUSE_URL
says otherwise), in a dedicated database `leadflow_bench_scoring` on that server, so the
`leadflow` demo database is never touched. The configuration is the example company's
(include/config, or --config).

1. The generated company (`leadflow.demo.generator.generate`) for `as_of`, and the models the
   scoring models read (staging views etc., `dbt run --exclude tag:scoring+ segment_members+`):
   not timed.
2. baseline: `select contact_id, count(*), max(occurred_at) from raw.events group by
   contact_id`, once to warm the cache and once timed.
3. full: `leadflow.scoring.score(..., full=True)` for `as_of`: configuration snapshot,
   activity state rebuilt from every event, dbt build --full-refresh (models and tests) of
   personas, scores, matrix, CLV and dim_contacts, incremental models rebuilt from scratch.
   Then every configured segment is materialised (`materialize_segments`, then dbt builds
   marts.segment_members), as the nightly run does. Target: ≤ 3 × the baseline.
4. 1 % new events arrive for the next day (some late, with old timestamps; some after that
   day's cut-off), the models of step 1 are rebuilt for as_of + 1 day (not timed; their views
   carry the cut-off), then the incremental nightly run for as_of + 1 day, timed. Target: ≤ 10 % of
   the full build. The activity-state update alone is reported too.
5. A full build for as_of + 1 day checks that the incremental run gave the same lead scores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from _common import bench_database

from leadflow import paths
from leadflow.config import load_config
from leadflow.demo.generator import GeneratorSettings, generate
from leadflow.nightly import SEGMENT_MARTS
from leadflow.scoring import ScoringResult, score
from leadflow.segments.materialize import materialize_segments
from leadflow.transform import dbt
from leadflow.warehouse.engine import get_engine

DATABASE = "leadflow_bench_scoring"
DEFAULT_CONTACTS = 1_000_000
DEFAULT_EVENTS_PER_CONTACT = 20.0
NEW_EVENTS_SHARE = 0.01
BASELINE = "select contact_id, count(*), max(occurred_at) from raw.events group by contact_id"


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    # Compiled files of this run apart from the project's target/ (other runs share it).
    os.environ.setdefault("LEADFLOW_DBT_TARGET_PATH", str(paths.home() / "bench" / "dbt-target"))
    engine = _bench_database()
    config = load_config(args.config)
    if not (args.reuse and _has_company(engine)):
        _generate(engine, args)
    _remove_added_events(engine)
    _forget_segment_history(engine)
    _build_prerequisites(args.as_of)
    _vacuum(engine)

    baseline = _baseline(engine)
    full = _with_database(lambda: _timed_score(engine, config, args.as_of, full=True))
    _report("full nightly scoring build", full, baseline)

    next_day = args.as_of + dt.timedelta(days=1)
    added = _add_new_events(engine, next_day)
    print(f"added {added:,} new events ({NEW_EVENTS_SHARE:.0%}) for {next_day}", flush=True)
    _build_prerequisites(next_day)
    incremental = _with_database(lambda: _timed_score(engine, config, next_day, full=False))
    _report("incremental nightly scoring run", incremental, baseline)
    _save_lead_scores(engine)
    check = _with_database(lambda: _timed_score(engine, config, next_day, full=True))
    _report("full nightly scoring build (check)", check, baseline)
    differences = _lead_score_differences(engine)

    print()
    print(f"baseline aggregate scan:            {baseline:8.1f} s")
    print(
        f"full build / baseline:              {full[1]:8.1f} s = {full[1] / baseline:.2f} × "
        "(target ≤ 3 ×)"
    )
    print(
        f"incremental run / full build:       {incremental[1]:8.1f} s = "
        f"{incremental[1] / full[1]:.1%} (target ≤ 10 %)"
    )
    activity_full, activity_incremental = full[0].activity.seconds, incremental[0].activity.seconds
    print(
        f"activity state: incremental / full: {activity_incremental:8.2f} s / "
        f"{activity_full:.2f} s = {activity_incremental / activity_full:.1%}"
    )
    print(f"incremental == full rebuild (lead_scores): {'yes' if differences == 0 else 'NO'}")
    return 0 if differences == 0 else 1


def _build_prerequisites(as_of: dt.date) -> None:
    """The models the scoring models read, for `as_of`, as the nightly run builds them just
    before scoring: their views carry the day's cut-off, so each day needs its own."""
    print(f"building the models the scoring models read for {as_of} (not timed) ...", flush=True)
    excluded = ["tag:scoring+", SEGMENT_MARTS]  # the segment marts come after the segments
    _with_database(lambda: dbt.run_dbt(["run", "--exclude", *excluded], as_of=as_of))


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    scale = float(os.environ.get("LEADFLOW_BENCH_SCALE", "1"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=max(1, round(DEFAULT_CONTACTS * scale)))
    parser.add_argument("--events-per-contact", type=float, default=DEFAULT_EVENTS_PER_CONTACT)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30))
    parser.add_argument("--config", type=Path, default=paths.config_dir())
    parser.add_argument(
        "--reuse", action="store_true", help="keep the company generated by an earlier run"
    )
    return parser.parse_args(argv)


def _bench_database() -> sa.Engine:
    return bench_database(DATABASE)


def _with_database(action: Callable[[], object]):
    """Run `action` with leadflow (and dbt) pointed at the bench database."""
    previous = os.environ.get("LEADFLOW_WAREHOUSE_URL")
    url = get_engine().url.set(database=DATABASE)
    os.environ["LEADFLOW_WAREHOUSE_URL"] = url.render_as_string(hide_password=False)
    try:
        return action()
    finally:
        if previous is None:
            os.environ.pop("LEADFLOW_WAREHOUSE_URL", None)
        else:
            os.environ["LEADFLOW_WAREHOUSE_URL"] = previous


def _has_company(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.execute(sa.text("select exists (select from raw.contacts)")).scalar()
        )


def _generate(engine: sa.Engine, args: argparse.Namespace) -> None:
    settings = GeneratorSettings(
        contacts=args.contacts,
        seed=args.seed,
        events_per_contact=args.events_per_contact,
        as_of=args.as_of,
    )
    print(
        f"generating {settings.contacts:,} contacts × {settings.events_per_contact:g} events "
        f"(seed {settings.seed}, as_of {settings.as_of}) into {DATABASE} ...",
        flush=True,
    )
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-") as scratch:
        summary = generate(engine, settings, progress=True, out_dir=Path(scratch))
    print(f"generated in {time.perf_counter() - began:,.0f} s:", flush=True)
    for table, count in summary.counts.items():
        print(f"  {table:<20} {count:>12,}")


def _vacuum(engine: sa.Engine) -> None:
    """Fresh statistics and visibility map, as a nightly run after autovacuum would see."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("vacuum analyze raw.events, raw.contacts, raw.accounts")


def _baseline(engine: sa.Engine) -> float:
    with engine.connect() as connection:
        connection.exec_driver_sql(f"select count(*) from ({BASELINE}) as warm_up")
        began = time.perf_counter()
        connection.exec_driver_sql(f"select count(*) from ({BASELINE}) as baseline")
        seconds = time.perf_counter() - began
    print(f"baseline aggregate scan: {seconds:.1f} s", flush=True)
    return seconds


def _timed_score(
    engine: sa.Engine, config, as_of: dt.date, *, full: bool
) -> tuple[ScoringResult, float]:
    began = time.perf_counter()
    result = score(engine, config, as_of, full=full)
    scored = time.perf_counter()
    counts = materialize_segments(engine, config, as_of)
    dbt.build(as_of, select=SEGMENT_MARTS)
    ended = time.perf_counter()
    members = ", ".join(f"{name} {count:,}" for name, count in counts.items())
    print(f"segments materialised in {ended - scored:.1f} s: {members}", flush=True)
    return result, ended - began


def _report(name: str, timed: tuple[ScoringResult, float], baseline: float) -> None:
    result, seconds = timed
    print(f"{name}: {seconds:.1f} s ({seconds / baseline:.2f} × baseline)", flush=True)
    for line in result.describe().splitlines():
        print(f"  {line}", flush=True)


def _add_new_events(engine: sa.Engine, day: dt.date) -> int:
    """1 % more events, copies of random existing ones: most happen during `day`, every 20th
    is a late arrival (its original, old timestamp), every 50th lies after `day`'s cut-off."""
    day_start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    with engine.begin() as connection:
        return connection.execute(
            sa.text(
                """
                insert into raw.events (
                    event_id, contact_id, visitor_id, event_type, occurred_at, campaign_id,
                    step_id, mailing_id, link_id, link_tag, asset_id, url, bounce_type,
                    is_machine, user_agent, properties
                )
                select
                    'bench-' || :day || '-' || event_id, contact_id, visitor_id, event_type,
                    case
                        when event_seq % 20 = 0 then occurred_at
                        when event_seq % 50 = 1 then :day_start + interval '1 day 2 hours'
                        else :day_start + random() * interval '1 day'
                    end,
                    campaign_id, step_id, mailing_id, link_id, link_tag, asset_id, url,
                    bounce_type, is_machine, user_agent, properties
                from raw.events tablesample bernoulli (:percent) repeatable (7)
                """
            ),
            {"day": day.isoformat(), "day_start": day_start, "percent": NEW_EVENTS_SHARE * 100},
        ).rowcount


def _remove_added_events(engine: sa.Engine) -> None:
    """Events an earlier run with --reuse added (the company as generated again)."""
    with engine.begin() as connection:
        connection.execute(
            sa.text("delete from raw.events where event_id like :pattern"), {"pattern": "bench-%"}
        )


def _forget_segment_history(engine: sa.Engine) -> None:
    """Segment membership of an earlier run with --reuse: the full build starts from none."""
    with engine.begin() as connection:
        connection.execute(
            sa.text("truncate ops.segment_member_spans, ops.segment_materializations")
        )


def _save_lead_scores(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("drop table if exists public.bench_incremental_scores")
        connection.exec_driver_sql(
            "create table public.bench_incremental_scores as select * from marts.lead_scores"
        )


def _lead_score_differences(engine: sa.Engine) -> int:
    with engine.begin() as connection:
        differences = connection.exec_driver_sql(
            """
            select count(*) from (
                (select contact_id, profile_score, activity_score, matrix_cell, is_mql
                 from public.bench_incremental_scores
                 except
                 select contact_id, profile_score, activity_score, matrix_cell, is_mql
                 from marts.lead_scores)
                union all
                (select contact_id, profile_score, activity_score, matrix_cell, is_mql
                 from marts.lead_scores
                 except
                 select contact_id, profile_score, activity_score, matrix_cell, is_mql
                 from public.bench_incremental_scores)
            ) as different
            """
        ).scalar_one()
        connection.exec_driver_sql("drop table public.bench_incremental_scores")
    return differences


if __name__ == "__main__":
    sys.exit(main())
