"""A local fake of DeepL's HTTP API (v2), so the real `deepl` client runs in tests and the demo.

DeepL's own mock server is not installable here, so this serves the endpoints the
translator calls, on a pytest-httpserver `HTTPServer` (the `httpserver` fixture in tests,
`serve()` elsewhere):

- `POST /v2/translate`: "translates" deterministically, so tests can assert exact output.
  Each text node gets the prefix `[<TARGET>] ` (e.g. `[FR] `); with `tag_handling=html` the
  tags are kept and only the text between them changes, without it the whole string is one
  node. Like a real machine translation, it renders some product words in the target
  language (`MACHINE_WORDS`: "HydroStat" → "HydroStatique"), unless a glossary for the pair
  lists a term containing them: glossary terms come out exactly as the glossary says.
  `formality` `more`/`less` for a target without formality support is refused with 400,
  as DeepL does; `prefer_more`/`prefer_less` are accepted everywhere.
- `POST/GET /v2/glossaries`, `GET/DELETE /v2/glossaries/<id>`, `GET .../entries`,
  `GET /v2/glossary-language-pairs`, `GET /v2/usage`.
- Every request must carry `Authorization: DeepL-Auth-Key <auth_key>` (else 403); the
  translated characters count against `character_limit` (456 once it is exceeded).

`requests` records every request (method, path, JSON body), so a test can count HTTP
calls; `fail_next(429, 500, ...)` makes the next translate requests answer those statuses.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FAKE_AUTH_KEY = "fake-deepl-key:fx"

# Targets whose `formality` DeepL accepts as `more`/`less` (its /v2/languages list).
FORMALITY_TARGETS = frozenset({"DE", "FR", "IT", "ES", "NL", "PL", "PT-PT", "PT-BR", "RU", "JA"})

# What a machine translation without a glossary does to product words.
MACHINE_WORDS = {"HydroStat": "HydroStatique", "HydroClean": "HydroNettoyage"}

GLOSSARY_LANGUAGES = ("DE", "EN", "ES", "FR", "IT", "NL", "PL", "PT")

TAG = re.compile(r"(<[^>]*>)")
EDGES = re.compile(r"^(\s*)(.*?)(\s*)$", re.DOTALL)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: dict[str, Any] | None


@dataclass
class FakeDeepL:
    server: HTTPServer
    auth_key: str = FAKE_AUTH_KEY
    character_limit: int = 1_000_000
    character_count: int = 0
    requests: list[Recorded] = field(default_factory=list)
    glossaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    _failures: deque[int] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> FakeDeepL:
        self.server.expect_request(re.compile(r"^/.*")).respond_with_handler(self._handle)
        return self

    @property
    def url(self) -> str:
        """The `server_url` for `deepl.DeepLClient`."""
        return self.server.url_for("/")

    def fail_next(self, *statuses: int) -> None:
        """The next len(statuses) translate requests answer these HTTP statuses."""
        self._failures.extend(statuses)

    def calls(self, path: str, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.path == path and method in (None, r.method)]

    @property
    def translate_calls(self) -> list[Recorded]:
        return self.calls("/v2/translate")

    # --- dispatch -----------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        body = request.get_json(silent=True) if request.data else None
        with self._lock:
            self.requests.append(Recorded(request.method, request.path, body))
            if request.headers.get("Authorization") != f"DeepL-Auth-Key {self.auth_key}":
                return _json({"message": "Invalid authentication key"}, 403)
            return self._route(request, body or {})

    def _route(self, request: Request, body: dict[str, Any]) -> Response:
        path, method = request.path, request.method
        if path == "/v2/translate" and method == "POST":
            return self._translate(body)
        if path == "/v2/usage":
            return _json(
                {"character_count": self.character_count, "character_limit": self.character_limit}
            )
        if path == "/v2/glossary-language-pairs":
            pairs = [
                {"source_lang": s.lower(), "target_lang": t.lower()}
                for s in GLOSSARY_LANGUAGES
                for t in GLOSSARY_LANGUAGES
                if s != t
            ]
            return _json({"supported_languages": pairs})
        if path == "/v2/glossaries":
            if method == "POST":
                return self._create_glossary(body)
            return _json({"glossaries": [_info(g) for g in self.glossaries.values()]})
        match = re.fullmatch(r"/v2/glossaries/([^/]+)(/entries)?", path)
        if match and match[1] in self.glossaries:
            glossary = self.glossaries[match[1]]
            if match[2]:
                tsv = "\n".join(f"{s}\t{t}" for s, t in glossary["entries"].items())
                return Response(tsv, 200, content_type="text/tab-separated-values")
            if method == "DELETE":
                del self.glossaries[match[1]]
                return Response(status=204)
            return _json(_info(glossary))
        return _json({"message": "Not found"}, 404)

    # --- translate ----------------------------------------------------------------------

    def _translate(self, body: dict[str, Any]) -> Response:
        if self._failures:
            status = self._failures.popleft()
            return _json({"message": f"fake failure {status}"}, status)
        texts: list[str] = body.get("text", [])
        target = str(body.get("target_lang", "")).upper()
        formality = body.get("formality")
        if formality in ("more", "less") and target not in FORMALITY_TARGETS:
            return _json({"message": "'formality' is not supported for given 'target_lang'."}, 400)
        characters = sum(len(text) for text in texts)
        if self.character_count + characters > self.character_limit:
            return _json({"message": "Quota Exceeded"}, 456)
        glossary_id = body.get("glossary_id")
        if glossary_id is not None and glossary_id not in self.glossaries:
            return _json({"message": "Glossary not found"}, 404)
        self.character_count += characters
        terms = self._glossary_terms(glossary_id)
        html = body.get("tag_handling") == "html"
        translations = [
            {
                "detected_source_language": str(body.get("source_lang", "DE")).upper(),
                "text": fake_translation(text, target, terms, html=html),
                "billed_characters": len(text),
            }
            for text in texts
        ]
        return _json({"translations": translations})

    def _glossary_terms(self, glossary_id: str | None) -> dict[str, str]:
        if glossary_id is None:
            return {}
        return self.glossaries[glossary_id]["entries"]

    def _create_glossary(self, body: dict[str, Any]) -> Response:
        entries = dict(
            line.split("\t", 1) for line in str(body.get("entries", "")).splitlines() if line
        )
        glossary_id = str(uuid.uuid4())
        self.glossaries[glossary_id] = {
            "glossary_id": glossary_id,
            "name": body["name"],
            "source_lang": str(body["source_lang"]).lower(),
            "target_lang": str(body["target_lang"]).lower(),
            "entries": entries,
            "creation_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        return _json(_info(self.glossaries[glossary_id]), 201)


def fake_translation(text: str, target: str, terms: dict[str, str], *, html: bool) -> str:
    """The fake's deterministic "translation" of one text (see the module docstring)."""
    parts = TAG.split(text) if html else [text]
    return "".join(
        part if TAG.fullmatch(part) else _translate_node(part, target, terms) for part in parts
    )


