"""Classification of the real bounce, auto-reply and complaint samples in bounce_mail/.

Each file's expectation was decided by reading the message itself; the reason says what in
it decides. A new file in the folder fails `test_every_sample_has_an_expectation` until it
gets a row here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from leadflow.messaging.bounces import MalformedMessage, classify

SAMPLES = Path(__file__).parent / "bounce_mail"

H, S, C = "hard", "soft", "complaint"

# file: (class, {address: kind}, why)
EXPECTED: dict[str, tuple[str, dict[str, str], str]] = {
    "arf-01.eml": ("complaint", {}, "ARF abuse report; recipient redacted (Redacted-Address)"),
    "arf-02.eml": (
        "complaint",
        {"this-local-part-does-not-exist-on-yahoo@yahoo.com": C},
        "Yahoo ARF abuse report naming Original-Rcpt-To",
    ),
    "is-not-bounce-01.eml": ("not_a_bounce", {}, "a plain personal text mail"),
    "is-not-bounce-02.eml": ("not_a_bounce", {}, "a person forwarding a mail as attachment"),
    "lhost-exim-01.eml": (
        "hard_bounce",
        {"kijitora@example.ed.jp": H},
        "Exim 'permanent error', 550 5.7.0 after MAIL FROM",
    ),
    "lhost-exim-02.eml": (
        "hard_bounce",
        {"kijitora@example.jp": H, "sabatora@example.jp": H},
        "Exim permanent error, two recipients 550 User Unknown",
    ),
    "lhost-exim-03.eml": (
        "hard_bounce",
        {"kijitora@example.jp": H},
        "Exim permanent error 554 5.7.0; X-Failed-Recipients names the address",
    ),
    "lhost-exim-04.eml": (
        "hard_bounce",
        {"kijitora@example.ed.jp": H},
        "Exim permanent error; bare local part in text, full address in X-Failed-Recipients",
    ),
    "lhost-exim-05.eml": (
        "hard_bounce",
        {"kijitora@neko.example.co.jp": H},
        "old Exim 553 5.1.1 unknown or illegal user",
    ),
    "lhost-exim-06.eml": (
        "hard_bounce",
        {"kijitora@example.com": H},
        "Exim permanent error: retry timeout exceeded (gave up)",
    ),
    "lhost-exim-07.eml": (
        "hard_bounce",
        {"shiba@example.com": H},
        "Exim permanent error: mailbox full, retry timeout exceeded",
    ),
    "lhost-exim-08.eml": (
        "hard_bounce",
        {"kijitora@example.org": H},
        "Exim: all hosts failing for a long time, address failed",
    ),
    "lhost-gmail-01.eml": (
        "hard_bounce",
        {"userunknown@example.jp": H},
        "Gmail 'failed permanently', 550 5.1.1 User Unknown",
    ),
    "lhost-gmail-03.eml": (
        "hard_bounce",
        {"kijitora@example.co.jp": H},
        "Gmail 'failed permanently', 554 5.7.0",
    ),
    "lhost-gmail-04.eml": (
        "hard_bounce",
        {"kijitora@example.com": H},
        "Gmail 'failed permanently', 554 5.7.1 blocked",
    ),
    "lhost-gmail-05.eml": (
        "hard_bounce",
        {"shironeko@example.jp": H},
        "Gmail 'failed permanently', 550 5.7.1 access denied",
    ),
    "lhost-gmail-06.eml": (
        "soft_bounce",
        {"kijitora@example.jp": S},
        "Gmail 'has been delayed', 450 4.2.2 mailbox full, warning only",
    ),
    "lhost-gmail-07.eml": (
        "hard_bounce",
        {"kijitora@example.ed.jp": H},
        "Gmail 'failed permanently'",
    ),
    "lhost-gmail-08.eml": (
        "soft_bounce",
        {"kijitora@example.com": S},
        "Gmail 'has been delayed', will be retried",
    ),
    "lhost-office365-01.eml": (
        "hard_bounce",
        {"kijitora@example.com": H},
        "Office 365 report without its delivery-status part: text says 550 5.1.10",
    ),
    "lhost-office365-02.eml": (
        "hard_bounce",
        {"kijitora@example.onmicrosoft.com": H},
        "Office 365 plain-text report: 550 5.1.1 RecipNotFound",
    ),
    "lhost-office365-03.eml": (
        "hard_bounce",
        {"kijitora@example.com": H},
        "DSN Action failed, Status 5.1.0",
    ),
    "lhost-office365-04.eml": (
        "hard_bounce",
        {"otsu-sakaba-hunter-neko-nyaaaaaaan@ezweb.ne.jp": H},
        "DSN Action failed, Status 5.1.351 unknown recipient",
    ),
    "lhost-office365-05.eml": (
        "hard_bounce",
        {"kijitora@example.jp": H},
        "DSN Action failed, Status 5.1.8",
    ),
    "lhost-office365-06.eml": (
        "hard_bounce",
        {"neko@libsisimai.org": H},
        "DSN Action failed, Status 5.4.312 message expired",
    ),
    "lhost-postfix-01.eml": (
        "hard_bounce",
        {"kijitora@example.org": H},
        "DSN failed 5.1.1; Original-Recipient (what was sent to) differs from Final-Recipient",
    ),
    "lhost-postfix-02.eml": (
        "hard_bounce",
        {"filtered@example.co.jp": H, "userunknown@example.co.jp": H},
        "DSN, two recipients failed 5.2.1 and 5.1.1",
    ),
    "lhost-postfix-03.eml": (
        "hard_bounce",
        {"kijitora@example.net": H},
        "DSN failed 5.0.0 unknown user",
    ),
    "lhost-postfix-04.eml": (
        "hard_bounce",
        {"kijitora@example.co.jp": H},
        "DSN failed 5.1.1 address rejected",
    ),
    "lhost-postfix-05.eml": (
        "soft_bounce",
        {"kijitora@example.org": S},
        "DSN failed but Status 4.1.1 (450): transient",
    ),
    "lhost-postfix-06.eml": (
        "hard_bounce",
        {"kijitora@neko.example.jp": H},
        "DSN failed 5.4.4 host not found",
    ),
    "lhost-postfix-07.eml": (
        "hard_bounce",
        {"kijitora@user.example.or.jp": H},
        "old Postfix notification without DSN: 'said: 550 User unknown'",
    ),
    "lhost-postfix-08.eml": (
        "soft_bounce",
        {"kijitora@example.com": S},
        "DSN failed, Status 4.4.1 connection refused: transient",
    ),
    "lhost-postfix-09.eml": (
        "soft_bounce",
        {"kijitora@example.ne.jp": S},
        "DSN failed, Status 4.3.2 rate limit: transient",
    ),
    "lhost-postfix-10.eml": (
        "hard_bounce",
        {"kijitora@example.jp": H},
        "DSN failed 5.1.8 sender domain rejected",
    ),
    "lhost-postfix-11.eml": (
        "hard_bounce",
        {"kijitora@example.jp": H, "noraneko@example.jp": H},
        "DSN, two recipients failed 5.1.8",
    ),
    "lhost-postfix-13.eml": (
        "hard_bounce",
        {"kijitora@example.jp": H, "noraneko@example.jp": H},
        "DSN, two recipients failed 5.2.1 and 5.2.2 (5.x.x: hard)",
    ),
    "lhost-postfix-14.eml": (
        "hard_bounce",
        {"kijitora@2jo.example.jp": H},
        "DSN failed 5.1.1 unknown user",
    ),
    "lhost-postfix-15.eml": (
        "soft_bounce",
        {"kijitora@bukkoji.example.org": S},
        "DSN failed, Status 4.4.1: transient",
    ),
    "lhost-postfix-16.eml": (
        "hard_bounce",
        {"kijitora@example.go.jp": H},
        "DSN failed 5.1.6 no longer on server",
    ),
    "lhost-postfix-17.eml": (
        "hard_bounce",
        {"kijitora@example.org": H},
        "DSN failed 5.4.4 malformed MX",
    ),
    "rfc3464-01.eml": (
        "hard_bounce",
        {"userunknown@bouncehammer.jp": H},
        "sendmail DSN failed 5.1.1 User Unknown",
    ),
    "rfc3464-03.eml": (
        "hard_bounce",
        {"kijitora@example.com": H},
        "DSN failed 5.0.0 rejected for policy reasons",
    ),
    "rfc3464-04.eml": (
        "hard_bounce",
        {"kijitora@neko.example.edu": H},
        "DSN with broken MIME boundaries: text says permanent fatal error for the address",
    ),
    "rfc3464-06.eml": (
        "hard_bounce",
        {"kijitora@example.net": H},
        "DSN with broken MIME boundaries: text says permanent fatal error for the address",
    ),
    "rfc3464-07.eml": (
        "soft_bounce",
        {"kijitora@example.net": S},
        "DSN Action Delayed, Status 4.4.0",
    ),
    "rfc3464-08.eml": (
        "hard_bounce",
        {"kijitora@example.net": H},
        "Barracuda DSN failed 5.7.1 content rejected",
    ),
    "rfc3464-09.eml": (
        "soft_bounce",
        {"kijitora-nyaaaaaan@example.co.jp": S},
        "delivery-status part inside multipart/mixed: Action delayed 4.3.0 (Original-Recipient)",
    ),
    "rfc3464-10.eml": (
        "hard_bounce",
        {"kijitora@example.jp": H},
        "DSN failed 5.1.6 no longer on server",
    ),
    "rfc3834-01.eml": (
        "auto_reply",
        {},
        "Auto-Submitted: auto-replied from a person, 'Away until'",
    ),
    "rfc3834-02.eml": ("auto_reply", {}, "Exchange 'Automatic reply:' out of office"),
    "rfc3834-03.eml": ("auto_reply", {}, "iCloud vacation 'Auto reply:'"),
}


def sample_files() -> list[str]:
    return sorted(p.name for p in SAMPLES.iterdir() if p.name not in ("README.md", "LICENSE"))


def test_every_sample_has_an_expectation():
    assert sample_files() == sorted(EXPECTED)
    assert len(EXPECTED) == 52


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_is_classified_as_expected(name):
    expected_class, expected_failures, _why = EXPECTED[name]
    found = classify((SAMPLES / name).read_bytes())
    assert found.kind == expected_class
    assert {f.email: f.kind for f in found.failures} == expected_failures


def test_the_samples_hold_each_class_as_counted_by_hand():
    classes = [kind for kind, _, _ in EXPECTED.values()]
    assert {c: classes.count(c) for c in set(classes)} == {
        "hard_bounce": 37,
        "soft_bounce": 8,
        "complaint": 2,
        "auto_reply": 3,
        "not_a_bounce": 2,
    }


def test_dsn_keeps_status_and_diagnostic_per_recipient():
    found = classify((SAMPLES / "lhost-postfix-13.eml").read_bytes())
    assert [(f.email, f.status) for f in found.failures] == [
        ("kijitora@example.jp", "5.2.1"),
        ("noraneko@example.jp", "5.2.2"),
    ]
    assert found.failures[1].diagnostic == "smtp; 550 5.2.2 <noraneko@example.jp>... Mailbox Full"


def test_the_original_message_id_is_found_in_the_attached_message_or_quoted_headers():
    attached = classify((SAMPLES / "rfc3464-01.eml").read_bytes())
    assert attached.original_message_ids == ("<E1C50F1B-1C83-4820-BC36-AC6FBFBE8568@example.org>",)
    # Gmail quotes the original as text after "----- Original message -----"
    quoted = classify((SAMPLES / "lhost-gmail-07.eml").read_bytes())
    assert quoted.original_message_ids == ("<000000000000000000000000000000000@mail.example.com>",)


def test_mixed_dsn_is_hard_when_one_recipient_failed_permanently():
    dsn = (
        b"From: MAILER-DAEMON@mx.example\nTo: bounces@leadflow.example\n"
        b"Subject: Undelivered Mail\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nfailed\n"
        b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
        b"Final-Recipient: rfc822; A@Example.com\nAction: delayed\nStatus: 4.2.2\n\n"
        b"Final-Recipient: rfc822; b@example.com\nAction: failed\nStatus: 5.1.1\n\n"
        b"Final-Recipient: rfc822; c@example.com\nAction: delivered\nStatus: 2.0.0\n\n"
        b"--b--\n"
    )
    found = classify(dsn)
    assert found.kind == "hard_bounce"
    assert {f.email: f.kind for f in found.failures} == {"a@example.com": S, "b@example.com": H}


def test_a_vacation_reply_is_an_auto_reply_even_when_it_quotes_a_failure():
    reply = (
        b"From: anna@example.com\nTo: news@leadflow.example\nSubject: Out of Office: News\n"
        b"X-Autoreply: yes\n\nI am away. Your mail said: 550 5.1.1 user unknown\n"
    )
    assert classify(reply).kind == "auto_reply"


def test_a_not_spam_feedback_report_is_no_complaint():
    report = (
        b"From: fbl@isp.example\nTo: abuse@leadflow.example\nSubject: FBL\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nreport\n"
        b"--b\nContent-Type: message/feedback-report\n\nFeedback-Type: not-spam\n"
        b"Original-Rcpt-To: anna@example.com\n\n--b--\n"
    )
    found = classify(report)
    assert (found.kind, found.failures, found.detail["feedback_type"]) == (
        "not_a_bounce",
        (),
        "not-spam",
    )


@pytest.mark.parametrize("raw", [b"", b"this is not a mail message\n"])
def test_bytes_without_headers_are_malformed(raw):
    with pytest.raises(MalformedMessage):
        classify(raw)
