"""Bounces and complaints from the bounce mailbox: `leadflow bounces ingest` (SPEC §2.1, §2.8).

Every message in the mailbox is classified once, by what the message itself says, in this
order (the first that applies wins):

1. **complaint** — an ARF feedback report (RFC 5965: `multipart/report;
   report-type=feedback-report`) of type `abuse` or `fraud`: the recipient marked our mail as
   spam. The complaining address is `Original-Rcpt-To`, else the `To` of the embedded
   message — unless the report is redacted (`Redacted-Address`, RFC 6590), when only the
   outbox row the embedded Message-ID names can tell who it was. Other feedback types
   (`not-spam`, `auth-failure`, …) are not complaints: not_a_bounce.
2. **RFC 3464 delivery-status notification** — every `message/delivery-status` part (also
   inside a `multipart/mixed`, never inside an attached message) is read per recipient:
   `Action: failed` with a 5.x.x (or no) status is **hard**, `failed` with 4.x.x or
   `Action: delayed` is **soft**; `delivered`, `relayed`, `expanded` are no failures. The
   address is `Original-Recipient` (what we sent to) when given, else `Final-Recipient`.
   Structure comes before the `Auto-Submitted` header because many MTAs (Postfix, Exchange,
   Exim) mark their bounces `auto-replied`.
3. **auto_reply** — RFC 3834 and its relatives: `X-Autoreply`/`X-Autorespond`,
   `Precedence: auto_reply`, `Auto-Submitted: auto-replied` from anyone but a mail system
   (mailer-daemon, postmaster), or an out-of-office subject. Never a bounce.
4. Bounces without a usable delivery-status part: flufl.bounce's detectors
   (`all_failures`: permanent → hard, temporary → soft), then two formats they miss, only
   in mail from a mail system: Exchange/Office 365 text reports ("Delivery has failed to
   these recipients or groups" … "Remote Server returned '550 5.1.1 …'") and Postfix's
   classic `Content-Description: Notification` part (`<address>: … said: 550 …`); their
   SMTP reply decides hard (5xx) or soft (4xx).
5. Anything else: **not_a_bounce**.

A message with at least one hard recipient is a `hard_bounce`, otherwise a `soft_bounce`.

Effects, in one transaction per message:
- `ops.bounce_messages` gets the message by its sha256: a message already there is skipped
  without a second look, so ingesting the same mailbox again changes nothing.
- `ops.bounces` gets one row per failing or complaining address, with the bounce's `Date`
  as `received_at` (never later than now; now when missing), which the soft-bounce window
  counts on.
- Suppressions (suppression.py, scope `all`): a hard bounce at once (`hard_bounce`); a
  complaint at once (`complaint`); a soft bounce when the address has
  `company.defaults.soft_bounce.max_soft_bounces` soft bounces whose times lie within
  `within_days` days of each other (any window (t − N days, t], so the order in which
  bounces arrive does not matter) (`soft_bounces`).
- The original mail is found by Message-ID: every Message-ID of the embedded original (an
  attached message or its headers, or a `Message-ID:` line in the text of a bounce that
  quotes it) is looked up in `ops.outbox.message_id`. A matched campaign mail gets an
  `email_bounced` event in `raw.events` (bounce_type hard/soft, the row's campaign, step and
  contact; event id `bounce:<sha256>`, so it is written once). Owner notifications are not
  contact events, and complaints are suppressions, not bounce events.

Mailboxes (`open_mailbox`): `maildir:///path` read with the stdlib `mailbox` module (a
processed message is renamed into `cur/` with the `S` flag, never deleted; messages already
flagged `S` are not read again), `imap://` or `imaps://user:password@host[:port]/FOLDER`
(stdlib imaplib: unseen messages, fetched with BODY.PEEK and flagged `\\Seen` once
processed). A message that cannot be read or classified is reported, left unflagged and
skipped; the others go on.
"""

from __future__ import annotations

import datetime as dt
import email
import email.header
import email.utils
import hashlib
import imaplib
import mailbox
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from flufl.bounce import all_failures
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from leadflow.campaigns.report_text import table
from leadflow.config.models import SoftBounceRule
from leadflow.errors import LeadflowError
from leadflow.messaging.suppression import ALL, normalize_email, suppress
from leadflow.warehouse.tables import EVENTS, OUTBOX

