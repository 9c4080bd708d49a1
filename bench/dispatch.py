"""Benchmark: the dispatcher against plain smtplib and yagmail, on one local SMTP server.

    .venv/bin/python bench/dispatch.py [--messages 20000] [--concurrency 2]
                                       [--group-size 20] [--composer real|simple]
                                       [--server relay|plain] [--key ecdsa|rsa]

The SMTP server is aiosmtpd in a separate process (bench/_relay.py: it counts what it
receives, stores nothing), by default set up like a submission relay: STARTTLS with a
certificate of a local CA made for the run, AUTH required (offered only after TLS). Every
client below verifies that certificate against the CA (yagmail excepted: see (b)) and logs in.
`--server plain` runs the same against a plain-text server without AUTH; `--key rsa` gives
the relay an RSA-2048 key instead of ECDSA P-256 (the server's handshake costs more). In the
same run:
- full dispatch: `--messages` mails of the example campaign `onboarding`, message `welcome`
  (with its content blocks), to contacts of the tenants hq (German and English), fr, it and
  es, each claimed, checked for eligibility, rendered by the templates' `Renderer` (master
  and derived template, content blocks, signed tracking links, inlined CSS, text part),
  composed, sent and recorded by `leadflow.messaging.dispatch`, with the SMTP URL
  `smtp://user:pw@127.0.0.1:PORT?starttls=true&cafile=ca.pem` (one STARTTLS and login per
  worker connection);
- (a) baseline: a raw smtplib loop on one reused connection (STARTTLS and login once) sending
  the same number of pre-built messages (the same mails, rendered before the clock starts).
  Target: full ≥ 50 % of it;
- (b) a new connection per message, made by yagmail itself as its `send()` does (connect,
  EHLO, STARTTLS, EHLO, AUTH, then the message), sending the pre-built bytes (so yagmail's
  own message building is not counted against it), on a tenth of the messages.
  yagmail 0.16 starts TLS with smtplib's default context, which does not verify the
  certificate: less work than the other clients do. Target: full ≥ 3 × it;
- (c) the rate limit: a dispatch with R = half the measured full rate (at most), over about
  15 seconds. Target: achieved rate within ±10 % of R.
`--composer simple` swaps the renderer for string formatting (same dispatcher, same MIME
building), to tell the renderer's share from the dispatcher's. `LEADFLOW_BENCH_SCALE=0.1`
sends a tenth.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
import yagmail
from _common import bench_database
from _relay import PASSWORD, USER, make_local_ca

from leadflow import paths
from leadflow.config import load_config
from leadflow.messaging.dispatch import (
    DEFAULT_GROUP_SIZE,
    ClaimedMessage,
    dispatch,
    prepare_message,
    rendered_composer,
)
from leadflow.messaging.eligibility import ContactRelations

DATABASE = "leadflow_bench_dispatch"
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)  # a Wednesday, inside every window
DIM = "public.bench_dim_contacts"
RELATIONS = ContactRelations(dim_contacts=DIM)
CAMPAIGN, STEP, MESSAGE = "onboarding", "welcome", "welcome"
CONTENT = ["hydrostat_first_steps", "service_hotline"]
# Contact n gets variant n % 5: (tenant, language, salutation); every third has no last
# name (neutral salutation).
VARIANTS = [
    ("hq", "de", "Herr"),
    ("hq", "en", "Ms"),
    ("fr", "fr", "Madame"),
    ("it", "it", "Signor"),
    ("es", "es", "Señora"),
]

RELAY_SCRIPT = Path(__file__).with_name("_relay.py")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sink:
    """The aiosmtpd server in its own process: a submission relay (STARTTLS with a certificate
    of a CA made for this run, AUTH required), or with `relay=False` plain text without AUTH."""

    def __init__(self, relay: bool = True, key: str = "ecdsa") -> None:
        self.port = free_port()
        self.relay = relay
        self.key = key
        self._directory = tempfile.TemporaryDirectory(prefix="leadflow-bench-relay-")
        self.ca_file = make_local_ca(Path(self._directory.name), key) if relay else None
        self.process = subprocess.Popen(
            [sys.executable, str(RELAY_SCRIPT), str(self.port)]
            + ([self._directory.name] if relay else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    @property
    def url(self) -> str:
        """The dispatcher's SMTP URL."""
        if not self.relay:
            return f"smtp://127.0.0.1:{self.port}"
        return (
            f"smtp://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:{self.port}"
            f"?starttls=true&cafile={self.ca_file}"
        )

    def describe(self) -> str:
        if not self.relay:
            return "plain text, no AUTH"
        kind = "ECDSA P-256" if self.key == "ecdsa" else "RSA-2048"
        return f"STARTTLS ({kind} certificate of a local CA), AUTH required"

    def connect(self) -> smtplib.SMTP:
        """A logged-in smtplib client, TLS verified against the run's CA (baseline (a))."""
        client = smtplib.SMTP("127.0.0.1", self.port)
        if self.relay:
            client.ehlo()
            client.starttls(context=ssl.create_default_context(cafile=self.ca_file))
            client.ehlo()
            client.login(USER, PASSWORD)
        return client

    def yagmail_client(self) -> yagmail.SMTP:
        """yagmail as a user would set it up for this server (baseline (b))."""
        if not self.relay:
            return yagmail.SMTP(
                USER,
                host="127.0.0.1",
                port=self.port,
                smtp_starttls=False,
                smtp_ssl=False,
                smtp_skip_login=True,
            )
        return yagmail.SMTP(
            USER, PASSWORD, host="127.0.0.1", port=self.port, smtp_starttls=True, smtp_ssl=False
        )

    def received(self) -> int:
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self._directory.cleanup()


