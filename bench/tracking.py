"""Benchmark: the tracking service's pixel and click against bare endpoints; the event writer
against a raw COPY.

    .venv/bin/python bench/tracking.py [--requests 20000] [--connections 16] [--mails 2000]
                                       [--rounds 3] [--events 200000]

The service runs as `leadflow tracking serve` runs it (one uvicorn process through
`leadflow.tracking.cli.run_server`: uvloop, httptools, no access log; the shipped batch
size and flush interval) with two extra routes that answer the same bytes without any
work: `/bare/o/{token}.gif` (the GIF and its headers) and `/bare/c/{token}` (a 302 with a
fixed Location), FastAPI routes with the same path parameter as the real ones, each tried
by the router just before its real one. The load
comes from a second process on loopback: a small asyncio HTTP/1.1 client with keep-alive
connections on uvloop (the client's own cost leaves more of the two cores to the server).
In the same run:
- (a) throughput, closed loop, `--connections` connections: pixel (verify the token, look
  up the mail, flag machines, buffer the event) vs bare pixel, and click (verify, look up
  the link, buffer, redirect) vs bare click. Target: ≥ 60 % of the bare endpoint. Each of
  `--rounds` rounds measures bare pixel, pixel, bare click, click in turn (`--requests`
  each), so a bare endpoint and its tracked one run side by side on a machine whose load
  drifts; the figure is the median of the rounds' ratios. Every round has its own
  `--mails` sent mails with one link each (a tenth of the requests), used round-robin: the
  first request of each fills the lookup cache (a sent mail's rows never change), so every
  round pays the same share of lookups. Each phase ends when the service has stored every
  event it answered, so the next starts with an idle writer. Also shown: the server
  process's CPU time per request (all its threads, the event writer's included, up to that
  end), steadier than the rates when other work shares the cores;
- (b) latency at 80 % of the median pixel/click peak, open loop for a few seconds:
  p50/p99. Target: p99 < 50 ms;
- (c) after SIGTERM: events in raw.events = pixel and click requests answered;
- (d) the EventWriter (`add` every event, then `close`; the shipped batch size and flush
  interval) vs one raw `COPY` of the same rows on one connection, built before the clock
  starts: `--rounds` pairs, the median ratio. Target: ≥ 50 %.
`LEADFLOW_BENCH_SCALE=0.1` runs a tenth.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
import uvloop
from _common import bench_database

from leadflow import paths
from leadflow.messaging import links

DATABASE = "leadflow_bench_tracking"
SECRET = "bench-tracking-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130 Safari/537.36"
SCALE = float(os.environ.get("LEADFLOW_BENCH_SCALE", "1"))


# --- the server process ---------------------------------------------------------------------


def serve(port: int, url: str) -> None:
    """The tracking app plus the bare routes, under uvicorn (SIGTERM: graceful)."""
    from fastapi import Response

    from leadflow.config import load_config
    from leadflow.tracking.app import create_app
    from leadflow.tracking.cli import run_server
    from leadflow.tracking.settings import TrackingSettings
    from leadflow.tracking.tracking import NO_STORE, PIXEL

    config = load_config(paths.config_dir())
    settings = TrackingSettings.from_config(config, secret=SECRET, warehouse_url=url)
    app = create_app(settings, config=config)

    @app.get("/bare/o/{token}.gif", include_in_schema=False)
    async def bare_pixel(token: str) -> Response:
        return Response(PIXEL, media_type="image/gif", headers=NO_STORE)

    @app.get("/bare/c/{token}", include_in_schema=False)
    async def bare_click(token: str) -> Response:
        headers = {"Location": "https://www.example.com/product", **NO_STORE}
        return Response(status_code=302, headers=headers)

    _match_bare_routes_like_the_real_ones(app.router.routes)
    run_server(app, host="127.0.0.1", port=port, log_level="warning")


def _match_bare_routes_like_the_real_ones(routes: list) -> None:
    """Move each bare route just before its real one.

    The router tries routes in order, and appended last a bare route would be matched only
    after every capture, docs and health route (about 12 more regex matches per request),
    making the bare endpoint slower than the real one for a reason that has nothing to do
    with recording."""
    for bare_path, real_path in (
        ("/bare/o/{token}.gif", "/o/{token}.gif"),
        ("/bare/c/{token}", "/c/{token}"),
    ):
        bare = next(route for route in routes if getattr(route, "path", None) == bare_path)
        routes.remove(bare)
        real = next(
            i for i, route in enumerate(routes) if getattr(route, "path", None) == real_path
        )
        routes.insert(real, bare)


# --- the load process -----------------------------------------------------------------------


async def _request(reader, writer, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


def _requests(paths_: list[str]) -> list[bytes]:
    return [
        f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {USER_AGENT}\r\n\r\n".encode()
        for p in paths_
    ]


async def closed_loop(port: int, paths_: list[str], total: int, connections: int) -> dict:
    requests = _requests(paths_)
    counter = iter(range(total))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in counter:
            status = await _request(reader, writer, requests[n % len(requests)])
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {"rate": total / elapsed, "statuses": statuses}


async def open_loop(
    port: int, paths_: list[str], rate: float, seconds: float, connections: int
) -> dict:
    """Requests at a fixed rate spread over the connections; latency from the planned time."""
    requests = _requests(paths_)
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter() + 0.2

    async def worker(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in range(offset, total, connections):
            planned = start + n / rate
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await _request(reader, writer, requests[n % len(requests)])
            latencies.append(time.perf_counter() - planned)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    latencies.sort()
    return {
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        "statuses": statuses,
    }


def load(spec_file: str) -> None:
    """Run one load phase (in the second process) and print its result as JSON."""
    spec = json.loads(Path(spec_file).read_text())
    paths_ = spec["paths"]
    if spec["mode"] == "closed":
        result = uvloop.run(closed_loop(spec["port"], paths_, spec["total"], spec["connections"]))
    else:
        result = uvloop.run(
            open_loop(spec["port"], paths_, spec["rate"], spec["seconds"], spec["connections"])
        )
    print(json.dumps(result))


def run_load(spec: dict) -> dict:
    """One load phase in a second process (the spec travels in a file: thousands of paths)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as spec_file:
        json.dump(spec, spec_file)
        spec_file.flush()
        output = subprocess.run(
            [sys.executable, __file__, "--load", spec_file.name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    result = json.loads(output)
    result["statuses"] = {int(k): v for k, v in result["statuses"].items()}
    return result


# --- setup ----------------------------------------------------------------------------------


def prepare(engine: sa.Engine, mails: int) -> tuple[list[str], list[str]]:
    """`mails` sent mails with one link each; the pixel and click paths, in outbox order."""
    sent = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with engine.begin() as connection:
        connection.execute(sa.text("truncate raw.events, ops.links, ops.outbox"))
        connection.execute(
            sa.text(
                "insert into ops.outbox (kind, campaign_id, step_id, enrolment_id, step_seq, "
                "contact_id, tenant_code, message, category, requested_at, scheduled_at, "
                "status, sent_at) select 'campaign_mail', 'newsletter', 'send_1', n, 1, "
                "'C-' || n, 'hq', 'welcome', 'marketing', :sent, :sent, 'sent', :sent "
                "from generate_series(1, :mails) n"
            ),
            {"sent": sent, "mails": mails},
        )
        connection.execute(
            sa.text(
                "insert into ops.links (link_id, outbox_id, campaign_id, step_id, contact_id, "
                "url, tag) select 'L' || outbox_id, outbox_id, campaign_id, step_id, "
                "contact_id, 'https://www.example.com/product?m=' || outbox_id, 'product' "
                "from ops.outbox"
            )
        )
        rows = connection.execute(
            sa.text("select outbox_id, contact_id from ops.outbox order by outbox_id")
        ).all()
    pixels = [
        f"/o/{links.sign({'outbox_id': o, 'contact_id': c}, SECRET, purpose='open')}.gif"
        for o, c in rows
    ]
    clicks = [f"/c/{links.sign({'link_id': f'L{o}'}, SECRET, purpose='click')}" for o, _ in rows]
    return pixels, clicks


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(url: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port), url])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the tracking service did not start")


