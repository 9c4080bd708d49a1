"""Double opt-in: the confirmation request, its mail, and the confirmation (SPEC §2.1).

A capture form creates an `ops.opt_in_requests` row and mails its link
`<base_url>/confirm/<token>`. The token is 32 random bytes (URL-safe base64); only its
SHA-256 is stored, so the table alone cannot confirm anybody, and a guessed token hits
nothing. The link expires `company.tracking.double_opt_in_expiry_days` after the request.

Confirming (`confirm`), in one transaction, committed before the page is shown:
- the request gets `confirmed_at` (once: a second click finds it confirmed and changes
  nothing, but still shows the download),
- `ops.consents` gets the proof: contact, address, time, IP, user agent, consent text
  version, source,
- `raw.contacts` gets consent_status `confirmed` and `consent_at`,
- an `unsubscribe` suppression of the address is lifted (`suppression.resubscribe`): a
  confirmed double opt-in is the person asking for mail again. Hard bounces, complaints and
  erasures stay (that module's rule).
An expired or unknown token changes nothing.

The mail is a service mail that only asks for the confirmation: no advertising, no tracking
pixel, no tracked links, no unsubscribe header (there is nothing to unsubscribe from yet).
It is sent with plain smtplib (leadflow.messaging.delivery.SmtpConnection) through the
server in the environment variable named by `company.delivery.smtp_url_env`, from the
global tenant's sender.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadflow.config.loader import Config
from leadflow.messaging import suppression
from leadflow.messaging.delivery import DeliveryError, SmtpConnection, smtp_server_from_env
from leadflow.messaging.suppression import normalize_email, reasons

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def confirm_url(config: Config, token: str) -> str:
    return f"{config.company.tracking.base_url.rstrip('/')}/confirm/{token}"


@dataclass(frozen=True)
class OptInRequest:
    request_id: int
    token: str
    expires_at: dt.datetime


# Anyone can submit the form for any address, so a confirmation mail goes only where mail
# may go at all (not to hard-bounced, complaining or erased addresses: an unsubscribe does
# not stop it, confirming is how a person comes back), and at most once per address in
# CONFIRMATION_INTERVAL; the form answers the same either way, so it tells nobody which.
NEVER_MAILED = frozenset({"hard_bounce", "soft_bounces", "complaint", "erased"})
CONFIRMATION_INTERVAL = dt.timedelta(minutes=10)


def confirmation_blocked(connection: Connection, email: str, now: dt.datetime) -> str | None:
    """Why no confirmation mail may go to `email` now (None: it may)."""
    blocked = sorted(NEVER_MAILED.intersection(reasons(connection, email)))
    if blocked:
        return f"address suppressed ({', '.join(blocked)})"
    recent = connection.execute(
        sa.text(
            "select count(*) from ops.opt_in_requests "
            "where lower(btrim(email)) = :email and requested_at > :since"
        ),
        {"email": normalize_email(email), "since": now - CONFIRMATION_INTERVAL},
    ).scalar_one()
    if recent:
        return f"a confirmation mail went to this address less than {CONFIRMATION_INTERVAL} ago"
    return None


def create_request(
    connection: Connection,
    config: Config,
    *,
    contact_id: str,
    email: str,
    asset_id: str | None,
    consent_text_version: str,
    source: str,
    visitor_id: str | None,
    ip: str | None,
    user_agent: str | None,
    now: dt.datetime,
) -> OptInRequest:
    """A new confirmation request (in the caller's transaction) and its token."""
    token = new_token()
    expires_at = now + dt.timedelta(days=config.company.tracking.double_opt_in_expiry_days)
    request_id = connection.execute(
        sa.text(
            "insert into ops.opt_in_requests (token_sha256, contact_id, email, asset_id, "
            "consent_text_version, source, visitor_id, requested_at, requested_ip, "
            "requested_user_agent, expires_at) values (:hash, :contact_id, :email, :asset_id, "
            ":version, :source, :visitor_id, :now, cast(:ip as inet), :user_agent, :expires_at) "
            "returning request_id"
        ),
        {
            "hash": token_hash(token),
            "contact_id": contact_id,
            "email": email,
            "asset_id": asset_id,
            "version": consent_text_version,
            "source": source,
            "visitor_id": visitor_id,
            "now": now,
            "ip": ip,
            "user_agent": user_agent,
            "expires_at": expires_at,
        },
    ).scalar_one()
    return OptInRequest(request_id, token, expires_at)


# --- confirming --------------------------------------------------------------------------


@dataclass(frozen=True)
class Confirmation:
    """The outcome of a click on a confirmation link."""

    status: str  # 'confirmed' | 'already_confirmed' | 'expired' | 'unknown'
    request_id: int | None = None
    contact_id: str | None = None
    email: str | None = None
    asset_id: str | None = None
    visitor_id: str | None = None
    confirmed_at: dt.datetime | None = None

    @property
    def valid(self) -> bool:
        return self.status in ("confirmed", "already_confirmed")


def confirm(
    connection: Connection,
    token: str,
    *,
    ip: str | None,
    user_agent: str | None,
    now: dt.datetime,
) -> Confirmation:
    """Confirm the request of `token` (module docstring), in the caller's transaction."""
    request = (
        connection.execute(
            sa.text(
                "select request_id, contact_id, email, asset_id, visitor_id, source, "
                "consent_text_version, expires_at, confirmed_at from ops.opt_in_requests "
                "where token_sha256 = :hash for update"
            ),
            {"hash": token_hash(token)},
        )
        .mappings()
        .first()
    )
    if request is None:
        return Confirmation("unknown")
    known = {
        "request_id": request["request_id"],
        "contact_id": request["contact_id"],
        "email": request["email"],
        "asset_id": request["asset_id"],
        "visitor_id": request["visitor_id"],
    }
    if request["confirmed_at"] is not None:
        return Confirmation("already_confirmed", confirmed_at=request["confirmed_at"], **known)
    if now >= request["expires_at"]:
        return Confirmation("expired", **known)
    contact_exists = connection.execute(
        sa.text(
            "update raw.contacts set consent_status = 'confirmed', consent_at = :now, "
            "updated_at = greatest(updated_at, :now) where contact_id = :contact_id "
            "returning contact_id"
        ),
        {"now": now, "contact_id": request["contact_id"]},
    ).first()
    if contact_exists is None:
        # Erased since the request: there is nobody to record consent for.
        return Confirmation("unknown")
    connection.execute(
        sa.text("update ops.opt_in_requests set confirmed_at = :now where request_id = :id"),
        {"now": now, "id": request["request_id"]},
    )
    connection.execute(
        sa.text(
            "insert into ops.consents (contact_id, email, consented_at, ip, user_agent, "
            "consent_text_version, source, request_id) values (:contact_id, :email, :now, "
            "cast(:ip as inet), :user_agent, :version, :source, :request_id)"
        ),
        {
            "contact_id": request["contact_id"],
            "email": request["email"],
            "now": now,
            "ip": ip,
            "user_agent": user_agent,
            "version": request["consent_text_version"],
            "source": request["source"],
            "request_id": request["request_id"],
        },
    )
    suppression.resubscribe(connection, request["email"])
    return Confirmation("confirmed", confirmed_at=now, **known)


# --- the mail ----------------------------------------------------------------------------

# Subject, greeting, request, link label, expiry note, "not you?" — nothing else.
TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "subject": "Bitte bestätigen Sie Ihre E-Mail-Adresse",
        "body": (
            "Guten Tag,\n\nbitte bestätigen Sie Ihre Anmeldung mit einem Klick auf diesen "
            "Link:\n\n{url}\n\nDer Link ist bis {expires} gültig. Wenn Sie sich nicht "
            "angemeldet haben, ignorieren Sie diese E-Mail; Sie erhalten dann keine weiteren "
            "Nachrichten.\n\n{sender}\n"
        ),
    },
    "en": {
        "subject": "Please confirm your e-mail address",
        "body": (
            "Hello,\n\nplease confirm your sign-up by clicking this link:\n\n{url}\n\n"
            "The link is valid until {expires}. If you did not sign up, ignore this e-mail; "
            "you will not receive any further messages.\n\n{sender}\n"
        ),
    },
    "fr": {
        "subject": "Veuillez confirmer votre adresse e-mail",
        "body": (
            "Bonjour,\n\nveuillez confirmer votre inscription en cliquant sur ce lien :\n\n"
            "{url}\n\nLe lien est valable jusqu'au {expires}. Si vous ne vous êtes pas "
            "inscrit, ignorez cet e-mail ; vous ne recevrez aucun autre message.\n\n{sender}\n"
        ),
    },
    "it": {
        "subject": "Conferma il tuo indirizzo e-mail",
        "body": (
            "Buongiorno,\n\nconferma la tua iscrizione facendo clic su questo link:\n\n{url}"
            "\n\nIl link è valido fino al {expires}. Se non ti sei iscritto, ignora questa "
            "e-mail; non riceverai altri messaggi.\n\n{sender}\n"
        ),
    },
    "es": {
        "subject": "Confirme su dirección de correo electrónico",
        "body": (
            "Hola:\n\nconfirme su registro haciendo clic en este enlace:\n\n{url}\n\n"
            "El enlace es válido hasta el {expires}. Si no se ha registrado, ignore este "
            "correo; no recibirá más mensajes.\n\n{sender}\n"
        ),
    },
}
FALLBACK_LANGUAGE = "en"


