"""SMTP delivery for the bulk path: one reused connection per worker, a shared rate limit.

    server = smtp_server_from_env(config)            # the URL in $LEADFLOW_SMTP_URL
    limiter = RateLimiter(per_minute=600)
    with SmtpConnection(server) as smtp:             # connects on the first send
        limiter.acquire()
        result = smtp.send("info@x.example", "anna@y.example", message_bytes)
        result.outcome                               # 'sent' | 'temporary' | 'permanent'
                                                     # | 'ambiguous'

SMTP URL: `smtp://[user[:password]@]host[:port][?starttls=true&timeout=30&cafile=/ca.pem]`
(port 25 by default; STARTTLS only when asked), `smtps://...` for TLS from the first byte
(port 465). User and password are percent-decoded. The server's certificate is always
verified (chain and host name): against the system's CAs, or with `cafile` against the CA
certificates in that PEM file instead (a relay with a certificate of an internal CA).

A server that cannot be used at all raises `SmtpUnavailable` naming why: unreachable, no
STARTTLS offered, an untrusted certificate, a refused login, or a server that requires TLS or
a login the URL does not give (a 530 answer to MAIL FROM). None of these is a verdict on a
message: the caller hands its rows back.

Outcomes of one message (exactly what the dispatcher records):
- `sent`: the server answered 250 to the end of DATA.
- `temporary`: a 4xx answer to MAIL, RCPT or DATA; the message did not leave. Retried later.
- `permanent`: a 5xx answer (or any other non-4xx refusal); the message did not leave.
- `ambiguous`: the connection broke after the message data was sent and before the
  server's answer arrived. The server may or may not have taken it; only a human can tell.
A connection that breaks *before* DATA (e.g. the server closed an idle reused connection)
is opened again and the message sent on it: nothing had left. When the server cannot be
reached at all, `send` raises `SmtpUnavailable` and the caller hands its rows back.

The transaction is driven step by step (MAIL, RCPT, DATA) rather than with
`smtplib.SMTP.sendmail`, because only that tells a break before DATA (safe to resend) from
one during DATA (ambiguous).

Why smtplib and not yagmail here (docs/decisions.md): yagmail opens a connection and logs in
on every `send()`, writes the HTML source as the text part and duplicates a Message-ID given
in its headers; the bulk path needs one connection for thousands of mails and a Message-ID
stored before the send. Owner notifications (leadflow.routing.notify) still use yagmail.
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from leadflow.config.loader import Config
from leadflow.errors import LeadflowError

DEFAULT_TIMEOUT_SECONDS = 30.0
SCHEMES = {"smtp": 25, "smtps": 465}
OPTIONS = ("starttls", "timeout", "cafile")
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}

Outcome = Literal["sent", "temporary", "permanent", "ambiguous"]


class DeliveryError(LeadflowError):
    """Mail cannot be delivered at all: no SMTP server configured or reachable."""


class SmtpUnavailable(DeliveryError):
    """The SMTP server cannot be reached (connect, TLS or login failed twice)."""


# --- the server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to connect, parsed from an SMTP URL."""

    host: str
    port: int
    ssl: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    cafile: str | None = None

    def __str__(self) -> str:
        """The URL without the password (for messages and logs)."""
        user = f"{self.username}@" if self.username else ""
        scheme = "smtps" if self.ssl else "smtp"
        options = ["starttls=true"] * self.starttls + [f"cafile={self.cafile}"] * bool(self.cafile)
        query = "?" + "&".join(options) if options else ""
        return f"{scheme}://{user}{self.host}:{self.port}{query}"

    def tls_context(self) -> ssl.SSLContext:
        """The context that verifies the server's certificate (`cafile`: only that CA)."""
        return ssl.create_default_context(cafile=self.cafile)


