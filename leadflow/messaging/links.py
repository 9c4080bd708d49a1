"""Signed tracking links: click redirects, open pixels, unsubscribe and view-in-browser URLs.

Every URL a mail carries back to the tracking service holds a token signed with the
tracking secret (itsdangerous, HMAC-SHA1 over a compact JSON payload plus a timestamp).
The salt is the token's purpose, so a token minted for one route is useless on another: an
open-pixel token cannot unsubscribe anyone, and a click token cannot be turned into another
link. Tokens say *which* record they belong to, never *where* to go: a click token carries
only the random id of an `ops.links` row, and the tracking service redirects to the URL
stored in that row (no open redirect). A forged or altered token fails `verify`, so the
service records nothing for it.

Routes (relative to `company.tracking.base_url`):

| purpose     | URL                  | payload                      |
|-------------|----------------------|------------------------------|
| click       | `/c/<token>`         | `{"link_id"}`                |
| open        | `/o/<token>.gif`     | `{"outbox_id", "contact_id"}`|
| unsubscribe | `/u/<token>`         | `{"outbox_id", "contact_id"}`|
| view        | `/v/<token>`         | `{"outbox_id", "contact_id"}`|

The secret comes from the environment variable named by `company.tracking.token_secret_env`.
Without it, a deployment whose tracking host is a reserved development name (localhost,
127.0.0.1, `*.example`, `*.test`, `*.localhost`, RFC 2606/6761 — never a real site) uses a
random secret kept in the project's state directory, so the demo and a developer machine
work out of the box while a real deployment refuses to mint tokens it could not verify
tomorrow.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import int_to_bytes

from leadflow import paths
from leadflow.errors import LeadflowError

Purpose = Literal["click", "open", "unsubscribe", "view"]
PURPOSES: tuple[str, ...] = ("click", "open", "unsubscribe", "view")
ROUTES: dict[str, str] = {"click": "c", "open": "o", "unsubscribe": "u", "view": "v"}
# Tokens in preview mails: they look like tokens but never verify, so previews never count.
PREVIEW_TOKEN = "preview"
DEV_SECRET_FILE = "tracking-secret"
_DEV_SUFFIXES = (".example", ".test", ".localhost", ".invalid")
# itsdangerous' compact JSON, with one encoder for all tokens.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class TrackingSecretMissing(LeadflowError):
    """The tracking secret's environment variable is not set in a real deployment."""


class InvalidToken(LeadflowError):
    """A tracking token that was forged, altered, expired or minted for another purpose."""


def new_link_id() -> str:
    """A random, unguessable id for one tracked link (the key of its `ops.links` row)."""
    return secrets.token_urlsafe(12)


def sign(payload: Mapping[str, Any], secret: str, *, purpose: Purpose) -> str:
    """A URL-safe token for `payload` that only `verify` with the same purpose accepts."""
    return _signer(secret, purpose).sign(payload)


def verify(
    token: str, secret: str, *, purpose: Purpose, max_age: int | None = None
) -> dict[str, Any]:
    """The payload of a token signed for `purpose`; InvalidToken when it is not genuine
    (or older than `max_age` seconds)."""
    try:
        payload = _serializer(secret, purpose).loads(token, max_age=max_age)
    except SignatureExpired as error:
        raise InvalidToken(f"the {purpose} token has expired") from error
    except BadSignature as error:
        raise InvalidToken(f"the {purpose} token is not valid") from error
    if not isinstance(payload, dict):
        raise InvalidToken(f"the {purpose} token is not valid")
    return payload


@functools.lru_cache(maxsize=64)
def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret, salt=f"leadflow.{purpose}")


