"""Ingesting a bounce mailbox into a real warehouse: records, suppressions, events, flags."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from leadflow.config.models import SoftBounceRule
from leadflow.messaging.bounces import MailboxError, MaildirMailbox, ingest, open_mailbox
from leadflow.messaging.bounces_cli import bounces_ingest_command
from leadflow.messaging.suppression import is_suppressed, reasons, resubscribe
from leadflow.paths import PROJECT_ROOT
from tests.leadflow.messaging.test_bounces_classify import EXPECTED, SAMPLES

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
RULE = SoftBounceRule()  # 3 soft bounces within 30 days


def maildir(root: Path, messages: dict[str, bytes], subdir: str = "new") -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, raw in messages.items():
        (root / subdir / name).write_bytes(raw)
    return root


def samples() -> dict[str, bytes]:
    return {name: (SAMPLES / name).read_bytes() for name in EXPECTED}


def count(warehouse, table: str) -> int:
    with warehouse.connect() as connection:
        return connection.execute(sa.text(f"select count(*) from {table}")).scalar_one()


def rows(warehouse, sql: str) -> list[tuple]:
    with warehouse.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql))]


def run(warehouse, path: Path, rule: SoftBounceRule = RULE):
    box = MaildirMailbox(path)
    try:
        return ingest(warehouse, box, rule, now=NOW)
    finally:
        box.close()


def dsn(recipient: str, date: dt.datetime, action: str = "delayed", status: str = "4.2.2",
        original_message_id: str | None = None) -> bytes:  # fmt: skip
    """A minimal RFC 3464 report, with the original's headers when a Message-ID is given."""
    original = (
        f"--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: {original_message_id}\n"
        f"To: {recipient}\n\n"
        if original_message_id
        else ""
    )
    return (
        f"From: MAILER-DAEMON@mx.example\nTo: bounces@leadflow.example\n"
        f"Date: {date:%a, %d %b %Y %H:%M:%S +0000}\nSubject: Delivery status\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        f"--b\nContent-Type: text/plain\n\nnot delivered\n"
        f"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: {status}\n\n"
        f"{original}--b--\n"
    ).encode()


def add_outbox(warehouse, outbox_id: int, kind: str, message_id: str, recipient: str | None):
    with warehouse.begin() as connection:
        connection.execute(
            sa.text(
                "insert into ops.outbox (outbox_id, kind, campaign_id, step_id, enrolment_id, "
                "step_seq, contact_id, message, category, recipient_email, requested_at, "
                "scheduled_at, status, message_id, sent_at) values (:id, :kind, 'welcome', "
                "'mail_1', :id, 1, 'c' || :id, 'hello', 'marketing', :recipient, :at, :at, "
                "'sent', :message_id, :at)"
            ),
            {"id": outbox_id, "kind": kind, "recipient": recipient, "message_id": message_id,
             "at": NOW - dt.timedelta(days=400)},
        )  # fmt: skip


# --- the real samples ----------------------------------------------------------------------


