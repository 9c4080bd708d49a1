"""The exactly-once dispatcher: drains ops.outbox over SMTP (SPEC §2.8).

    report = dispatch(engine, config, now, compose=compose, smtp_url="smtp://127.0.0.1:8025",
                      concurrency=2, rate_per_minute=600, batch_size=200)
    print(report.describe())

`compose(row, contact)` builds the message of one outbox row: an `email.message.EmailMessage`
with subject and body parts, or a `ComposedMessage` that also carries the message's language
and tracked links. The templates' renderer plugs in through `rendered_composer`:

    compose = rendered_composer(Renderer(config, translator).render)

which writes the MIME bytes itself (`mime_alternative`): building an EmailMessage and
serialising it cost more than everything else the dispatcher does for a mail.

A row's life (the statuses of migration 0006):

    pending ──claim──▶ claimed ──▶ sending ──SMTP 250──▶ sent
       ▲   (batch, lease)   │         │ └──4xx──▶ pending (attempts + 1, next_attempt_at)
       │                    │         │ └──5xx──▶ failed
       │                    │         └──connection broke during DATA──▶ ambiguous
       │                    └──render error──▶ failed (held: translation missing, fallback hold)
       └──lease expired (never handed to SMTP)
    claim may also say: suppressed (consent, suppression list) or re-defer (frequency cap):
    leadflow.messaging.eligibility.

Why nothing is sent twice and nothing is lost:
1. **Claim**: one transaction selects due rows `FOR UPDATE SKIP LOCKED` (so concurrent
   dispatchers take disjoint rows), decides eligibility for exactly those rows, and marks
   the eligible ones `claimed` by this worker with a lease.
2. **Intent before the send**: a worker sends a claimed batch in groups of `group_size`
   rows (default 20). For a group, the Message-IDs are generated and stored, and the rows
   set to `sending`, in one statement committed *before* the first SMTP transaction of the
   group starts. That update is fenced (`where status = 'claimed' and claimed_by = <this
   worker>`): a worker whose claim was taken back (its lease ran out and another
   dispatcher took the row) sends nothing for that row.
3. **Result after the send**: the group's mails go out one after another on the worker's
   connection; then the `sent` ones (with the server's answers) are recorded in one
   statement, failures one by one, again fenced by `claimed_by`. Rows the worker did not
   get to (the run stopped, the server became unreachable) go back to `claimed`.
4. **Recovery** at the start of every run: a `claimed` row whose lease has run out was never
   handed to SMTP (step 2 did not commit) and goes back to `pending`. A `sending` row whose
   lease has run out crashed between steps 2 and 3: the server may have accepted it. It
   becomes `ambiguous` — reported, never re-sent automatically. So a crash flags at most
   `group_size` rows per worker ambiguous (some of them possibly never sent); a mail can
   reach the server twice only if its row is among them, never otherwise.
   Why groups: two database round trips per mail cost as much as the SMTP transaction
   itself; per group of 20 they are a tenth of it, and the dispatcher sends about twice as
   many mails a second (docs/decisions.md). `group_size=1` gives the narrowest window.
   Under a slow rate limit a group is made smaller, so that it never takes more than a
   quarter of the lease (`paced_group_size`).

Time: a run's clock starts at `now` and advances with the real (monotonic) clock, so a
run at the current time records real times and a test run at a fixed moment records that
moment plus the seconds it took. Due means `scheduled_at <= now` and `next_attempt_at` unset
or passed; leases are `lease` after the claim (and after a group's `sending` mark).

Workers: `concurrency` threads, each with its own SMTP connection (opened once, reused,
re-opened when the server drops it) and its own database connection, claiming batches of
`batch_size` until no due row is left or `max_messages` rows were taken; one token bucket
shared by all (`rate_per_minute`), from which a worker reserves the slots of a whole group
before sending it (so the workers take turns instead of losing slots while both compose).
Threads, not processes: the worker threads spend most of
their time waiting for the SMTP server and PostgreSQL, and a finer GIL switch interval
changed nothing measurable (docs/decisions.md).
An unexpected error in a worker (or an unreachable server) stops every worker; the rows
they still hold go back to `pending`; `dispatch` then raises `DispatchError` carrying the
report.

Headers set here (whatever `compose` set): From / Reply-To (the tenant's sender), To,
Date, a unique Message-ID (`make_msgid` with the sender's domain; kept across retries),
Content-Language, and on campaign mails `List-Unsubscribe: <https…>, <mailto:…>` with
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058). Owner notifications get no
unsubscribe headers: their recipient is a sales rep, while the unsubscribe token names the
contact the mail is about.

Dry run (`dry_run=True`): recovery, claims, eligibility and composing run exactly as in a
real run but inside one transaction that is rolled back, and no SMTP connection is opened.
The report says what would have happened; the warehouse is unchanged (recording a dry run in
the outbox would consume its rows). The dry run holds its row locks until it ends.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.policy
import os
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadflow.campaigns.clock import checked_now
from leadflow.config.loader import Config
from leadflow.config.models import Tenant
from leadflow.errors import LeadflowError
from leadflow.messaging.delivery import (
    RateLimiter,
    SendResult,
    SmtpConnection,
    SmtpUnavailable,
    backoff,
    parse_smtp_url,
)
from leadflow.messaging.eligibility import (
    DEFAULT_CONTACT_RELATIONS,
    ContactRelations,
    judge_batch,
    tenant_of,
)

# What goes on the wire: CRLF line ends, headers folded only beyond RFC 5322's 998
# characters. At the default 78 a long List-Unsubscribe URL (one "word" without spaces)
# would be folded into RFC 2047 encoded words, which no mail client reads as a URL.
WIRE_POLICY = email.policy.SMTP.clone(max_line_length=998)
DEFAULT_LEASE = dt.timedelta(minutes=10)
DEFAULT_GROUP_SIZE = 20
ADDRESSING_HEADERS = (
    "From",
    "To",
    "Reply-To",
    "Date",
    "Message-ID",
    "Content-Language",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)

Row = Mapping[str, Any]


class DispatchError(LeadflowError):
    """A dispatch run stopped early; `report` says what it did until then."""

    def __init__(self, message: str, report: DispatchReport) -> None:
        super().__init__(message)
        self.report = report


# --- composing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ComposedMessage:
    """A composed mail with what the dispatcher records besides it.

    `message`: an `EmailMessage`, or the mail already as bytes (its own headers such as
    Subject and MIME-Version, a blank line, the body; CRLF line ends; none of the
    dispatcher's addressing headers) as `mime_alternative` builds it.
    `links`: objects with `link_id`, `url` and `tag` (the renderer's TrackedLink), written
    to ops.links when the mail is sent.
    """

    message: EmailMessage | bytes
    language: str | None = None
    links: Sequence[Any] = ()


Compose = Callable[[Row, Row], "EmailMessage | ComposedMessage"]
UnsubscribeUrl = Callable[[int, str], str]


def rendered_composer(render: Callable[[Row, Row], Any]) -> Compose:
    """A `compose` from a renderer's `render(row, contact) -> RenderedMessage` (subject,
    html, text, language, links, headers): a text part with the HTML as its alternative."""

    def compose(row: Row, contact: Row) -> ComposedMessage:
        rendered = render(row, contact)
        data = mime_alternative(
            rendered.subject, rendered.text, rendered.html, rendered.headers or {}
        )
        return ComposedMessage(data, rendered.language, list(rendered.links or ()))

    return compose


# Headers that `mime_alternative` writes itself, or that are the dispatcher's: a renderer's
# extra headers cannot replace them.
_OWN_HEADERS = frozenset(
    name.lower()
    for name in (
        *ADDRESSING_HEADERS,
        "Subject",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    )
)


def mime_alternative(
    subject: str, text: str, html: str, headers: Mapping[str, str] | None = None
) -> bytes:
    """A multipart/alternative mail (text, then HTML; UTF-8, quoted-printable) as bytes.

    Written directly instead of through `email.message.EmailMessage`, whose header objects
    and content manager cost about ten times as much as the whole SMTP transaction of the
    mail; what it produces is the same MIME structure, which any parser reads back.
    Quoted-printable output never contains "=_" ("=" is always followed by two hex digits
    or a line break), so a boundary starting with "=_" cannot occur in a part.
    """
    boundary = "=_" + secrets.token_hex(16)
    head = header_line("Subject", subject) + "".join(
        header_line(name, value)
        for name, value in (headers or {}).items()
        if name.lower() not in _OWN_HEADERS
    )
    head += (
        f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
    )
    separator = f"--{boundary}\r\n".encode("ascii")
    return b"".join(
        (
            head.encode("ascii"),
            b"\r\n",
            separator,
            _text_part("plain", text),
            separator,
            _text_part("html", html),
            f"--{boundary}--\r\n".encode("ascii"),
        )
    )


def _text_part(subtype: str, content: str) -> bytes:
    """One text part: its headers and its content in quoted-printable with CRLF line ends
    (like EmailMessage.set_content, a final line break is added when missing)."""
    text = content.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    data = text.replace("\n", "\r\n").encode("utf-8")
    return (
        (
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        + binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
        + (
            b"\r\n"  # the line break before a boundary belongs to the boundary (RFC 2046)
        )
    )


# An RFC 2047 encoded word of 39 bytes is "=?utf-8?b?" + 52 base64 characters + "?=": 64
# characters, so a line with one stays within the 76 RFC 2047 asks for.
_WORD_BYTES = 39


def header_line(name: str, value: str) -> str:
    """`Name: value` and CRLF, ready for the wire: on one line (a line break in a value can
    never start a header of its own), non-ASCII text as RFC 2047 encoded words (base64),
    folded between the words."""
    value = " ".join(value.split())
    if value.isascii() and len(name) + 2 + len(value) <= 998:
        return f"{name}: {value}\r\n"
    data = value.encode("utf-8")
    words = []
    start = 0
    while start < len(data):
        # As many whole characters as fit: back off from the limit to a character's first
        # byte (UTF-8 continuation bytes are 10xxxxxx).
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        words.append(_encoded_word(data[start:end]))
        start = end
    return f"{name}: " + "\r\n ".join(words) + "\r\n"


def _encoded_word(data: bytes | bytearray) -> str:
    return "=?utf-8?b?" + binascii.b2a_base64(data, newline=False).decode("ascii") + "?="


def default_unsubscribe_url(config: Config) -> UnsubscribeUrl:
    """The signed one-click unsubscribe URL of leadflow.messaging.links (the tracking secret
    is read once, so a missing one stops the run before anything is claimed)."""
    from leadflow.messaging.links import tracking_secret, unsubscribe_url

    secret = tracking_secret(config)
    return lambda outbox_id, contact_id: unsubscribe_url(
        config, outbox_id, contact_id, secret=secret
    )


def _held(error: BaseException) -> bool:
    """A missing translation whose fallback is `hold` (the renderer's TranslationHeld)."""
    return any(kind.__name__ == "TranslationHeld" for kind in type(error).__mro__)


# --- the report --------------------------------------------------------------------------


@dataclass
class DispatchReport:
    """What a dispatch run did (or, with dry_run, would have done)."""

    now: dt.datetime
    dry_run: bool = False
    released: int = 0  # claimed rows with an expired lease, back to pending
    flagged_ambiguous: list[int] = field(default_factory=list)  # sending rows found expired
    claimed: int = 0
    sent: int = 0
    retried: int = 0  # 4xx: back to pending with a later next_attempt_at
    failed: Counter[str] = field(default_factory=Counter)  # by cause: smtp, render, retries
    held: int = 0
    ambiguous: list[int] = field(default_factory=list)  # broke during DATA in this run
    suppressed: Counter[str] = field(default_factory=Counter)  # by status_reason
    deferred: int = 0  # frequency cap
    composed: int = 0  # dry run: messages that rendered and would be sent
    connections: int = 0
    elapsed_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: Any) -> None:
        with self._lock:
            for name, value in counts.items():
                current = getattr(self, name)
                if isinstance(current, list):
                    current.extend(value)
                elif isinstance(current, Counter):
                    current.update(value)
                else:
                    setattr(self, name, current + value)

    @property
    def rate_per_minute(self) -> float:
        done = self.sent + self.composed
        return 60.0 * done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def counts(self) -> dict[str, Any]:
        """JSON-ready figures (a DAG task's XCom)."""
        return {
            "dry_run": self.dry_run,
            "released": self.released,
            "flagged_ambiguous": len(self.flagged_ambiguous),
            "claimed": self.claimed,
            "sent": self.sent,
            "composed": self.composed,
            "retried": self.retried,
            "failed": dict(self.failed),
            "held": self.held,
            "ambiguous": len(self.ambiguous),
            "suppressed": dict(self.suppressed),
            "deferred": self.deferred,
        }

    def describe(self) -> str:
        head = "dry run (nothing sent, nothing changed)" if self.dry_run else "dispatch"
        done = (
            f"{self.composed} would be sent"
            if self.dry_run
            else f"{self.sent} sent ({self.rate_per_minute:.0f}/min)"
        )
        parts = [
            f"{head} at {self.now.isoformat()}: {self.claimed} claimed, {done}",
            f"{self.retried} to retry (4xx)",
            f"{sum(self.failed.values())} failed" + _breakdown(self.failed),
            f"{self.held} held",
            f"{sum(self.suppressed.values())} suppressed" + _breakdown(self.suppressed),
            f"{self.deferred} deferred by the frequency cap",
            f"{len(self.ambiguous)} ambiguous",
        ]
        text = ", ".join(parts)
        if self.released or self.flagged_ambiguous:
            text += (
                f"; recovery: {self.released} expired claim(s) back to pending, "
                f"{len(self.flagged_ambiguous)} interrupted send(s) flagged ambiguous"
                + (
                    f" (outbox ids {_ids(self.flagged_ambiguous)})"
                    if self.flagged_ambiguous
                    else ""
                )
            )
        if self.ambiguous:
            text += f"; ambiguous outbox ids: {_ids(self.ambiguous)} (check before re-sending)"
        if self.errors:
            text += "; stopped: " + "; ".join(self.errors)
        return text


def _breakdown(counter: Counter[str]) -> str:
    if not counter:
        return ""
    return " (" + ", ".join(f"{key} {value}" for key, value in sorted(counter.items())) + ")"


def _ids(ids: list[int], shown: int = 10) -> str:
    listed = ", ".join(str(i) for i in sorted(ids)[:shown])
    return listed + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


# --- recovery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    released: int
    ambiguous: list[int]


def recover_expired(connection: Connection, now: dt.datetime) -> Recovery:
    """Expired claims back to pending; expired sends flagged ambiguous (module docstring)."""
    released = connection.execute(
        sa.text(
            "update ops.outbox set status = 'pending', claimed_by = null, claimed_at = null, "
            "lease_until = null where status = 'claimed' and lease_until < :now"
        ),
        {"now": now},
    ).rowcount
    ambiguous = connection.execute(
        sa.text(
            "update ops.outbox set status = 'ambiguous', lease_until = null, status_reason = "
            "'interrupted during the SMTP transaction (lease expired while sending): the "
            "server may have accepted it' "
            "where status = 'sending' and lease_until < :now returning outbox_id"
        ),
        {"now": now},
    ).scalars()
    return Recovery(released=released, ambiguous=sorted(ambiguous))


# --- claiming ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedMessage:
    """A claimed row, its contact (mart row + raw fields) and where it goes."""

    row: dict[str, Any]
    contact: dict[str, Any]
    recipient: str


@dataclass
class Claim:
    """One claimed batch: the rows taken, and what eligibility did with them."""

    taken: int = 0
    messages: list[ClaimedMessage] = field(default_factory=list)
    suppressed: Counter[str] = field(default_factory=Counter)
    deferred: int = 0


_DUE = sa.text(
    "select * from ops.outbox "
    "where status = 'pending' and scheduled_at <= :now "
    "and (next_attempt_at is null or next_attempt_at <= :now) "
    # one campaign's rows (a campaign DAG's dispatch tasks), or all of them
    "and (cast(:campaign_id as text) is null or campaign_id = :campaign_id) "
    "order by scheduled_at, outbox_id "
    "for update skip locked limit :limit"
)


def claim_batch(
    engine: Engine,
    config: Config,
    now: dt.datetime,
    limit: int,
    worker_id: str,
    lease: dt.timedelta,
    *,
    relations: ContactRelations = DEFAULT_CONTACT_RELATIONS,
    campaign_id: str | None = None,
) -> Claim:
    """Claim up to `limit` due rows for `worker_id` in one transaction (module docstring);
    only rows of `campaign_id` when given."""
    with engine.begin() as connection:
        return claim_on(
            connection,
            config,
            now,
            limit,
            worker_id,
            lease,
            relations=relations,
            campaign_id=campaign_id,
        )


def claim_on(
    connection: Connection,
    config: Config,
    now: dt.datetime,
    limit: int,
    worker_id: str,
    lease: dt.timedelta,
    *,
    relations: ContactRelations = DEFAULT_CONTACT_RELATIONS,
    campaign_id: str | None = None,
) -> Claim:
    """`claim_batch` inside the caller's transaction."""
    now = checked_now(now)
    due = {"now": now, "limit": limit, "campaign_id": campaign_id}
    rows = [dict(row) for row in connection.execute(_DUE, due).mappings()]
    claim = Claim(taken=len(rows))
    if not rows:
        return claim
    judgement = judge_batch(connection, config, rows, now, relations)
    by_id = {row["outbox_id"]: row for row in rows}
    claimed = [v for v in judgement.verdicts if v.action == "claim"]
    suppressed = [v for v in judgement.verdicts if v.action == "suppress"]
    deferred = [v for v in judgement.verdicts if v.action == "defer"]
    if claimed:
        _mark_claimed(connection, claimed, worker_id, now, now + lease)
    if suppressed:
        _mark_suppressed(connection, suppressed)
    if deferred:
        _mark_deferred(connection, deferred)
    for verdict in claimed:
        row = by_id[verdict.outbox_id]
        row.update(status="claimed", claimed_by=worker_id, recipient_email=verdict.recipient)
        contact = judgement.contacts.get(row["contact_id"], {})
        claim.messages.append(ClaimedMessage(row, contact, verdict.recipient or ""))
    claim.suppressed.update(verdict.reason or "" for verdict in suppressed)
    claim.deferred = len(deferred)
    return claim


def _mark_claimed(connection, verdicts, worker_id, now, lease_until) -> None:
    """Claimed; recipient_email records the address the mail goes to."""
    connection.execute(
        sa.text(
            "update ops.outbox as o set status = 'claimed', claimed_by = :worker, "
            "claimed_at = :now, lease_until = :lease_until, recipient_email = c.recipient "
            "from unnest(cast(:ids as bigint[]), cast(:recipients as text[])) "
            "as c(outbox_id, recipient) where o.outbox_id = c.outbox_id"
        ),
        {
            "worker": worker_id,
            "now": now,
            "lease_until": lease_until,
            "ids": [v.outbox_id for v in verdicts],
            "recipients": [v.recipient for v in verdicts],
        },
    )


def _mark_suppressed(connection, verdicts) -> None:
    connection.execute(
        sa.text(
            "update ops.outbox as o set status = 'suppressed', status_reason = s.reason "
            "from unnest(cast(:ids as bigint[]), cast(:reasons as text[])) as s(outbox_id, reason) "
            "where o.outbox_id = s.outbox_id"
        ),
        {"ids": [v.outbox_id for v in verdicts], "reasons": [v.reason for v in verdicts]},
    )


def _mark_deferred(connection, verdicts) -> None:
    connection.execute(
        sa.text(
            "update ops.outbox as o set scheduled_at = d.moment, deferred_reason = d.reason "
            "from unnest(cast(:ids as bigint[]), cast(:moments as timestamptz[]), "
            "cast(:reasons as text[])) as d(outbox_id, moment, reason) "
            "where o.outbox_id = d.outbox_id"
        ),
        {
            "ids": [v.outbox_id for v in verdicts],
            "moments": [v.scheduled_at for v in verdicts],
            "reasons": [v.reason for v in verdicts],
        },
    )


def release(engine: Engine, worker_id: str, outbox_ids: Sequence[int]) -> int:
    """Hand claimed rows of this worker back to pending (a worker that stops early)."""
    if not outbox_ids:
        return 0
    with engine.begin() as connection:
        return connection.execute(
            sa.text(
                "update ops.outbox set status = 'pending', claimed_by = null, claimed_at = null, "
                "lease_until = null where outbox_id = any(:ids) and status = 'claimed' "
                "and claimed_by = :worker"
            ),
            {"ids": list(outbox_ids), "worker": worker_id},
        ).rowcount


# --- addressing a message ----------------------------------------------------------------


def sender_of(config: Config, tenant: Tenant | None) -> Tenant:
    return tenant or config.global_tenant


def addressing_headers(
    *,
    recipient: str,
    tenant: Tenant,
    message_id: str,
    language: str,
    date: dt.datetime,
    unsubscribe: tuple[str, str | None] | None,
) -> list[tuple[str, str]]:
    """The dispatcher's headers (module docstring), in order, as (name, value)."""
    sender = tenant.sender
    headers = [("From", formataddr((sender.name, sender.email), charset="utf-8"))]
    if sender.reply_to:
        headers.append(("Reply-To", sender.reply_to))
    headers += [
        ("To", recipient),
        ("Date", format_datetime(date)),
        ("Message-ID", message_id),
        ("Content-Language", language),
    ]
    if unsubscribe is not None:
        https, mailto = unsubscribe
        targets = [f"<{https}>"] + ([f"<{mailto}>"] if mailto else [])
        headers.append(("List-Unsubscribe", ", ".join(targets)))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return headers


def new_message_id(tenant: Tenant) -> str:
    """A unique Message-ID in the sender's domain."""
    return make_msgid(domain=tenant.sender.email.rpartition("@")[2])


def unsubscribe_mailto(config: Config, row: Row) -> str | None:
    address = config.company.delivery.unsubscribe_mailto
    if not address:
        return None
    return f"mailto:{address}?subject=unsubscribe%20{row['outbox_id']}"


# --- one worker --------------------------------------------------------------------------


class RunClock:
    """The run's clock: starts at `now`, advances with the monotonic clock."""

    def __init__(self, now: dt.datetime) -> None:
        self.start = checked_now(now)
        self._started = time.monotonic()

    def __call__(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=time.monotonic() - self._started)


@dataclass(frozen=True)
class RetryPolicy:
    """4xx answers: retry after base, 2 × base, ... (at most cap); fail after max_attempts."""

    base: dt.timedelta = dt.timedelta(minutes=1)
    cap: dt.timedelta = dt.timedelta(hours=1)
    max_attempts: int = 8


@dataclass
class _Run:
    """What the workers of one run share."""

    engine: Engine
    config: Config
    clock: RunClock
    compose: Compose
    unsubscribe_url: UnsubscribeUrl
    relations: ContactRelations
    lease: dt.timedelta
    retry: RetryPolicy
    batch_size: int
    group_size: int
    report: DispatchReport
    run_id: str
    campaign_id: str | None = None
    limiter: RateLimiter | None = None
    remaining: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def quota(self) -> int:
        """How many rows the next claim may take (max_messages)."""
        with self._lock:
            if self.stop.is_set():
                return 0
            if self.remaining is None:
                return self.batch_size
            take = min(self.batch_size, self.remaining)
            self.remaining -= take
            return take


class _Worker:
    """One thread of a run: its own SMTP connection and its own database connection."""

    def __init__(self, run: _Run, index: int, smtp: SmtpConnection | None) -> None:
        self.run = run
        self.worker_id = f"{run.run_id}-w{index}"
        self.smtp = smtp
        self.db: Connection | None = None

    def work(self) -> None:
        run = self.run
        with run.engine.connect() as db:
            self.db = _autocommit(db)
            try:
                self._drain()
            finally:
                db.exec_driver_sql("reset synchronous_commit")

    def _drain(self) -> None:
        run = self.run
        while (limit := run.quota()) > 0:
            claim = claim_batch(
                run.engine,
                run.config,
                run.clock(),
                limit,
                self.worker_id,
                run.lease,
                relations=run.relations,
                campaign_id=run.campaign_id,
            )
            run.report.add(
                claimed=len(claim.messages), suppressed=claim.suppressed, deferred=claim.deferred
            )
            if claim.taken == 0:
                return
            messages = claim.messages
            for start in range(0, len(messages), run.group_size):
                try:
                    if not run.stop.is_set():
                        self.deliver_group(messages[start : start + run.group_size])
                except BaseException:
                    self._release(messages[start:])
                    raise
                if run.stop.is_set():
                    self._release(messages[start:])
                    return

    def _release(self, messages: Sequence[ClaimedMessage]) -> None:
        """Rows of `messages` still `claimed` by this worker go back to pending."""
        released = release(self.run.engine, self.worker_id, [m.row["outbox_id"] for m in messages])
        self.run.report.add(claimed=-released)

    def deliver_group(self, group: Sequence[ClaimedMessage]) -> None:
        """Compose the group's messages, mark them `sending` in one statement, send them one
        after another on this worker's connection, record their outcomes (the sent ones in
        one statement). Rows never handed to SMTP (the run stopped, the server became
        unreachable) go back to `claimed`; a row whose SMTP transaction an unexpected error
        interrupted stays `sending`, to be flagged ambiguous when its lease runs out."""
        run = self.run
        ready: list[tuple[dict[str, Any], Prepared]] = []
        for claimed in group:
            try:
                ready.append((claimed.row, prepare(run, claimed)))
            except LeadflowError as error:  # a render error fails this message only
                self._record_render_failure(claimed.row, error)
        if not ready:
            return
        assert self.smtp is not None
        self.smtp.connect()  # an unreachable server stops the run before anything is marked
        marked = self._mark_sending(ready)
        outcomes: list[_Outcome] = []
        in_flight = 0
        # The group's slots of the shared rate limit, taken at once (RateLimiter.reserve).
        limiter = run.limiter
        slots = limiter.reserve(len(marked)) if limiter is not None else []
        try:
            for position, (row, prepared) in enumerate(marked):
                if run.stop.is_set():
                    break
                if limiter is not None:
                    limiter.wait(slots[position])  # never before its slot
                in_flight = 1
                try:
                    result = self.smtp.send(prepared.sender, prepared.recipient, prepared.data)
                except SmtpUnavailable:
                    in_flight = 0  # lost before MAIL FROM and unable to reconnect: not sent
                    raise
                in_flight = 0
                outcomes.append(_Outcome(row, prepared, result, run.clock()))
        finally:
            self._record(outcomes)
            self._unmark([row for row, _prepared in marked[len(outcomes) + in_flight :]])

    # The worker's writes around the SMTP transactions run on its own connection, each
    # statement its own transaction (autocommit), with synchronous_commit off: a commit then
    # returns before its WAL is flushed to disk. The change is already in the server's
    # memory and WAL buffers (flushed within a few hundred milliseconds), so a crash of the
    # *dispatcher* loses nothing; only a crash of the PostgreSQL server itself could forget
    # the last fraction of a second — a `sending` mark forgotten that way means the rows are
    # claimed again later (duplicates of mails the server took in that instant), a
    # forgotten `sent` turns into `ambiguous`. Worth it: fsyncs around every group would
    # cost more than its SMTP transactions.

    def _execute(self, statement: sa.TextClause, **params: Any) -> sa.CursorResult[Any]:
        assert self.db is not None
        return self.db.execute(statement, {"worker": self.worker_id, **params})

    def _mark_sending(
        self, ready: list[tuple[dict[str, Any], Prepared]]
    ) -> list[tuple[dict[str, Any], Prepared]]:
        """Mark the group `sending` (fenced by the claim); the rows that were marked."""
        marked = set(
            self._execute(
                _MARK_SENDING,
                ids=[row["outbox_id"] for row, _prepared in ready],
                message_ids=[prepared.message_id for _row, prepared in ready],
                languages=[prepared.language for _row, prepared in ready],
                lease_until=self.run.clock() + self.run.lease,
            ).scalars()
        )
        if len(marked) < len(ready):  # claims taken back; whoever holds them now sends them
            self.run.report.add(claimed=len(marked) - len(ready))
        return [(row, prepared) for row, prepared in ready if row["outbox_id"] in marked]

    def _unmark(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self._execute(_UNMARK_SENDING, ids=[row["outbox_id"] for row in rows])

    def _record(self, outcomes: Sequence[_Outcome]) -> None:
        sent = [outcome for outcome in outcomes if outcome.result.outcome == "sent"]
        if sent:
            self._record_sent(sent)
        for outcome in outcomes:
            if outcome.result.outcome != "sent":
                self._record_unsent(outcome)

    def _record_sent(self, sent: Sequence[_Outcome]) -> None:
        links = [(outcome.row["outbox_id"], link) for outcome in sent for link in outcome.links]
        self._execute(
            _RECORD_SENT,
            ids=[outcome.row["outbox_id"] for outcome in sent],
            moments=[outcome.moment for outcome in sent],
            responses=[outcome.result.describe() for outcome in sent],
            link_outbox_ids=[outbox_id for outbox_id, _link in links],
            link_ids=[link.link_id for _outbox_id, link in links],
            urls=[link.url for _outbox_id, link in links],
            tags=[getattr(link, "tag", None) for _outbox_id, link in links],
        )
        self.run.report.add(sent=len(sent))

    def _record_unsent(self, outcome: _Outcome) -> None:
        run = self.run
        row, result = outcome.row, outcome.result
        outbox_id = row["outbox_id"]
        if result.outcome == "ambiguous":
            self._execute(
                _RECORD_STATUS, id=outbox_id, status="ambiguous", reason=result.describe()
            )
            run.report.add(ambiguous=[outbox_id])
        elif result.outcome == "temporary":
            attempts = row.get("attempts", 0) + 1
            if attempts >= run.retry.max_attempts:
                reason = f"gave up after {attempts} temporary failures: {result.describe()}"
                self._execute(_RECORD_STATUS, id=outbox_id, status="failed", reason=reason)
                run.report.add(failed=Counter(retries=1))
            else:
                delay = backoff(attempts, base=run.retry.base, cap=run.retry.cap)
                self._execute(
                    _RECORD_RETRY,
                    id=outbox_id,
                    next_attempt_at=outcome.moment + delay,
                    reason=result.describe(),
                )
                run.report.add(retried=1)
        else:
            reason = f"smtp: {result.describe()}"
            self._execute(_RECORD_STATUS, id=outbox_id, status="failed", reason=reason)
            run.report.add(failed=Counter(smtp=1))

    def _record_render_failure(self, row: dict[str, Any], error: BaseException) -> None:
        status = "held" if _held(error) else "failed"
        reason = f"render: {' '.join(str(error).split()) or type(error).__name__}"
        updated = self._execute(
            _RECORD_RENDER_FAILURE, id=row["outbox_id"], status=status, reason=reason
        ).rowcount
        if updated == 1 and status == "held":
            self.run.report.add(held=1)
        elif updated == 1:
            self.run.report.add(failed=Counter(render=1))


@dataclass(frozen=True)
class _Outcome:
    """What the SMTP server answered for one row of a group, and when."""

    row: dict[str, Any]
    prepared: Prepared
    result: SendResult
    moment: dt.datetime

    @property
    def links(self) -> Sequence[Any]:
        return self.prepared.links


def _autocommit(connection: Connection) -> Connection:
    connection = connection.execution_options(isolation_level="AUTOCOMMIT")
    connection.exec_driver_sql("set synchronous_commit = off")
    return connection


_MARK_SENDING = sa.text(
    "update ops.outbox as o set status = 'sending', message_id = m.message_id, "
    "language = m.language, lease_until = :lease_until "
    "from unnest(cast(:ids as bigint[]), cast(:message_ids as text[]), "
    "cast(:languages as text[])) as m(outbox_id, message_id, language) "
    "where o.outbox_id = m.outbox_id and o.status = 'claimed' and o.claimed_by = :worker "
    "returning o.outbox_id"
)
_UNMARK_SENDING = sa.text(
    "update ops.outbox set status = 'claimed' "
    "where outbox_id = any(cast(:ids as bigint[])) and status = 'sending' "
    "and claimed_by = :worker"
)
# 'ambiguous' too in the fences below: recovery may have flagged the row while this worker
# was still in its group; now that the answer is known, the row says so.
_RECORD_SENT = sa.text(
    "with sent as ("
    " update ops.outbox as o set status = 'sent', sent_at = s.sent_at,"
    " smtp_response = s.response, attempts = o.attempts + 1, last_error = null,"
    " status_reason = null, lease_until = null"
    " from unnest(cast(:ids as bigint[]), cast(:moments as timestamptz[]),"
    " cast(:responses as text[])) as s(outbox_id, sent_at, response)"
    " where o.outbox_id = s.outbox_id and o.claimed_by = :worker"
    " and o.status in ('sending', 'ambiguous')"
    " returning o.outbox_id, o.campaign_id, o.step_id, o.contact_id) "
    "insert into ops.links (link_id, outbox_id, campaign_id, step_id, contact_id, url, tag) "
    "select link.link_id, sent.outbox_id, sent.campaign_id, sent.step_id, sent.contact_id, "
    "link.url, link.tag from sent join unnest(cast(:link_outbox_ids as bigint[]), "
    "cast(:link_ids as text[]), cast(:urls as text[]), cast(:tags as text[])) "
    "as link(outbox_id, link_id, url, tag) on link.outbox_id = sent.outbox_id "
    "on conflict (link_id) do nothing"
)
_RECORD_STATUS = sa.text(
    "update ops.outbox set status = :status, status_reason = :reason, last_error = :reason, "
    "attempts = attempts + 1, lease_until = null "
    "where outbox_id = :id and claimed_by = :worker and status in ('sending', 'ambiguous')"
)
_RECORD_RETRY = sa.text(
    "update ops.outbox set status = 'pending', attempts = attempts + 1, "
    "next_attempt_at = :next_attempt_at, last_error = :reason, claimed_by = null, "
    "claimed_at = null, lease_until = null "
    "where outbox_id = :id and claimed_by = :worker and status in ('sending', 'ambiguous')"
)
_RECORD_RENDER_FAILURE = sa.text(
    "update ops.outbox set status = :status, status_reason = :reason, last_error = :reason, "
    "lease_until = null where outbox_id = :id and status = 'claimed' and claimed_by = :worker"
)


@dataclass(frozen=True)
class Prepared:
    """A message ready for the wire, and what is recorded about it."""

    data: bytes
    sender: str
    recipient: str
    message_id: str
    language: str
    links: Sequence[Any]


class AddressError(LeadflowError):
    """An address or header that cannot be written in ASCII (no SMTPUTF8 on this path)."""


def prepare(run: _Run, claimed: ClaimedMessage) -> Prepared:
    """`prepare_message` with the run's settings, dated now."""
    return prepare_message(
        claimed,
        config=run.config,
        compose=run.compose,
        unsubscribe_url=run.unsubscribe_url,
        date=run.clock(),
    )


def prepare_message(
    claimed: ClaimedMessage,
    *,
    config: Config,
    compose: Compose,
    unsubscribe_url: UnsubscribeUrl,
    date: dt.datetime,
) -> Prepared:
    """Compose and address one claimed row: the bytes that go on the wire and what is
    recorded about them. A LeadflowError from compose (a render error), or an address that
    cannot go on the wire, fails this message only."""
    row, contact = claimed.row, claimed.contact
    composed = compose_one(compose, row, contact)
    tenant = sender_of(config, tenant_of(config, row, contact))
    message_id = row.get("message_id") or new_message_id(tenant)
    language = str(
        composed.language or row.get("language") or contact.get("language") or tenant.language
    ).strip()
    unsubscribe = None
    if row["kind"] == "campaign_mail":
        https = unsubscribe_url(row["outbox_id"], row["contact_id"])
        unsubscribe = (https, unsubscribe_mailto(config, row))
    headers = addressing_headers(
        recipient=claimed.recipient,
        tenant=tenant,
        message_id=message_id,
        language=language,
        date=date,
        unsubscribe=unsubscribe,
    )
    return Prepared(
        data=wire_bytes(composed.message, headers),
        sender=tenant.sender.email,
        recipient=claimed.recipient,
        message_id=message_id,
        language=language,
        links=composed.links,
    )


def compose_one(compose: Compose, row: Row, contact: Row) -> ComposedMessage:
    composed = compose(row, contact)
    if isinstance(composed, EmailMessage):
        return ComposedMessage(composed)
    return composed


def wire_bytes(message: EmailMessage | bytes, headers: Sequence[tuple[str, str]]) -> bytes:
    """The addressing headers, then `message` (without any of them) as it goes on the wire.

    Written as bytes rather than set on the EmailMessage: the e-mail package parses every
    header it is given, which cost more than the whole SMTP transaction per mail. A message
    that is bytes already (`mime_alternative`) has none of them.
    """
    if isinstance(message, EmailMessage):
        for name in ADDRESSING_HEADERS:
            del message[name]
    try:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")
    except UnicodeEncodeError:
        raise AddressError(
            "an address needs SMTPUTF8, which this sender does not use: "
            + ", ".join(f"{name}: {value}" for name, value in headers if not value.isascii())
        ) from None
    if isinstance(message, EmailMessage):
        return head + message.as_bytes(policy=WIRE_POLICY)
    return head + message


# --- a run -------------------------------------------------------------------------------


def dispatch(
    engine: Engine,
    config: Config,
    now: dt.datetime,
    *,
    compose: Compose,
    smtp_url: str | None,
    concurrency: int,
    rate_per_minute: float | None,
    batch_size: int,
    dry_run: bool = False,
    max_messages: int | None = None,
    lease: dt.timedelta = DEFAULT_LEASE,
    retry: RetryPolicy = RetryPolicy(),
    unsubscribe_url: UnsubscribeUrl | None = None,
    relations: ContactRelations = DEFAULT_CONTACT_RELATIONS,
    group_size: int = DEFAULT_GROUP_SIZE,
    campaign_id: str | None = None,
) -> DispatchReport:
    """Recover, then send every due outbox row (module docstring); the run's report.

    `rate_per_minute` None means no limit; `smtp_url` may be None only for a dry run.
    `campaign_id`: send only that campaign's rows (a campaign DAG's dispatch tasks).
    `group_size`: rows marked `sending` (and recorded) together, the most a crash can leave
    ambiguous per worker.
    """
    if concurrency < 1 or batch_size < 1 or group_size < 1:
        raise ValueError("concurrency, batch_size and group_size must be at least 1")
    clock = RunClock(now)
    report = DispatchReport(now=clock.start, dry_run=dry_run)
    run = _Run(
        engine=engine,
        config=config,
        clock=clock,
        compose=compose,
        unsubscribe_url=unsubscribe_url or default_unsubscribe_url(config),
        relations=relations,
        lease=lease,
        retry=retry,
        batch_size=batch_size,
        group_size=paced_group_size(group_size, lease, rate_per_minute, concurrency),
        report=report,
        run_id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        remaining=max_messages,
        campaign_id=campaign_id,
    )
    started = time.monotonic()
    try:
        if dry_run:
            _dry_run(run)
        else:
            if not smtp_url:
                raise LeadflowError("dispatch needs an SMTP URL (or dry_run)")
            server = parse_smtp_url(smtp_url)
            with engine.begin() as connection:
                recovery = recover_expired(connection, clock())
            report.add(released=recovery.released, flagged_ambiguous=recovery.ambiguous)
            if rate_per_minute:
                run.limiter = RateLimiter(rate_per_minute)
            _run_workers(run, concurrency, server)
    finally:
        report.elapsed_seconds = time.monotonic() - started
    if report.errors:
        raise DispatchError(
            "dispatch stopped: " + "; ".join(report.errors) + f" ({report.describe()})", report
        )
    return report


def paced_group_size(
    group_size: int, lease: dt.timedelta, rate_per_minute: float | None, concurrency: int
) -> int:
    """`group_size`, made smaller under a slow rate limit so that sending a group takes at
    most a quarter of the lease: its rows wait in `sending` until their turn, and a lease
    running out meanwhile would have another dispatcher's recovery flag them ambiguous."""
    if not rate_per_minute:
        return group_size
    seconds_per_message = 60.0 * concurrency / rate_per_minute  # each worker's share
    fits = int(lease.total_seconds() / 4 / seconds_per_message)
    return max(1, min(group_size, fits))


def _run_workers(run: _Run, concurrency: int, server) -> None:
    connections = [SmtpConnection(server) for _ in range(concurrency)]

    def work(index: int) -> None:
        try:
            with connections[index] as smtp:
                _Worker(run, index, smtp).work()
        except BaseException as error:  # every worker stops; the run reports why
            run.stop.set()
            run.report.add(errors=[f"{type(error).__name__}: {error}"])

    threads = [
        threading.Thread(target=work, args=(index,), name=f"dispatch-{index}", daemon=True)
        for index in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.report.add(connections=sum(connection.connects for connection in connections))


def _dry_run(run: _Run) -> None:
    """Everything but SMTP, in one transaction that is rolled back."""
    worker_id = f"{run.run_id}-dry-run"
    with run.engine.connect() as connection, connection.begin() as transaction:
        recovery = recover_expired(connection, run.clock())
        run.report.add(released=recovery.released, flagged_ambiguous=recovery.ambiguous)
        while (limit := run.quota()) > 0:
            claim = claim_on(
                connection,
                run.config,
                run.clock(),
                limit,
                worker_id,
                run.lease,
                relations=run.relations,
                campaign_id=run.campaign_id,
            )
            run.report.add(
                claimed=len(claim.messages), suppressed=claim.suppressed, deferred=claim.deferred
            )
            if claim.taken == 0:
                break
            for claimed in claim.messages:
                try:
                    prepare(run, claimed)
                except LeadflowError as error:
                    run.report.add(
                        **({"held": 1} if _held(error) else {"failed": Counter(render=1)})
                    )
                else:
                    run.report.add(composed=1)
            # The claimed rows must not be taken again by the next batch of this transaction:
            # they are 'claimed' now, which the due query skips.
        transaction.rollback()


__all__ = [
    "Claim",
    "ClaimedMessage",
    "ComposedMessage",
    "DispatchError",
    "DispatchReport",
    "Prepared",
    "RetryPolicy",
    "claim_batch",
    "claim_on",
    "dispatch",
    "mime_alternative",
    "prepare_message",
    "recover_expired",
    "rendered_composer",
]