# --- composers ---------------------------------------------------------------------------


def real_composer(config):
    """What `leadflow dispatch` uses: the templates' Renderer (no translation service: the
    welcome mail and its blocks have human translations for every tenant language)."""
    from leadflow.messaging.render import Renderer
    from leadflow.messaging.translation import Translator

    return rendered_composer(Renderer(config, Translator.disabled()).render)


@dataclass(frozen=True)
class Link:
    link_id: str
    url: str
    tag: str | None = None


@dataclass(frozen=True)
class Formatted:
    """A RenderedMessage made by string formatting (`--composer simple`)."""

    subject: str
    html: str
    text: str
    language: str
    links: list[Link]
    headers: dict[str, str] = field(default_factory=dict)


def simple_render(row, contact) -> Formatted:
    """A personalised two-part mail with one tracked link, without templates."""
    name = contact.get("first_name") or "Kunde"
    link = Link(secrets.token_urlsafe(12), "https://www.steinhoff-hydraulik.example/hs3000", "cta")
    url = f"https://go.steinhoff-hydraulik.example/c/{link.link_id}"
    return Formatted(
        subject=f"HydroStat 3000: Neuigkeiten für {name}",
        html=f"<p>Sehr geehrte/r {name},</p><p>die HydroStat 3000 ist da: "
        f"<a href='{url}'>mehr</a></p>" * 3,
        text=f"Sehr geehrte/r {name},\n\ndie HydroStat 3000 ist da: {url}\n" * 3,
        language=contact.get("language") or "de",
        links=[link],
    )


def composer(kind: str, config):
    return real_composer(config) if kind == "real" else rendered_composer(simple_render)


# --- data --------------------------------------------------------------------------------


def reset(engine: sa.Engine, messages: int) -> None:
    """`messages` confirmed contacts of five tenant/language variants, one due welcome mail
    each."""
    with engine.begin() as connection:
        connection.exec_driver_sql(f"drop table if exists {DIM}")
        connection.exec_driver_sql(
            f"create table {DIM} (contact_id text primary key, tenant_code text, "
            "customer_status text, account_name text)"
        )
        connection.exec_driver_sql(
            "truncate ops.outbox, ops.links, ops.suppressions, raw.contacts cascade"
        )
        variants = sa.text(
            "select * from unnest(cast(:tenants as text[]), cast(:languages as text[]), "
            "cast(:salutations as text[])) with ordinality as v(tenant, language, salutation, k)"
        )
        parameters = {
            "n": messages,
            "variants": len(VARIANTS),
            "tenants": [v[0] for v in VARIANTS],
            "languages": [v[1] for v in VARIANTS],
            "salutations": [v[2] for v in VARIANTS],
            "now": NOW,
            "campaign": CAMPAIGN,
            "step": STEP,
            "message": MESSAGE,
            "content": CONTENT,
        }
        numbered = (
            f"from generate_series(1, :n) as n join ({variants.text}) as v "
            "on v.k = n % :variants + 1"
        )
        connection.execute(
            sa.text(
                "insert into raw.contacts (contact_id, email, consent_status, salutation, "
                "first_name, last_name, language) select 'c' || n, 'c' || n || '@example.com', "
                "'confirmed', v.salutation, 'Vorname' || n, "
                "case when n % 3 = 0 then null else 'Nachname' || n end, v.language " + numbered
            ),
            parameters,
        )
        connection.execute(
            sa.text(
                f"insert into {DIM} select 'c' || n, v.tenant, 'new_customer', "
                "'Firma ' || n || ' GmbH' " + numbered
            ),
            parameters,
        )
        connection.execute(
            sa.text(
                "insert into ops.outbox (kind, campaign_id, step_id, enrolment_id, step_seq, "
                "contact_id, tenant_code, message, content, category, requested_at, "
                "scheduled_at) select 'campaign_mail', :campaign, :step, n, 1, 'c' || n, "
                "v.tenant, :message, cast(:content as text[]), 'marketing', :now, :now " + numbered
            ),
            parameters,
        )
        connection.exec_driver_sql("analyze ops.outbox")
        connection.exec_driver_sql(f"analyze {DIM}")


def unsubscribe_url(outbox_id: int, contact_id: str) -> str:
    return f"https://go.steinhoff-hydraulik.example/u/{outbox_id}.{secrets.token_urlsafe(16)}"


