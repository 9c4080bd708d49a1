"""Benchmark: the dispatcher against plain smtplib loops, on one local SMTP server.

    .venv/bin/python bench/dispatch.py [--messages 20000] [--concurrency 2]

The SMTP server is aiosmtpd in a separate process (it counts what it receives, stores
nothing). In the same run:
- full dispatch: `--messages` personalised two-part mails (name, link, unsubscribe URL per
  contact) claimed, checked, composed, sent and recorded by `leadflow.messaging.dispatch`;
- (a) baseline: a raw smtplib loop on one reused connection sending the same number of
  pre-built messages (bytes built before the clock starts). Target: full ≥ 50 % of it;
- (b) a new connection per message (connect, EHLO, send, QUIT: what yagmail's `send()`
  does), on a tenth of the messages. Target: full ≥ 3 × it;
- (c) the rate limit: a dispatch with R = half the measured full rate (at most), over about
  15 seconds. Target: achieved rate within ±10 % of R.
`LEADFLOW_BENCH_SCALE=0.1` sends a tenth.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import smtplib
import subprocess
import sys
import textwrap
import time
from email.message import EmailMessage

import sqlalchemy as sa
from _common import bench_database

from leadflow import paths
from leadflow.config import load_config
from leadflow.messaging.dispatch import WIRE_POLICY, ComposedMessage, dispatch
from leadflow.messaging.eligibility import ContactRelations

DATABASE = "leadflow_bench_dispatch"
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)  # a Wednesday, inside hq's window
DIM = "public.bench_dim_contacts"
RELATIONS = ContactRelations(dim_contacts=DIM)

SINK = textwrap.dedent(
    """
    import sys, threading
    from aiosmtpd.controller import Controller
    class Count:
        received = 0
        async def handle_DATA(self, server, session, envelope):
            Count.received += 1
            return "250 OK"
    controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    for line in sys.stdin:
        print(Count.received, flush=True)
    """
)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sink:
    """The aiosmtpd server in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-c", SINK, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def received(self) -> int:
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


def compose(row, contact) -> ComposedMessage:
    """A personalised two-part mail with one tracked link (the shape a renderer produces)."""
    name = contact.get("first_name") or "Kunde"
    link_id = secrets.token_urlsafe(12)
    url = f"https://go.steinhoff-hydraulik.example/c/{link_id}"
    message = EmailMessage()
    message["Subject"] = f"HydroStat 3000: Neuigkeiten für {name}"
    message.set_content(f"Sehr geehrte/r {name},\n\ndie HydroStat 3000 ist da: {url}\n" * 3)
    message.add_alternative(
        f"<p>Sehr geehrte/r {name},</p><p>die HydroStat 3000 ist da: "
        f"<a href='{url}'>mehr</a></p>" * 3,
        subtype="html",
    )

    class Link:
        pass

    link = Link()
    link.link_id, link.url, link.tag = link_id, url, "cta"
    return ComposedMessage(message, contact.get("language") or "de", [link])


def unsubscribe_url(outbox_id: int, contact_id: str) -> str:
    return f"https://go.steinhoff-hydraulik.example/u/{outbox_id}.{secrets.token_urlsafe(16)}"


def reset(engine: sa.Engine, messages: int) -> None:
    """`messages` confirmed contacts, one due campaign mail each."""
    with engine.begin() as connection:
        connection.exec_driver_sql(f"drop table if exists {DIM}")
        connection.exec_driver_sql(
            f"create table {DIM} (contact_id text primary key, tenant_code text, "
            "customer_status text, first_name text, language text)"
        )
        connection.exec_driver_sql(
            "truncate ops.outbox, ops.links, ops.suppressions, raw.contacts cascade"
        )
        connection.execute(
            sa.text(
                "insert into raw.contacts (contact_id, email, consent_status, first_name, "
                "language) select 'c' || n, 'c' || n || '@example.com', 'confirmed', "
                "'Vorname' || n, 'de' from generate_series(1, :n) as n"
            ),
            {"n": messages},
        )
        connection.execute(
            sa.text(
                f"insert into {DIM} select 'c' || n, 'hq', 'lead', 'Vorname' || n, 'de' "
                "from generate_series(1, :n) as n"
            ),
            {"n": messages},
        )
        connection.execute(
            sa.text(
                "insert into ops.outbox (kind, campaign_id, step_id, enrolment_id, step_seq, "
                "contact_id, tenant_code, message, category, requested_at, scheduled_at) "
                "select 'campaign_mail', 'bench', 'send', n, 1, 'c' || n, 'hq', 'launch', "
                "'marketing', :now, :now from generate_series(1, :n) as n"
            ),
            {"n": messages, "now": NOW},
        )
        connection.exec_driver_sql("analyze ops.outbox")