CLASSES = ("hard_bounce", "soft_bounce", "complaint", "auto_reply", "not_a_bounce")
COMPLAINT_FEEDBACK_TYPES = frozenset({"abuse", "fraud"})
SUPPRESSION_SOURCE = "bounce_mailbox"
MAX_TEXT = 1000  # longest diagnostic / header text kept


class MalformedMessage(LeadflowError):
    """The bytes are not a mail message at all."""


class MailboxError(LeadflowError):
    """The bounce mailbox cannot be opened or read."""


# --- classification -------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One bouncing or complaining address of a message."""

    email: str  # normalised
    kind: str  # hard | soft | complaint
    status: str | None = None  # enhanced status code, e.g. 5.1.1
    diagnostic: str | None = None


@dataclass(frozen=True)
class Classification:
    kind: str  # one of CLASSES
    failures: tuple[Failure, ...]
    detected_by: str  # arf, dsn, flufl.bounce, exchange_text, postfix_text, the auto-reply signal …
    original_message_ids: tuple[str, ...] = ()
    date: dt.datetime | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


def parse(raw: bytes) -> Message:
    """The message, or MalformedMessage when the bytes have no header at all."""
    message = email.message_from_bytes(raw)
    if not message.keys():
        raise MalformedMessage("not a mail message: no header lines")
    return message


def classify(raw: bytes) -> Classification:
    """What the message is (see the module docstring for the rules and their order)."""
    message = parse(raw)
    found = (
        _complaint(message)
        or _delivery_status(message)
        or _auto_reply(message)
        or _flufl(message)
        or _exchange_text(message)
        or _postfix_text(message)
        or Classification("not_a_bounce", (), "none")
    )
    return Classification(
        kind=found.kind,
        failures=found.failures,
        detected_by=found.detected_by,
        original_message_ids=_original_message_ids(message),
        date=_date(message),
        detail={
            "from": _clip(_header(message, "From")),
            "subject": _clip(_decoded(_header(message, "Subject"))),
            **found.detail,
        },
    )


def _bounce(failures: list[Failure], detected_by: str) -> Classification | None:
    """A hard or soft bounce of the failures (worst kind per address), None without any."""
    worst: dict[str, Failure] = {}
    for failure in failures:
        if failure.email not in worst or (
            failure.kind == "hard" and worst[failure.email].kind != "hard"
        ):
            worst[failure.email] = failure
    if not worst:
        return None
    kind = "hard_bounce" if any(f.kind == "hard" for f in worst.values()) else "soft_bounce"
    return Classification(kind, tuple(worst[e] for e in sorted(worst)), detected_by)


# Parts of the report itself: an attached original message is not descended into, so a
# forwarded bounce inside an ordinary mail stays an ordinary mail.
def _own_parts(message: Message) -> Iterator[Message]:
    yield message
    if message.get_content_type() == "message/rfc822":
        return
    if message.is_multipart():
        for part in message.get_payload():
            if isinstance(part, Message):
                yield from _own_parts(part)


def _embedded_headers(message: Message) -> list[Message]:
    """The original message(s) a report carries: attached messages and text/rfc822-headers."""
    found: list[Message] = []
    for part in _own_parts(message):
        if part is message:
            continue
        if part.get_content_type() == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                found.append(payload[0])
        elif part.get_content_type() == "text/rfc822-headers":
            found.append(email.message_from_string(_text(part)))
    return found


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return "" if value is None else " ".join(str(value).split())


ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+$")


def _address(value: str) -> str | None:
    """A bare address from `rfc822; a@b`, `<a@b>`, `Name <a@b>`; None when not one."""
    if ";" in value:
        address_type, _, value = value.partition(";")
        if address_type.strip().lower() != "rfc822":
            return None
    _, parsed = email.utils.parseaddr(value.strip())
    parsed = normalize_email(parsed)
    return parsed if ADDRESS.match(parsed) else None


def _clip(text: str | None) -> str | None:
    if not text:
        return None
    return " ".join(text.replace("\x00", "").split())[:MAX_TEXT] or None


# ARF ---------------------------------------------------------------------------------------


