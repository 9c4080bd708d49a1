"""SMTP delivery: URLs, one reused connection, answers classified, the shared rate limit."""

from __future__ import annotations

import datetime as dt

import pytest

from leadflow.messaging.delivery import (
    DeliveryError,
    RateLimiter,
    SmtpConnection,
    SmtpServer,
    SmtpUnavailable,
    backoff,
    parse_smtp_url,
    smtp_server_from_env,
)
from leadflow.messaging.smtp_sink import SmtpSink
from tests.leadflow.messaging.dispatch_data import example_config, scripted_smtp

MESSAGE = b"Subject: hello\r\nFrom: a@x.example\r\nTo: b@y.example\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n"


def test_smtp_urls():
    assert parse_smtp_url("smtp://127.0.0.1:8025") == SmtpServer("127.0.0.1", 8025)
    assert parse_smtp_url("smtps://mailer:p%40ss%3Aword@mail.example") == SmtpServer(
        "mail.example", 465, ssl=True, username="mailer", password="p@ss:word"
    )
    server = parse_smtp_url("smtp://u:secret@mail.example:587?starttls=true&timeout=5")
    assert (server.port, server.starttls, server.timeout) == (587, True, 5.0)
    assert str(server) == "smtp://u@mail.example:587?starttls=true"  # no password
    assert parse_smtp_url("smtp://mail.example").port == 25


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mail.example:25", "starts with smtp:// or smtps://"),
        ("smtp://:25", "names no host"),
        ("smtp://mail.example:99999", "has a bad port"),
        ("smtp://mail.example?tls=1", "unknown option(s) tls"),
        ("smtp://mail.example?starttls=maybe", "starttls must be true or false"),
        ("smtp://mail.example?timeout=0", "timeout must be a positive number"),
    ],
)
def test_bad_smtp_urls_are_named(url, message):
    with pytest.raises(DeliveryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_smtp_url(url)


def test_the_url_comes_from_the_configured_environment_variable(monkeypatch):
    config = example_config()
    monkeypatch.delenv("LEADFLOW_SMTP_URL", raising=False)
    with pytest.raises(DeliveryError, match="no SMTP server configured: set LEADFLOW_SMTP_URL"):
        smtp_server_from_env(config)
    monkeypatch.setenv("LEADFLOW_SMTP_URL", " smtp://relay.example:2525 ")
    assert smtp_server_from_env(config) == SmtpServer("relay.example", 2525)


def test_one_connection_carries_many_messages_and_answers_are_classified():
    script = {
        "busy@y.example": ["452 4.2.2 mailbox full"],
        "gone@y.example": ["550 5.1.1 user unknown"],
    }
    with scripted_smtp(script) as (url, server), SmtpConnection(parse_smtp_url(url)) as smtp:
        results = [
            smtp.send("a@x.example", recipient, MESSAGE)
            for recipient in ("b@y.example", "busy@y.example", "gone@y.example", "c@y.example")
        ]
        connects = smtp.connects
    assert [(r.outcome, r.code) for r in results] == [
        ("sent", 250),
        ("temporary", 452),
        ("permanent", 550),
        ("sent", 250),
    ]
    assert results[1].describe() == "452 4.2.2 mailbox full"
    assert connects == 1 and server.sessions == 1
    assert len(server.received) == 2
    # 8-bit body: sent with BODY=8BITMIME, arrives unchanged.
    assert "Grüße".encode() in server.received[0]


def test_a_dropped_idle_connection_is_reopened_and_the_message_sent_once(tmp_path):
    with SmtpSink(tmp_path / "one", port=0) as first:
        port = first.port
        smtp = SmtpConnection(SmtpServer("127.0.0.1", port))
        assert smtp.send("a@x.example", "b@y.example", MESSAGE).outcome == "sent"
    # The server restarted: the reused connection is dead before MAIL FROM.
    with SmtpSink(tmp_path / "two", port=port) as second:
        result = smtp.send("a@x.example", "c@y.example", MESSAGE)
        smtp.close()
        received = second.received()
    assert result.outcome == "sent" and smtp.connects == 2
    assert len(received) == 1


def test_a_connection_broken_during_data_is_ambiguous():
    with (
        scripted_smtp({"b@y.example": ["drop"]}) as (url, server),
        SmtpConnection(parse_smtp_url(url)) as smtp,
    ):
        result = smtp.send("a@x.example", "b@y.example", MESSAGE)
        after = smtp.send("a@x.example", "c@y.example", MESSAGE)
    assert result.outcome == "ambiguous" and result.code is None
    assert "broke while the message was being sent" in result.response
    assert after.outcome == "sent"  # a new connection for the next message
    assert len(server.received) == 2


def test_an_unreachable_server_raises():
    with scripted_smtp() as (url, _server):
        pass
    with pytest.raises(SmtpUnavailable, match=f"cannot connect to the SMTP server {url}"):
        SmtpConnection(parse_smtp_url(url)).send("a@x.example", "b@y.example", MESSAGE)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_the_rate_limit_spaces_messages_evenly():
    time = FakeTime()
    limiter = RateLimiter(120, clock=time.clock, sleep=time.sleep)  # one per 0.5 s
    for _ in range(5):
        limiter.acquire()
    assert time.sleeps == [0.5, 0.5, 0.5, 0.5]
    assert time.now == 102.0
    time.now += 10  # idle: no credit saved up beyond the burst of one
    limiter.acquire()
    limiter.acquire()
    assert time.sleeps[4:] == [0.5]


def test_a_burst_lets_that_many_go_at_once_then_paces():
    time = FakeTime()
    limiter = RateLimiter(60, burst=3, clock=time.clock, sleep=time.sleep)
    for _ in range(5):
        limiter.acquire()
    assert time.sleeps == [1.0, 1.0]


def test_backoff_doubles_up_to_the_cap():
    minute = dt.timedelta(minutes=1)
    delays = [backoff(n, base=minute, cap=20 * minute) for n in range(1, 8)]
    assert delays == [minute * m for m in (1, 2, 4, 8, 16, 20, 20)]
    assert backoff(10_000, base=minute, cap=20 * minute) == 20 * minute


def test_reserved_slots_follow_each_other_and_are_not_handed_out_twice():
    time = FakeTime()
    limiter = RateLimiter(120, clock=time.clock, sleep=time.sleep)  # one per 0.5 s
    first = limiter.reserve(3)
    second = limiter.reserve(2)  # another worker's group: after the first one's
    assert first == [100.0, 100.5, 101.0]
    assert second == [101.5, 102.0]
    for slot in first:
        limiter.wait(slot)
    assert (time.sleeps, time.now) == ([0.5, 0.5], 101.0)
    time.now = 103.0  # late for the second group: it goes at once, nothing is made up
    for slot in second:
        limiter.wait(slot)
    assert time.sleeps == [0.5, 0.5]
    limiter.acquire()
    assert time.now == 103.0  # the next free slot had passed: this one goes now