# --- (d) the writer against a raw COPY ------------------------------------------------------


def writer_vs_copy(engine: sa.Engine, count: int) -> tuple[float, float]:
    """Events per second of the EventWriter and of one raw COPY of the same rows."""
    from leadflow.config import load_config
    from leadflow.tracking.writer import EventWriter, copy_rows, event_row

    shipped = load_config(paths.config_dir()).company.tracking
    at = dt.datetime.now(dt.UTC)
    events = [
        {
            "event_type": "email_click",
            "occurred_at": at,
            "contact_id": f"C-{n}",
            "campaign_id": "newsletter",
            "step_id": "send_1",
            "link_id": f"L{n}",
            "link_tag": "product",
            "url": "https://www.example.com/product",
            "user_agent": USER_AGENT,
            "properties": {"outbox_id": n},
        }
        for n in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(sa.text("truncate raw.events"))
    rows = [event_row(event) for event in events]
    started = time.perf_counter()
    connection = engine.raw_connection()
    copy_rows(connection.driver_connection, rows)
    connection.close()
    raw = count / (time.perf_counter() - started)

    with engine.begin() as connection:
        connection.execute(sa.text("truncate raw.events"))
    started = time.perf_counter()
    writer = EventWriter(
        engine,
        batch_size=shipped.batch_size,
        flush_interval=shipped.flush_interval_seconds,
        max_buffered=count,
    ).start()
    for event in events:
        writer.add(event)
    writer.close()
    written = count / (time.perf_counter() - started)
    with engine.connect() as connection:
        assert connection.execute(sa.text("select count(*) from raw.events")).scalar() == count
    return written, raw


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=int(20000 * SCALE))
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--mails", type=int, default=int(2000 * SCALE))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=int(200_000 * SCALE))
    options = parser.parse_args()
    print(f"load average before: {_load_average()}")

    engine = bench_database(DATABASE)
    url = engine.url.render_as_string(hide_password=False)
    pixels, clicks = prepare(engine, options.mails * options.rounds)
    process, port = start_server(url)
    answered = 0
    failed = False
    try:
        peaks: dict[str, list[float]] = {}
        cpu_per_request: dict[str, list[float]] = {}
        for round_ in range(options.rounds):
            own = slice(round_ * options.mails, (round_ + 1) * options.mails)
            round_pixels, round_clicks = pixels[own], clicks[own]
            for name, paths_ in (
                ("bare pixel", [p.replace("/o/", "/bare/o/") for p in round_pixels]),
                ("pixel", round_pixels),
                ("bare click", [p.replace("/c/", "/bare/c/") for p in round_clicks]),
                ("click", round_clicks),
            ):
                spec = {"mode": "closed", "port": port, "paths": paths_}
                spec |= {"total": options.requests, "connections": options.connections}
                cpu_before = _cpu_seconds(process.pid)
                result = run_load(spec)
                if name in ("pixel", "click"):
                    answered += sum(result["statuses"].values())
                # the last COPYs are this phase's work, not the next one's
                _wait_until_stored(engine, answered)
                cpu = (_cpu_seconds(process.pid) - cpu_before) / options.requests
                cpu_per_request.setdefault(name, []).append(cpu)
                peaks.setdefault(name, []).append(result["rate"])
                print(
                    f"(a) round {round_ + 1} {name:<11} {result['rate']:8.0f} req/s  "
                    f"server CPU {1e6 * cpu:4.0f} µs/request  statuses {result['statuses']}  "
                    f"load {_load_average()}"
                )
        for name in ("pixel", "click"):
            ratios = [t / b for t, b in zip(peaks[name], peaks[f"bare {name}"], strict=True)]
            ratio = statistics.median(ratios)
            verdict = "ok" if ratio >= 0.6 else "BELOW TARGET"
            failed |= ratio < 0.6
            print(
                f"(a) {name}: {100 * ratio:.0f} % of the bare endpoint, median of "
                f"{_percentages(ratios)} (target ≥ 60 %) {verdict}"
            )
            bare_cpu = statistics.median(cpu_per_request[f"bare {name}"])
            tracked_cpu = statistics.median(cpu_per_request[name])
            print(
                f"    server CPU per request (median): {1e6 * tracked_cpu:.0f} µs vs bare "
                f"{1e6 * bare_cpu:.0f} µs = {100 * bare_cpu / tracked_cpu:.0f} %"
            )
        for name, paths_ in (
            ("pixel", pixels[: options.mails]),
            ("click", clicks[: options.mails]),
        ):
            rate = 0.8 * statistics.median(peaks[name])
            spec = {"mode": "open", "port": port, "paths": paths_, "rate": rate}
            spec |= {"seconds": max(2.0, 5.0 * SCALE), "connections": 64}
            _wait_until_stored(engine, answered)
            result = run_load(spec)
            answered += sum(result["statuses"].values())
            verdict = "ok" if result["p99_ms"] < 50 else "ABOVE TARGET"
            failed |= result["p99_ms"] >= 50
            print(
                f"(b) {name} at {rate:.0f} req/s (80 % of peak): p50 {result['p50_ms']:.1f} ms, "
                f"p99 {result['p99_ms']:.1f} ms (target < 50 ms) {verdict}"
            )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    with engine.connect() as connection:
        stored = connection.execute(sa.text("select count(*) from raw.events")).scalar()
    verdict = "ok" if stored == answered else "MISMATCH"
    failed |= stored != answered
    print(f"(c) events in raw.events {stored} = requests answered {answered}: {verdict}")

    pairs = [writer_vs_copy(engine, options.events) for _ in range(options.rounds)]
    ratios = [written / raw for written, raw in pairs]
    ratio = statistics.median(ratios)
    failed |= ratio < 0.5
    for written, raw in pairs:
        print(f"(d) EventWriter {written:,.0f} events/s vs raw COPY {raw:,.0f} events/s")
    print(
        f"(d) EventWriter: {100 * ratio:.0f} % of the raw COPY, median of {_percentages(ratios)} "
        f"(target ≥ 50 %) {'ok' if ratio >= 0.5 else 'BELOW TARGET'}"
    )
    print(f"load average after: {_load_average()}")
    engine.dispose()
    return 1 if failed else 0


def _wait_until_stored(engine: sa.Engine, answered: int, timeout: float = 60.0) -> None:
    """Start each load phase with the writer idle: every event answered so far is stored.

    Otherwise a phase would share the cores with the previous phase's last COPYs: the bare
    endpoint measured slower than it is, or the latency phase measured on a busy service."""
    deadline = time.monotonic() + timeout
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            stored = connection.execute(sa.text("select count(*) from raw.events")).scalar()
            connection.rollback()  # a fresh snapshot for the next look
            if stored >= answered:
                return
            time.sleep(0.05)
    raise RuntimeError(f"the service stored fewer than {answered} events within {timeout} s")


def _percentages(ratios: list[float]) -> str:
    return ", ".join(f"{100 * ratio:.0f} %" for ratio in ratios)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--load":
        load(sys.argv[2])
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        sys.exit(main())