def _translate_node(node: str, target: str, terms: dict[str, str]) -> str:
    lead, core, trail = EDGES.fullmatch(node).groups()  # type: ignore[union-attr]
    if not core:
        return node
    return f"{lead}[{target}] {_apply_words(core, terms)}{trail}"


def _apply_words(core: str, terms: dict[str, str]) -> str:
    """Glossary terms as the glossary says, machine words translated everywhere else."""
    if not terms:
        return _machine_words(core)
    by_length = sorted(terms, key=len, reverse=True)
    pieces = re.split("(" + "|".join(map(re.escape, by_length)) + ")", core)
    return "".join(terms[p] if p in terms else _machine_words(p) for p in pieces)


def _machine_words(text: str) -> str:
    for word, translated in MACHINE_WORDS.items():
        text = text.replace(word, translated)
    return text


def _info(glossary: dict[str, Any]) -> dict[str, Any]:
    info = {k: v for k, v in glossary.items() if k != "entries"}
    return {**info, "ready": True, "entry_count": len(glossary["entries"])}


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status, content_type="application/json")


def serve(host: str = "127.0.0.1", port: int = 0, **settings: Any) -> FakeDeepL:
    """Start a fake DeepL outside pytest (e.g. for the demo); `stop()` its `server` after."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = HTTPServer(host=host, port=port)
    server.start()
    return FakeDeepL(server, **settings).install()
