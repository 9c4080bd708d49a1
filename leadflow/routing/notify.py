"""Owner notifications: one mail per owner and routing batch, listing their new leads.

Routing queues the notifications (`ops.routing_notifications`, `sent_at` NULL) in the same
transaction as the assignments; `send_pending_notifications` sends every pending one and
marks it sent. So a crash after routing and before (or during) mailing loses nothing: the
next call sends what is still pending, and nobody is routed again.

Each notification is taken with `FOR UPDATE SKIP LOCKED` and marked sent in the same
transaction that sends it, so concurrent senders never send one twice. The one window left is
a crash after the server accepted the mail and before the commit: the notification is then
sent again on resume, with the same Message-ID (at least once: for an internal notification
a duplicate is better than a lost lead).

Mail goes out with yagmail (the library the users named). The server (`SmtpSettings.from_env`):
- `LEADFLOW_SMTP_HOST` / `LEADFLOW_SMTP_PORT` when either is set: that server, without TLS or
  login (a relay on a trusted network, or a local sink);
- else the campaign mail's SMTP URL (the variable `company.delivery.smtp_url_env`), with what
  it says: TLS (`smtps://`, `starttls=true`) with the certificate verified (`cafile`), and a
  login as the URL's user;
- else 127.0.0.1:8025, where `leadflow smtp-sink` listens.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import html
import os
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from email.mime.text import MIMEText
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadflow.config.loader import Config
from leadflow.errors import LeadflowError
from leadflow.messaging.delivery import SmtpServer, parse_smtp_url, smtp_url_from_env

DEFAULT_SMTP_HOST = "127.0.0.1"
DEFAULT_SMTP_PORT = 8025
SENDER_NAME = "leadflow lead routing"


class NotificationError(LeadflowError):
    """A notification could not be sent; it stays pending and is sent by the next call."""


class SmtpSettings(SmtpServer):
    """The server notifications go to: an `SmtpServer` (host and port, and what an SMTP URL
    adds: TLS, login, timeout, CA file)."""

    @classmethod
    def from_env(cls, config: Config | None = None) -> SmtpSettings:
        """LEADFLOW_SMTP_HOST / LEADFLOW_SMTP_PORT if set, else the campaign mail's SMTP URL
        (with `config`), else 127.0.0.1:8025."""
        host = os.environ.get("LEADFLOW_SMTP_HOST", "").strip()
        port_text = os.environ.get("LEADFLOW_SMTP_PORT", "").strip()
        url = smtp_url_from_env(config) if config else None
        if not (host or port_text) and url:
            return cls(**dataclasses.asdict(parse_smtp_url(url)))
        port_text = port_text or str(DEFAULT_SMTP_PORT)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise LeadflowError(f"LEADFLOW_SMTP_PORT must be a port number, got {port_text!r}")
        return cls(host=host or DEFAULT_SMTP_HOST, port=int(port_text))

    def __str__(self) -> str:
        """host:port for a plain server, else the URL without its password."""
        if self.ssl or self.starttls or self.username:
            return super().__str__()
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Notification:
    batch_id: int
    owner_email: str
    owner_name: str
    message_id: str
    as_of: dt.date
    leads: list[dict[str, Any]]

    @property
    def subject(self) -> str:
        count = len(self.leads)
        return (
            f"{count} new lead{'s' if count != 1 else ''} for you (routing batch {self.batch_id})"
        )


def send_pending_notifications(
    engine: Engine, config: Config, smtp: SmtpSettings | None = None
) -> list[Notification]:
    """Send every pending notification, oldest batch first; the ones sent.

    Raises NotificationError at the first one the server does not take (it stays pending,
    with the error recorded).
    """
    smtp = smtp or SmtpSettings.from_env(config)
    sent: list[Notification] = []
    while True:
        failure: Exception | None = None
        with engine.begin() as connection:
            notification = _next_pending(connection)
            if notification is None:
                return sent
            try:
                deliver(notification, config, smtp)
            except (OSError, smtplib.SMTPException, NotificationError) as error:
                failure = error
                _record_failure(connection, notification, error)
            else:
                _record_sent(connection, notification)
                sent.append(notification)
        if failure is not None:
            pending = pending_notifications(engine)
            raise NotificationError(
                f"could not send the routing notification of batch {notification.batch_id} "
                f"to {notification.owner_email} via SMTP {smtp}: {_reason(failure)}; "
                f"{pending} notification(s) pending, sent by the next `leadflow route` "
                "(nobody is routed again)"
            ) from failure


def pending_notifications(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("select count(*) from ops.routing_notifications where sent_at is null")
        ).scalar_one()


def _next_pending(connection: Connection) -> Notification | None:
    row = connection.execute(
        sa.text(
            "select notification.batch_id, notification.owner_email, notification.owner_name, "
            "notification.message_id, batch.as_of "
            "from ops.routing_notifications as notification "
            "join ops.routing_batches as batch on batch.batch_id = notification.batch_id "
            "where notification.sent_at is null "
            "order by notification.batch_id, notification.owner_email "
            "limit 1 for update of notification skip locked"
        )
    ).one_or_none()
    if row is None:
        return None
    leads = connection.execute(
        sa.text(
            "select contact_id, team_id, lead from ops.lead_assignments "
            "where batch_id = :batch_id and owner_email = :owner_email order by batch_position"
        ),
        {"batch_id": row.batch_id, "owner_email": row.owner_email},
    )
    return Notification(
        batch_id=row.batch_id,
        owner_email=row.owner_email,
        owner_name=row.owner_name,
        message_id=row.message_id,
        as_of=row.as_of,
        leads=[
            {"contact_id": lead.contact_id, "team_id": lead.team_id, **lead.lead} for lead in leads
        ],
    )


def _record_sent(connection: Connection, notification: Notification) -> None:
    connection.execute(
        sa.text(
            "update ops.routing_notifications set sent_at = now(), attempts = attempts + 1, "
            "last_error = null where batch_id = :batch_id and owner_email = :owner_email"
        ),
        {"batch_id": notification.batch_id, "owner_email": notification.owner_email},
    )


def _record_failure(connection: Connection, notification: Notification, error: Exception) -> None:
    connection.execute(
        sa.text(
            "update ops.routing_notifications set attempts = attempts + 1, last_error = :error "
            "where batch_id = :batch_id and owner_email = :owner_email"
        ),
        {
            "batch_id": notification.batch_id,
            "owner_email": notification.owner_email,
            "error": _reason(error),
        },
    )


def _reason(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# --- the mail ----------------------------------------------------------------------------


def deliver(notification: Notification, config: Config, smtp: SmtpSettings) -> None:
    """Send one notification with yagmail; raises if the server does not take it.

    yagmail builds the message (addresses, Message-ID, HTML part) and holds the connection.
    Its text part would be the HTML source, so that part is replaced by a real plain-text
    rendering before sending.
    """
    import yagmail  # only senders pay for the import

    sender = config.global_tenant.sender.email
    # yagmail 0.16: smtp_skip_login needs a `user` (the sender), else it invents one;
    # message_id goes as its own argument (in `headers` it would be duplicated).
    with yagmail.SMTP(
        user={sender: SENDER_NAME},
        host=smtp.host,
        port=smtp.port,
        smtp_skip_login=True,  # yagmail would log in as the sender; the relay's user is another
        timeout=smtp.timeout,
        **_tls_options(smtp),
    ) as client:
        recipients, prepared = client.prepare_send(
            to=notification.owner_email,
            subject=notification.subject,
            contents=[render_html(notification)],
            headers={"X-Leadflow-Routing-Batch": str(notification.batch_id)},
            prettify_html=False,
            message_id=notification.message_id,
        )
        message = with_text_part(prepared, render_text(notification))
        client.login()  # connects, and starts TLS when asked
        if smtp.username:
            client.smtp.login(smtp.username, smtp.password or "")
        refused = client.smtp.sendmail(client.user, recipients, message)
    if refused:
        raise NotificationError(f"the server refused recipients: {refused}")


def _tls_options(smtp: SmtpServer) -> dict[str, Any]:
    """yagmail's TLS arguments for `smtp`, with a context that verifies the certificate:
    yagmail's own `smtp_starttls=True` uses smtplib's default, which verifies nothing."""
    if smtp.ssl:
        return {"smtp_ssl": True, "smtp_starttls": False, "context": smtp.tls_context()}
    if smtp.starttls:
        return {"smtp_ssl": False, "smtp_starttls": {"context": smtp.tls_context()}}
    return {"smtp_ssl": False, "smtp_starttls": False}


def with_text_part(prepared: str, text: str) -> str:
    """The message `prepared` with its text/plain alternative replaced by `text`."""
    message = email.message_from_string(prepared)
    for part in message.walk():
        if part.get_content_type() != "multipart/alternative":
            continue
        alternatives = part.get_payload()
        for index, alternative in enumerate(alternatives):
            if alternative.get_content_type() == "text/plain":
                alternatives[index] = MIMEText(text, "plain", "utf-8")
    return message.as_string()


def render_text(notification: Notification) -> str:
    """The plain-text alternative: the same leads and reasons, one block per lead."""
    count = len(notification.leads)
    lines = [
        f"Hello {notification.owner_name},",
        "",
        f"leadflow routed {count} new marketing-qualified lead{'s' if count != 1 else ''} to"
        f" you (nightly run {notification.as_of}, routing batch {notification.batch_id}):",
        "",
    ]
    for number, lead in enumerate(notification.leads, start=1):
        name = " ".join(p for p in (lead.get("first_name"), lead.get("last_name")) if p)
        lines += [
            f"{number}. {name or lead['contact_id']} <{lead.get('email') or ''}>"
            f" ({lead['contact_id']})",
            f"   Company: {lead.get('account_name') or '-'}, {lead.get('country') or '-'}",
            f"   Cell {lead.get('matrix_cell') or '-'}, profile "
            f"{_score(lead.get('profile_score'))}, activity {_score(lead.get('activity_score'))}",
            f"   Why: {why(lead)}",
            "",
        ]
    lines.append("The assignment is on its way to the CRM as well.")
    lines.append("Scores and cells: leadflow explain CONTACT")
    return "\n".join(lines) + "\n"


def render_html(notification: Notification) -> str:
    """The mail body: a greeting and a table of the leads with why each was routed.

    One line of HTML: yagmail turns newlines of a text part into <br>.
    """
    count = len(notification.leads)
    rows = "".join(_lead_row(lead) for lead in notification.leads)
    header = "".join(
        f"<th align='left'>{title}</th>"
        for title in ("Lead", "Company", "Country", "Cell", "Profile", "Activity", "Why")
    )
    return "".join(
        [
            f"<p>Hello {_e(notification.owner_name)},</p>",
            f"<p>leadflow routed {count} new marketing-qualified lead{'s' if count != 1 else ''}"
            f" to you (nightly run {notification.as_of}, routing batch "
            f"{notification.batch_id}):</p>",
            f"<table border='1' cellpadding='4' cellspacing='0'><tr>{header}</tr>{rows}</table>",
            "<p>The assignment is on its way to the CRM as well. Scores and cells: see "
            "<code>leadflow explain CONTACT</code>.</p>",
        ]
    )


def _lead_row(lead: dict[str, Any]) -> str:
    name = " ".join(part for part in (lead.get("first_name"), lead.get("last_name")) if part)
    cells = [
        f"{_e(name or lead['contact_id'])}<br><small>{_e(lead.get('email') or '')} "
        f"({_e(lead['contact_id'])})</small>",
        _e(lead.get("account_name") or "-"),
        _e(lead.get("country") or "-"),
        _e(lead.get("matrix_cell") or "-"),
        _score(lead.get("profile_score")),
        _score(lead.get("activity_score")),
        _e(why(lead)),
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def why(lead: dict[str, Any]) -> str:
    """Why this lead reached this owner: MQL cell, persona, the routing rule and team."""
    parts = [f"MQL in cell {lead.get('matrix_cell') or '?'}"]
    if lead.get("best_persona"):
        parts.append(f"persona {lead['best_persona']}")
    rule = f"rule {lead.get('rule_id')}"
    if lead.get("rule_description"):
        rule += f" ({lead['rule_description']})"
    parts.append(f"{rule} → team {lead.get('team_name') or lead.get('team_id')}")
    return "; ".join(parts)


def _score(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def notifications_of_batch(engine: Engine, batch_id: int) -> Sequence[dict[str, Any]]:
    """The batch's notifications (owner, leads, sent_at): for reports and tests."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "select owner_email, owner_name, leads, message_id, attempts, last_error, sent_at "
                "from ops.routing_notifications where batch_id = :batch_id order by owner_email"
            ),
            {"batch_id": batch_id},
        )
        return [dict(row._mapping) for row in rows]
