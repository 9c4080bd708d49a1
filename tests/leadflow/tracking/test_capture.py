"""E-book capture with double opt-in, and web events tied to contacts (SPEC §2.1, §2.2, §2.9).

The service is the real app (`create_app`) on a fresh warehouse; the confirmation mail goes
to a real SMTP server on loopback (SmtpSink). Events pass through the real event writer:
leaving the TestClient block shuts the app down, which writes every buffered event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from leadflow.config import load_config
from leadflow.messaging import links
from leadflow.messaging.dispatch import claim_batch
from leadflow.messaging.smtp_sink import SmtpSink
from leadflow.paths import PROJECT_ROOT
from leadflow.tracking.app import create_app
from leadflow.tracking.settings import TrackingSettings
from tests.leadflow.messaging.dispatch_data import RELATIONS, add_outbox
from tests.leadflow.segments.data import FACTS_TABLE, create_facts_table

CONFIG = load_config(PROJECT_ROOT / "include" / "config")
SECRET = "s3cr3t-for-tests-only-0123456789abcdef"
VISITOR_IP = "203.0.113.9"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
EBOOK = "ebook_antriebslosigkeit"
EBOOK_URL = "https://www.steinhoff-hydraulik.example/downloads/ebook-antriebslosigkeit.pdf"
FORM = {
    "email": "  Jana.Novak@Example.com ",
    "salutation": "Frau",
    "first_name": "Jana",
    "last_name": "Novak",
    "company": "Novak Maschinenbau",
    "position": "Leiterin Instandhaltung",
    "country": "de",
    "language": "de",
    "asset_id": EBOOK,
    "consent": "on",
    "consent_text_version": "ebook-consent-v3",
}


@pytest.fixture
def sink(tmp_path, monkeypatch) -> Iterator[SmtpSink]:
    with SmtpSink(tmp_path / "mail", port=0) as server:
        monkeypatch.setenv(
            CONFIG.company.delivery.smtp_url_env, f"smtp://{server.host}:{server.port}"
        )
        yield server


@pytest.fixture
def service(warehouse, sink):
    """Open a client on a fresh app: `with service() as client: ...`."""
    settings = TrackingSettings.from_config(
        CONFIG, environment="development", secret=SECRET, fair_lead_api_key="k" * 40
    )

    @contextmanager
    def open_client(user_agent: str = BROWSER) -> Iterator[TestClient]:
        app = create_app(settings, engine=warehouse, config=CONFIG)
        with TestClient(
            app, client=(VISITOR_IP, 40000), headers={"User-Agent": user_agent}
        ) as client:
            yield client

    return open_client


def rows(engine, query: str, **params) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(query), params)]


def confirmation_path(sink: SmtpSink, index: int = -1) -> str:
    body = sink.messages()[index].get_content()
    [url] = re.findall(r"https?://\S+", body)
    base = CONFIG.company.tracking.base_url
    assert url.startswith(base + "/confirm/")
    return url.removeprefix(base)


def test_the_form_records_a_pending_lead_and_mails_only_the_confirmation_link(
    warehouse, service, sink
):
    with service() as client:
        response = client.post("/forms/ebook", data=FORM)
    assert response.status_code == 200
    # in the form's language
    assert "Bitte sehen Sie in Ihr Postfach" in response.text
    assert response.headers["content-language"] == "de"
    [contact] = rows(
        warehouse,
        "select contact_id, email, salutation, first_name, last_name, position, country, "
        "language, source, consent_status, consent_at, custom from raw.contacts",
    )
    contact_id = contact[0]
    assert contact_id.startswith("web-")
    assert contact[1:] == (
        "jana.novak@example.com",
        "Frau",
        "Jana",
        "Novak",
        "Leiterin Instandhaltung",
        "DE",
        "de",
        "web:ebook",
        "pending",
        None,
        {"company": "Novak Maschinenbau"},
    )
    [mail] = sink.messages()
    assert mail["To"] == "jana.novak@example.com"
    assert mail["Subject"] == "Bitte bestätigen Sie Ihre E-Mail-Adresse"
    assert mail["List-Unsubscribe"] is None
    assert not mail.is_multipart()  # plain text: no images, no pixel, no advertising
    path = confirmation_path(sink)
    token = path.removeprefix("/confirm/")
    [request] = rows(
        warehouse,
        "select token_sha256, contact_id, asset_id, consent_text_version, source, "
        "host(requested_ip), requested_user_agent, expires_at - requested_at, confirmed_at "
        "from ops.opt_in_requests",
    )
    assert request == (
        hashlib.sha256(token.encode()).hexdigest(),
        contact_id,
        EBOOK,
        "ebook-consent-v3",
        "web:ebook",
        VISITOR_IP,
        BROWSER,
        dt.timedelta(days=7),
        None,
    )
    assert rows(
        warehouse, "select event_type, contact_id, asset_id, properties->>'form' from raw.events"
    ) == [("form_submit", contact_id, EBOOK, "ebook")]
    assert rows(warehouse, "select count(*) from ops.consents") == [(0,)]


def test_confirming_records_consent_and_the_download_once(warehouse, service, sink):
    with service() as client:
        client.post("/forms/ebook", json={**FORM, "consent": True})
        path = confirmation_path(sink)
        first = client.get(path)
        second = client.get(path)
    for response in (first, second):
        assert response.status_code == 200
        assert f'href="{EBOOK_URL}"' in response.text
    [(contact_id, status, consent_at)] = rows(
        warehouse, "select contact_id, consent_status, consent_at from raw.contacts"
    )
    assert status == "confirmed"
    [consent] = rows(
        warehouse,
        "select contact_id, email, consented_at, host(ip), user_agent, consent_text_version, "
        "source from ops.consents",
    )
    assert consent == (
        contact_id,
        "jana.novak@example.com",
        consent_at,
        VISITOR_IP,
        BROWSER,
        "ebook-consent-v3",
        "web:ebook",
    )
    assert rows(warehouse, "select confirmed_at from ops.opt_in_requests") == [(consent_at,)]
    assert rows(
        warehouse,
        "select event_type, contact_id, asset_id from raw.events order by event_seq",
    ) == [("form_submit", contact_id, EBOOK), ("download", contact_id, EBOOK)]


def test_expired_and_unknown_links_change_nothing(warehouse, service, sink):
    with service() as client:
        client.post("/forms/ebook", data=FORM)
        path = confirmation_path(sink)
        with warehouse.begin() as connection:
            connection.exec_driver_sql(
                "update ops.opt_in_requests set requested_at = now() - interval '8 days', "
                "expires_at = now() - interval '1 day'"
            )
        expired = client.get(path)
        unknown = client.get(path + "x")
        forged = client.get("/confirm/" + "A" * 43)
    assert expired.status_code == 410
    assert "Dieser Link ist abgelaufen" in expired.text  # the contact's language
    assert unknown.status_code == forged.status_code == 404
    assert rows(warehouse, "select consent_status, consent_at from raw.contacts") == [
        ("pending", None)
    ]
    assert rows(warehouse, "select count(*) from ops.consents") == [(0,)]
    assert rows(warehouse, "select confirmed_at from ops.opt_in_requests") == [(None,)]
    assert rows(warehouse, "select event_type from raw.events") == [("form_submit",)]


def test_a_link_scanner_gets_a_button_and_confirms_nothing(warehouse, service, sink):
    with service() as client:
        client.post("/forms/ebook", data=FORM)
    path = confirmation_path(sink)
    scanner = "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))"
    assert "Barracuda" in CONFIG.company.tracking.machine_traffic.user_agents.patterns
    with service(user_agent=scanner) as client:
        page = client.get(path)
    assert page.status_code == 200
    assert f'<form method="post" action="{path}">' in page.text
    assert rows(warehouse, "select consent_status from raw.contacts") == [("pending",)]
    with service() as client:
        pressed = client.post(path)
    assert pressed.status_code == 200
    assert rows(warehouse, "select consent_status from raw.contacts") == [("confirmed",)]
    assert rows(warehouse, "select count(*) from ops.consents") == [(1,)]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"email": ""}, "email", "a value is required"),
        ({"email": "jana@"}, "email", "is not a valid email address"),
        ({"consent": ""}, "consent", "the consent checkbox must be ticked"),
        ({"consent_text_version": " "}, "consent_text_version", "a value is required"),
        ({"country": "Germany"}, "country", "is not an ISO 3166 alpha-2 country code"),
        ({"asset_id": "datasheet_hs3000"}, "asset_id", "is not a gated asset"),
        ({"asset_id": "nope"}, "asset_id", "is not a gated asset"),
        ({"coupon": "x"}, "coupon", "Extra inputs are not permitted"),
    ],
)
def test_invalid_forms_get_a_422_naming_the_field_and_write_nothing(
    warehouse, service, sink, change, field, message
):
    with service() as client:
        response = client.post("/forms/ebook", data={**FORM, **change})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", field]
    assert message in problem["msg"]
    assert rows(warehouse, "select count(*) from raw.contacts") == [(0,)]
    assert rows(warehouse, "select count(*) from raw.events") == [(0,)]
    assert sink.messages() == []


def test_a_known_contact_is_filled_in_but_newer_data_is_kept(warehouse, service, sink):
    with warehouse.begin() as connection:
        connection.exec_driver_sql(
            "insert into raw.contacts (contact_id, email, first_name, last_name, position, "
            "consent_status, updated_at) values "
            # Changed after the form was sent (e.g. by the CRM sync): its names stay.
            "('newer', 'JANA.novak@example.com', 'Janina', null, 'CEO', 'confirmed', "
            "now() + interval '1 hour'), "
            "('older', 'bert@example.com', 'Bertie', null, null, 'objected', "
            "'2020-01-01T00:00:00Z')"
        )
    with service() as client:
        assert client.post("/forms/ebook", data=FORM).status_code == 200
        bert = {**FORM, "email": "Bert@Example.com", "first_name": "Bert", "last_name": "Ross"}
        assert client.post("/forms/ebook", data=bert).status_code == 200
    assert rows(
        warehouse,
        "select contact_id, email, first_name, last_name, position, country, consent_status, "
        "source, custom->>'company' from raw.contacts order by contact_id",
    ) == [
        (
            "newer",
            "JANA.novak@example.com",
            "Janina",
            "Novak",
            "CEO",
            "DE",
            "confirmed",
            None,
            "Novak Maschinenbau",
        ),
        (
            "older",
            "bert@example.com",
            "Bert",
            "Ross",
            "Leiterin Instandhaltung",
            "DE",
            "objected",
            None,
            "Novak Maschinenbau",
        ),
    ]
    assert [m["To"] for m in sink.messages()] == ["JANA.novak@example.com", "bert@example.com"]


def test_an_unreachable_mail_server_answers_503(warehouse, service, sink, monkeypatch):
    monkeypatch.setenv(CONFIG.company.delivery.smtp_url_env, "smtp://127.0.0.1:9?timeout=2")
    with service() as client:
        response = client.post("/forms/ebook", json={**FORM, "consent": True})
    assert response.status_code == 503
    assert "could not be sent" in response.json()["detail"]


def test_unconfirmed_contacts_get_no_marketing_mail(warehouse, service, sink):
    """The dispatcher's eligibility sees the capture's consent: pending → 0 mails."""
    with service() as client:
        client.post("/forms/ebook", data=FORM)
        [(contact_id,)] = rows(warehouse, "select contact_id from raw.contacts")
        with warehouse.begin() as connection:
            create_facts_table(connection)
            connection.execute(
                sa.text(
                    f"insert into public.{FACTS_TABLE} (contact_id, email, tenant_code, "
                    "customer_status, consent_status) values (:id, 'jana.novak@example.com', "
                    "'hq', 'lead', 'pending')"
                ),
                {"id": contact_id},
            )
        now = dt.datetime.now(dt.UTC)
        first, second = add_outbox(
            warehouse,
            [
                {"contact_id": contact_id, "scheduled_at": now, "requested_at": now},
                {
                    "contact_id": contact_id,
                    "step_id": "send_2",
                    "scheduled_at": now + dt.timedelta(seconds=1),
                    "requested_at": now,
                },
            ],
        )
        before = claim_batch(
            warehouse, CONFIG, now, 10, "w1", dt.timedelta(minutes=5), relations=RELATIONS
        )
        assert before.messages == []
        assert client.get(confirmation_path(sink)).status_code == 200
        after = claim_batch(
            warehouse,
            CONFIG,
            now + dt.timedelta(seconds=2),
            10,
            "w1",
            dt.timedelta(minutes=5),
            relations=RELATIONS,
        )
    assert [m.row["outbox_id"] for m in after.messages] == [second]
    assert rows(
        warehouse, "select outbox_id, status, status_reason from ops.outbox order by outbox_id"
    ) == [(first, "suppressed", "consent_pending"), (second, "claimed", None)]


# --- web events --------------------------------------------------------------------------


def visit(client: TestClient, visitor_id: str, url: str, **extra):
    return client.post("/events/web", json={"visitor_id": visitor_id, "url": url, **extra})


def test_anonymous_visits_are_attached_once_the_visitor_submits_the_form(warehouse, service, sink):
    with service() as client:
        assert visit(client, "v1", "https://www.steinhoff-hydraulik.example/").status_code == 202
        visit(client, "v1", "https://www.steinhoff-hydraulik.example/hydrostat-3000")
        visit(client, "v2", "https://www.steinhoff-hydraulik.example/")
        client.post("/forms/ebook", data={**FORM, "visitor_id": "v1"})
        visit(client, "v1", "https://www.steinhoff-hydraulik.example/downloads")
        [(contact_id,)] = rows(warehouse, "select contact_id from raw.contacts")
    assert rows(
        warehouse,
        "select event_type, visitor_id, contact_id, url, is_machine from raw.events "
        "order by event_seq",
    ) == [
        ("web_visit", "v1", contact_id, "https://www.steinhoff-hydraulik.example/", False),
        (
            "web_visit",
            "v1",
            contact_id,
            "https://www.steinhoff-hydraulik.example/hydrostat-3000",
            False,
        ),
        ("web_visit", "v2", None, "https://www.steinhoff-hydraulik.example/", False),
        ("form_submit", "v1", contact_id, None, False),
        ("web_visit", "v1", contact_id, "https://www.steinhoff-hydraulik.example/downloads", False),
    ]
    assert rows(warehouse, "select visitor_id, contact_id, linked_by from ops.visitors") == [
        ("v1", contact_id, "form_submit")
    ]


def test_a_signed_click_token_names_the_visitor_and_a_forged_one_records_nothing(
    warehouse, service, sink
):
    with warehouse.begin() as connection:
        connection.exec_driver_sql(
            "insert into ops.links (link_id, contact_id, url) "
            "values ('L1', 'c-7', 'https://www.steinhoff-hydraulik.example/hs3000')"
        )
    token = links.sign({"link_id": "L1"}, SECRET, purpose="click")
    forged = links.sign({"link_id": "L1"}, "another-secret-0123456789abcdef01", purpose="click")
    unsubscribe = links.sign({"outbox_id": 1, "contact_id": "c-7"}, SECRET, purpose="unsubscribe")
    page = "https://www.steinhoff-hydraulik.example/hs3000"
    with service() as client:
        visit(client, "v9", "https://www.steinhoff-hydraulik.example/")
        bad = [
            visit(client, "v9", page, contact_token=forged),
            visit(client, "v9", page, contact_token=unsubscribe),
            visit(client, "v9", page, contact_token=token[:-2]),
        ]
        good = visit(client, "v9", page, contact_token=token)
    assert [response.status_code for response in bad] == [422, 422, 422]
    assert bad[0].json()["detail"][0]["loc"] == ["body", "contact_token"]
    assert good.status_code == 202
    assert rows(
        warehouse, "select visitor_id, contact_id, url from raw.events order by event_seq"
    ) == [
        ("v9", "c-7", "https://www.steinhoff-hydraulik.example/"),
        ("v9", "c-7", page),
    ]


def test_web_events_validate_fields_and_flag_bots(warehouse, service, sink):
    with service() as client:
        responses = [
            visit(client, "", "https://x.example/"),
            visit(client, "v1", "javascript:alert(1)"),
            visit(client, "v1", "https://x.example/", occurred_at="yesterday"),
            client.post("/events/web", json={"url": "https://x.example/"}),
        ]
        ok = visit(client, "v1", "https://x.example/", occurred_at="2026-11-20T08:00:00")
    with service(user_agent="Mozilla/5.0 (compatible; Barracuda Sentinel (EE))") as client:
        visit(client, "v2", "https://x.example/")
    assert [r.status_code for r in responses] == [422, 422, 422, 422]
    assert [r.json()["detail"][0]["loc"][-1] for r in responses] == [
        "visitor_id",
        "url",
        "occurred_at",
        "visitor_id",
    ]
    assert ok.status_code == 202
    assert rows(
        warehouse,
        "select visitor_id, occurred_at, is_machine, properties->>'machine_reason' "
        "from raw.events order by event_seq",
    ) == [
        ("v1", dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC), False, None),
        (
            "v2",
            rows(warehouse, "select occurred_at from raw.events where visitor_id = 'v2'")[0][0],
            True,
            "user_agent",
        ),
    ]


def test_no_confirmation_mail_to_a_hard_bounced_address_and_one_per_ten_minutes(
    warehouse, service, sink
):
    from leadflow.messaging.suppression import suppress

    with warehouse.begin() as connection:
        suppress(connection, "bounced@example.com", "hard_bounce", "test")
    with service() as client:
        bounced = client.post("/forms/ebook", data={**FORM, "email": "bounced@example.com"})
        first = client.post("/forms/ebook", data=FORM)
        again = client.post("/forms/ebook", data=FORM)

    # The same answer every time: the form does not tell which addresses get mail.
    assert bounced.status_code == first.status_code == again.status_code == 200
    assert bounced.text == first.text == again.text
    assert [mail["To"] for mail in sink.messages()] == ["jana.novak@example.com"]
    assert rows(warehouse, "select email from ops.opt_in_requests") == [("jana.novak@example.com",)]


def test_the_opt_in_pages_follow_the_form_and_the_contact_not_the_browser(service, sink):
    italian = {**FORM, "email": "giulia@example.it", "country": "it", "language": "it"}
    with service() as client:
        submitted = client.post("/forms/ebook", data=italian, headers={"Accept-Language": "de"})
        assert submitted.headers["content-language"] == "it"
        assert "Controllate la vostra casella di posta" in submitted.text
        confirmed = client.get(confirmation_path(sink), headers={"Accept-Language": "de"})
    assert confirmed.status_code == 200 and confirmed.headers["content-language"] == "it"
    assert "Il vostro indirizzo e-mail è confermato." in confirmed.text
