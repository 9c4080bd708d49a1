"""The fast token verifier against itsdangerous, on tokens edited with any character."""

from __future__ import annotations

import random

from leadflow.messaging import links
from leadflow.tracking.tokens import TokenVerifier
from tests.leadflow.tracking.data import SECRET

EDITS = 3000
# URL-safe and standard base64, padding, separators, whitespace, non-ASCII.
CHARACTERS = "Aa0-_+/=.~ \t\n%é€\x00"


def reference_payload(token: str, purpose: links.Purpose) -> dict | None:
    try:
        return links.verify(token, SECRET, purpose=purpose)
    except links.InvalidToken:
        return None


def edited(token: str, rng: random.Random) -> str:
    i = rng.randrange(len(token) + 1)
    character = rng.choice(CHARACTERS)
    if rng.random() < 0.5:
        return token[:i] + character + token[i:]  # inserted
    return token[:i] + character + token[i + 1 :]  # replaced


def test_edited_tokens_verify_exactly_as_itsdangerous_says():
    verifier = TokenVerifier(SECRET)
    rng = random.Random(7)
    genuine = [links.sign({"link_id": f"L{n}"}, SECRET, purpose="click") for n in range(20)] + [
        links.sign({"outbox_id": n, "contact_id": f"C-{n}"}, SECRET, purpose="open")
        for n in range(20)
    ]
    tokens = [edited(rng.choice(genuine), rng) for _ in range(EDITS)] + genuine
    accepted = 0
    for token in tokens:
        for purpose in ("click", "open"):
            expected = reference_payload(token, purpose)
            assert verifier.payload(token, purpose) == expected, (token, purpose)
            accepted += expected is not None
    # Some edits keep a token genuine (a character base64 skips), most break it.
    assert len(genuine) < accepted < len(tokens)