def confirmation_message(
    config: Config, *, recipient: str, token: str, expires_at: dt.datetime, language: str | None
) -> EmailMessage:
    """The double-opt-in mail: plain text, the confirmation link, nothing else."""
    sender = config.global_tenant.sender
    texts = TEXTS.get(language or "", TEXTS[FALLBACK_LANGUAGE])
    message = EmailMessage()
    message["From"] = formataddr((sender.name, sender.email))
    message["To"] = recipient
    message["Subject"] = texts["subject"]
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid(domain=sender.email.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"
    if language in TEXTS:
        message["Content-Language"] = language
    message.set_content(
        texts["body"].format(
            url=confirm_url(config, token),
            expires=expires_at.strftime("%Y-%m-%d %H:%M UTC"),
            sender=config.company.legal_name or config.company.name,
        )
    )
    return message


class ConfirmationMailFailed(DeliveryError):
    """The confirmation mail could not be handed to the SMTP server."""


def send_confirmation(config: Config, message: EmailMessage) -> None:
    """Hand the mail to the configured SMTP server; ConfirmationMailFailed unless accepted."""
    server = smtp_server_from_env(config)
    sender = config.global_tenant.sender.email
    with SmtpConnection(server) as smtp:
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        result = smtp.send(sender, str(message["To"]), data)
    if result.outcome != "sent":
        raise ConfirmationMailFailed(
            f"the SMTP server did not accept the confirmation mail ({result.describe()})"
        )
