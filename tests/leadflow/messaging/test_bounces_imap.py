"""Ingesting from a real IMAP server on loopback (pymap's in-memory backend, when installed)."""

from __future__ import annotations

import imaplib
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from leadflow.config.models import SoftBounceRule
from leadflow.messaging.bounces import MailboxError, ingest, open_mailbox
from tests.leadflow.messaging.test_bounces_classify import SAMPLES

pytest.importorskip("pymap", reason="pymap (an IMAP server in Python) is not installed")

SERVER = (
    "import sys; from pymap.main import main; sys.argv = ['pymap'] + sys.argv[1:]; sys.exit(main())"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def imap_port() -> Iterator[int]:
    port = free_port()
    arguments = ["--host", "127.0.0.1", "--port", str(port), "--no-tls", "dict"]
    credentials = ["--demo-user", "bounce", "--demo-password", "secret"]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, *arguments, *credentials],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("the IMAP server did not start")
            time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def unseen(port: int) -> int:
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login("bounce", "secret")
    client.select("INBOX")
    _, data = client.uid("SEARCH", "UNSEEN")
    client.logout()
    return len(data[0].split())


def test_unseen_messages_are_ingested_and_flagged_seen(warehouse, imap_port):
    client = imaplib.IMAP4("127.0.0.1", imap_port)
    client.login("bounce", "secret")
    for name in ("rfc3464-10.eml", "rfc3834-01.eml"):
        client.append("INBOX", None, None, (SAMPLES / name).read_bytes())
    client.append("INBOX", None, None, b"no mail at all\r\n")
    client.logout()
    url = f"imap://bounce:secret@127.0.0.1:{imap_port}/INBOX"

    box = open_mailbox(url)
    report = ingest(warehouse, box, SoftBounceRule())
    box.close()

    assert report.source == "imap://bounce@127.0.0.1/INBOX"  # no password in the records
    assert report.classes == Counter(hard_bounce=1, auto_reply=1)
    assert [error.split(":")[0] for _, error in report.errors] == ["MalformedMessage"]
    assert report.suppressed == [("kijitora@example.jp", "hard_bounce")]
    assert unseen(imap_port) == 1  # the broken one stays unread

    box = open_mailbox(url)
    again = ingest(warehouse, box, SoftBounceRule())
    box.close()
    assert (sum(again.classes.values()), len(again.errors)) == (0, 1)


def test_a_wrong_password_is_a_clear_error(imap_port):
    with pytest.raises(MailboxError, match=r"cannot open imap://bounce@127\.0\.0\.1/INBOX"):
        open_mailbox(f"imap://bounce:wrong@127.0.0.1:{imap_port}/INBOX")
