"""The demo's recipients: reading tracked mails, rewriting their URLs, and the requests against
a real tracking service on hand-made sent mails."""

from __future__ import annotations

import datetime as dt
import random
from email.message import EmailMessage

import pytest

from leadflow.demo import engagement as eg
from leadflow.messaging import links
from leadflow.paths import PROJECT_ROOT
from tests.leadflow.tracking.data import (
    BASE,
    SECRET,
    add_contact,
    add_link,
    add_mail,
    click_token,
    events,
    mail_token,
    shipped_config,
)

LOCAL = "http://127.0.0.1:9999"


def mail_bytes(message_id: str, opened: str, clicks: list[str], unsubscribe: str) -> bytes:
    """A sent mail as the dispatcher writes it: links, hidden honeypot, pixel, List-Unsubscribe."""
    message = EmailMessage()
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = f"<{unsubscribe}>, <mailto:unsubscribe@steinhoff.example>"
    anchors = "".join(f'<a href="{url}">more</a>' for url in clicks)
    message.set_content("plain text")
    message.add_alternative(
        f'<html><body><a href="https://www.steinhoff.example/">site</a>{anchors}'
        f'<a href="{unsubscribe}">unsubscribe</a><img src="{opened}" width="1" height="1">'
        "</body></html>",
        subtype="html",
    )
    return bytes(message)


def test_read_mail_finds_pixel_tracked_links_and_the_one_click_url():
    raw = mail_bytes(
        "<m1@steinhoff.example>",
        f"{BASE}/o/OPEN.gif",
        [f"{BASE}/c/A", f"{BASE}/c/B", f"{BASE}/c/A"],
        f"{BASE}/u/UNSUB",
    )
    mail = eg.read_mail(raw, BASE + "/")
    assert mail == eg.TrackedMail(
        message_id="<m1@steinhoff.example>",
        open_url=f"{BASE}/o/OPEN.gif",
        click_urls=(f"{BASE}/c/A", f"{BASE}/c/B"),  # the site link is not tracked; A once
        unsubscribe_url=f"{BASE}/u/UNSUB",
    )


def test_rewrite_swaps_only_the_tracking_prefix():
    assert eg.rewrite(f"{BASE}/c/TOKEN", BASE, LOCAL + "/") == f"{LOCAL}/c/TOKEN"
    assert eg.rewrite(f"{BASE}/o/T.gif", BASE + "/", LOCAL) == f"{LOCAL}/o/T.gif"
    with pytest.raises(eg.EngagementError):
        eg.rewrite("https://www.steinhoff.example/c/TOKEN", BASE, LOCAL)


def test_people_prefer_tagged_links_and_never_follow_the_hidden_one():
    tags = {"plain": None, "trap": "honeypot", "cleaning": "cleaning_agent"}
    rng = random.Random(1)
    chosen = {
        eg.choose_link(["plain", "trap", "cleaning"], tags, rng, "honeypot") for _ in range(20)
    }
    assert chosen == {"cleaning"}
    assert eg.choose_link(["plain", "trap"], tags, rng, "honeypot") == "plain"
    assert eg.choose_link(["trap"], tags, rng, "honeypot") is None


def two_mails() -> list[eg.TrackedMail]:
    return [
        eg.TrackedMail("<a>", "o-a", ("c-a1", "c-a2"), "u-a"),
        eg.TrackedMail("<b>", "o-b", ("c-b1",), "u-b"),
    ]


def test_plan_everyone_opens_and_clicks_one_scanner_and_no_unsubscribe_left():
    tags = {"c-a2": "software"}
    requests = eg.plan(two_mails(), tags, seed=7, open_share=1.0, click_share=1.0, scanned=1)
    people = [(r.kind, r.url) for r in requests if r.user_agent == eg.BROWSER_USER_AGENT]
    assert people == [("open", "o-a"), ("click", "c-a2"), ("open", "o-b"), ("click", "c-b1")]
    scanner = [(r.kind, r.url) for r in requests if r.user_agent == eg.SCANNER_USER_AGENT]
    # One mail scanned: its pixel and every link.
    assert scanner in (
        [("open", "o-a"), ("click", "c-a1"), ("click", "c-a2")],
        [("open", "o-b"), ("click", "c-b1")],
    )
    # Every mail was touched by a person: nobody unsubscribes.
    assert all(r.kind != "unsubscribe" for r in requests)
    assert eg.plan(two_mails(), tags, seed=7, open_share=1.0, click_share=1.0, scanned=1) == (
        requests
    )


