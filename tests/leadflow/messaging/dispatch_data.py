"""Test data for the dispatcher: contacts, outbox rows, a real composer, and an SMTP server
on loopback that answers what a test scripts (4xx, 5xx, a connection that breaks in DATA).

Contacts live in raw.contacts (address, consent) and in `public.test_facts` standing in for
marts.dim_contacts (tenant, customer status): `RELATIONS` points the dispatcher there.
The test configuration is the example company's; its tenants `hq` (Europe/Berlin, Mon–Fri
08:00–18:00) and `fr` (Europe/Paris, Mon–Fri 09:00–17:30) both allow the existing-customer
exemption. `NOW` is Wednesday 2026-11-25 10:00 UTC, inside both windows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

import sqlalchemy as sa
from aiosmtpd.smtp import SMTP, Envelope, Session
from itsdangerous import URLSafeSerializer
from sqlalchemy.engine import Engine

from leadflow.config import Config, load_config
from leadflow.messaging.dispatch import ComposedMessage
from leadflow.messaging.eligibility import ContactRelations
from leadflow.messaging.smtp_sink import _Controller
from leadflow.paths import PROJECT_ROOT
from tests.leadflow.segments.data import FACTS_TABLE, create_facts_table

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
RELATIONS = ContactRelations(raw_contacts="raw.contacts", dim_contacts=f"public.{FACTS_TABLE}")
_enrolments = itertools.count(1)


def example_config() -> Config:
    return load_config(PROJECT_ROOT / "include" / "config")


# --- contacts and outbox rows ------------------------------------------------------------


def create_pool(engine: Engine) -> None:
    with engine.begin() as connection:
        create_facts_table(connection)


def add_contacts(engine: Engine, contacts: Iterable[dict[str, Any]]) -> None:
    """Contacts: contact_id, and optionally email, consent_status, customer_status,
    tenant_code, first_name, language (defaults: confirmed lead of hq, <id>@example.com)."""
    rows = [
        {
            "email": f"{c['contact_id']}@example.com",
            "consent_status": "confirmed",
            "customer_status": "lead",
            "tenant_code": "hq",
            "first_name": c["contact_id"].capitalize(),
            "language": "de",
            **c,
        }
        for c in contacts
    ]
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "insert into raw.contacts (contact_id, email, consent_status, first_name, "
                "language) values (:contact_id, :email, :consent_status, :first_name, :language)"
            ),
            rows,
        )
        connection.execute(
            sa.text(
                f"insert into public.{FACTS_TABLE} (contact_id, email, tenant_code, "
                "customer_status, consent_status, first_name, language) values (:contact_id, "
                ":email, :tenant_code, :customer_status, :consent_status, :first_name, :language)"
            ),
            rows,
        )


def add_outbox(engine: Engine, rows: Iterable[dict[str, Any]]) -> list[int]:
    """Outbox rows (contact_id required; a pending marketing campaign mail of hq due at NOW
    by default); their outbox ids in order."""
    full = []
    for row in rows:
        full.append(
            {
                "kind": "campaign_mail",
                "campaign_id": "newsletter",
                "step_id": "send_1",
                "enrolment_id": next(_enrolments),
                "step_seq": 1,
                "tenant_code": "hq",
                "message": "welcome",
                "category": "marketing",
                "recipient_email": None,
                "requested_at": NOW,
                "scheduled_at": NOW,
                "status": "pending",
                "sent_at": None,
                **row,
            }
        )
    with engine.begin() as connection:
        connection.execute(sa.insert(OUTBOX), full)
        ids = connection.execute(
            sa.text(
                "select enrolment_id, outbox_id from ops.outbox where enrolment_id = any(:ids)"
            ),
            {"ids": [row["enrolment_id"] for row in full]},
        )
        by_enrolment = dict(ids.all())
    return [by_enrolment[row["enrolment_id"]] for row in full]


OUTBOX = sa.table(
    "outbox",
    *map(
        sa.column,
        [
            "kind",
            "campaign_id",
            "step_id",
            "enrolment_id",
            "step_seq",
            "contact_id",
            "tenant_code",
            "message",
            "category",
            "recipient_email",
            "requested_at",
            "scheduled_at",
            "status",
            "sent_at",
        ],
    ),
    schema="ops",
)


def outbox(engine: Engine, columns: str = "outbox_id, status, status_reason") -> list[tuple]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.text(f"select {columns} from ops.outbox order by outbox_id")
            )
        ]


def statuses(engine: Engine) -> Counter[str]:
    return Counter(status for _id, status, _reason in outbox(engine))


def suppress(engine: Engine, email: str, reason: str, scope: str = "all") -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "insert into ops.suppressions (email_normalized, scope, reason, source) "
                "values (:email, :scope, :reason, 'test')"
            ),
            {"email": email.strip().lower(), "scope": scope, "reason": reason},
        )


# --- composing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    link_id: str
    url: str
    tag: str | None = None


def compose(row: dict[str, Any], contact: dict[str, Any]) -> ComposedMessage:
    """A personalised two-part mail with one tracked link (what a renderer produces)."""
    name = contact.get("first_name") or "Kunde"
    link = Link(secrets.token_urlsafe(12), f"https://shop.example/{row['message']}", "cta")
    message = EmailMessage()
    message["Subject"] = f"{row['message']}: Hallo {name}"
    message.set_content(f"Hallo {name},\n\nneu bei uns: {link.url}\n")
    message.add_alternative(
        f"<p>Hallo {name},</p><p>neu bei uns: <a href='{link.url}'>hier</a></p>", subtype="html"
    )
    return ComposedMessage(message, contact.get("language") or "de", [link])


def unsubscribe_url_for(config: Config):
    """A signed one-click unsubscribe URL on the tracking base URL."""
    signer = URLSafeSerializer("test-secret", salt="unsubscribe")
    base = config.company.tracking.base_url.rstrip("/")

    def url(outbox_id: int, contact_id: str) -> str:
        return f"{base}/u/{signer.dumps({'o': outbox_id, 'c': contact_id})}"

    return url


# --- an SMTP server that answers as scripted ---------------------------------------------


@dataclass
class ScriptedHandler:
    """aiosmtpd handler keeping messages in memory. `script[recipient]` is a list of answers
    for the next DATA of that recipient: an SMTP reply ('451 4.3.0 later'), or 'drop' (take
    the message, then close the connection without answering)."""

    script: dict[str, list[str]] = field(default_factory=dict)
    received: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    sessions: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self._lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        recipient = envelope.rcpt_tos[0]
        with self._lock:
            answers = self.script.get(recipient)
            answer = answers.pop(0) if answers else "250 OK queued"
            if answer == "drop" or answer.startswith("2"):
                self.received.append(envelope.original_content or b"")
                self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if answer == "drop":
            server.transport.close()
            await asyncio.sleep(0)
            return "250 OK (never seen)"
        return answer

    def messages(self) -> list[EmailMessage]:
        parser = BytesParser(policy=default_policy)
        return [parser.parsebytes(data.replace(b"\r\n", b"\n")) for data in list(self.received)]  # type: ignore[misc]

    def message_ids(self) -> Counter[str]:
        return Counter(message["Message-ID"] for message in self.messages())


@contextmanager
def scripted_smtp(
    script: dict[str, list[str]] | None = None,
) -> Iterator[tuple[str, ScriptedHandler]]:
    """(smtp URL, handler) of a running scripted server on a free loopback port."""
    handler = ScriptedHandler(script=dict(script or {}))
    controller = _Controller(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", handler
    finally:
        controller.stop()
