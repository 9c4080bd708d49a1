"""Benchmark: compiled segments against hand-written SQL for the same question.

    .venv/bin/python bench/scoring.py --contacts 100000 --reuse   # builds the company + marts
    .venv/bin/python bench/segments.py [--as-of 2026-07-01]

Runs in the database `leadflow_bench_scoring` that bench/scoring.py leaves behind (generated
company, marts built). For each segment it times `count(*)` over the compiled query
(`leadflow.segments.segment_query`, bound parameters) and over a hand-written query that a
PostgreSQL developer would write for the same definition, best of five runs after one warm-up
each, and checks both count the same contacts. Target: compiled ≤ 1.2 × hand-written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

import sqlalchemy as sa

from leadflow import paths
from leadflow.config import load_config
from leadflow.config.dates import add_months
from leadflow.segments import segment_filters, segment_query
from leadflow.warehouse.engine import get_engine

DATABASE = "leadflow_bench_scoring"
RUNS = 5

# Hand-written equivalents; :d is as_of, :cutoff is as_of + 1 day 00:00 UTC.
HAND_WRITTEN = {
    "hs2000_upsell": """
        select count(*) from marts.dim_contacts c
        where exists (
            select 1 from staging.stg_raw__orders o
            join staging.stg_raw__order_items i on i.order_id = o.order_id
            where o.contact_id = c.contact_id and o.status = 'won'
              and i.product_id = 'HS2000' and o.ordered_at < :three_years_ago)
          and (exists (
                select 1 from staging.stg_raw__installed_base b
                where b.account_id = c.account_id and b.product_id = 'HS2000'
                  and b.installed_on <= :d
                  and b.next_maintenance_date between :d and :one_year_ahead)
            or exists (
                select 1 from staging.stg_raw__installed_base b
                where b.contact_id = c.contact_id and b.product_id = 'HS2000'
                  and b.installed_on <= :d
                  and b.next_maintenance_date between :d and :one_year_ahead))
          and not exists (
            select 1 from staging.stg_raw__installed_base b
            where b.account_id = c.account_id and b.product_id = 'HS3000'
              and b.installed_on <= :d)
          and not exists (
            select 1 from staging.stg_raw__installed_base b
            where b.contact_id = c.contact_id and b.product_id = 'HS3000'
              and b.installed_on <= :d)
    """,
    "ebook_downloaders": """
        select count(*) from marts.dim_contacts c
        where exists (
            select 1 from staging.stg_raw__events e
            where e.contact_id = c.contact_id and e.event_type = 'download'
              and not e.is_machine and e.asset_id = 'ebook_antriebslosigkeit'
              and e.occurred_at < :cutoff)
    """,
    "fair_leads_recent": """
        select count(*) from marts.dim_contacts c
        where c.contact_id in (
            select e.contact_id from staging.stg_raw__events e
            where e.event_type = 'fair_visit' and not e.is_machine
              and e.occurred_at >= :cutoff - interval '30 days' and e.occurred_at < :cutoff)
    """,
    "loyal_customers": """
        select count(*) from marts.dim_contacts c
        where c.customer_status = 'existing_customer'
          and c.order_count >= 2 and c.total_revenue >= 20000
          and c.contact_id in (
            select e.contact_id from staging.stg_raw__events e
            where e.event_type = 'email_open' and not e.is_machine
              and e.occurred_at >= :one_year_window_start and e.occurred_at < :cutoff
            group by e.contact_id having count(*) >= 3)
    """,
}


def _best_of(connection, statement, parameters=None) -> tuple[float, int]:
    connection.execute(statement, parameters or {}).scalar_one()  # warm-up
    timings, count = [], 0
    for _ in range(RUNS):
        started = time.perf_counter()
        count = connection.execute(statement, parameters or {}).scalar_one()
        timings.append(time.perf_counter() - started)
    return min(timings), count


def _parameters(as_of: dt.date) -> dict[str, object]:
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    three_years_ago = add_months(as_of, -36)
    window_start = add_months(as_of, -12) + dt.timedelta(days=1)
    return {
        "d": as_of,
        "cutoff": cutoff,
        "three_years_ago": dt.datetime.combine(three_years_ago, dt.time(), tzinfo=dt.UTC),
        "one_year_ahead": add_months(as_of, 12),
        "one_year_window_start": dt.datetime.combine(window_start, dt.time(), tzinfo=dt.UTC),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    engine = sa.create_engine(get_engine().url.set(database=DATABASE))
    config = load_config(paths.config_dir())
    filters = segment_filters(config)
    worst = 0.0
    with engine.connect() as connection:
        try:
            built_for = connection.execute(sa.text("select max(as_of) from marts.dim_contacts"))
            as_of = args.as_of or built_for.scalar_one()
            contacts = connection.execute(sa.text("select count(*) from marts.dim_contacts"))
            contacts = contacts.scalar_one()
        except sa.exc.ProgrammingError:
            print(f"no built marts in {DATABASE}: run bench/scoring.py --reuse first")
            return 1
        print(f"{contacts:,} contacts, as_of {as_of}, best of {RUNS} runs")
        print(f"{'segment':<22}{'members':>9}{'compiled':>11}{'hand-written':>14}{'ratio':>8}")
        for name, sql in HAND_WRITTEN.items():
            query = segment_query(filters[name], as_of, segments=filters).subquery()
            compiled = sa.select(sa.func.count()).select_from(query)
            compiled_time, compiled_count = _best_of(connection, compiled)
            hand_time, hand_count = _best_of(connection, sa.text(sql), _parameters(as_of))
            if compiled_count != hand_count:
                print(f"{name}: compiled counts {compiled_count}, hand-written {hand_count}")
                return 1
            ratio = compiled_time / hand_time
            worst = max(worst, ratio)
            print(
                f"{name:<22}{compiled_count:>9,}{compiled_time * 1000:>9.1f}ms"
                f"{hand_time * 1000:>12.1f}ms{ratio:>7.2f}×"
            )
    print(f"worst ratio {worst:.2f}× (target ≤ 1.2×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