def parse_smtp_url(url: str) -> SmtpServer:
    """An `SmtpServer` from `smtp://user:pass@host:port?starttls=true` or `smtps://...`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise DeliveryError(
            f"an SMTP URL starts with smtp:// or smtps://, got {_without_password(url)!r}"
        )
    if not parts.hostname:
        raise DeliveryError(f"the SMTP URL {_without_password(url)!r} names no host")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        raise DeliveryError(f"the SMTP URL {_without_password(url)!r} has a bad port") from None
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise DeliveryError(
            f"the SMTP URL has unknown option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}"
        )
    server = SmtpServer(
        host=parts.hostname,
        port=port,
        ssl=parts.scheme == "smtps",
        starttls=_flag(options.get("starttls", "false"), "starttls"),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=_seconds(options.get("timeout"), "timeout"),
        cafile=_pem_file(options.get("cafile"), "cafile"),
    )
    if server.cafile and not (server.ssl or server.starttls):
        # Without TLS the CA would be silently ignored, and the mail sent in clear text.
        raise DeliveryError(
            "the SMTP URL option cafile needs TLS: use smtps:// or add starttls=true"
        )
    return server


def smtp_url_from_env(config: Config) -> str | None:
    """The SMTP URL in the environment variable `company.delivery.smtp_url_env`, if set."""
    return os.environ.get(config.company.delivery.smtp_url_env, "").strip() or None


def smtp_server_from_env(config: Config) -> SmtpServer:
    """The server named by the environment variable `company.delivery.smtp_url_env`."""
    variable = config.company.delivery.smtp_url_env
    url = smtp_url_from_env(config)
    if not url:
        raise DeliveryError(
            f"no SMTP server configured: set {variable} to an SMTP URL such as "
            "smtp://user:password@mail.example.com:587?starttls=true "
            "(or smtp://127.0.0.1:8025 for the local sink `leadflow smtp-sink`)"
        )
    return parse_smtp_url(url)


def _flag(text: str, name: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    raise DeliveryError(f"the SMTP URL option {name} must be true or false, got {text!r}")


def _seconds(text: str | None, name: str) -> float:
    if text is None:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise DeliveryError(f"the SMTP URL option {name} must be a positive number, got {text!r}")
    return value


def _pem_file(text: str | None, name: str) -> str | None:
    """A readable file of PEM certificates (checked now: a typo should fail at start-up, not
    as a certificate error on the first connection)."""
    if text is None:
        return None
    path = Path(text.strip()).expanduser()
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as error:
        raise DeliveryError(
            f"the SMTP URL option {name} must name a readable file of PEM CA certificates, "
            f"got {text!r}: {_reason(error)}"
        ) from None
    return str(path)


def _without_password(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.password is None:
        return url.strip()
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


# --- one message ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """What happened to one message (see the module docstring)."""

    outcome: Outcome
    code: int | None
    response: str

    def describe(self) -> str:
        return f"{self.code} {self.response}" if self.code is not None else self.response


def classify(code: int, response: bytes | str) -> SendResult:
    """An SMTP refusal: 4xx is temporary, anything else permanent."""
    text = response.decode(errors="replace") if isinstance(response, bytes) else response
    text = " ".join(text.split())
    return SendResult("temporary" if 400 <= code < 500 else "permanent", code, text)


class SmtpConnection:
    """One SMTP connection, opened on first use and reused for every message after it.

    Not thread-safe: each dispatcher worker has its own.
    """

    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self._client: smtplib.SMTP | None = None
        self._tls: ssl.SSLContext | None = None
        self.connects = 0

    def __enter__(self) -> SmtpConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, sender: str, recipient: str, data: bytes) -> SendResult:
        """Send `data` (a whole message, CRLF line ends) from `sender` to `recipient`."""
        for attempt in (1, 2):
            client = self._connected()
            try:
                refused = self._envelope(client, sender, recipient, data)
            except (smtplib.SMTPServerDisconnected, OSError):
                # Nothing has left yet: the reused connection was dropped (idle timeout,
                # server restart). Open a new one and send again, once.
                self.close()
                if attempt == 2:
                    raise SmtpUnavailable(
                        f"the SMTP server {self.server} dropped the connection twice before "
                        "the message could be sent"
                    ) from None
                continue
            if refused is not None:
                return refused
            return self._data(client, data)
        raise AssertionError("unreachable")

    def connect(self) -> None:
        """Open the connection now unless it is open (raises SmtpUnavailable)."""
        self._connected()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()

    def _connected(self) -> smtplib.SMTP:
        if self._client is not None:
            return self._client
        try:
            self._client = self._open()
        except (smtplib.SMTPException, OSError) as first:
            try:
                self._client = self._open()
            except (smtplib.SMTPException, OSError):
                raise SmtpUnavailable(
                    f"cannot connect to the SMTP server {self.server}: {_reason(first)}"
                ) from None
        self.connects += 1
        return self._client

    def _open(self) -> smtplib.SMTP:
        """A client that has said EHLO, started TLS and logged in as the URL says.

        Raises SmtpUnavailable at once for what a second try cannot mend (no STARTTLS, an
        untrusted certificate, a refused login); smtplib's or the socket's error otherwise.
        """
        server = self.server
        client: smtplib.SMTP | None = None
        try:
            if server.ssl:
                client = smtplib.SMTP_SSL(
                    server.host, server.port, timeout=server.timeout, context=self._tls_context()
                )
            else:
                client = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
            client.ehlo()
            if server.starttls:
                self._starttls(client)
            if server.username:
                self._login(client)
        except ssl.SSLCertVerificationError as error:
            if client is not None:
                client.close()
            raise SmtpUnavailable(self._untrusted(error)) from None
        except BaseException:
            if client is not None:
                client.close()
            raise
        return client

    def _tls_context(self) -> ssl.SSLContext:
        # Made once per connection object, not per connect: loading the system's CA
        # certificates takes tens of milliseconds, more than the TLS handshake itself.
        if self._tls is None:
            self._tls = self.server.tls_context()
        return self._tls

    def _starttls(self, client: smtplib.SMTP) -> None:
        if not client.has_extn("starttls"):
            raise SmtpUnavailable(
                f"the SMTP server {self.server} does not offer STARTTLS, which the SMTP URL "
                "asks for (starttls=true): nothing is sent in clear text"
            )
        client.starttls(context=self._tls_context())
        client.ehlo()

    def _login(self, client: smtplib.SMTP) -> None:
        server = self.server
        if not client.has_extn("auth"):
            unencrypted = not (server.ssl or server.starttls)
            hint = " (many servers offer it only after STARTTLS: add starttls=true)"
            raise SmtpUnavailable(
                f"the SMTP server {server} offers no login (AUTH) for the user "
                f"{server.username!r} of the SMTP URL" + hint * unencrypted
            )
        try:
            client.login(server.username or "", server.password or "")
        except smtplib.SMTPAuthenticationError as error:
            # Not tried again: a second wrong password only brings a lockout closer.
            raise SmtpUnavailable(
                f"the SMTP server {server} refused the login of {server.username!r} "
                f"(check user and password in the SMTP URL): "
                f"{classify(error.smtp_code, error.smtp_error).describe()}"
            ) from None

    def _untrusted(self, error: ssl.SSLCertVerificationError) -> str:
        reason = error.verify_message or _reason(error)
        if self.server.cafile:
            trusted = f"the CA certificates in {self.server.cafile}"
            hint = ""
        else:
            trusted = "the system's CA certificates"
            hint = " (a certificate of an internal CA: add cafile=/path/ca.pem to the SMTP URL)"
        return (
            f"the certificate of the SMTP server {self.server} is not trusted by {trusted}: "
            f"{reason}{hint}"
        )

    def _envelope(
        self, client: smtplib.SMTP, sender: str, recipient: str, data: bytes
    ) -> SendResult | None:
        """MAIL FROM and RCPT TO; a refusal as a result (after RSET), None when accepted."""
        options = ["BODY=8BITMIME"] if client.has_extn("8bitmime") and _has_8bit(data) else []
        code, response = client.mail(sender, options)
        if code == 530:
            # "Authentication required" (RFC 4954) or "Must issue STARTTLS first" (RFC 3207):
            # about the session, not this message, and the same for every message after it.
            self.close()
            raise SmtpUnavailable(
                f"the SMTP server {self.server} takes mail only after TLS or a login the SMTP "
                f"URL does not give (starttls=true, user and password): "
                f"{classify(code, response).describe()}"
            )
        if code != 250:
            return self._refused(client, code, response)
        code, response = client.rcpt(recipient)
        if code not in (250, 251):
            return self._refused(client, code, response)
        return None

    def _data(self, client: smtplib.SMTP, data: bytes) -> SendResult:
        try:
            code, response = client.data(data)
        except smtplib.SMTPDataError as error:  # the server refused DATA itself (no 354)
            return self._refused(client, error.smtp_code, error.smtp_error)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self.close()
            return SendResult(
                "ambiguous",
                None,
                f"the connection broke while the message was being sent: {_reason(error)}",
            )
        if code != 250:
            return self._refused(client, code, response)
        return SendResult("sent", code, " ".join(response.decode(errors="replace").split()))

    def _refused(self, client: smtplib.SMTP, code: int, response: bytes | str) -> SendResult:
        """A refusal; RSET so the connection is ready for the next message."""
        try:
            client.rset()
        except (smtplib.SMTPException, OSError):
            self.close()
        return classify(code, response)


def _has_8bit(data: bytes) -> bool:
    return not data.isascii()


def _reason(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# --- pacing --------------------------------------------------------------------------------


class RateLimiter:
    """A token bucket shared by the workers of one dispatch run: at most `per_minute`
    messages a minute, at most `burst` of them back to back.

    The default burst of 1 spaces messages evenly (60 / per_minute seconds apart), which is
    what providers' limits expect; thread-safe.
    """

    def __init__(
        self, per_minute: float, *, burst: int = 1, clock=time.monotonic, sleep=time.sleep
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs per_minute > 0 and burst >= 1")
        self.interval = 60.0 / per_minute
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # The slot of the next message: it may go at max(_next_free, now - (burst - 1) ×
        # interval), i.e. up to `burst` slots that lie in the past are still usable.
        self._next_free = clock() - burst * self.interval

    def acquire(self) -> None:
        """Wait until a message may go out, and take its slot."""
        [slot] = self.reserve(1)
        self.wait(slot)

    def reserve(self, count: int) -> list[float]:
        """Take the next `count` slots at once (clock times); `wait` for each before its
        message goes out.

        A dispatcher worker reserves the slots of a whole group before sending it: the
        workers then take turns group by group, and one composes its next group while the
        other sends. Taking slot by slot, both would compose at the same moments (the shared
        pace keeps them in step), and slots that pass while nobody waits are lost: the
        achieved rate would fall below the configured one.
        """
        with self._lock:
            now = self._clock()
            earliest = max(self._next_free, now - (self.burst - 1) * self.interval)
            self._next_free = earliest + count * self.interval
        return [earliest + number * self.interval for number in range(count)]

    def wait(self, slot: float) -> None:
        """Sleep until `slot` (a clock time from `reserve`), if it is still ahead."""
        delay = slot - self._clock()
        if delay > 0:
            self._sleep(delay)


def backoff(attempts: int, *, base: dt.timedelta, cap: dt.timedelta) -> dt.timedelta:
    """How long to wait before attempt `attempts + 1` after `attempts` temporary failures:
    base, 2 × base, 4 × base ... never more than `cap`."""
    if attempts < 1:
        return dt.timedelta(0)
    return min(base * 2 ** min(attempts - 1, 30), cap)


__all__ = [
    "DeliveryError",
    "RateLimiter",
    "SendResult",
    "SmtpConnection",
    "SmtpServer",
    "SmtpUnavailable",
    "backoff",
    "classify",
    "parse_smtp_url",
    "smtp_server_from_env",
]
