"""Delivery through a submission relay on loopback: STARTTLS with a certificate of a private
CA (`cafile`), AUTH required; wrong passwords, untrusted certificates and servers without
STARTTLS stop delivery with a message naming the cause, and nothing is recorded as sent."""

from __future__ import annotations

import pytest

from leadflow.messaging.delivery import (
    DeliveryError,
    SmtpConnection,
    SmtpUnavailable,
    parse_smtp_url,
)
from leadflow.messaging.dispatch import DispatchError, dispatch
from tests.leadflow.messaging.dispatch_data import (
    NOW,
    RELATIONS,
    add_contacts,
    add_outbox,
    compose,
    example_config,
    outbox,
    scripted_smtp,
    statuses,
    unsubscribe_url_for,
)
from tests.leadflow.messaging.tls_relay import LocalCA, implicit_tls_server, submission_relay

CONFIG = example_config()
USERS = {"mailer": "s3cret"}
MESSAGE = b"Subject: hello\r\nFrom: a@x.example\r\nTo: b@y.example\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n"


def run(engine, url: str, **options):
    return dispatch(
        engine,
        CONFIG,
        NOW,
        compose=compose,
        smtp_url=url,
        concurrency=options.pop("concurrency", 1),
        rate_per_minute=None,
        batch_size=50,
        unsubscribe_url=unsubscribe_url_for(CONFIG),
        relations=RELATIONS,
        **options,
    )


def add_mails(engine, count: int) -> None:
    contacts = [{"contact_id": f"c{number}"} for number in range(count)]
    add_contacts(engine, contacts)
    add_outbox(engine, contacts)


# --- the option --------------------------------------------------------------------------


def test_cafile_is_parsed_checked_and_shown(ca, tmp_path):
    server = parse_smtp_url(f"smtp://u:pw@relay.example:587?starttls=true&cafile={ca.ca_file}")
    assert server.cafile == str(ca.ca_file)
    assert str(server) == f"smtp://u@relay.example:587?starttls=true&cafile={ca.ca_file}"
    assert parse_smtp_url(f"smtps://relay.example?cafile={ca.ca_file}").cafile == str(ca.ca_file)
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate")
    for path in (tmp_path / "missing.pem", not_pem):
        with pytest.raises(DeliveryError, match="cafile must name a readable file of PEM CA"):
            parse_smtp_url(f"smtp://relay.example?starttls=true&cafile={path}")
    with pytest.raises(DeliveryError, match="cafile needs TLS: use smtps:// or add starttls"):
        parse_smtp_url(f"smtp://relay.example?cafile={ca.ca_file}")
    with pytest.raises(
        DeliveryError, match=r"unknown option\(s\) ca_file; known: starttls, timeout, cafile"
    ):
        parse_smtp_url(f"smtp://relay.example?starttls=true&ca_file={ca.ca_file}")


# --- one connection ----------------------------------------------------------------------


def test_starttls_and_login_once_per_connection_with_the_private_ca(ca):
    with submission_relay(ca, USERS) as relay:
        url = relay.url("mailer", "s3cret", starttls="true", cafile=ca.ca_file)
        with SmtpConnection(parse_smtp_url(url)) as smtp:
            results = [smtp.send("a@x.example", f"r{n}@y.example", MESSAGE) for n in range(3)]
            connects = smtp.connects
    assert [result.outcome for result in results] == ["sent"] * 3
    assert connects == 1
    assert relay.logins.attempts == [("mailer", True, True)]  # one login, over TLS
    assert len(relay.handler.received) == 3
    assert "Grüße".encode() in relay.handler.received[0]


def test_implicit_tls_with_the_private_ca(ca):
    with implicit_tls_server(ca) as server:
        url = server.url(scheme="smtps", cafile=ca.ca_file)
        with SmtpConnection(parse_smtp_url(url)) as smtp:
            result = smtp.send("a@x.example", "b@y.example", MESSAGE)
    assert result.outcome == "sent" and len(server.handler.received) == 1


@pytest.mark.parametrize(
    ("trusted", "message"),
    [
        ("other", r"not trusted by the CA certificates in .*other-ca.*/ca\.pem: "),
        ("system", "not trusted by the system's CA certificates: .* add cafile=/path/ca.pem"),
    ],
)
def test_an_untrusted_certificate_is_refused_before_the_password_is_sent(
    ca, other_ca, trusted, message
):
    options = {"cafile": other_ca.ca_file} if trusted == "other" else {}
    with submission_relay(ca, USERS) as relay:
        url = relay.url("mailer", "s3cret", starttls="true", **options)
        with pytest.raises(SmtpUnavailable, match=message):
            SmtpConnection(parse_smtp_url(url)).send("a@x.example", "b@y.example", MESSAGE)
    assert relay.logins.attempts == [] and relay.handler.received == []


