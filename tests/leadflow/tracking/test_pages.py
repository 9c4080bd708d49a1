"""The service's pages speak the person's language: the contact's, else the browser's
(Accept-Language), else the global tenant's. (The double opt-in pages, which follow the
form's and the contact's language: test_capture.py.)"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from starlette.requests import Request

from leadflow.tracking import pages
from leadflow.tracking.app import create_app
from tests.leadflow.tracking.data import add_contact, mail_token, shipped_config

CONFIG = shipped_config()
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def request_with(accept_language: str | None) -> Request:
    headers = [(b"accept-language", accept_language.encode())] if accept_language else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def set_language(engine, contact_id: str, language: str | None) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("update raw.contacts set language = :language where contact_id = :id"),
            {"language": language, "id": contact_id},
        )


def test_every_language_has_every_text():
    english = set(pages.TEXTS[pages.FALLBACK_LANGUAGE])
    for language, texts in pages.TEXTS.items():
        assert set(texts) == english, language
        assert all(value.strip() for value in texts.values()), language


@pytest.mark.parametrize(
    ("known", "header", "expected"),
    [
        (("fr",), "es", "fr"),  # what leadflow knows wins over the browser
        ((None, "it"), None, "it"),  # the first known language the pages have
        (("pt",), "it-IT,it;q=0.9", "it"),  # no Portuguese pages: the browser's choice
        ((), "pt-BR, es;q=0.8, en;q=0.9", "en"),  # by quality, not by order
        ((), "de-CH", "de"),  # a region falls back to its language
        ((), "pt, ja", CONFIG.global_tenant.language),  # nothing matches: the global tenant's
        ((), None, CONFIG.global_tenant.language),
    ],
)
def test_the_language_of_a_page(known, header, expected):
    assert pages.language_for(request_with(header), CONFIG, *known) == expected


def test_page_values_are_escaped_and_the_language_is_declared():
    response = pages.page(
        "fr",
        "download_ready",
        ["<script>x</script>"],
        link=('https://x.example/?a="b"', "<b>Guide</b>"),
    )
    body = response.body.decode()
    assert response.headers["content-language"] == "fr"
    assert '<html lang="fr">' in body and "Merci — votre téléchargement est prêt" in body
    assert "<script>" not in body and "<b>" not in body
    assert 'href="https://x.example/?a=&quot;b&quot;"' in body


def test_unsubscribe_pages_are_in_the_contacts_language(client, mails, warehouse):
    set_language(warehouse, "C-1", "fr")
    token = mail_token(mails.anna_mail, "C-1", "unsubscribe")
    page = client.get(f"/u/{token}", headers={"Accept-Language": "de"})
    assert page.headers["content-language"] == "fr"
    assert "Voulez-vous ne plus recevoir nos e-mails marketing ?" in page.text
    assert '<button type="submit">Se désabonner</button>' in page.text

    answer = client.post(f"/u/{token}", data=ONE_CLICK)
    assert answer.status_code == 200 and answer.headers["content-language"] == "fr"
    assert "Vous ne recevrez plus d'e-mails marketing de notre part." in answer.text


def test_without_a_contact_language_the_browser_decides(client, mails, warehouse):
    set_language(warehouse, "C-2", None)
    token = mail_token(mails.ben_mail, "C-2", "unsubscribe")
    page = client.get(f"/preferences/{token}", headers={"Accept-Language": "es-ES,es;q=0.9"})
    assert page.headers["content-language"] == "es"
    assert "Todos los correos de marketing" in page.text
    assert "Solo los correos de " in page.text
    saved = client.post(
        f"/preferences/{token}", data={"scope": "fr"}, headers={"Accept-Language": "es"}
    )
    assert "Sus preferencias se han guardado." in saved.text


def test_a_bad_token_gets_a_not_found_page_in_the_browsers_language(client, mails):
    page = client.get("/u/not-a-token", headers={"Accept-Language": "it"})
    assert page.status_code == 404 and page.headers["content-language"] == "it"
    assert "Questo link non è valido." in page.text


def test_contact_language_reads_the_pool(warehouse):
    add_contact(warehouse, "C-9", "nina@example.com")
    set_language(warehouse, "C-9", "ES")
    with warehouse.connect() as connection:
        assert pages.contact_language(connection, "C-9") == "es"
        assert pages.contact_language(connection, "C-404") is None
        assert pages.contact_language(connection, None) is None


def test_the_unsubscribe_page_comes_even_when_the_warehouse_cannot_be_asked(settings, config):
    # Nothing listens on port 1: reading the contact's language fails, the page does not.
    unreachable = sa.create_engine("postgresql+psycopg://leadflow@127.0.0.1:1/leadflow")
    app = create_app(settings, engine=unreachable, config=config)
    token = mail_token(1, "C-1", "unsubscribe")
    with TestClient(app) as client:
        page = client.get(f"/u/{token}", headers={"Accept-Language": "fr-CH"})
    assert page.status_code == 200 and page.headers["content-language"] == "fr"
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