def _complaint(message: Message) -> Classification | None:
    report = next(
        (p for p in _own_parts(message) if p.get_content_type() == "message/feedback-report"),
        None,
    )
    if report is None:
        return None
    payload = report.get_payload()
    fields = payload[0] if isinstance(payload, list) and payload else email.message_from_string("")
    feedback_type = _header(fields, "Feedback-Type").lower()
    detail = {"feedback_type": feedback_type or None}
    if feedback_type not in COMPLAINT_FEEDBACK_TYPES:
        return Classification("not_a_bounce", (), "arf", detail=detail)
    redacted = fields.get("Redacted-Address") is not None
    addresses = [_address(v) for v in fields.get_all("Original-Rcpt-To", [])]
    if not any(addresses) and not redacted:
        for original in _embedded_headers(message):
            addresses += [
                _address(a) for _, a in email.utils.getaddresses(original.get_all("To", []))
            ]
    failures = tuple(
        Failure(a, "complaint", diagnostic=f"feedback-type {feedback_type}")
        for a in sorted({a for a in addresses if a})
    )
    return Classification("complaint", failures, "arf", detail={**detail, "redacted": redacted})


# RFC 3464 ----------------------------------------------------------------------------------

STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")


def _delivery_status(message: Message) -> Classification | None:
    failures: list[Failure] = []
    for part in _own_parts(message):
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks[1:] if isinstance(blocks, list) else []:
            failure = _recipient_failure(block)
            if failure is not None:
                failures.append(failure)
    return _bounce(failures, "dsn")


def _recipient_failure(block: Message) -> Failure | None:
    action = _header(block, "Action").lower()
    status_match = STATUS.search(_header(block, "Status"))
    status = status_match.group(0) if status_match else None
    if action == "failed":
        kind = "soft" if status_match and status_match.group(1) == "4" else "hard"
    elif action == "delayed":
        kind = "soft"
    else:
        return None
    address = _address(_header(block, "Original-Recipient")) or _address(
        _header(block, "Final-Recipient")
    )
    if address is None:
        return None
    return Failure(address, kind, status, _clip(_header(block, "Diagnostic-Code")))


# RFC 3834 ----------------------------------------------------------------------------------

AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation")
AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic|matische)?[ _-]?(reply|response|antwort|answer)"
    r"|out of (the )?office|away\b|on vacation|vacation\b|abwesen"
    r"|r[ée]ponse automatique|risposta automatica|respuesta autom[áa]tica|fuera de la oficina)",
    re.IGNORECASE,
)
MAIL_SYSTEM_SENDERS = frozenset({"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster"})


def _from_mail_system(message: Message) -> bool:
    """Sent by a mail system (a bounce), not by a person's mailbox (an auto-reply)."""
    _, sender = email.utils.parseaddr(_header(message, "From"))
    return sender.partition("@")[0].lower() in MAIL_SYSTEM_SENDERS


def _auto_reply(message: Message) -> Classification | None:
    signal = next((name for name in AUTO_REPLY_HEADERS if message.get(name) is not None), None)
    if signal is None and _header(message, "Precedence").lower() == "auto_reply":
        signal = "Precedence: auto_reply"
    auto_submitted = _header(message, "Auto-Submitted").lower()
    # Exim and Exchange mark their bounces auto-replied too: only a person's mailbox counts.
    if (
        signal is None
        and auto_submitted.startswith("auto-replied")
        and not _from_mail_system(message)
    ):
        signal = "Auto-Submitted: auto-replied"
    subject = _header(message, "Subject")
    if signal is None and AUTO_REPLY_SUBJECT.match(_decoded(subject)):
        signal = "subject"
    if signal is None:
        return None
    return Classification("auto_reply", (), signal)


def _decoded(header_value: str) -> str:
    parts = email.header.decode_header(header_value)
    return "".join(
        text.decode(charset or "ascii", errors="replace") if isinstance(text, bytes) else text
        for text, charset in parts
    )


# flufl.bounce and the formats it misses -------------------------------------------------------


def _flufl(message: Message) -> Classification | None:
    temporary, permanent = all_failures(message)
    failures = [
        Failure(address, kind)
        for kind, found in (("hard", permanent), ("soft", temporary))
        for raw in found
        if (address := _address(raw.decode("utf-8", errors="replace")))
    ]
    return _bounce(failures, "flufl.bounce")