def test_ingesting_the_samples_records_classes_suppressions_and_marks_them_seen(
    warehouse, tmp_path
):
    box = maildir(tmp_path / "Maildir", samples())
    report = run(warehouse, box)

    assert report.errors == []
    assert report.already_seen == 0
    assert report.classes == Counter(
        hard_bounce=37, soft_bounce=8, complaint=2, auto_reply=3, not_a_bounce=2
    )
    # 23 distinct hard-bouncing addresses; one complaint names its recipient (arf-01 is
    # redacted and matches no outbox row); no address has 3 soft bounces within 30 days.
    assert report.suppressions == Counter(hard_bounce=23, complaint=1)
    assert report.events == 0  # no outbox rows: nothing to attribute
    assert count(warehouse, "ops.bounce_messages") == 52
    # 41 hard rows (37 files, four of them with two recipients), 8 soft, 1 complaint
    assert rows(warehouse, "select kind, count(*) from ops.bounces group by 1 order by 1") == [
        ("complaint", 1),
        ("hard", 41),
        ("soft", 8),
    ]
    assert rows(
        warehouse, "select reason, count(*) from ops.suppressions group by 1 order by 1"
    ) == [("complaint", 1), ("hard_bounce", 23)]
    assert (
        rows(
            warehouse,
            "select classified_as, recipients, detail->>'detected_by' from ops.bounce_messages "
            "where detail->>'subject' = 'Undeliverable: Nyaan' order by recipients, 3",
        )
        == [("hard_bounce", 1, "dsn")] * 3 + [("hard_bounce", 1, "exchange_text")] * 2
    )
    # (office365-04's subject is in ISO-2022-JP: decoded, it is not this one)

    # every message moved to cur/ with the S flag, its bytes untouched
    assert list((box / "new").iterdir()) == []
    marked = {p.name: p.read_bytes() for p in (box / "cur").iterdir()}
    assert marked == {f"{name}:2,S": raw for name, raw in samples().items()}

    # the same mailbox again: everything is flagged seen, nothing is read
    again = run(warehouse, box)
    assert (sum(again.classes.values()), again.already_seen, again.errors) == (0, 0, [])

    # the same messages unflagged in another mailbox: each is known by its sha256
    copy = run(warehouse, maildir(tmp_path / "Copy", samples()))
    assert (sum(copy.classes.values()), copy.already_seen, copy.suppressed) == (0, 52, [])
    assert count(warehouse, "ops.bounce_messages") == 52
    assert count(warehouse, "ops.bounces") == 50
    assert count(warehouse, "ops.suppressions") == 24


def test_a_bounce_of_a_campaign_mail_becomes_an_email_bounced_event(warehouse, tmp_path):
    hard = (SAMPLES / "rfc3464-01.eml").read_bytes()
    soft = (SAMPLES / "lhost-postfix-05.eml").read_bytes()
    notification = (SAMPLES / "lhost-gmail-06.eml").read_bytes()
    add_outbox(warehouse, 1, "campaign_mail", "<E1C50F1B-1C83-4820-BC36-AC6FBFBE8568@example.org>",
               None)  # fmt: skip
    add_outbox(warehouse, 2, "campaign_mail", "<FFFFFFFF.0000000@example.co.jp>", None)
    add_outbox(
        warehouse, 3, "owner_notification", "<A4D6026C-0699-460F-9F86-C2A5CB4BE6CE@gmail.com>",
        "rep@example.com",
    )  # fmt: skip
    box = maildir(tmp_path / "Maildir", {"hard": hard, "soft": soft, "owner": notification})

    report = run(warehouse, box)

    assert report.events == 2  # the owner notification's bounce is no contact event
    sha = hashlib.sha256
    assert rows(
        warehouse,
        "select event_id, contact_id, event_type, campaign_id, step_id, bounce_type, "
        "occurred_at, is_machine, properties->>'outbox_id' from raw.events order by contact_id",
    ) == [
        (f"bounce:{sha(hard).hexdigest()}", "c1", "email_bounced", "welcome", "mail_1", "hard",
         dt.datetime(2013, 10, 16, 5, 15, 35, tzinfo=dt.UTC), False, "1"),
        (f"bounce:{sha(soft).hexdigest()}", "c2", "email_bounced", "welcome", "mail_1", "soft",
         dt.datetime(2012, 2, 22, 12, 50, 2, tzinfo=dt.UTC), False, "2"),
    ]  # fmt: skip
    assert rows(
        warehouse, "select email_normalized, kind, message_id from ops.bounces order by 1"
    ) == [
        ("kijitora@example.jp", "soft", "<A4D6026C-0699-460F-9F86-C2A5CB4BE6CE@gmail.com>"),
        ("kijitora@example.org", "soft", "<FFFFFFFF.0000000@example.co.jp>"),
        ("userunknown@bouncehammer.jp", "hard",
         "<E1C50F1B-1C83-4820-BC36-AC6FBFBE8568@example.org>"),
    ]  # fmt: skip


