"""The development SMTP sink: a real SMTP server on loopback that keeps every message as .eml."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from leadflow.messaging.smtp_sink import SmtpSink, read_eml, stored_messages

UTF8 = (
    "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
)


def send(port: int, sender: str, recipients: list[str], text: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(sender, recipients, text.encode())


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_port_zero_picks_a_free_port_and_stores_each_message_with_its_envelope(tmp_path):
    with SmtpSink(tmp_path / "mail", port=0) as sink:
        assert sink.port != 0 and listening(sink.port)
        send(sink.port, "a@x.example", ["b@y.example", "hidden@y.example"], "Subject: one\n\n1\n")
        send(sink.port, "a@x.example", ["c@y.example"], f"Subject: two\n{UTF8}\nGrüße\n")
        port = sink.port

    assert not listening(port)  # stopped when the block ends
    files = stored_messages(tmp_path / "mail")
    assert files == sink.received() and len(files) == 2
    assert all(path.suffix == ".eml" for path in files)
    first, second = (read_eml(path) for path in files)
    assert first["Subject"] == "one" and second["Subject"] == "two"
    # The envelope: Bcc-like recipients that no header names are visible too.
    assert first["X-MailFrom"] == "a@x.example"
    assert first["X-RcptTo"] == "b@y.example, hidden@y.example"
    assert second.get_content().rstrip() == "Grüße"
    assert "Grüße".encode() in files[1].read_bytes()  # stored as received, 8-bit
    assert [m["Subject"] for m in sink.messages()] == ["one", "two"]


def test_no_partial_files_are_left_behind(tmp_path):
    with SmtpSink(tmp_path, port=0) as sink:
        send(sink.port, "a@x.example", ["b@y.example"], "Subject: s\n\nbody\n")
    assert [path.name for path in tmp_path.iterdir() if not path.name.endswith(".eml")] == []


def test_a_port_in_use_is_an_error(tmp_path):
    with SmtpSink(tmp_path, port=0) as first, pytest.raises(OSError):
        SmtpSink(tmp_path, port=first.port).start()


def test_the_cli_runs_in_the_foreground_until_interrupted(tmp_path):
    leadflow = Path(sys.executable).parent / "leadflow"
    process = subprocess.Popen(
        [str(leadflow), "smtp-sink", "--dir", str(tmp_path / "mail"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        banner = process.stdout.readline()
        assert "SMTP sink listening on 127.0.0.1:" in banner, banner
        port = int(banner.split("127.0.0.1:")[1].split(",")[0])
        send(port, "a@x.example", ["b@y.example"], "Subject: via cli\n\nhello\n")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)

    assert process.returncode == 0
    assert "stopped; 1 message(s) received" in output
    [stored] = stored_messages(tmp_path / "mail")
    assert read_eml(stored)["Subject"] == "via cli"