# --- the runs ----------------------------------------------------------------------------


def full_dispatch(engine, config, sink: Sink, args, compose, rate=None, limit=None):
    return dispatch(
        engine,
        config,
        NOW,
        compose=compose,
        smtp_url=sink.url,
        concurrency=args.concurrency,
        rate_per_minute=rate,
        batch_size=200,
        max_messages=limit,
        unsubscribe_url=unsubscribe_url,
        relations=RELATIONS,
        group_size=args.group_size,
    )


def prebuilt(engine, config, compose, messages: int) -> list[tuple[str, str, bytes]]:
    """(sender, recipient, bytes) of the same mails the full dispatch sent, built with the
    dispatcher's own `prepare` (render, compose, addressing) before any clock starts."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("select * from ops.outbox order by outbox_id limit :n"), {"n": messages}
        ).mappings()
        rows = [dict(row) for row in rows]
        contacts = {
            row["contact_id"]: dict(row)
            for row in connection.execute(
                sa.text(
                    f"select * from raw.contacts join {DIM} using (contact_id) "
                    "where contact_id = any(:ids)"
                ),
                {"ids": [row["contact_id"] for row in rows]},
            ).mappings()
        }
    built = []
    for row in rows:
        contact = contacts[row["contact_id"]]
        prepared = prepare_message(
            ClaimedMessage(row, contact, contact["email"]),
            config=config,
            compose=compose,
            unsubscribe_url=unsubscribe_url,
            date=NOW,
        )
        built.append((prepared.sender, prepared.recipient, prepared.data))
    return built


def raw_loop(sink: Sink, data: list[tuple[str, str, bytes]]) -> float:
    started = time.perf_counter()
    with sink.connect() as client:
        for sender, recipient, message in data:
            client.sendmail(sender, [recipient], message)
    return time.perf_counter() - started


def connection_per_message(sink: Sink, data: list[tuple[str, str, bytes]]) -> float:
    """What calling `send()` of one `yagmail.SMTP` client for every message does: each call
    opens a new connection with `login()` (connect, EHLO, STARTTLS, EHLO, AUTH) and sends the
    message with `sendmail`; the previous connection is dropped without QUIT (saying QUIT
    each time was 10-20 % slower in a side measurement). The pre-built bytes stand in for
    yagmail's own message building, which would only make this slower."""
    client = sink.yagmail_client()
    started = time.perf_counter()
    for sender, recipient, message in data:
        client.login()
        client.smtp.sendmail(sender, [recipient], message)
    client.close()
    return time.perf_counter() - started


def main() -> None:
    scale = float(os.environ.get("LEADFLOW_BENCH_SCALE", "1"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=max(200, int(20_000 * scale)))
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=DEFAULT_GROUP_SIZE)
    parser.add_argument("--composer", choices=("real", "simple"), default="real")
    parser.add_argument(
        "--server",
        choices=("relay", "plain"),
        default="relay",
        help="relay: STARTTLS and AUTH like a submission server (default); plain: neither",
    )
    parser.add_argument(
        "--key",
        choices=("ecdsa", "rsa"),
        default="ecdsa",
        help="the relay certificate's key: ECDSA P-256 (default) or RSA-2048",
    )
    args = parser.parse_args()
    messages = args.messages
    # Signs the tracking links; any value does for a benchmark.
    os.environ.setdefault("LEADFLOW_TRACKING_SECRET", "bench-" + secrets.token_hex(16))

    config = load_config(paths.PROJECT_ROOT / "include" / "config")
    engine = bench_database(DATABASE)
    sink = Sink(relay=args.server == "relay", key=args.key)
    try:
        reset(engine, messages)
        before = sink.received()
        report = full_dispatch(engine, config, sink, args, composer(args.composer, config))
        assert report.sent == messages, report.describe()
        assert sink.received() - before == messages
        full_rate = messages / report.elapsed_seconds
        with engine.connect() as connection:
            links = connection.execute(sa.text("select count(*) from ops.links")).scalar_one()

        data = prebuilt(engine, config, composer(args.composer, config), messages)
        size = sum(len(message) for _sender, _recipient, message in data) / len(data)
        raw_rate = messages / raw_loop(sink, data)
        few = data[: max(100, messages // 10)]
        reconnect_rate = len(few) / connection_per_message(sink, few)

        target = min(full_rate / 2, 3000.0)
        per_minute = target * 60
        limited_messages = int(target * 15)
        reset(engine, limited_messages)
        limited = full_dispatch(
            engine, config, sink, args, composer(args.composer, config), rate=per_minute
        )
        achieved = limited.sent / limited.elapsed_seconds
    finally:
        sink.stop()
        engine.dispose()

    print(
        f"messages: {messages} ({args.composer} composer, {size / 1024:.1f} KiB each, "
        f"{links} tracked links), concurrency {args.concurrency}, group size "
        f"{args.group_size}, aiosmtpd in its own process: {sink.describe()}"
    )
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