def test_plan_nobody_engages_so_the_first_mail_unsubscribes():
    requests = eg.plan(two_mails(), {}, seed=7, open_share=0.0, click_share=0.0, scanned=0)
    assert requests == [eg.Request("unsubscribe", "u-a", eg.BROWSER_USER_AGENT)]


def test_the_real_service_records_people_scanners_too_fast_clicks_and_the_unsubscribe(
    warehouse, monkeypatch
):
    monkeypatch.setenv("LEADFLOW_TRACKING_SECRET", SECRET)
    config = shipped_config()
    add_contact(warehouse, "C-1", "anna@example.com")
    add_contact(warehouse, "C-2", "ben@example.com")
    add_contact(warehouse, "C-3", "cleo@example.com")
    anna = add_mail(warehouse, "C-1")  # sent an hour ago
    ben = add_mail(warehouse, "C-2", sent_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    cleo = add_mail(warehouse, "C-3")
    cleaning = add_link(
        warehouse, anna, "https://www.steinhoff.example/hydroclean", "cleaning_agent"
    )
    trap = add_link(warehouse, anna, "https://www.steinhoff.example/trap", "honeypot")
    future = add_link(warehouse, ben, "https://www.steinhoff.example/kit", "maintenance_device")

    def url(purpose: links.Purpose, outbox_id: int, contact: str) -> str:
        suffix = ".gif" if purpose == "open" else ""
        return f"{BASE}/{links.ROUTES[purpose]}/{mail_token(outbox_id, contact, purpose)}{suffix}"

    anna_urls = (f"{BASE}/c/{click_token(cleaning)}", f"{BASE}/c/{click_token(trap)}")
    mails = [
        eg.TrackedMail("<a>", url("open", anna, "C-1"), anna_urls, url("unsubscribe", anna, "C-1")),
        eg.TrackedMail("<b>", url("open", ben, "C-2"), (f"{BASE}/c/{click_token(future)}",), None),
        eg.TrackedMail("<c>", None, (), url("unsubscribe", cleo, "C-3")),
    ]
    tags = {anna_urls[0]: "cleaning_agent", anna_urls[1]: "honeypot"}
    requests = eg.plan(mails, tags, 3, "honeypot", open_share=1.0, click_share=1.0, scanned=0)
    requests.append(eg.Request("open", mails[0].open_url or "", eg.SCANNER_USER_AGENT))
    with eg.tracking_service(warehouse, PROJECT_ROOT / "include" / "config") as served:
        answered = eg.send(requests, config.company.tracking.base_url, served)
    assert answered == {"open 200": 3, "click 302": 2, "unsubscribe 200": 1}
    recorded = events(
        warehouse,
        "event_type, contact_id, link_tag, is_machine, properties ->> 'machine_reason'",
    )
    assert sorted(recorded, key=str) == sorted(
        [
            ("email_open", "C-1", None, False, None),
            ("email_click", "C-1", "cleaning_agent", False, None),
            ("email_open", "C-2", None, False, None),
            # Sent "tomorrow": a click now is less than 10 s after the send.
            ("email_click", "C-2", "maintenance_device", True, "too_fast"),
            ("email_open", "C-1", None, True, "user_agent"),
            ("unsubscribe", "C-3", None, False, None),
        ],
        key=str,
    )


def test_the_demo_week_of_campaign_days_ends_yesterday():
    from leadflow.demo.scenario import demo_as_of

    # Campaign days 22..26 November; the nightly build after them is for the 27th, today.
    assert demo_as_of(dt.date(2026, 11, 27)) == dt.date(2026, 11, 22)
    assert demo_as_of(dt.date(2026, 3, 2), campaign_days=3) == dt.date(2026, 2, 27)
