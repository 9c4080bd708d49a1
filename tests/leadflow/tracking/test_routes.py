"""The mail tracking routes over HTTP: pixel, click, unsubscribe, preferences."""

from __future__ import annotations

import sqlalchemy as sa

from leadflow.messaging import links
from leadflow.tracking.tracking import PIXEL
from tests.leadflow.tracking.conftest import written
from tests.leadflow.tracking.data import SECRET, click_token, count, events, mail_token

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def test_the_pixel_is_a_43_byte_transparent_gif():
    assert len(PIXEL) == 43
    assert PIXEL.startswith(b"GIF89a") and PIXEL.endswith(b";")


def test_an_open_records_the_mails_campaign_step_and_contact(client, mails, warehouse):
    response = client.get(f"/o/{mail_token(mails.anna_mail, 'C-1')}.gif")
    assert response.status_code == 200
    assert response.content == PIXEL
    assert response.headers["content-type"] == "image/gif"
    assert "no-store" in response.headers["cache-control"]
    written(client)
    assert events(warehouse, "event_type, contact_id, campaign_id, step_id, is_machine") == [
        ("email_open", "C-1", "newsletter", "send_1", False)
    ]
    (properties,) = events(warehouse, "properties")[0]
    assert properties == {"outbox_id": mails.anna_mail}


def test_bad_pixel_tokens_get_the_gif_and_record_nothing(client, mails, warehouse):
    genuine = mail_token(mails.anna_mail, "C-1")
    for token in (
        genuine[:-2] + ("AA" if genuine[-2:] != "AA" else "BB"),
        mail_token(mails.anna_mail, "C-1", purpose="click"),
        links.sign({"outbox_id": mails.anna_mail, "contact_id": "C-1"}, "x" * 40, purpose="open"),
        mail_token(999_999, "C-1"),  # genuine, but no such mail
        links.PREVIEW_TOKEN,
        "%00",
    ):
        response = client.get(f"/o/{token}.gif")
        assert (response.status_code, response.content) == (200, PIXEL)
    written(client)
    assert count(warehouse, "raw.events") == 0


def test_the_pixel_is_returned_when_recording_fails(client, mails, warehouse):
    client.app.state.writer.close()  # a closed writer refuses every event
    response = client.get(f"/o/{mail_token(mails.anna_mail, 'C-1')}.gif")
    assert (response.status_code, response.content) == (200, PIXEL)
    assert count(warehouse, "raw.events") == 0


def test_a_click_redirects_to_exactly_the_stored_url_and_records_it(client, mails, warehouse):
    response = client.get(f"/c/{click_token(mails.product_link)}")
    assert response.status_code == 302
    assert response.headers["location"] == "https://www.steinhoff.example/hydrostat?x=1"
    written(client)
    assert events(
        warehouse,
        "event_type, contact_id, campaign_id, step_id, link_id, link_tag, url, is_machine",
    ) == [
        (
            "email_click",
            "C-1",
            "newsletter",
            "send_1",
            mails.product_link,
            "product",
            "https://www.steinhoff.example/hydrostat?x=1",
            False,
        )
    ]


def test_bad_click_tokens_get_404_without_location_and_record_nothing(client, mails, warehouse):
    genuine = click_token(mails.product_link)
    for token in (
        genuine[:5] + ("A" if genuine[5] != "A" else "B") + genuine[6:],
        click_token("no-such-link"),
        click_token(mails.product_link, secret="y" * 40),
        links.sign({"link_id": mails.product_link}, SECRET, purpose="open"),
        "javascript:alert(1)",
    ):
        response = client.get(f"/c/{token}")
        assert response.status_code == 404
        assert "location" not in response.headers
    written(client)
    assert count(warehouse, "raw.events") == 0


def test_a_stored_url_that_is_not_http_is_never_followed(client, mails, warehouse):
    with warehouse.begin() as connection:
        connection.execute(
            sa.text("update ops.links set url = 'javascript:alert(1)' where link_id = :id"),
            {"id": mails.pricing_link},
        )
    response = client.get(f"/c/{click_token(mails.pricing_link)}")
    assert response.status_code == 404 and "location" not in response.headers


def test_a_honeypot_click_is_stored_as_machine_traffic(client, mails, warehouse):
    assert client.get(f"/c/{click_token(mails.honeypot_link)}").status_code == 302
    written(client)
    assert events(warehouse, "link_tag, is_machine, properties->>'machine_reason'") == [
        ("honeypot", True, "honeypot")
    ]