def test_a_redacted_complaint_suppresses_the_recipient_of_the_reported_mail(warehouse, tmp_path):
    redacted = (
        (SAMPLES / "arf-01.eml")
        .read_bytes()
        .replace(
            b"Subject: Kijitora cat family\n",
            b"Subject: Kijitora cat family\nMessage-ID: <m-7@leadflow.example>\n",
        )
    )
    add_outbox(warehouse, 7, "campaign_mail", "<m-7@leadflow.example>", " Anna@Example.com ")

    report = run(warehouse, maildir(tmp_path / "Maildir", {"arf": redacted}))

    assert (report.classes, report.suppressed, report.events) == (
        Counter(complaint=1),
        [("anna@example.com", "complaint")],
        0,  # a complaint is a suppression, not a bounce event
    )
    with warehouse.begin() as connection:
        assert resubscribe(connection, "anna@example.com") == 0  # nothing to re-subscribe
        assert is_suppressed(connection, "ANNA@example.com")
        assert reasons(connection, "anna@example.com") == ["complaint"]


# --- soft bounces ---------------------------------------------------------------------------


def soft_bounces(warehouse, tmp_path, address: str, days: list[int], rule=RULE) -> list[bool]:
    """Ingest one soft bounce per day offset (in that order); suppressed after each?"""
    start = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)
    suppressed = []
    for number, day in enumerate(days):
        box = maildir(tmp_path / f"{address}-{number}", {
            "m": dsn(address, start + dt.timedelta(days=day))
        })  # fmt: skip
        run(warehouse, box, rule)
        with warehouse.connect() as connection:
            suppressed.append(reasons(connection, address) == ["soft_bounces"])
    return suppressed


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ([0, 10, 29], [False, False, True]),  # three within 30 days
        ([0, 20, 40], [False, False, False]),  # never three in one window
        ([0, 15, 30], [False, False, False]),  # day 0 is outside (day 30 − 30 days, day 30]
        ([29, 0, 10], [False, False, True]),  # arrival order does not matter
        ([0, 45, 50, 52], [False, False, False, True]),
    ],
)
def test_three_soft_bounces_within_30_days_suppress(warehouse, tmp_path, days, expected):
    assert soft_bounces(warehouse, tmp_path, "soft@example.com", days) == expected


def test_the_soft_bounce_rule_comes_from_the_configuration(warehouse, tmp_path):
    rule = SoftBounceRule(max_soft_bounces=2, within_days=7)
    assert soft_bounces(warehouse, tmp_path, "s@example.com", [0, 8, 14], rule) == [
        False,
        False,
        True,
    ]


def test_a_bounce_dated_in_the_future_counts_as_received_now(warehouse, tmp_path):
    future = dsn("f@example.com", NOW + dt.timedelta(days=365), "failed", "5.1.1")
    run(warehouse, maildir(tmp_path / "Maildir", {"f": future}))
    assert rows(warehouse, "select received_at from ops.bounces") == [(NOW,)]


# --- the mailbox ---------------------------------------------------------------------------


def test_broken_messages_are_reported_and_left_unread_while_the_others_go_on(warehouse, tmp_path):
    good = (SAMPLES / "rfc3464-10.eml").read_bytes()
    box = maildir(tmp_path / "Maildir", {"a-empty": b"", "b-good": good, "c-junk": b"no mail\n"})

    report = run(warehouse, box)

    assert report.classes == Counter(hard_bounce=1)
    assert [(key, error.split(":")[0]) for key, error in report.errors] == [
        ("a-empty", "MalformedMessage"),
        ("c-junk", "MalformedMessage"),
    ]
    assert sorted(p.name for p in (box / "new").iterdir()) == ["a-empty", "c-junk"]
    assert [p.name for p in (box / "cur").iterdir()] == ["b-good:2,S"]
    assert "MalformedMessage: not a mail message: no header lines" in report.describe()


