"""10,000 mutated click URLs: no redirect ever leaves the stored URL list."""

from __future__ import annotations

import asyncio
import random

import httpx
import sqlalchemy as sa

from leadflow.messaging import links
from leadflow.tracking.tokens import TokenVerifier
from tests.leadflow.tracking.data import SECRET, click_token, count

MUTATIONS = 10_000
EVIL = ("//evil.example", "https://evil.example", "javascript:alert(1)", "/\\evil.example")


def mutate(token: str, other_tokens: list[str], rng: random.Random) -> str:
    """One click path built from a genuine token by something an attacker could try."""
    payload, stamp, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    kind = rng.randrange(8)
    if kind == 0:  # one character of the signature changed
        i = rng.randrange(len(signature))
        signature = (
            signature[:i] + rng.choice(alphabet.replace(signature[i], "")) + signature[i + 1 :]
        )
        return f"/c/{payload}.{stamp}.{signature}"
    if kind == 1:  # one character of the payload changed
        i = rng.randrange(len(payload))
        payload = payload[:i] + rng.choice(alphabet.replace(payload[i], "")) + payload[i + 1 :]
        return f"/c/{payload}.{stamp}.{signature}"
    if kind == 2:  # another link's signature on this payload
        return f"/c/{payload}.{stamp}.{rng.choice(other_tokens).split('.')[2]}"
    if kind == 3:  # a target smuggled into the path or the query
        evil = rng.choice(EVIL)
        return rng.choice([f"/c/{evil}", f"/c/{token}{evil}", f"/c/{token}?url={evil}"])
    if kind == 4:  # a link id chosen by the attacker, signed with a guessed key
        return (
            f"/c/{links.sign({'link_id': 'x' + str(rng.random())}, 'guess' * 8, purpose='click')}"
        )
    if kind == 5:  # a payload naming a URL instead of a link
        forged = links.sign({"url": rng.choice(EVIL)}, SECRET, purpose="click")
        return f"/c/{forged}"
    if kind == 6:  # another purpose's token for the same link
        return f"/c/{links.sign({'link_id': 'x'}, SECRET, purpose='open')}"
    return f"/c/{rng.choice(other_tokens)}"  # another campaign's genuine link


def test_mutated_click_urls_never_redirect_off_the_stored_urls(app, mails, warehouse):
    with warehouse.connect() as connection:
        stored = dict(connection.execute(sa.text("select link_id, url from ops.links")).all())
    tokens = {link_id: click_token(link_id) for link_id in stored}
    genuine = list(tokens.values())
    rng = random.Random(6)
    paths = [mutate(rng.choice(genuine), genuine, rng) for _ in range(MUTATIONS)]

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                responses = [await client.get(path) for path in paths]
                app.state.writer.flush()
                return responses

    responses = asyncio.run(run())
    redirects = [r for r in responses if r.status_code in (301, 302, 303, 307, 308)]
    assert {r.status_code for r in responses} <= {302, 404}
    assert [r for r in redirects if r.headers["location"] not in stored.values()] == []
    assert all("location" not in r.headers for r in responses if r.status_code == 404)
    # Exactly the paths whose token verifies redirect, each to its own link's URL (genuine
    # tokens of other links, "?url=" appended to a genuine token, base64 edits that decode
    # to the same bytes), and each records one click.
    expected = [expected_location(path, stored) for path in paths]
    assert [r.headers.get("location") for r in responses] == expected
    # The service's fast verifier accepts exactly what itsdangerous accepts.
    verifier = TokenVerifier(SECRET)
    for path in paths:
        token = path.removeprefix("/c/").split("?")[0]
        for purpose in ("click", "open"):
            assert verifier.payload(token, purpose) == reference_payload(token, purpose)
    assert len(redirects) == count(warehouse, "raw.events") > MUTATIONS // 8


def reference_payload(token: str, purpose: links.Purpose) -> dict | None:
    try:
        return links.verify(token, SECRET, purpose=purpose)
    except links.InvalidToken:
        return None


def expected_location(path: str, stored: dict[str, str]) -> str | None:
    token = path.removeprefix("/c/").split("?")[0]
    try:
        link_id = links.verify(token, SECRET, purpose="click").get("link_id")
    except links.InvalidToken:
        return None
    return stored.get(link_id)