def test_a_certificate_for_another_host_name_is_refused(tmp_path):
    elsewhere = LocalCA.create(tmp_path, names=("mail.example",))
    with submission_relay(elsewhere, USERS) as relay:
        url = relay.url("mailer", "s3cret", starttls="true", cafile=elsewhere.ca_file)
        with pytest.raises(SmtpUnavailable, match=r"not trusted .*IP address mismatch"):
            SmtpConnection(parse_smtp_url(url)).connect()
    assert relay.logins.attempts == []


def test_starttls_against_a_server_without_it_is_refused(ca):
    with scripted_smtp() as (url, server):
        tls_url = (
            url.replace("smtp://", "smtp://mailer:s3cret@") + f"?starttls=true&cafile={ca.ca_file}"
        )
        with pytest.raises(SmtpUnavailable, match="does not offer STARTTLS, which the SMTP URL"):
            SmtpConnection(parse_smtp_url(tls_url)).send("a@x.example", "b@y.example", MESSAGE)
    assert server.received == []


def test_a_wrong_password_is_named_and_not_tried_again(ca):
    with submission_relay(ca, USERS) as relay:
        url = relay.url("mailer", "wrong", starttls="true", cafile=ca.ca_file)
        with pytest.raises(SmtpUnavailable, match=r"refused the login of 'mailer' .*: 535 "):
            SmtpConnection(parse_smtp_url(url)).send("a@x.example", "b@y.example", MESSAGE)
    # One connection: smtplib tries each mechanism both sides know (PLAIN, LOGIN) once.
    assert {user for user, _accepted, _tls in relay.logins.attempts} == {"mailer"}
    assert relay.logins.accepted() == []
    assert len(relay.logins.attempts) <= 2
    assert relay.handler.received == []


@pytest.mark.parametrize(
    ("user", "message"),
    [
        (None, "takes mail only after TLS or a login .*: 530 "),
        ("mailer", "offers no login \\(AUTH\\) .* add starttls=true"),
    ],
)
def test_a_relay_requiring_tls_and_login_refuses_a_url_without_them(ca, user, message):
    with submission_relay(ca, USERS) as relay:
        url = relay.url(user, "s3cret" if user else None)
        with pytest.raises(SmtpUnavailable, match=message):
            SmtpConnection(parse_smtp_url(url)).send("a@x.example", "b@y.example", MESSAGE)
    assert relay.handler.received == []


# --- the dispatcher ----------------------------------------------------------------------


def test_dispatch_through_the_relay_logs_in_once_per_worker(pool, ca):
    add_mails(pool, 30)
    with submission_relay(ca, USERS) as relay:
        url = relay.url("mailer", "s3cret", starttls="true", cafile=ca.ca_file)
        report = run(pool, url, concurrency=2)
    assert report.sent == 30 and statuses(pool) == {"sent": 30}
    assert len(relay.handler.received) == 30
    # Each worker that took rows opened one connection and logged in once, over TLS.
    assert 1 <= report.connections <= 2
    assert relay.logins.attempts == [("mailer", True, True)] * report.connections


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("wrong password", "refused the login of 'mailer'"),
        ("untrusted certificate", "is not trusted by the CA certificates in"),
        ("no starttls in the URL", "takes mail only after TLS or a login"),
    ],
)
def test_a_relay_that_refuses_the_session_stops_the_dispatch_and_nothing_is_sent(
    pool, ca, other_ca, problem, message
):
    add_mails(pool, 3)
    with submission_relay(ca, USERS) as relay:
        url = {
            "wrong password": relay.url("mailer", "wrong", starttls="true", cafile=ca.ca_file),
            "untrusted certificate": relay.url(
                "mailer", "s3cret", starttls="true", cafile=other_ca.ca_file
            ),
            "no starttls in the URL": relay.url(),
        }[problem]
        with pytest.raises(DispatchError, match=message) as raised:
            run(pool, url)
    assert raised.value.report.sent == 0
    assert relay.handler.received == []
    # Handed back untouched: sent by the first run that can log in.
    assert outbox(pool, "status, claimed_by, attempts") == [("pending", None, 0)] * 3


def test_dispatch_without_starttls_on_the_server_is_refused(pool, ca):
    add_mails(pool, 2)
    with (
        scripted_smtp() as (url, server),
        pytest.raises(DispatchError, match="does not offer STARTTLS"),
    ):
        run(pool, f"{url}?starttls=true&cafile={ca.ca_file}")
    assert server.received == [] and statuses(pool) == {"pending": 2}
