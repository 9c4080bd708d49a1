"""Signed tracking tokens and URLs; the tracking secret."""

from __future__ import annotations

import dataclasses
import os
import stat
import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from leadflow.messaging import links
from leadflow.messaging.render import protect_template_code, restore_template_code
from leadflow.messaging.translation import TranslationUnavailable
from tests.leadflow.messaging.render_helpers import SECRET, shipped_config

BASE = "https://go.steinhoff-hydraulik.example"


@pytest.fixture(scope="module")
def config():
    return shipped_config()


@pytest.mark.parametrize("purpose", links.PURPOSES)
def test_a_token_verifies_for_its_purpose_only(purpose):
    token = links.sign({"outbox_id": 12, "contact_id": "C-9"}, SECRET, purpose=purpose)
    assert links.verify(token, SECRET, purpose=purpose) == {"outbox_id": 12, "contact_id": "C-9"}
    for other in set(links.PURPOSES) - {purpose}:
        with pytest.raises(links.InvalidToken):
            links.verify(token, SECRET, purpose=other)


def test_a_tampered_token_fails():
    token = links.sign({"link_id": "abc"}, SECRET, purpose="click")
    payload, timestamp, signature = token.split(".")
    forged_payload = links.sign({"link_id": "xyz"}, SECRET, purpose="click").split(".")[0]
    # The last base64 character of a signature carries unused padding bits, so changing
    # it may decode to the same bytes; the first character is all signature.
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for forged in (
        f"{forged_payload}.{timestamp}.{signature}",
        f"{payload}.{timestamp}.{flipped}",
        f"{payload}.{timestamp}",
        "",
    ):
        with pytest.raises(links.InvalidToken, match="click token is not valid"):
            links.verify(forged, SECRET, purpose="click")
    with pytest.raises(links.InvalidToken):
        links.verify(token, "another-secret", purpose="click")


def test_max_age(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    token = links.sign({"link_id": "abc"}, SECRET, purpose="click")
    monkeypatch.setattr(time, "time", lambda: 1_800_000_100.0)
    assert links.verify(token, SECRET, purpose="click", max_age=100) == {"link_id": "abc"}
    with pytest.raises(links.InvalidToken, match="expired"):
        links.verify(token, SECRET, purpose="click", max_age=99)


@pytest.mark.parametrize(
    ("purpose", "payload"),
    [
        ("click", {"link_id": "Xq3_-9aZkT0bWc1d"}),
        ("open", {"outbox_id": 123456789, "contact_id": "C-000042"}),
        ("unsubscribe", {"outbox_id": 7, "contact_id": 'ünïcødé "quoted"'}),
        ("view", {"outbox_id": 7, "contact_id": "x" * 300}),
    ],
)
def test_tokens_are_the_ones_itsdangerous_mints(monkeypatch, purpose, payload):
    """Tokens are minted with a reused key and a cached timestamp; they are byte for byte
    what `URLSafeTimedSerializer.dumps` gives (the long one: verifiable, though not zipped)."""
    reference = URLSafeTimedSerializer(SECRET, salt=f"leadflow.{purpose}")
    for now in (1_800_000_000.2, 1_800_000_000.9, 1_800_000_001.0, 1_900_000_000.0):
        monkeypatch.setattr(time, "time", lambda now=now: now)
        token = links.sign(payload, SECRET, purpose=purpose)
        assert links.verify(token, SECRET, purpose=purpose) == payload
        assert reference.loads(token) == payload
        if len(payload.get("contact_id", "")) < 100:
            assert token == reference.dumps(payload)


def test_url_builders(config):
    link_id = links.new_link_id()
    assert len(link_id) == 16
    click = links.click_url(config, link_id, secret=SECRET)
    assert click.startswith(f"{BASE}/c/")
    assert links.verify(click.rsplit("/", 1)[1], SECRET, purpose="click") == {"link_id": link_id}
    pixel = links.open_pixel_url(config, 5, "C-1", secret=SECRET)
    assert pixel.startswith(f"{BASE}/o/") and pixel.endswith(".gif")
    token = pixel.rsplit("/", 1)[1].removesuffix(".gif")
    assert links.verify(token, SECRET, purpose="open") == {"outbox_id": 5, "contact_id": "C-1"}
    unsubscribe = links.unsubscribe_url(config, 5, "C-1", secret=SECRET)
    assert unsubscribe.startswith(f"{BASE}/u/")
    view = links.view_in_browser_url(config, 5, "C-1", secret=SECRET)
    assert links.verify(view.rsplit("/", 1)[1], SECRET, purpose="view")["outbox_id"] == 5
    assert links.preview_url(config, "open") == f"{BASE}/o/preview.gif"


def test_secret_from_the_environment(config, monkeypatch):
    monkeypatch.setenv("LEADFLOW_TRACKING_SECRET", " from-env ")
    assert links.tracking_secret(config) == "from-env"
    # The URL builders read it when no secret is passed.
    url = links.unsubscribe_url(config, 1, "C-1")
    assert links.verify(url.rsplit("/", 1)[1], "from-env", purpose="unsubscribe")


def test_development_secret_for_reserved_hosts(config, monkeypatch, tmp_path):
    monkeypatch.delenv("LEADFLOW_TRACKING_SECRET", raising=False)
    monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path))
    first = links.tracking_secret(config)
    assert len(first) >= 40
    assert links.tracking_secret(config) == first
    path = tmp_path / links.DEV_SECRET_FILE
    assert path.read_text().strip() == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_real_host_refuses_to_sign_without_a_secret(config, monkeypatch, tmp_path):
    monkeypatch.delenv("LEADFLOW_TRACKING_SECRET", raising=False)
    monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path))
    tracking = config.company.tracking.model_copy(update={"base_url": "https://go.example.com"})
    company = config.company.model_copy(update={"tracking": tracking})
    real = dataclasses.replace(config, company=company)
    with pytest.raises(links.TrackingSecretMissing, match="LEADFLOW_TRACKING_SECRET is not set"):
        links.tracking_secret(real)
    assert not (tmp_path / links.DEV_SECRET_FILE).exists()


@pytest.mark.parametrize(
    ("url", "development"),
    [
        ("http://localhost:8765", True),
        ("http://127.0.0.1:8000", True),
        ("http://[::1]:8000", True),
        ("https://go.steinhoff-hydraulik.example", True),
        ("https://track.test", True),
        ("https://go.example.com", False),
        ("https://example.org", False),
        ("http://10.0.0.5", False),
    ],
)
def test_development_hosts(url, development):
    assert links.is_development_host(url) is development


def test_template_code_is_protected_through_translation():
    source = "<p>{% if contact.first_name %}Hallo {{ contact.first_name }}{% endif %}</p>"
    protected, pieces = protect_template_code(source)
    assert protected == '<p><x-lf n="0"></x-lf>Hallo <x-lf n="1"></x-lf><x-lf n="2"></x-lf></p>'
    assert restore_template_code(protected, pieces) == source
    # An HTML-aware service may write empty elements self-closed.
    assert restore_template_code(protected.replace("></x-lf>", "/>"), pieces) == source
    with pytest.raises(TranslationUnavailable, match="placeholders"):
        restore_template_code(protected.replace('<x-lf n="1"></x-lf>', ""), pieces)