def full_dispatch(engine, config, sink: Sink, concurrency: int, rate=None, limit=None):
    return dispatch(
        engine,
        config,
        NOW,
        compose=compose,
        smtp_url=sink.url,
        concurrency=concurrency,
        rate_per_minute=rate,
        batch_size=200,
        max_messages=limit,
        unsubscribe_url=unsubscribe_url,
        relations=RELATIONS,
    )


def prebuilt(messages: int) -> list[bytes]:
    row = {"message": "launch"}
    return [
        compose(row, {"first_name": f"Vorname{n}"}).message.as_bytes(policy=WIRE_POLICY)
        for n in range(messages)
    ]


def raw_loop(sink: Sink, data: list[bytes]) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", sink.port) as client:
        for number, message in enumerate(data):
            client.sendmail("info@steinhoff-hydraulik.example", [f"c{number}@example.com"], message)
    return time.perf_counter() - started


def connection_per_message(sink: Sink, data: list[bytes]) -> float:
    started = time.perf_counter()
    for number, message in enumerate(data):
        with smtplib.SMTP("127.0.0.1", sink.port) as client:
            client.ehlo()
            client.sendmail("info@steinhoff-hydraulik.example", [f"c{number}@example.com"], message)
    return time.perf_counter() - started


def main() -> None:
    scale = float(os.environ.get("LEADFLOW_BENCH_SCALE", "1"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=max(200, int(20_000 * scale)))
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    messages = args.messages

    config = load_config(paths.PROJECT_ROOT / "include" / "config")
    engine = bench_database(DATABASE)
    sink = Sink()
    try:
        reset(engine, messages)
        before = sink.received()
        report = full_dispatch(engine, config, sink, args.concurrency)
        assert report.sent == messages, report.describe()
        assert sink.received() - before == messages
        full_rate = messages / report.elapsed_seconds

        data = prebuilt(messages)
        raw_rate = messages / raw_loop(sink, data)
        few = data[: max(100, messages // 10)]
        reconnect_rate = len(few) / connection_per_message(sink, few)

        target = min(full_rate / 2, 3000.0)
        per_minute = target * 60
        limited_messages = int(target * 15)
        reset(engine, limited_messages)
        limited = full_dispatch(engine, config, sink, args.concurrency, rate=per_minute)
        achieved = limited.sent / limited.elapsed_seconds
    finally:
        sink.stop()
        engine.dispose()

    print(f"messages: {messages}, concurrency {args.concurrency}, aiosmtpd in its own process")
    print(
        f"full dispatch:                   {full_rate:8.0f} msg/s  ({report.elapsed_seconds:.1f} s)"
    )
    print(
        f"(a) raw smtplib, one connection: {raw_rate:8.0f} msg/s  -> full = "
        f"{100 * full_rate / raw_rate:.0f} % of it (target >= 50 %)"
    )
    print(
        f"(b) new connection per message:  {reconnect_rate:8.0f} msg/s  -> full = "
        f"{full_rate / reconnect_rate:.1f} x it (target >= 3 x), on {len(few)} messages"
    )
    print(
        f"(c) rate limit {target:.0f} msg/s:      {achieved:8.1f} msg/s achieved over "
        f"{limited.sent} messages ({100 * (achieved / target - 1):+.1f} %, target ±10 %)"
    )


if __name__ == "__main__":
    main()
