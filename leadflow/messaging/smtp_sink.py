"""A development SMTP server: a real SMTP server on loopback that keeps every message as .eml.

    with SmtpSink(tmp_path / "mail", port=0) as sink:     # port 0: any free port
        send_something(host=sink.host, port=sink.port)
    [message] = sink.messages()                            # email.message.EmailMessage

`leadflow smtp-sink [--dir D] [--port P]` runs one in the foreground (default
`.leadflow/demo/mail/` on 127.0.0.1:8025, where leadflow sends unless LEADFLOW_SMTP_HOST /
LEADFLOW_SMTP_PORT say otherwise). It accepts any sender and recipient and never relays.

Each message is stored exactly as received, preceded by `X-MailFrom` and `X-RcptTo` headers
carrying the SMTP envelope (as aiosmtpd's own handlers do), so Bcc recipients are visible too.
Files are named `<UTC receive time>-<sequence>-<random>.eml`: sorted by name they are in the
order they arrived; the random part keeps two sinks on one directory apart. A file appears
complete or not at all (written to a temporary name, then renamed).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
import os
import threading
import uuid
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from leadflow import paths

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025


def default_directory() -> Path:
    return paths.demo_dir() / "mail"


class _StoreAsEml:
    """aiosmtpd handler: every accepted message becomes one .eml file in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()
        self.received: list[Path] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        envelope_headers = (
            f"X-MailFrom: {envelope.mail_from}\r\nX-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        self._write(envelope_headers + content)
        return "250 Message accepted for delivery"

    def _write(self, data: bytes) -> Path:
        with self._lock:
            number = next(self._sequence)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.directory / f"{stamp}-{number:05d}-{uuid.uuid4().hex[:8]}.eml"
        temporary = target.with_suffix(".eml.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, target)
        with self._lock:
            self.received.append(target)
        return target


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to listen on port 0 (a free port)."""

    def _trigger_server(self) -> None:
        # start() connects to self.port to check the server answers: learn the real port first.
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    """A real SMTP server on `host:port` in a background thread, storing mail in `directory`."""

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
    ) -> None:
        self.directory = Path(directory) if directory is not None else default_directory()
        self.host = host
        self._requested_port = port
        self._handler = _StoreAsEml(self.directory)
        self._controller: _Controller | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the free port chosen when started with port 0)."""
        if self._controller is None:
            return self._requested_port
        return self._controller.port

    def start(self) -> SmtpSink:
        if self._controller is not None:
            raise RuntimeError("the SMTP sink is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        controller = _Controller(self._handler, hostname=self.host, port=self._requested_port)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def received(self) -> list[Path]:
        """The .eml files this sink stored, in arrival order."""
        return list(self._handler.received)

    def messages(self) -> list[EmailMessage]:
        """The messages this sink stored, parsed, in arrival order."""
        return [read_eml(path) for path in self.received()]


def read_eml(path: Path) -> EmailMessage:
    """A stored message, parsed with the modern e-mail API."""
    with path.open("rb") as file:
        return email.message_from_binary_file(file, policy=email.policy.default)  # type: ignore[return-value]


def stored_messages(directory: Path) -> list[Path]:
    """Every .eml in `directory`, oldest first (by name, which starts with the receive time)."""
    return sorted(directory.glob("*.eml")) if directory.is_dir() else []
