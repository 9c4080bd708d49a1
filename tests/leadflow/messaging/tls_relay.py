"""A submission relay on loopback for the TLS and login tests: aiosmtpd with STARTTLS (a
certificate from a local CA made for the test) and AUTH PLAIN/LOGIN required.

    ca = LocalCA.create(tmp_path)                     # ca.pem, server.pem, server.key
    with submission_relay(ca, {"mailer": "s3cret"}) as relay:
        url = relay.url("mailer", "s3cret", starttls="true", cafile=ca.ca_file)
        # smtp://mailer:s3cret@127.0.0.1:PORT?starttls=true&cafile=/tmp/.../ca.pem
        relay.handler.received, relay.logins.attempts    # what arrived, who logged in

Keys are ECDSA P-256, certificates valid for a day, the server's for 127.0.0.1 and localhost.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from leadflow.messaging.smtp_sink import _Controller
from tests.leadflow.messaging.dispatch_data import ScriptedHandler

LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class LocalCA:
    """A CA and one server certificate it issued, as PEM files in `directory`."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def chain_file(self) -> Path:
        return self.directory / "server.pem"

    @property
    def key_file(self) -> Path:
        return self.directory / "server.key"

    @classmethod
    def create(cls, directory: Path, names: tuple[str, ...] = LOOPBACK_NAMES) -> LocalCA:
        """A new CA in `directory`, and a server certificate for `names` signed by it."""
        directory.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        # A name of its own: two test CAs must not pass for each other.
        ca_name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, f"leadflow test CA {secrets.token_hex(4)}")]
        )
        ca_cert = (
            _certificate(ca_name, ca_key.public_key(), ca_name)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        server_cert = (
            _certificate(server_name, server_key.public_key(), ca_name)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectAlternativeName(list(map(_general_name, names))), False)
            .sign(ca_key, hashes.SHA256())
        )
        ca = cls(directory)
        ca.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        ca.chain_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        ca.key_file.write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return ca

    def server_context(self) -> ssl.SSLContext:
        """What the relay presents: the server certificate and its key."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.chain_file, self.key_file)
        return context


def _certificate(subject: x509.Name, public_key, issuer: x509.Name) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass
class Logins:
    """aiosmtpd authenticator: accepts the user/password pairs in `users`, and records every
    attempt as (user, accepted, over TLS)."""

    users: dict[str, str]
    attempts: list[tuple[str, bool, bool]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        accepted = self.users.get(user) == password
        with self._lock:
            self.attempts.append((user, accepted, session.ssl is not None))
        return AuthResult(success=accepted, handled=False)

    def accepted(self) -> list[str]:
        return [user for user, accepted, _tls in self.attempts if accepted]


@dataclass(frozen=True)
class Server:
    """A running test server: its port, what it received, who logged in."""

    port: int
    handler: ScriptedHandler
    logins: Logins | None = None

    def url(
        self, user: str | None = None, password: str | None = None, scheme: str = "smtp", **options
    ) -> str:
        credentials = f"{user}:{password}@" if user else ""
        query = "&".join(f"{key}={value}" for key, value in options.items())
        return f"{scheme}://{credentials}127.0.0.1:{self.port}" + f"?{query}" * bool(query)


@contextmanager
def submission_relay(ca: LocalCA, users: dict[str, str]) -> Iterator[Server]:
    """A relay on a free loopback port that takes mail only after STARTTLS and a login
    (`auth_require_tls`: it does not even offer AUTH before TLS)."""
    handler = ScriptedHandler()
    logins = Logins(users)
    controller = _Controller(
        handler,
        hostname="127.0.0.1",
        port=0,
        tls_context=ca.server_context(),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=logins,
    )
    controller.start()
    try:
        yield Server(controller.port, handler, logins)
    finally:
        controller.stop()


@contextmanager
def implicit_tls_server(ca: LocalCA) -> Iterator[Server]:
    """A server speaking TLS from the first byte (as on port 465), without login."""
    handler = ScriptedHandler()
    controller = _Controller(handler, hostname="127.0.0.1", port=0, ssl_context=ca.server_context())
    controller.start()
    try:
        yield Server(controller.port, handler)
    finally:
        controller.stop()
