"""The demo's recipients: they open, click and unsubscribe through the real tracking service.

After the simulated campaign days the demo starts `leadflow tracking serve` (uvicorn in a
subprocess, on a free loopback port) on the demo's warehouse and plays recipients against it
over HTTP, from the `.eml` files the local SMTP server kept:

- a deterministic sample (seeded, in outbox order) of the campaign mails: about 45 % fetch
  the open pixel, about 20 % follow one tracked link — a link with a tag when the mail has
  one (the cross_sell teasers are tagged `cleaning_agent`, `maintenance_device`, `software`,
  which the campaign's branches ask for) — with an ordinary browser User-Agent;
- a few mails are fetched by a link scanner (a User-Agent of the machine-traffic list), which
  the service stores with `is_machine = true`;
- one recipient unsubscribes with the RFC 8058 one-click POST of its List-Unsubscribe URL.

The mails' URLs point at `company.tracking.base_url` (a public host that does not exist);
the simulation swaps that prefix for the loopback address of the service it started
(`rewrite`), the configuration stays as it is. The service is stopped with SIGTERM, which
writes every buffered event before it exits.

Time. The service records events at the real current time, and the campaigns ran at
simulated times: the demo's week of campaign days ends the day before today (see
`leadflow.demo.scenario.demo_as_of`), so every mail was sent more than
`min_seconds_after_delivery` before a real click (the `too_fast` rule marks clicks earlier
than that as machine traffic), and every click comes after the journey step that sent it.
The next nightly build is for the day after the campaign days — today — whose cut-off
(tomorrow 00:00 UTC) lies after the events, so the activity scores count them. The campaigns
then run once more, at midday after that cut-off (for the same as_of): the journeys' waits
end at a time of day, cross_sell's five days after the intro in the morning, so its
`clicked` branches decide then, and they see the clicks (made after the intro was sent).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from leadflow import paths
from leadflow.errors import LeadflowError

BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
# "Barracuda" is in include/config/tracking/machine_user_agents.txt: a mail security gateway.
SCANNER_USER_AGENT = "Mozilla/5.0 (compatible; Barracuda Sentinel link protection)"
OPEN_SHARE = 0.45
CLICK_SHARE = 0.20
SCANNED_MAILS = 8
# When the campaigns run again after the next nightly build: hours after its cut-off.
CAMPAIGN_HOUR = dt.timedelta(hours=12)
_HREF = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_ANGLE = re.compile(r"<([^>]+)>")


class EngagementError(LeadflowError):
    """The demo's tracking service could not be started or did not stop cleanly."""


# --- the pure parts: what a mail offers, and who does what ---------------------------------


@dataclass(frozen=True)
class TrackedMail:
    """The tracking URLs of one sent mail, as its recipient sees them."""

    message_id: str
    open_url: str | None
    click_urls: tuple[str, ...]
    unsubscribe_url: str | None


def read_mail(raw: bytes, base_url: str) -> TrackedMail:
    """The open pixel, click links and one-click unsubscribe URL of a mail under `base_url`.

    Only URLs of the tracking service count (a mail may also link elsewhere); the https
    target of `List-Unsubscribe` is the one RFC 8058 POSTs to (the other is a mailto:).
    """
    message = BytesParser(policy=policy.default).parsebytes(raw)
    base = base_url.rstrip("/")
    html = message.get_body(preferencelist=("html",))
    urls = _HREF.findall(html.get_content()) if html is not None else []
    urls = [url.replace("&amp;", "&") for url in urls if url.startswith(base + "/")]
    opens = [url for url in urls if url.startswith(f"{base}/o/")]
    clicks = tuple(dict.fromkeys(url for url in urls if url.startswith(f"{base}/c/")))
    header = str(message.get("List-Unsubscribe", ""))
    one_click = [url for url in _ANGLE.findall(header) if url.startswith(base + "/")]
    return TrackedMail(
        message_id=str(message.get("Message-ID", "")).strip(),
        open_url=opens[0] if opens else None,
        click_urls=clicks,
        unsubscribe_url=one_click[0] if one_click else None,
    )


