"""The benchmarks' SMTP server: aiosmtpd counting what it receives, either plain or set up like
a submission relay (STARTTLS with a certificate of a local CA made for the run, AUTH PLAIN/LOGIN
required and offered only after TLS).

    ca = make_local_ca(directory)              # ca.pem, server.pem, server.key (ECDSA)
    python bench/_relay.py PORT [DIRECTORY]    # serve; with DIRECTORY: as a relay

The server prints "ready", then one count of received messages per line read from stdin.
Keys are ECDSA P-256 by default, or RSA-2048 (which costs the server more per handshake).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import sys
from pathlib import Path

USER = "bench@leadflow.example"
PASSWORD = "bench-password"


def make_local_ca(directory: Path, key_type: str = "ecdsa") -> Path:
    """A CA and a server certificate for 127.0.0.1 it signed, as PEM files in `directory`;
    the CA's file (what clients trust). `key_type` ecdsa (P-256) or rsa (2048 bits)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def builder(subject: x509.Name, key, issuer: x509.Name) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
        )

    def new_key():
        if key_type == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())

    ca_key = new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leadflow bench CA")])
    ca_cert = (
        builder(ca_name, ca_key, ca_name)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        builder(name, key, ca_name)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return directory / "ca.pem"


def relay_settings(directory: Path) -> dict:
    """aiosmtpd's SMTP options of a submission relay whose certificate is in `directory`."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        accepted = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (USER, PASSWORD)
        return AuthResult(success=accepted, handled=False)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    return {
        "tls_context": context,
        "require_starttls": True,
        "auth_required": True,
        "auth_require_tls": True,
        "authenticator": authenticate,
    }


def serve(port: int, directory: Path | None) -> None:
    import logging

    from aiosmtpd.controller import Controller

    # aiosmtpd warns on every login that Session.login_data is deprecated.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    class Count:
        received = 0

        async def handle_DATA(self, server, session, envelope) -> str:
            Count.received += 1
            return "250 OK"

    settings = relay_settings(directory) if directory else {}
    controller = Controller(Count(), hostname="127.0.0.1", port=port, **settings)
    controller.start()
    print("ready", flush=True)
    for _line in sys.stdin:
        print(Count.received, flush=True)
    controller.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