def test_flags_are_kept_and_seen_messages_are_not_read_again(warehouse, tmp_path):
    box = maildir(tmp_path / "Maildir", {}, "cur")
    (box / "cur" / "replied:2,R").write_bytes((SAMPLES / "rfc3464-10.eml").read_bytes())
    (box / "cur" / "read:2,S").write_bytes((SAMPLES / "rfc3464-08.eml").read_bytes())

    report = run(warehouse, box)

    assert report.classes == Counter(hard_bounce=1)  # only the unread one
    assert sorted(p.name for p in (box / "cur").iterdir()) == ["read:2,S", "replied:2,RS"]


def test_mailbox_urls():
    with pytest.raises(MailboxError, match="maildir://, imap:// or imaps://"):
        open_mailbox("pop3://host/")
    with pytest.raises(MailboxError, match="is not a Maildir"):
        open_mailbox("maildir:///nonexistent/folder")
    with pytest.raises(MailboxError, match=r"cannot open imap://bounce@127\.0\.0\.1/INBOX"):
        open_mailbox("imap://bounce:secret@127.0.0.1:1/INBOX")  # nothing listens on port 1


# --- the command ----------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    bounces = typer.Typer()
    bounces.command("ingest")(bounces_ingest_command)
    app.add_typer(bounces, name="bounces")
    return app


CONFIG = str(PROJECT_ROOT / "include" / "config")


def test_the_command_reads_the_mailbox_named_by_the_environment(
    cli, warehouse_url, tmp_path, monkeypatch
):
    box = maildir(tmp_path / "Maildir", {
        "hard": (SAMPLES / "rfc3464-10.eml").read_bytes(),
        "away": (SAMPLES / "rfc3834-01.eml").read_bytes(),
    })  # fmt: skip
    monkeypatch.setenv("LEADFLOW_BOUNCE_MAILBOX_URL", f"maildir://{box}")

    result = CliRunner().invoke(cli, ["bounces", "ingest", "--config", CONFIG])

    assert result.exit_code == 0, result.output
    assert result.output == "\n".join([
        f"bounces from maildir:{box}: 2 new message(s), 0 seen before, 0 error(s)",
        "class         messages",
        "------------  --------",
        "hard_bounce          1",
        "soft_bounce          0",
        "complaint            0",
        "auto_reply           1",
        "not_a_bounce         0",
        "",
        "suppressions added  addresses",
        "------------------  ---------",
        "hard_bounce                 1",
        "email_bounced events written: 0",
        "",
    ])  # fmt: skip


def test_the_command_fails_without_a_mailbox_and_on_broken_messages(
    cli, warehouse_url, tmp_path, monkeypatch
):
    monkeypatch.delenv("LEADFLOW_BOUNCE_MAILBOX_URL", raising=False)
    missing = CliRunner().invoke(cli, ["bounces", "ingest", "--config", CONFIG])
    assert missing.exit_code == 1
    assert "no bounce mailbox: set $LEADFLOW_BOUNCE_MAILBOX_URL" in missing.output

    both = CliRunner().invoke(
        cli, ["bounces", "ingest", "--config", CONFIG, "--maildir", "x", "--imap", "imap://h/"]
    )
    assert both.exit_code == 2 and "not both" in both.output

    box = maildir(tmp_path / "Maildir", {"junk": b"junk\n"})
    broken = CliRunner().invoke(
        cli, ["bounces", "ingest", "--config", CONFIG, "--maildir", str(box)]
    )
    assert broken.exit_code == 1
    assert "junk" in broken.output and "MalformedMessage" in broken.output


def test_copying_a_maildir_keeps_nothing_hidden(tmp_path):
    """Dot files (e.g. a mail client's index) are not messages."""
    box = maildir(tmp_path / "Maildir", {"m": (SAMPLES / "rfc3464-10.eml").read_bytes()})
    (box / "new" / ".index").write_bytes(b"x")
    shutil.copytree(box, tmp_path / "Copy")
    assert [key for key, _ in MaildirMailbox(tmp_path / "Copy").unread()] == ["m"]
