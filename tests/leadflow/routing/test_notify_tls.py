"""Owner notifications through the campaign mail's SMTP URL: a submission relay on loopback
that takes mail only after STARTTLS with a certificate of a private CA, and a login.

Without LEADFLOW_SMTP_HOST / LEADFLOW_SMTP_PORT the notifications use that URL, verify the
certificate (`cafile`) and log in as the URL's user; an untrusted certificate stops them
before the login, and they stay pending. The host/port variables, when set, still win.
"""

from __future__ import annotations

import pytest

from leadflow.routing import NotificationError, SmtpSettings, send_pending_notifications
from tests.leadflow.messaging.tls_relay import implicit_tls_server, submission_relay
from tests.leadflow.routing.conftest import add, rows
from tests.leadflow.routing.test_routing import FIRST_BATCH, route_test_pool

USERS = {"mailer": "s3cret"}
NOTIFIED_OWNERS = 6  # FIRST_BATCH routes 7 MQLs to 6 owners


@pytest.fixture
def smtp_url(monkeypatch, routing_config):
    """Set the campaign mail's SMTP URL, with no notification-only host/port."""
    monkeypatch.delenv("LEADFLOW_SMTP_HOST", raising=False)
    monkeypatch.delenv("LEADFLOW_SMTP_PORT", raising=False)

    def set_url(url: str) -> SmtpSettings:
        monkeypatch.setenv(routing_config.company.delivery.smtp_url_env, url)
        return SmtpSettings.from_env(routing_config)

    return set_url


def pending(engine) -> int:
    [(count,)] = rows(
        engine, "select count(*) from ops.routing_notifications where sent_at is null"
    )
    return count


def test_notifications_use_starttls_and_the_urls_login(pool, routing_config, ca, smtp_url):
    add(pool, *FIRST_BATCH)
    with submission_relay(ca, USERS) as relay:
        smtp = smtp_url(relay.url("mailer", "s3cret", starttls="true", cafile=ca.ca_file))
        report = route_test_pool(pool, routing_config, smtp)
        received = relay.handler.received
        attempts = relay.logins.attempts

    assert len(report.notifications) == NOTIFIED_OWNERS and pending(pool) == 0
    assert len(received) == NOTIFIED_OWNERS
    # yagmail connects once per mail: every login is the URL's user, accepted, over TLS
    assert attempts == [("mailer", True, True)] * NOTIFIED_OWNERS
    assert str(smtp) == f"smtp://mailer@127.0.0.1:{relay.port}?starttls=true&cafile={ca.ca_file}"
    assert "s3cret" not in str(smtp)


def test_an_untrusted_certificate_stops_them_before_the_login(
    pool, routing_config, ca, other_ca, smtp_url
):
    add(pool, *FIRST_BATCH)
    with submission_relay(ca, USERS) as relay:
        smtp = smtp_url(relay.url("mailer", "s3cret", starttls="true", cafile=other_ca.ca_file))
        with pytest.raises(NotificationError, match="CERTIFICATE_VERIFY_FAILED"):
            route_test_pool(pool, routing_config, smtp)
        assert relay.handler.received == [] and relay.logins.attempts == []
    assert pending(pool) == NOTIFIED_OWNERS  # nothing lost: the next run sends them

    with submission_relay(ca, USERS) as relay:
        smtp = smtp_url(relay.url("mailer", "s3cret", starttls="true", cafile=ca.ca_file))
        sent = send_pending_notifications(pool, routing_config, smtp)
        assert len(sent) == NOTIFIED_OWNERS and len(relay.handler.received) == NOTIFIED_OWNERS


def test_a_wrong_password_keeps_them_pending(pool, routing_config, ca, smtp_url):
    add(pool, *FIRST_BATCH)
    with submission_relay(ca, USERS) as relay:
        smtp = smtp_url(relay.url("mailer", "wrong", starttls="true", cafile=ca.ca_file))
        with pytest.raises(NotificationError, match=r"535.*credentials invalid"):
            route_test_pool(pool, routing_config, smtp)
        assert relay.handler.received == []
        # the first refusal stops the run: one connection's login (smtplib tries AUTH PLAIN,
        # then LOGIN), not one per owner
        assert relay.logins.attempts == [("mailer", False, True)] * 2
    assert pending(pool) == NOTIFIED_OWNERS


def test_implicit_tls(pool, routing_config, ca, smtp_url):
    add(pool, *FIRST_BATCH)
    with implicit_tls_server(ca) as server:
        smtp = smtp_url(server.url(scheme="smtps", cafile=ca.ca_file))
        route_test_pool(pool, routing_config, smtp)
        assert len(server.handler.received) == NOTIFIED_OWNERS


def test_host_and_port_variables_win_over_the_url(monkeypatch, routing_config):
    monkeypatch.setenv(routing_config.company.delivery.smtp_url_env, "smtps://u:p@relay.example")
    monkeypatch.setenv("LEADFLOW_SMTP_PORT", "2525")
    monkeypatch.delenv("LEADFLOW_SMTP_HOST", raising=False)
    settings = SmtpSettings.from_env(routing_config)
    assert (settings.host, settings.port, settings.ssl, settings.username) == (
        "127.0.0.1",
        2525,
        False,
        None,
    )
    assert str(settings) == "127.0.0.1:2525"

    monkeypatch.delenv("LEADFLOW_SMTP_PORT")
    settings = SmtpSettings.from_env(routing_config)
    assert (settings.host, settings.port, settings.ssl, settings.username) == (
        "relay.example",
        465,
        True,
        "u",
    )