def rewrite(url: str, base_url: str, served_url: str) -> str:
    """`url` with the configured tracking prefix replaced by the local service's address."""
    base = base_url.rstrip("/")
    if not url.startswith(base + "/"):
        raise EngagementError(f"{url} is not a URL of the tracking service {base}")
    return served_url.rstrip("/") + url[len(base) :]


def choose_link(
    urls: Sequence[str],
    tags: Mapping[str, str | None],
    rng: random.Random,
    hidden_tag: str | None = None,
) -> str | None:
    """One link a person follows: a tagged one (what the branches ask for) when there is one.

    A link tagged `hidden_tag` (the honeypot: not displayed) is never one a person follows.
    """
    visible = [url for url in urls if hidden_tag is None or tags.get(url) != hidden_tag]
    tagged = [url for url in visible if tags.get(url)]
    return rng.choice(tagged or visible) if visible else None


@dataclass(frozen=True)
class Request:
    """One HTTP request of the simulation."""

    kind: str  # open, click, unsubscribe
    url: str  # as in the mail
    user_agent: str


def plan(
    mails: Sequence[TrackedMail],
    tags: Mapping[str, str | None],
    seed: int,
    hidden_tag: str | None = None,
    *,
    open_share: float = OPEN_SHARE,
    click_share: float = CLICK_SHARE,
    scanned: int = SCANNED_MAILS,
) -> list[Request]:
    """What the recipients do, the same for the same mails (in outbox order) and seed.

    Each mail is opened with probability `open_share` and one of its links followed with
    `click_share`, independently (image blocking hides some opens of people who click);
    `scanned` mails with links, a second sample, are fetched by a scanner (pixel
    and every link, the hidden one too); the first mail nobody else touched is unsubscribed
    by its recipient.
    """
    rng = random.Random(seed)
    requests: list[Request] = []
    touched: set[str] = set()
    for mail in mails:
        if mail.open_url and rng.random() < open_share:
            requests.append(Request("open", mail.open_url, BROWSER_USER_AGENT))
            touched.add(mail.message_id)
        if mail.click_urls and rng.random() < click_share:
            url = choose_link(mail.click_urls, tags, rng, hidden_tag)
            if url is not None:
                requests.append(Request("click", url, BROWSER_USER_AGENT))
                touched.add(mail.message_id)
    linked = [mail for mail in mails if mail.click_urls and mail.open_url]
    for mail in rng.sample(linked, min(scanned, len(linked))):
        requests.append(Request("open", mail.open_url or "", SCANNER_USER_AGENT))
        requests += [Request("click", url, SCANNER_USER_AGENT) for url in mail.click_urls]
    quiet = [m for m in mails if m.unsubscribe_url and m.message_id not in touched]
    if quiet:
        requests.append(Request("unsubscribe", quiet[0].unsubscribe_url or "", BROWSER_USER_AGENT))
    return requests