SMTP_REPLY = re.compile(r"\b([45])\d\d\b(?:[ -]+(([45])\.\d{1,3}\.\d{1,3}))?")
EXCHANGE_FAILED = re.compile(r"delivery has failed to these recipients", re.IGNORECASE)
EXCHANGE_RECIPIENT = re.compile(
    r"^\s*(?P<address>[^\s@<>]+@[^\s@<>]+)\s*\n\s*Remote Server returned '(?P<reply>[^']*)'",
    re.IGNORECASE | re.MULTILINE,
)


def _reply_failure(address: str, reply: str) -> Failure | None:
    """Hard (5xx) or soft (4xx) by the SMTP reply (its enhanced status when it has one)."""
    found = SMTP_REPLY.search(reply)
    normalized = _address(address)
    if found is None or normalized is None:
        return None
    klass = found.group(3) or found.group(1)
    return Failure(normalized, "hard" if klass == "5" else "soft", found.group(2), _clip(reply))


def _plain_parts(message: Message) -> Iterator[Message]:
    """text/plain parts, and multiparts whose boundary is broken (their body is plain text)."""
    for part in _own_parts(message):
        broken = part.get_content_maintype() == "multipart" and not part.is_multipart()
        if broken or part.get_content_type() == "text/plain":
            yield part


def _exchange_text(message: Message) -> Classification | None:
    if not _from_mail_system(message):
        return None
    failures: list[Failure] = []
    for part in _plain_parts(message):
        text = _text(part)
        if EXCHANGE_FAILED.search(text):
            for match in EXCHANGE_RECIPIENT.finditer(text):
                failure = _reply_failure(match.group("address"), match.group("reply"))
                if failure is not None:
                    failures.append(failure)
    return _bounce(failures, "exchange_text")


POSTFIX_RECIPIENT = re.compile(
    r"^<(?P<address>[^>\s]+)>:(?P<reason>.*(?:\n[ \t]+.*)*)", re.MULTILINE
)


def _postfix_text(message: Message) -> Classification | None:
    if not _from_mail_system(message):
        return None
    failures: list[Failure] = []
    for part in _plain_parts(message):
        if _header(part, "Content-Description").lower() != "notification":
            continue
        for match in POSTFIX_RECIPIENT.finditer(_text(part)):
            failure = _reply_failure(match.group("address"), match.group("reason"))
            if failure is not None:
                failures.append(failure)
    return _bounce(failures, "postfix_text")


# what every message carries -------------------------------------------------------------------