class _Signer:
    """Mints the tokens of `URLSafeTimedSerializer(secret, salt=...).dumps` for one purpose.

    A mail carries several tokens (one per link, the pixel, unsubscribe, view), and the
    dispatcher renders thousands of mails a minute, so the work that never changes is done
    once: the derived key goes into an HMAC that is copied per token, and the timestamp
    part is encoded once per second. Payloads are small JSON objects, and offering them to
    zlib would cost more than the signing: they are never compressed. For a payload zlib
    cannot shorten (every one a mail carries) that is exactly what itsdangerous does, and
    `verify` reads compressed and plain payloads alike."""

    def __init__(self, serializer: URLSafeTimedSerializer) -> None:
        signer = serializer.make_signer(serializer.salt)
        self._mac = hmac.new(signer.derive_key(), digestmod=hashlib.sha1)
        # (second, its encoding) in one attribute: dispatcher threads share the signer.
        self._stamp: tuple[int, bytes] = (-1, b"")

    def sign(self, payload: Mapping[str, Any]) -> str:
        data = _JSON.encode(dict(payload)).encode("utf-8")
        value = _base64(data) + b"." + self._timestamp_now()
        mac = self._mac.copy()
        mac.update(value)
        return (value + b"." + _base64(mac.digest())).decode("ascii")

    def _timestamp_now(self) -> bytes:
        second = int(time.time())
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp = (second, _base64(int_to_bytes(second)))
        return stamp[1]


def _base64(data: bytes) -> bytes:
    """itsdangerous' URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@functools.lru_cache(maxsize=64)
def _signer(secret: str, purpose: str) -> _Signer:
    return _Signer(_serializer(secret, purpose))


# --- the secret -------------------------------------------------------------------------


def tracking_secret(config: Any) -> str:
    """The secret that signs tracking tokens (see the module docstring for where from)."""
    tracking = config.company.tracking
    value = os.environ.get(tracking.token_secret_env, "").strip()
    if value:
        return value
    if is_development_host(tracking.base_url):
        return _development_secret(paths.home() / DEV_SECRET_FILE)
    raise TrackingSecretMissing(
        f"environment variable {tracking.token_secret_env} is not set: tracking links for "
        f"{tracking.base_url} cannot be signed (set it to a long random string, the same "
        "for the dispatcher and the tracking service)"
    )


def is_development_host(base_url: str) -> bool:
    """True for hosts that can never be a public site: loopback and reserved names."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(_DEV_SUFFIXES):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _development_secret(path: Path) -> str:
    """A random secret created once per state directory, readable only by its owner."""
    if path.is_file():
        stored = path.read_text().strip()
        if stored:
            return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")
    return value


# --- URL builders -----------------------------------------------------------------------


def tracking_url(config: Any, purpose: Purpose, token: str, suffix: str = "") -> str:
    base = config.company.tracking.base_url.rstrip("/")
    return f"{base}/{ROUTES[purpose]}/{token}{suffix}"


def click_url(config: Any, link_id: str, *, secret: str | None = None) -> str:
    """The redirect URL of one tracked link; the service looks the target up by link id."""
    token = sign({"link_id": link_id}, secret or tracking_secret(config), purpose="click")
    return tracking_url(config, "click", token)


def open_pixel_url(
    config: Any, outbox_id: int, contact_id: str, *, secret: str | None = None
) -> str:
    return _mail_url(config, "open", outbox_id, contact_id, secret, suffix=".gif")


def unsubscribe_url(
    config: Any, outbox_id: int, contact_id: str, *, secret: str | None = None
) -> str:
    """The one-click unsubscribe URL (RFC 8058: the List-Unsubscribe header and the footer)."""
    return _mail_url(config, "unsubscribe", outbox_id, contact_id, secret)


def view_in_browser_url(
    config: Any, outbox_id: int, contact_id: str, *, secret: str | None = None
) -> str:
    return _mail_url(config, "view", outbox_id, contact_id, secret)


def preview_url(config: Any, purpose: Purpose) -> str:
    """What a preview shows instead of a real tracking URL: it never verifies."""
    return tracking_url(config, purpose, PREVIEW_TOKEN, ".gif" if purpose == "open" else "")


def _mail_url(
    config: Any,
    purpose: Purpose,
    outbox_id: int,
    contact_id: str,
    secret: str | None,
    suffix: str = "",
) -> str:
    payload = {"outbox_id": int(outbox_id), "contact_id": str(contact_id)}
    token = sign(payload, secret or tracking_secret(config), purpose=purpose)
    return tracking_url(config, purpose, token, suffix)