# --- the real service ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def tracking_service(engine: Engine, config_dir: Path) -> Iterator[str]:
    """`leadflow tracking serve` on a free loopback port; yields its base URL.

    On leaving, SIGTERM: uvicorn finishes the requests in progress and the app writes every
    buffered event before the process exits.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "LEADFLOW_WAREHOUSE_URL": engine.url.render_as_string(hide_password=False),
    }
    command = [sys.executable, "-m", "leadflow.tracking.cli", "serve", "--port", str(port)]
    command += ["--log-level", "warning", "--config", str(config_dir)]
    process = subprocess.Popen(command, env=environment, cwd=paths.PROJECT_ROOT)
    try:
        _wait_until_ready(process, url)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise EngagementError("the tracking service did not stop within 30 s") from None
    # uvicorn re-raises the signal after its graceful shutdown: -SIGTERM is a clean stop.
    if code not in (0, -signal.SIGTERM):
        raise EngagementError(f"the tracking service exited with {code}")


def _wait_until_ready(process: subprocess.Popen, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngagementError(f"the tracking service exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise EngagementError(f"the tracking service did not answer on {url} within {timeout:.0f} s")


def send(requests: Iterable[Request], base_url: str, served_url: str) -> dict[str, int]:
    """Make the requests against the service; answers counted by kind and status code."""
    answered: dict[str, int] = {}
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        for request in requests:
            url = rewrite(request.url, base_url, served_url)
            headers = {"User-Agent": request.user_agent}
            if request.kind == "unsubscribe":
                form = {"List-Unsubscribe": "One-Click"}
                response = client.post(url, data=form, headers=headers)
            else:
                response = client.get(url, headers=headers)
            key = f"{request.kind} {response.status_code}"
            answered[key] = answered.get(key, 0) + 1
    return answered


# --- the demo step -----------------------------------------------------------------------------


def simulate_engagement(
    console: Console, engine: Engine, config, as_of: dt.date, mail_dir: Path, seed: int
) -> None:
    """Recipients engage, then the next nightly build and campaign run react (module doc).

    `as_of` is the day after the campaign days: the nightly build and the campaigns run for it.
    """
    from leadflow.campaigns import now_for, run_campaign
    from leadflow.messaging.smtp_sink import SmtpSink
    from leadflow.nightly import run_nightly

    base_url = config.company.tracking.base_url
    console.rule("[bold]Engagement: recipients open, click and unsubscribe (tracking service)")
    started = dt.datetime.now(dt.UTC)
    mails = _sent_campaign_mails(engine, mail_dir, base_url)
    hidden_tag = config.company.tracking.machine_traffic.honeypot_link_tag
    requests = plan(mails, _link_tags(engine, config, mails), seed, hidden_tag)
    with tracking_service(engine, paths.config_dir()) as served_url:
        console.print(f"  tracking service on {served_url} (mails link to {base_url})")
        answered = send(requests, base_url, served_url)
    console.print(
        f"  {len(mails):,} campaign mails read; requests answered: "
        + ", ".join(f"{key} × {count:,}" for key, count in sorted(answered.items())),
        highlight=False,
    )
    with engine.connect() as connection:
        console.print(_recorded(connection, started))
        before = _scores(connection)
    log_file = paths.demo_dir() / "logs" / f"nightly-{as_of}.log"
    with SmtpSink(mail_dir, port=0) as sink, _environment(sink.host, sink.port):
        began = time.monotonic()
        with _output_to(log_file):  # dbt's progress lines, as the DAG runs' go to their logs
            result = run_nightly(as_of, paths.config_dir())
    console.print(
        f"  nightly build for {as_of} (cut-off {now_for(as_of):%Y-%m-%d %H:%M} UTC): "
        f"run {result.run_id}, {time.monotonic() - began:.0f} s, log {log_file}",
        highlight=False,
    )
    # The journeys' waits end at a time of day (cross_sell's wait_intro in the morning), so
    # the campaigns run at midday after the cut-off; as_of stays the day just built.
    moment = now_for(as_of) + CAMPAIGN_HOUR
    campaigns = [campaign.id for campaign in config.campaigns.values() if campaign.enabled]
    for campaign_id in campaigns:
        run_campaign(engine, config, campaign_id, moment)
    console.print(f"  campaigns run at {moment:%Y-%m-%d %H:%M} UTC", highlight=False)
    with engine.connect() as connection:
        console.print(_score_changes(before, _scores(connection)))
        console.print(_branch_decisions(connection, now_for(as_of)))


def _sent_campaign_mails(engine: Engine, mail_dir: Path, base_url: str) -> list[TrackedMail]:
    """The campaign mails of the outbox that were sent, in outbox order (deterministic)."""
    with engine.connect() as connection:
        order = dict(
            connection.execute(
                sa.text(
                    "select message_id, outbox_id from ops.outbox "
                    "where status = 'sent' and kind = 'campaign_mail'"
                )
            ).all()
        )
    mails = [read_mail(path.read_bytes(), base_url) for path in sorted(mail_dir.glob("*.eml"))]
    return sorted((m for m in mails if m.message_id in order), key=lambda m: order[m.message_id])


def _link_tags(engine: Engine, config, mails: Sequence[TrackedMail]) -> dict[str, str | None]:
    """The ops.links tag of each click URL (the token names the link's id)."""
    from leadflow.messaging import links

    secret = links.tracking_secret(config)
    ids = {}
    for mail in mails:
        for url in mail.click_urls:
            token = url.rsplit("/c/", 1)[1]
            ids[url] = links.verify(token, secret, purpose="click")["link_id"]
    with engine.connect() as connection:
        tags = dict(
            connection.execute(
                sa.text("select link_id, tag from ops.links where link_id = any(:ids)"),
                {"ids": list(ids.values())},
            ).all()
        )
    return {url: tags.get(link_id) for url, link_id in ids.items()}


@contextmanager
def _output_to(log_file: Path) -> Iterator[None]:
    """This process's stdout and stderr (file descriptors 1 and 2) go to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with log_file.open("w") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


@contextmanager
def _environment(host: str, port: int) -> Iterator[None]:
    """The routing notifications of the nightly build go to the demo's SMTP server."""
    names = {"LEADFLOW_SMTP_HOST": host, "LEADFLOW_SMTP_PORT": str(port)}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _recorded(connection, since: dt.datetime) -> Table:
    rows = connection.execute(
        sa.text(
            "select event_type, is_machine, coalesce(properties ->> 'machine_reason', ''), "
            "count(*) from raw.events where occurred_at >= :since "
            "and event_type in ('email_open', 'email_click', 'unsubscribe') "
            "group by 1, 2, 3 order by 1, 2, 3"
        ),
        {"since": since},
    ).all()
    table = Table(title="Events the tracking service recorded (raw.events)")
    for column in ("event", "traffic", "machine reason", "events"):
        table.add_column(column, justify="right" if column == "events" else "left")
    for event_type, is_machine, reason, count in rows:
        table.add_row(event_type, "machine" if is_machine else "human", reason, f"{count:,}")
    return table


def _scores(connection) -> dict[str, tuple[float, int]]:
    rows = connection.execute(
        sa.text("select contact_id, activity_score, band from marts.dim_contacts")
    ).all()
    return {contact: (float(score), band) for contact, score, band in rows}


def _score_changes(
    before: Mapping[str, tuple[float, int]], after: Mapping[str, tuple[float, int]], top: int = 10
) -> Table:
    """The contacts whose activity score rose most (their new human opens and clicks).

    Scores also decay between the two builds (their half-life runs from event to cut-off),
    so most other contacts fall a little: counted, not listed.
    """
    changed = [
        (contact, before[contact], now)
        for contact, now in after.items()
        if contact in before and before[contact] != now
    ]
    rose = sorted(
        (row for row in changed if row[2][0] > row[1][0]),
        key=lambda row: (-(row[2][0] - row[1][0]), row[0]),
    )
    bands_up = sum(1 for _, old, new in rose if new[1] < old[1])
    table = Table(
        title=f"Activity after the next nightly build: {len(rose):,} contacts rose "
        f"({bands_up:,} to a better band), {len(changed) - len(rose):,} fell by decay; "
        f"top {top}"
    )
    for column in ("contact", "score before → after", "band before → after"):
        table.add_column(column)
    for contact, old, new in rose[:top]:
        table.add_row(contact, f"{old[0]:.2f} → {new[0]:.2f}", f"{old[1]} → {new[1]}")
    return table


def _branch_decisions(connection, since: dt.datetime) -> Table:
    """Then/else counts of the branches decided since `since` (the next build's cut-off)."""
    rows = connection.execute(
        sa.text(
            "select e.campaign_id, h.step_id, h.outcome, count(*) "
            "from ops.campaign_step_history h "
            "join ops.campaign_enrolments e using (enrolment_id) "
            "where h.kind = 'branch' and h.completed_at >= :since "
            "group by 1, 2, 3 order by 1, 2, 3"
        ),
        {"since": since},
    ).all()
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for campaign_id, step_id, outcome, count in rows:
        counts.setdefault((campaign_id, step_id), {})[outcome] = count
    table = Table(
        title=f"Branch decisions since {since:%Y-%m-%d %H:%M} UTC (ops.campaign_step_history)"
    )
    for column in ("campaign", "branch step", "then", "else"):
        table.add_column(column, justify="right" if column in ("then", "else") else "left")
    for (campaign_id, step_id), outcomes in counts.items():
        table.add_row(
            campaign_id, step_id, f"{outcomes.get('then', 0):,}", f"{outcomes.get('else', 0):,}"
        )
    return table