def test_a_scanner_user_agent_is_stored_as_machine_traffic(client, mails, warehouse):
    token = mail_token(mails.anna_mail, "C-1")
    client.get(
        f"/o/{token}.gif", headers={"User-Agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"}
    )
    client.get(f"/o/{token}.gif")
    written(client)
    assert events(warehouse, "is_machine, user_agent like '%GoogleImageProxy%'") == [
        (True, True),
        (False, False),
    ]


# --- unsubscribe ----------------------------------------------------------------------------


def _state(warehouse) -> tuple:
    with warehouse.connect() as connection:
        consent = connection.execute(
            sa.text("select consent_status from raw.contacts where contact_id = 'C-1'")
        ).scalar_one()
        rows = connection.execute(
            sa.text("select email_normalized, scope, reason, source from ops.suppressions")
        ).all()
    return consent, [tuple(row) for row in rows]


def test_get_unsubscribe_shows_a_form_and_changes_nothing(client, mails, warehouse):
    response = client.get(f"/u/{mail_token(mails.anna_mail, 'C-1', 'unsubscribe')}")
    assert response.status_code == 200
    assert '<form method="post"' in response.text
    assert 'name="List-Unsubscribe" value="One-Click"' in response.text
    written(client)
    assert _state(warehouse) == ("confirmed", [])
    assert count(warehouse, "raw.events") == 0


def test_one_click_unsubscribe_commits_before_answering(client, mails, warehouse):
    token = mail_token(mails.anna_mail, "C-1", "unsubscribe")
    response = client.post(f"/u/{token}", data=ONE_CLICK)
    assert response.status_code == 200
    assert "location" not in response.headers and "set-cookie" not in response.headers
    # No flush: the unsubscribe does not go through the buffer.
    assert _state(warehouse) == (
        "objected",
        [("anna@example.com", "all", "unsubscribe", "one_click")],
    )
    assert events(warehouse, "event_type, contact_id, campaign_id, step_id") == [
        ("unsubscribe", "C-1", "newsletter", "send_1")
    ]
    # Again: still one suppression, still one event.
    assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    assert count(warehouse, "ops.suppressions") == 1
    assert count(warehouse, "raw.events") == 1


def test_one_click_also_accepts_multipart(client, mails, warehouse):
    token = mail_token(mails.anna_mail, "C-1", "unsubscribe")
    response = client.post(f"/u/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert _state(warehouse)[0] == "objected"


def test_a_post_without_one_click_changes_nothing(client, mails, warehouse):
    token = mail_token(mails.anna_mail, "C-1", "unsubscribe")
    for data in ({}, {"List-Unsubscribe": "one-click-please"}):
        assert client.post(f"/u/{token}", data=data).status_code == 400
    assert _state(warehouse) == ("confirmed", [])
    assert count(warehouse, "raw.events") == 0


def test_forged_unsubscribe_tokens_change_nothing(client, mails, warehouse):
    for token in (
        mail_token(mails.anna_mail, "C-1", "open"),
        links.sign({"outbox_id": 1, "contact_id": "C-1"}, "z" * 40, purpose="unsubscribe"),
        mail_token(mails.anna_mail, "C-404", "unsubscribe"),  # genuine, contact gone
    ):
        assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 404
        assert client.get(f"/u/{token}").status_code in (200, 404)
    assert _state(warehouse) == ("confirmed", [])
    assert count(warehouse, "raw.events") == 0


def test_the_preference_page_unsubscribes_from_one_tenant(client, mails, warehouse):
    token = mail_token(mails.anna_mail, "C-1", "unsubscribe")
    page = client.get(f"/preferences/{token}")
    assert page.status_code == 200
    assert page.text.count('type="radio"') == 5  # all + hq, fr, it, es
    assert client.post(f"/preferences/{token}", data={"scope": "fr"}).status_code == 200
    # One tenant's mail only: consent stays, the suppression is scoped.
    assert _state(warehouse) == (
        "confirmed",
        [("anna@example.com", "fr", "unsubscribe", "preference_page")],
    )
    assert events(warehouse, "event_type, properties->>'scope'") == [("unsubscribe", "fr")]
    assert client.post(f"/preferences/{token}", data={"scope": "xx"}).status_code == 400
    assert client.post(f"/preferences/{token}", data={"scope": "all"}).status_code == 200
    assert _state(warehouse)[0] == "objected"
    assert count(warehouse, "ops.suppressions") == 2