MESSAGE_ID_LINE = re.compile(r"^[ \t>]*message-id:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
MAX_MESSAGE_IDS = 10


def _original_message_ids(message: Message) -> tuple[str, ...]:
    """Message-IDs of the original mail: embedded headers first, then quoted header lines."""
    own = _header(message, "Message-ID")
    candidates = [_header(original, "Message-ID") for original in _embedded_headers(message)]
    for part in _plain_parts(message):
        candidates += MESSAGE_ID_LINE.findall(_text(part))
    unique: list[str] = []
    for candidate in candidates:
        if candidate and candidate != own and candidate not in unique:
            unique.append(candidate)
    return tuple(unique[:MAX_MESSAGE_IDS])


def _date(message: Message) -> dt.datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(_header(message, "Date"))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


# --- recording ------------------------------------------------------------------------------

BOUNCE_MESSAGES = sa.table(
    "bounce_messages",
    sa.column("message_sha256", sa.Text()),
    sa.column("source", sa.Text()),
    sa.column("classified_as", sa.Text()),
    sa.column("recipients", sa.Integer()),
    sa.column("detail", postgresql.JSONB()),
    schema="ops",
)
BOUNCES = sa.table(
    "bounces",
    sa.column("message_sha256", sa.Text()),
    sa.column("email_normalized", sa.Text()),
    sa.column("kind", sa.Text()),
    sa.column("status_code", sa.Text()),
    sa.column("diagnostic", sa.Text()),
    sa.column("message_id", sa.Text()),
    sa.column("received_at", sa.DateTime(timezone=True)),
    schema="ops",
)


@dataclass(frozen=True)
class MessageOutcome:
    """What ingesting one message did."""

    classified_as: str | None  # None: seen before, nothing done
    suppressed: tuple[tuple[str, str], ...] = ()  # (address, reason) newly added
    events: int = 0

    @property
    def already_seen(self) -> bool:
        return self.classified_as is None


def ingest_message(
    connection: Connection,
    raw: bytes,
    source: str,
    rule: SoftBounceRule,
    now: dt.datetime,
) -> MessageOutcome:
    """Classify one message and record its effects, once per sha256 (see module docstring)."""
    sha256 = hashlib.sha256(raw).hexdigest()
    known = sa.select(BOUNCE_MESSAGES.c.message_sha256).where(
        BOUNCE_MESSAGES.c.message_sha256 == sha256
    )
    if connection.execute(known).first() is not None:
        return MessageOutcome(None)
    found = classify(raw)
    matters = found.kind in ("hard_bounce", "soft_bounce", "complaint")
    outbox = _outbox_row(connection, found.original_message_ids) if matters else None
    failures = _with_outbox_recipient(found, outbox)
    received_at = min(found.date, now) if found.date else now
    inserted = connection.execute(
        postgresql.insert(BOUNCE_MESSAGES)
        .values(
            message_sha256=sha256,
            source=source,
            classified_as=found.kind,
            recipients=len(failures),
            detail=_message_detail(found, outbox),
        )
        .on_conflict_do_nothing()
        .returning(BOUNCE_MESSAGES.c.message_sha256)
    ).first()
    if inserted is None:  # another ingest took it between our look and our insert
        return MessageOutcome(None)
    message_id = outbox["message_id"] if outbox else next(iter(found.original_message_ids), None)
    suppressed: list[tuple[str, str]] = []
    for failure in failures:
        connection.execute(
            sa.insert(BOUNCES).values(
                message_sha256=sha256,
                email_normalized=failure.email,
                kind=failure.kind,
                status_code=failure.status,
                diagnostic=failure.diagnostic,
                message_id=message_id,
                received_at=received_at,
            )
        )
        reason = _suppression_reason(connection, failure, rule)
        detail = {"message_sha256": sha256, "status": failure.status}
        # Scope `all`: a mailbox that does not exist, or a spam report, concerns every tenant.
        if reason and suppress(connection, failure.email, reason, SUPPRESSION_SOURCE, ALL, detail):
            suppressed.append((failure.email, reason))
    events = _bounce_event(connection, sha256, found.kind, outbox, received_at, failures)
    return MessageOutcome(found.kind, tuple(suppressed), events)


def _outbox_row(connection: Connection, message_ids: tuple[str, ...]) -> Mapping[str, Any] | None:
    """The outbox row of the first original Message-ID that names one of our mails."""
    if not message_ids:
        return None
    rows = connection.execute(
        sa.select(OUTBOX).where(OUTBOX.c.message_id.in_(message_ids))
    ).mappings()
    by_id = {row["message_id"]: row for row in rows}
    return next((by_id[m] for m in message_ids if m in by_id), None)


def _with_outbox_recipient(
    found: Classification, outbox: Mapping[str, Any] | None
) -> tuple[Failure, ...]:
    """A redacted complaint names nobody: the outbox row of the reported mail does."""
    if found.kind != "complaint" or found.failures or outbox is None:
        return found.failures
    address = _address(outbox["recipient_email"] or "")
    if address is None:
        return ()
    return (Failure(address, "complaint", diagnostic="recipient from the reported mail"),)


def _message_detail(found: Classification, outbox: Mapping[str, Any] | None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "detected_by": found.detected_by,
        "original_message_ids": list(found.original_message_ids),
        "outbox_id": outbox["outbox_id"] if outbox else None,
        **found.detail,
    }
    return {key: value for key, value in detail.items() if value not in (None, [], "")}


SOFT_BOUNCES_IN_A_WINDOW = sa.text(
    """
    select coalesce(max(in_window), 0) from (
        select (select count(*) from ops.bounces as earlier
                where earlier.email_normalized = later.email_normalized
                  and earlier.kind = 'soft'
                  and earlier.received_at > later.received_at - make_interval(days => :days)
                  and earlier.received_at <= later.received_at) as in_window
        from ops.bounces as later
        where later.email_normalized = :email and later.kind = 'soft'
    ) as windows
    """
)


def _suppression_reason(
    connection: Connection, failure: Failure, rule: SoftBounceRule
) -> str | None:
    if failure.kind == "hard":
        return "hard_bounce"
    if failure.kind == "complaint":
        return "complaint"
    most = connection.execute(
        SOFT_BOUNCES_IN_A_WINDOW, {"email": failure.email, "days": rule.within_days}
    ).scalar_one()
    return "soft_bounces" if most >= rule.max_soft_bounces else None


def _bounce_event(
    connection: Connection,
    sha256: str,
    kind: str,
    outbox: Mapping[str, Any] | None,
    received_at: dt.datetime,
    failures: tuple[Failure, ...],
) -> int:
    """One `email_bounced` event for a bounced campaign mail; 0 or 1 rows written."""
    if (
        outbox is None
        or outbox["kind"] != "campaign_mail"
        or kind not in ("hard_bounce", "soft_bounce")
    ):
        return 0
    statuses = sorted({f.status for f in failures if f.status})
    statement = (
        postgresql.insert(EVENTS)
        .values(
            event_id=f"bounce:{sha256}",
            contact_id=outbox["contact_id"],
            event_type="email_bounced",
            occurred_at=received_at,
            campaign_id=outbox["campaign_id"],
            step_id=outbox["step_id"],
            bounce_type="hard" if kind == "hard_bounce" else "soft",
            properties={
                "outbox_id": outbox["outbox_id"],
                "message_sha256": sha256,
                "status": statuses,
            },
        )
        .on_conflict_do_nothing()
        .returning(EVENTS.c.event_id)
    )
    return 0 if connection.execute(statement).first() is None else 1


# --- mailboxes --------------------------------------------------------------------------------


class BounceMailbox(Protocol):
    """Where bounces arrive: unread messages by key, and a way to mark one as processed."""

    name: str  # recorded as ops.bounce_messages.source; never contains a password

    def unread(self) -> Iterator[tuple[str, bytes | Exception]]:
        """(key, the message's bytes or the error reading them) for each unprocessed message."""
        ...

    def mark_processed(self, key: str) -> None: ...

    def close(self) -> None: ...


class MaildirMailbox:
    """A Maildir read with the stdlib `mailbox` module; processed = in cur/ with flag S."""

    def __init__(self, path: Path) -> None:
        if not all((path / sub).is_dir() for sub in ("new", "cur", "tmp")):
            raise MailboxError(f"{path} is not a Maildir (it needs new/, cur/ and tmp/ folders)")
        self.path = path
        self.name = f"maildir:{path}"
        self._box = mailbox.Maildir(path, factory=None, create=False)

    def _files(self) -> dict[str, Path]:
        """Each message's file by key (the file name up to the info part)."""
        files: dict[str, Path] = {}
        for sub in ("new", "cur"):
            for entry in (self.path / sub).iterdir():
                if not entry.name.startswith("."):
                    files[entry.name.split(self._box.colon)[0]] = entry
        return files

    @staticmethod
    def _flags(file: Path, colon: str) -> str:
        _, _, info = file.name.partition(colon)
        return info[2:] if info.startswith("2,") else ""

    def unread(self) -> Iterator[tuple[str, bytes | Exception]]:
        files = self._files()
        for key in sorted(self._box.iterkeys()):
            file = files.get(key)
            if file is None or "S" in self._flags(file, self._box.colon):  # None: a dot file
                continue
            try:
                yield key, self._box.get_bytes(key)
            except (OSError, KeyError) as error:
                yield key, error

    def mark_processed(self, key: str) -> None:
        """Rename the file into cur/ with the S flag added (its content untouched)."""
        file = self._files()[key]
        flags = "".join(sorted(set(self._flags(file, self._box.colon)) | {"S"}))
        file.rename(self.path / "cur" / f"{key}{self._box.colon}2,{flags}")

    def close(self) -> None:
        self._box.close()


class ImapMailbox:
    """An IMAP folder read with the stdlib imaplib: unseen messages; processed = \\Seen."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise MailboxError(
                f"not an IMAP URL: use imaps://user:password@host/INBOX ({parts.scheme}://…)"
            )
        self.folder = unquote(parts.path.lstrip("/")) or "INBOX"
        user = unquote(parts.username or "")
        self.name = f"{parts.scheme}://{user + '@' if user else ''}{parts.hostname}/{self.folder}"
        client = imaplib.IMAP4_SSL if parts.scheme == "imaps" else imaplib.IMAP4
        try:
            self._imap = client(
                parts.hostname, parts.port or (993 if parts.scheme == "imaps" else 143)
            )
            if user:
                self._imap.login(user, unquote(parts.password or ""))
            status, _ = self._imap.select(_quoted(self.folder))
        except (OSError, imaplib.IMAP4.error) as error:
            raise MailboxError(f"cannot open {self.name}: {error}") from None
        if status != "OK":
            raise MailboxError(f"cannot select folder {self.folder!r} on {self.name}")

    def unread(self) -> Iterator[tuple[str, bytes | Exception]]:
        status, data = self._imap.uid("SEARCH", "UNSEEN")
        if status != "OK":
            raise MailboxError(f"cannot search {self.name}: {data!r}")
        for uid in (data[0] or b"").split():
            key = uid.decode()
            status, fetched = self._imap.uid("FETCH", key, "(BODY.PEEK[])")
            body = next((item[1] for item in fetched if isinstance(item, tuple)), None)
            if status != "OK" or not isinstance(body, bytes):
                yield key, MailboxError(f"cannot fetch message {key} from {self.name}")
            else:
                yield key, body

    def mark_processed(self, key: str) -> None:
        self._imap.uid("STORE", key, "+FLAGS", "(\\Seen)")

    def close(self) -> None:
        try:
            self._imap.close()
            self._imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass  # the work is committed; a connection that is already gone is fine


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def open_mailbox(url: str) -> BounceMailbox:
    """`maildir:///path/to/Maildir`, `imap://…` or `imaps://user:password@host[:port]/FOLDER`."""
    scheme = url.partition("://")[0].lower()
    if scheme == "maildir":
        path = unquote(urlsplit(url).path)
        if not path:
            raise MailboxError(f"a maildir URL needs a path: maildir:///path (got {url!r})")
        return MaildirMailbox(Path(path))
    if scheme in ("imap", "imaps"):
        return ImapMailbox(url)
    raise MailboxError(
        "the bounce mailbox URL must start with maildir://, imap:// or imaps:// "
        f"(got {url.partition('://')[0] or url!r})"
    )


# --- ingest -----------------------------------------------------------------------------------


@dataclass
class IngestReport:
    """Per class counts of the new messages, suppressions added, and per message errors."""

    source: str
    classes: Counter[str] = field(default_factory=Counter)
    already_seen: int = 0
    suppressed: list[tuple[str, str]] = field(default_factory=list)
    events: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)

    def add(self, outcome: MessageOutcome) -> None:
        if outcome.already_seen:
            self.already_seen += 1
            return
        self.classes[outcome.classified_as or ""] += 1
        self.suppressed += outcome.suppressed
        self.events += outcome.events

    @property
    def suppressions(self) -> Counter[str]:
        return Counter(reason for _, reason in self.suppressed)

    def describe(self) -> str:
        new = sum(self.classes.values())
        parts = [
            f"bounces from {self.source}: {new} new message(s), {self.already_seen} seen before, "
            f"{len(self.errors)} error(s)",
            table(["class", "messages"], [(c, self.classes[c]) for c in CLASSES]),
            "",
            table(
                ["suppressions added", "addresses"],
                [(reason, n) for reason, n in sorted(self.suppressions.items())] or [("none", 0)],
            ),
            f"email_bounced events written: {self.events}",
        ]
        if self.errors:
            parts += ["", table(["message", "error"], self.errors)]
        return "\n".join(parts)


def ingest(
    engine: Engine,
    source: BounceMailbox,
    rule: SoftBounceRule,
    *,
    now: dt.datetime | None = None,
) -> IngestReport:
    """Ingest every unread message of the mailbox, each in its own transaction.

    A message that cannot be read, parsed or recorded is reported and stays unread for the
    next run; the others go on. Losing the warehouse connection stops the run.
    """
    now = now or dt.datetime.now(dt.UTC)
    report = IngestReport(source.name)
    for key, raw in source.unread():
        try:
            if isinstance(raw, Exception):
                raise raw
            with engine.begin() as connection:
                outcome = ingest_message(connection, raw, source.name, rule, now)
        except sa.exc.OperationalError:
            raise
        except Exception as error:  # one broken message must not stop the mailbox
            report.errors.append((key, f"{type(error).__name__}: {error}"))
            continue
        report.add(outcome)
        try:
            source.mark_processed(key)
        except (OSError, imaplib.IMAP4.error) as error:
            # recorded already: the next run finds its sha256 and only marks it
            report.errors.append((key, f"recorded, but not marked as processed: {error}"))
    return report
