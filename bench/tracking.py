"""Benchmark: the tracking service's pixel and click against bare endpoints; the event writer
against a raw COPY.

    .venv/bin/python bench/tracking.py [--requests 20000] [--connections 16] [--mails 2000]

The service runs as `leadflow tracking serve` would (one uvicorn process, the shipped batch
size and flush interval) with two extra routes that answer the same bytes without any
work: `/bare/o/{token}.gif` (the GIF and its headers) and `/bare/c/{token}` (a 302 with a
fixed Location). The load comes from a second process on loopback: a small asyncio
HTTP/1.1 client with keep-alive connections. In the same run:
- (a) throughput, closed loop, `--connections` connections: pixel (verify the token, look
  up the mail, flag machines, buffer the event) vs bare pixel, and click (verify, look up
  the link, buffer, redirect) vs bare click. Target: ≥ 60 % of the bare endpoint. `--mails`
  sent mails with one link each are the tokens, used round-robin (the first request of
  each fills the lookup cache: a sent mail's rows never change);
- (b) latency at 80 % of the measured pixel/click peak, open loop for a few seconds:
  p50/p99. Target: p99 < 50 ms;
- (c) after SIGTERM: events in raw.events = pixel and click requests answered;
- (d) the EventWriter (`add` every event, then `close`) vs one raw `COPY` of the same rows
  on one connection. Target: ≥ 50 %.
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
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
    import uvicorn
    from fastapi import Response

    from leadflow.config import load_config
    from leadflow.tracking.app import create_app
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

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


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
        result = asyncio.run(closed_loop(spec["port"], paths_, spec["total"], spec["connections"]))
    else:
        result = asyncio.run(
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
    """`mails` sent mails with one link each; the pixel and click paths."""
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
        rows = connection.execute(sa.text("select outbox_id, contact_id from ops.outbox")).all()
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
    from leadflow.tracking.writer import EventWriter, copy_rows, event_row

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
    writer = EventWriter(engine, batch_size=500, flush_interval=1.0, max_buffered=count).start()
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
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--events", type=int, default=int(200_000 * SCALE))
    options = parser.parse_args()

    engine = bench_database(DATABASE)
    url = engine.url.render_as_string(hide_password=False)
    pixels, clicks = prepare(engine, options.mails)
    process, port = start_server(url)
    answered = 0
    failed = False
    try:
        peaks = {}
        for name, paths_ in (
            ("bare pixel", [p.replace("/o/", "/bare/o/") for p in pixels]),
            ("pixel", pixels),
            ("bare click", [p.replace("/c/", "/bare/c/") for p in clicks]),
            ("click", clicks),
        ):
            spec = {"mode": "closed", "port": port, "paths": paths_}
            spec |= {"total": options.requests, "connections": options.connections}
            result = run_load(spec)
            peaks[name] = result["rate"]
            if name in ("pixel", "click"):
                answered += sum(result["statuses"].values())
            print(f"(a) {name:<11} {result['rate']:8.0f} req/s  statuses {result['statuses']}")
        for name in ("pixel", "click"):
            ratio = peaks[name] / peaks[f"bare {name}"]
            verdict = "ok" if ratio >= 0.6 else "BELOW TARGET"
            failed |= ratio < 0.6
            print(f"(a) {name}: {100 * ratio:.0f} % of the bare endpoint (target ≥ 60 %) {verdict}")
        for name, paths_ in (("pixel", pixels), ("click", clicks)):
            rate = 0.8 * peaks[name]
            spec = {"mode": "open", "port": port, "paths": paths_, "rate": rate}
            spec |= {"seconds": max(2.0, 5.0 * SCALE), "connections": 64}
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

    written, raw = writer_vs_copy(engine, options.events)
    ratio = written / raw
    failed |= ratio < 0.5
    print(
        f"(d) EventWriter {written:,.0f} events/s vs raw COPY {raw:,.0f} events/s: "
        f"{100 * ratio:.0f} % (target ≥ 50 %) {'ok' if ratio >= 0.5 else 'BELOW TARGET'}"
    )
    engine.dispose()
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--load":
        load(sys.argv[2])
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        sys.exit(main())
