"""The dispatcher against a real PostgreSQL and a real SMTP server on loopback: headers,
retries, permanent failures, the ambiguous window, recovery, dry runs, concurrency."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import threading
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from types import MappingProxyType
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from itsdangerous import URLSafeSerializer

from leadflow.errors import LeadflowError
from leadflow.messaging.delivery import SmtpConnection, SmtpUnavailable
from leadflow.messaging.dispatch import (
    _DUE,
    DispatchError,
    RetryPolicy,
    claim_batch,
    dispatch,
    header_line,
    mime_alternative,
    paced_group_size,
    rendered_composer,
)
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

CONFIG = example_config()
MINUTE = dt.timedelta(minutes=1)


def run(engine, url, now=NOW, **options):
    settings = {
        "compose": compose,
        "smtp_url": url,
        "concurrency": 1,
        "rate_per_minute": None,
        "batch_size": 50,
        "unsubscribe_url": unsubscribe_url_for(CONFIG),
        "relations": RELATIONS,
        **options,
    }
    return dispatch(engine, CONFIG, now, **settings)


def test_each_mail_once_with_rfc_8058_headers_and_a_unique_message_id(pool):
    add_contacts(
        pool,
        [
            {"contact_id": "anna", "language": "de"},
            {"contact_id": "luc", "tenant_code": "fr", "language": "fr"},
            {"contact_id": "rep", "email": "rep@example.com"},
        ],
    )
    ids = add_outbox(
        pool,
        [
            {"contact_id": "anna"},
            {"contact_id": "luc", "tenant_code": "fr", "message": "bienvenue"},
            {
                "contact_id": "anna",
                "kind": "owner_notification",
                "category": "service",
                "recipient_email": "vertrieb.nord@steinhoff-hydraulik.example",
                "step_id": "notify",
            },
        ],
    )
    with scripted_smtp() as (url, server):
        report = run(pool, url, concurrency=2)

    # One batch: the first worker takes all three on one connection, the second finds none.
    assert (report.claimed, report.sent, report.connections, server.sessions) == (3, 3, 1, 1)
    rows = outbox(pool, "outbox_id, status, recipient_email, language, message_id, attempts")
    assert [(r[1], r[2], r[3], r[5]) for r in rows] == [
        ("sent", "anna@example.com", "de", 1),
        ("sent", "luc@example.com", "fr", 1),
        ("sent", "vertrieb.nord@steinhoff-hydraulik.example", "de", 1),
    ]
    received = {message["Message-ID"]: message for message in server.messages()}
    assert sorted(received) == sorted(r[4] for r in rows)  # the stored ids, each once
    assert len(set(received)) == 3

    anna, luc, notification = (received[r[4]] for r in rows)
    assert anna["From"] == "Steinhoff Hydraulik <info@steinhoff-hydraulik.example>"
    assert anna["Reply-To"] == "vertrieb@steinhoff-hydraulik.example"
    assert anna["To"] == "anna@example.com" and anna["Content-Language"] == "de"
    assert anna["Message-ID"].endswith("@steinhoff-hydraulik.example>")
    assert luc["From"] == "Steinhoff Hydraulique <contact@fr.steinhoff-hydraulik.example>"
    assert luc["Content-Language"] == "fr"
    assert luc["Message-ID"].endswith("@fr.steinhoff-hydraulik.example>")

    # RFC 8058: an HTTPS URI (and a mailto) in List-Unsubscribe, and the one-click POST key.
    https, mailto = (part.strip().strip("<>") for part in anna["List-Unsubscribe"].split(","))
    assert urlsplit(https).scheme == "https"
    assert https.startswith("https://go.steinhoff-hydraulik.example/u/")
    token = https.rsplit("/", 1)[1]
    assert URLSafeSerializer("test-secret", salt="unsubscribe").loads(token) == {
        "o": ids[0],
        "c": "anna",
    }
    assert (
        mailto == f"mailto:unsubscribe@steinhoff-hydraulik.example?subject=unsubscribe%20{ids[0]}"
    )
    assert anna["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    raw = next(data for data in server.received if anna["Message-ID"].encode() in data)
    assert b"\r\nList-Unsubscribe: <https://go.steinhoff-hydraulik.example/u/" in raw
    # An owner notification is about the contact but goes to the rep: no unsubscribe.
    assert notification["To"] == "vertrieb.nord@steinhoff-hydraulik.example"
    assert notification["List-Unsubscribe"] is None
    # Body parts as composed, envelope from the tenant's sender.
    assert anna.get_body(("plain",)).get_content() == (
        "Hallo Anna,\n\nneu bei uns: https://shop.example/welcome\n"
    )
    assert ("contact@fr.steinhoff-hydraulik.example", ["luc@example.com"]) in server.envelopes

    # The composed links are recorded for the click redirect, one per sent mail.
    with pool.connect() as connection:
        links = connection.execute(
            sa.text("select outbox_id, contact_id, url, tag from ops.links order by outbox_id")
        ).all()
    assert [tuple(link) for link in links] == [
        (ids[0], "anna", "https://shop.example/welcome", "cta"),
        (ids[1], "luc", "https://shop.example/bienvenue", "cta"),
        (ids[2], "anna", "https://shop.example/welcome", "cta"),
    ]

    # A second run finds nothing due and sends nothing.
    with scripted_smtp() as (url, server):
        again = run(pool, url)
    assert (again.claimed, again.sent, server.received) == (0, 0, [])


def test_a_4xx_is_retried_later_and_arrives_exactly_once(pool):
    add_contacts(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}])
    add_outbox(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}])
    script = {"anna@example.com": ["451 4.3.0 mailbox busy", "421 4.7.0 slow down"]}
    retry = RetryPolicy(base=dt.timedelta(minutes=2), cap=dt.timedelta(minutes=3))
    with scripted_smtp(script) as (url, server):
        first = run(pool, url, retry=retry)
        rows = outbox(pool, "contact_id, status, attempts, next_attempt_at, last_error")
        # Not due yet: the backoff holds it back.
        early = run(pool, url, now=NOW + MINUTE, retry=retry)
        second = run(pool, url, now=NOW + 2 * MINUTE + dt.timedelta(seconds=5), retry=retry)
        after_second = outbox(pool, "contact_id, status, attempts, next_attempt_at")
        third = run(pool, url, now=NOW + 6 * MINUTE, retry=retry)

    assert (first.sent, first.retried) == (1, 1)
    anna = rows[0]
    assert anna[:3] == ("anna", "pending", 1)
    assert NOW + 2 * MINUTE <= anna[3] < NOW + 2 * MINUTE + dt.timedelta(seconds=5)
    assert anna[4] == "451 4.3.0 mailbox busy"
    assert (early.claimed, early.sent) == (0, 0)
    assert (second.sent, second.retried) == (0, 1)
    # Backoff doubles (2 → 4 min) but is capped at 3 minutes.
    assert after_second[0][:3] == ("anna", "pending", 2)
    assert after_second[0][3] - (NOW + 2 * MINUTE) >= 3 * MINUTE
    assert (third.sent, third.retried) == (1, 0)
    assert [m["To"] for m in server.messages()] == ["bert@example.com", "anna@example.com"]
    final = outbox(pool, "contact_id, status, attempts, smtp_response")
    assert final == [
        ("anna", "sent", 3, "250 OK queued"),
        ("bert", "sent", 1, "250 OK queued"),
    ]


def test_the_same_message_id_is_kept_across_retries(pool):
    add_contacts(pool, [{"contact_id": "anna"}])
    add_outbox(pool, [{"contact_id": "anna"}])
    with scripted_smtp({"anna@example.com": ["450 4.2.1 try again"]}) as (url, server):
        run(pool, url)
        [(first_id,)] = outbox(pool, "message_id")
        run(pool, url, now=NOW + dt.timedelta(hours=1))
    [(second_id,)] = outbox(pool, "message_id")
    assert first_id == second_id
    assert [m["Message-ID"] for m in server.messages()] == [first_id]


def test_too_many_temporary_failures_fail_the_message(pool):
    add_contacts(pool, [{"contact_id": "anna"}])
    add_outbox(pool, [{"contact_id": "anna"}])
    retry = RetryPolicy(base=MINUTE, cap=MINUTE, max_attempts=2)
    with scripted_smtp({"anna@example.com": ["451 a", "452 b"]}) as (url, server):
        run(pool, url, retry=retry)
        report = run(pool, url, now=NOW + dt.timedelta(hours=1), retry=retry)
    assert report.failed == {"retries": 1}
    assert outbox(pool) == [(1, "failed", "gave up after 2 temporary failures: 452 b")]
    assert server.received == []


def test_a_5xx_fails_only_that_message(pool):
    add_contacts(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}])
    add_outbox(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}])
    script = {"anna@example.com": ["550 5.1.1 no such user"]}
    with scripted_smtp(script) as (url, server):
        report = run(pool, url)
        later = run(pool, url, now=NOW + dt.timedelta(days=1))
    assert (report.sent, report.failed) == (1, {"smtp": 1})
    assert outbox(pool, "contact_id, status, status_reason, attempts") == [
        ("anna", "failed", "smtp: 550 5.1.1 no such user", 1),
        ("bert", "sent", None, 1),
    ]
    assert later.claimed == 0  # failed is final
    assert [m["To"] for m in server.messages()] == ["bert@example.com"]


def test_a_connection_broken_during_data_is_ambiguous_and_never_resent(pool):
    add_contacts(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}])
    add_outbox(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}])
    with scripted_smtp({"anna@example.com": ["drop"]}) as (url, server):
        report = run(pool, url)
        later = run(pool, url, now=NOW + dt.timedelta(days=1))
    assert report.sent == 1 and report.ambiguous == [1]
    rows = outbox(pool, "contact_id, status")
    assert rows == [("anna", "ambiguous"), ("bert", "sent")]
    assert later.claimed == 0
    # The server did take it: one copy, which the flag tells the operator to check.
    assert sorted(m["To"] for m in server.messages()) == ["anna@example.com", "bert@example.com"]
    assert "ambiguous outbox ids: 1" in report.describe()


class TemplateBroken(LeadflowError):
    pass


class TranslationHeld(LeadflowError):
    pass


def test_a_render_error_fails_only_that_message_and_a_held_translation_holds_it(pool):
    add_contacts(pool, [{"contact_id": c} for c in ("anna", "bert", "cora")])
    add_outbox(pool, [{"contact_id": c} for c in ("anna", "bert", "cora")])

    def picky(row, contact):
        if contact["contact_id"] == "anna":
            raise TemplateBroken("template welcome: 'offer' is undefined")
        if contact["contact_id"] == "cora":
            raise TranslationHeld("no translation of block launch into it (fallback: hold)")
        return compose(row, contact)

    with scripted_smtp() as (url, server):
        report = run(pool, url, compose=picky)
    assert (report.sent, report.failed, report.held) == (1, {"render": 1}, 1)
    assert outbox(pool, "contact_id, status, status_reason") == [
        ("anna", "failed", "render: template welcome: 'offer' is undefined"),
        ("bert", "sent", None),
        ("cora", "held", "render: no translation of block launch into it (fallback: hold)"),
    ]
    assert [m["To"] for m in server.messages()] == ["bert@example.com"]


def test_rendered_composer_builds_text_and_html_parts_from_a_rendered_message(pool):
    class Rendered:
        subject = "Neu: HydroStat 3000"
        html = "<p>Sehr geehrter Herr Nord,</p>"
        text = "Sehr geehrter Herr Nord,\n"
        language = "de"
        links = ()
        headers = MappingProxyType({"X-Campaign": "launch"})

    add_contacts(pool, [{"contact_id": "anna"}])
    add_outbox(pool, [{"contact_id": "anna"}])
    with scripted_smtp() as (url, server):
        run(pool, url, compose=rendered_composer(lambda row, contact: Rendered()))
    [message] = server.messages()
    assert message["Subject"] == "Neu: HydroStat 3000" and message["X-Campaign"] == "launch"
    assert message.get_body(("plain",)).get_content() == "Sehr geehrter Herr Nord,\n"
    assert message.get_body(("html",)).get_content() == "<p>Sehr geehrter Herr Nord,</p>\n"


def test_recovery_releases_expired_claims_and_flags_expired_sends(pool):
    add_contacts(pool, [{"contact_id": c} for c in ("anna", "bert", "cora")])
    add_outbox(pool, [{"contact_id": c} for c in ("anna", "bert", "cora")])
    # A dispatcher claimed all three, marked anna's as sending, and died.
    claim = claim_batch(pool, CONFIG, NOW, 10, "dead-worker", MINUTE, relations=RELATIONS)
    assert [m.row["contact_id"] for m in claim.messages] == ["anna", "bert", "cora"]
    with pool.begin() as connection:
        connection.execute(
            sa.text(
                "update ops.outbox set status = 'sending', message_id = '<x@y>' "
                "where contact_id = 'anna'"
            )
        )
    with scripted_smtp() as (url, server):
        too_early = run(pool, url, now=NOW + dt.timedelta(seconds=30))
        assert (too_early.released, too_early.flagged_ambiguous, too_early.sent) == (0, [], 0)
        report = run(pool, url, now=NOW + 2 * MINUTE)
    assert (report.released, report.flagged_ambiguous, report.sent) == (2, [1], 2)
    assert outbox(pool, "contact_id, status, claimed_by is null") == [
        ("anna", "ambiguous", False),
        ("bert", "sent", False),
        ("cora", "sent", False),
    ]
    assert sorted(m["To"] for m in server.messages()) == ["bert@example.com", "cora@example.com"]
    assert "1 interrupted send(s) flagged ambiguous (outbox ids 1)" in report.describe()


def test_a_worker_whose_claim_was_taken_back_sends_nothing(pool):
    add_contacts(pool, [{"contact_id": "anna"}])
    add_outbox(pool, [{"contact_id": "anna"}])
    claim_batch(pool, CONFIG, NOW, 10, "slow-worker", MINUTE, relations=RELATIONS)
    with scripted_smtp() as (url, server):
        # The lease ran out, another run took the row and sent it.
        run(pool, url, now=NOW + 2 * MINUTE)
        # The slow worker's late 'sending' mark is fenced by claimed_by: nothing happens.
        with pool.begin() as connection:
            fenced = connection.execute(
                sa.text(
                    "update ops.outbox set status = 'sending' where outbox_id = 1 "
                    "and status = 'claimed' and claimed_by = 'slow-worker'"
                )
            ).rowcount
    assert fenced == 0
    assert len(server.received) == 1


def test_dry_run_composes_and_reports_but_changes_nothing(pool):
    add_contacts(
        pool,
        [{"contact_id": "anna"}, {"contact_id": "bert", "consent_status": "none"}],
    )
    add_outbox(
        pool,
        [
            {"contact_id": "anna", "scheduled_at": NOW - dt.timedelta(hours=2)},
            {"contact_id": "bert"},
        ],
    )
    # anna's was claimed an hour ago by a dispatcher that died: recovery would release it.
    claim_batch(pool, CONFIG, NOW - dt.timedelta(hours=1), 1, "dead", MINUTE, relations=RELATIONS)
    before = outbox(pool, "*")
    report = run(pool, None, dry_run=True)
    assert outbox(pool, "*") == before
    assert report.dry_run
    assert (report.released, report.claimed, report.composed, report.sent) == (1, 1, 1, 0)
    assert report.suppressed == {"consent_none": 1}
    assert report.describe().startswith("dry run (nothing sent, nothing changed)")


def test_two_dispatchers_at_once_send_each_of_2000_mails_once(pool):
    contacts = [{"contact_id": f"c{number:04d}"} for number in range(2000)]
    add_contacts(pool, contacts)
    add_outbox(pool, contacts)
    reports = []
    with scripted_smtp() as (url, server):

        def one_dispatcher():
            reports.append(run(pool, url, concurrency=2, batch_size=25))

        threads = [threading.Thread(target=one_dispatcher) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sum(report.sent for report in reports) == 2000
    assert all(report.sent > 0 for report in reports)  # both really worked
    ids = server.message_ids()
    assert len(ids) == 2000 and max(ids.values()) == 1
    recipients = [envelope[1][0] for envelope in server.envelopes]
    assert len(set(recipients)) == 2000
    assert statuses(pool) == {"sent": 2000}


def test_max_messages_stops_after_that_many_rows(pool):
    contacts = [{"contact_id": f"c{number}"} for number in range(7)]
    add_contacts(pool, contacts)
    add_outbox(pool, contacts)
    with scripted_smtp() as (url, server):
        report = run(pool, url, batch_size=2, max_messages=5)
    assert report.sent == 5 and len(server.received) == 5
    assert statuses(pool) == {"sent": 5, "pending": 2}


def test_an_unreachable_server_stops_the_run_and_hands_the_rows_back(pool):
    add_contacts(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}])
    add_outbox(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}])
    with scripted_smtp() as (url, _server):
        pass  # stopped: nothing listens on that port any more
    with pytest.raises(DispatchError, match="cannot connect to the SMTP server") as raised:
        run(pool, url)
    assert raised.value.report.sent == 0
    assert outbox(pool, "status, claimed_by, attempts") == [("pending", None, 0)] * 2


def test_an_email_message_alone_is_a_valid_compose_result(pool):
    add_contacts(pool, [{"contact_id": "anna", "language": "it"}])
    add_outbox(pool, [{"contact_id": "anna"}])

    def bare(row, contact):
        message = EmailMessage()
        message["Subject"] = "Ciao"
        message.set_content("Ciao Anna\n")
        return message

    with scripted_smtp() as (url, server):
        run(pool, url, compose=bare)
    [message] = server.messages()
    # No language from compose: the contact's.
    assert message["Content-Language"] == "it"
    assert outbox(pool, "status, language") == [("sent", "it")]


# --- groups ------------------------------------------------------------------------------


def failing_on_send(monkeypatch, number: int, error: BaseException) -> None:
    """The real SMTP connection, except that its `number`-th send raises `error`."""
    original = SmtpConnection.send
    sends = {"count": 0}

    def send(self, sender, recipient, data):
        sends["count"] += 1
        if sends["count"] == number:
            raise error
        return original(self, sender, recipient, data)

    monkeypatch.setattr(SmtpConnection, "send", send)


def test_a_group_is_marked_and_recorded_together_and_its_unsent_rows_go_back(pool, monkeypatch):
    contacts = [{"contact_id": f"c{number}"} for number in range(5)]
    add_contacts(pool, contacts)
    add_outbox(pool, contacts)
    # The server becomes unreachable at the third mail of the group of four: nothing of
    # that mail left, so it and the fourth go back to pending with the fifth (never marked).
    failing_on_send(monkeypatch, 3, SmtpUnavailable("the SMTP server went away"))
    with (
        scripted_smtp() as (url, server),
        pytest.raises(DispatchError, match="the SMTP server went away") as raised,
    ):
        run(pool, url, group_size=4)
    assert (raised.value.report.sent, raised.value.report.claimed) == (2, 2)
    assert outbox(pool, "contact_id, status, claimed_by is null, message_id is null") == [
        ("c0", "sent", False, False),
        ("c1", "sent", False, False),
        ("c2", "pending", True, False),  # its Message-ID is kept for the next attempt
        ("c3", "pending", True, False),
        ("c4", "pending", True, True),
    ]
    assert [m["To"] for m in server.messages()] == ["c0@example.com", "c1@example.com"]


def test_a_send_interrupted_by_an_unexpected_error_stays_sending_then_turns_ambiguous(
    pool, monkeypatch
):
    contacts = [{"contact_id": f"c{number}"} for number in range(4)]
    add_contacts(pool, contacts)
    add_outbox(pool, contacts)
    failing_on_send(monkeypatch, 2, RuntimeError("worker crashed mid-transaction"))
    with scripted_smtp() as (url, server):
        with pytest.raises(DispatchError, match="worker crashed mid-transaction"):
            run(pool, url, group_size=4)
        # What the crashed send did is unknown: its row waits in `sending` for its lease.
        assert outbox(pool, "contact_id, status") == [
            ("c0", "sent"),
            ("c1", "sending"),
            ("c2", "pending"),
            ("c3", "pending"),
        ]
        monkeypatch.undo()
        later = run(pool, url, now=NOW + dt.timedelta(hours=1))
    assert (later.flagged_ambiguous, later.sent) == ([2], 2)
    assert outbox(pool, "contact_id, status") == [
        ("c0", "sent"),
        ("c1", "ambiguous"),
        ("c2", "sent"),
        ("c3", "sent"),
    ]
    assert len(server.received) == 3


def test_groups_get_smaller_under_a_slow_rate_limit():
    lease = dt.timedelta(minutes=10)  # a group may take at most 150 seconds
    assert paced_group_size(20, lease, None, 2) == 20
    assert paced_group_size(20, lease, 600, 2) == 20  # 0.2 s a mail per worker
    assert paced_group_size(20, lease, 6, 1) == 15  # 10 s a mail
    assert paced_group_size(20, lease, 6, 2) == 7  # 20 s a mail per worker
    assert paced_group_size(20, lease, 0.1, 1) == 1  # never less than one


# --- MIME --------------------------------------------------------------------------------


def test_mime_alternative_writes_a_multipart_mail_any_parser_reads_back():
    subject = "Willkommen – Ihre ersten Schritte mit der HydroStat 3000, Frau Müller " * 2
    text = "Grüße,\n.\nline with trailing space \n" + "x" * 120 + "\n=_not a boundary"
    html = "<p>Hallo Müller</p>\r\n<a href='https://shop.example/?a=1&b=2'>hier</a>"
    data = mime_alternative(
        subject,
        text,
        html,
        {"X-Campaign": "launch €", "From": "forged@x.example", "X-Note": "one\r\nX: y"},
    )
    lines = data.split(b"\r\n")
    assert b"\n" not in b"".join(lines)  # CRLF only
    assert max(len(line) for line in lines) <= 76
    message = BytesParser(policy=default_policy).parsebytes(data.replace(b"\r\n", b"\n"))
    assert message["Subject"] == " ".join(subject.split())
    assert message["X-Campaign"] == "launch €"
    assert message["From"] is None  # the dispatcher's header, never a renderer's
    assert message["X-Note"] == "one X: y" and message["X"] is None  # no injection
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.iter_parts()
    assert plain.get_content() == text + "\n"
    assert (
        rich.get_content()
        == "<p>Hallo Müller</p>\n<a href='https://shop.example/?a=1&b=2'>hier</a>\n"
    )
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"


def test_a_campaign_dispatch_sends_only_that_campaigns_mails(pool):
    add_contacts(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}])
    add_outbox(
        pool,
        [
            {"contact_id": "anna", "campaign_id": "onboarding"},
            {"contact_id": "bert", "campaign_id": "cross_sell"},
        ],
    )
    with scripted_smtp() as (url, server):
        first = run(pool, url, campaign_id="onboarding")
        rest = run(pool, url)

    assert (first.sent, rest.sent) == (1, 1)
    assert [(r[0], r[1]) for r in outbox(pool, "campaign_id, status, outbox_id")] == [
        ("onboarding", "sent"),
        ("cross_sell", "sent"),
    ]
    assert [m["To"] for m in server.messages()] == ["anna@example.com", "bert@example.com"]


def test_a_non_ascii_header_is_split_into_encoded_words_of_whole_characters():
    value = "Grüße 😀 " * 9 + "€" * 20
    line = header_line("Subject", value)
    assert line.startswith("Subject: =?utf-8?b?") and line.endswith("?=\r\n")
    words = line[len("Subject: ") : -2].split("\r\n ")
    assert len(words) > 1
    decoded = [base64.b64decode(word[len("=?utf-8?b?") : -2]) for word in words]
    assert all(len(word) <= 39 for word in decoded)
    # Each word is whole UTF-8 on its own (no character split between two words), and the
    # words are filled greedily: the next word's first character did not fit.
    assert "".join(word.decode("utf-8") for word in decoded) == " ".join(value.split())
    for word, following in itertools.pairwise(decoded):
        first = following.decode("utf-8")[0].encode("utf-8")
        assert len(word) + len(first) > 39


def test_a_claim_reads_due_rows_in_order_from_the_index_without_sorting_them(pool):
    # The claim locks the first `limit` due rows in (scheduled_at, outbox_id) order: read in
    # that order from the pending index, it stops after them instead of sorting every
    # pending row (seq scans off: on a table this small the planner would rightly read it
    # whole; the question is whether the index can give the order at all).
    add_contacts(pool, [{"contact_id": f"c{n}"} for n in range(30)])
    add_outbox(pool, [{"contact_id": f"c{n}"} for n in range(30)])
    with pool.begin() as connection:
        connection.exec_driver_sql("set local enable_seqscan = off")
        plan = "\n".join(
            row[0]
            for row in connection.execute(
                sa.text("explain " + _DUE.text),
                {"now": NOW, "limit": 10, "campaign_id": None},
            )
        )
    assert "outbox_pending_idx" in plan, plan
    assert "Sort" not in plan, plan
