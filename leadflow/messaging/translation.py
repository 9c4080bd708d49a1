"""Machine translation of content without a human translation: DeepL behind a memory (SPEC §2.7).

The renderer asks `Translator.translate(html, source, target, formality)` (or
`translate_many` for all blocks of a message at once) for every piece of content that has
no human translation in the target language. The answer is exact or an error, never a
partial result. Texts are HTML fragments; plain text (a subject, alt text) is passed
`html.escape`d and the result `html.unescape`d, so `&` and `<` survive.

- source == target, or blank text: returned unchanged, nothing is looked up.
- **Memory first.** `ops.translation_memory` is keyed by (sha256 of the source text,
  source language, target language, formality sent to DeepL, glossary version). A hit is
  reused as is and costs no DeepL request; the key changes — and DeepL is asked again —
  when the source text changes (new hash) or the glossary terms change (new version).
- **Then DeepL**, one `translate_text` request per target for all misses (chunks of 50, the
  API's limit), with `tag_handling="html"` (markup is kept, only text is translated), the
  tenant's formality, and the product-name glossary of the language pair. Every result is
  stored in the memory before it is returned.
- **Glossary**: `company.translation.glossary_terms` (product names) each map to themselves,
  so DeepL never translates "HydroStat 3000". One DeepL glossary per language pair, named
  `leadflow-<glossary version>-<source>-<target>`: found by that name (or created once)
  and reused. The glossary version is the first 12 hex digits of the sha256 of the sorted
  terms ("none" without terms); a changed term list gets a new glossary and new memory
  keys. Glossaries of older versions are left in the DeepL account.
- **Formality**: the tenant's `deepl_formality`. DeepL refuses `more`/`less` for targets
  without formality (English, for instance), so for those `prefer_more`/`prefer_less` is
  sent instead, which DeepL applies where it can. The memory keeps the value actually sent.
- **Targets**: configuration codes are ISO 639-1 (`en`); DeepL wants a regional variant
  for some targets (`EN-GB`, `PT-PT`), glossaries the base language.
- **Errors** become `TranslationUnavailable` (a LeadflowError) with a `reason`:
  `no_key` / `disabled` (no DeepL key in the configured environment variable, or provider
  `none`), `quota` (HTTP 456), `rate_limited` (429 still after the client's retries),
  `unavailable` (5xx after retries, or no connection), `auth` (403: a wrong key),
  `glossary` (DeepL could not create the glossary for the pair), `error` (anything else).
  The deepl client retries 429 and 5xx itself with exponential backoff (its
  `deepl.http_client.max_network_retries`, 5 by default). A batch that fails in any chunk
  raises, so a message gets every block translated or none.
- **Without a key** the translator never calls DeepL and logs one warning when it is made,
  saying what happens instead (`company.translation.fallback`: sent in the source language,
  or held). It still reuses what the memory already holds; anything else raises
  `TranslationUnavailable`, and the renderer applies the fallback. With provider `none` the
  memory is not used either: `Translator.disabled()` is that translator without a database.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

import deepl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import leadflow
from leadflow.config.models import Translation
from leadflow.errors import LeadflowError

if TYPE_CHECKING:
    from leadflow.config.loader import Config

log = logging.getLogger(__name__)

PROVIDER = "deepl"
# DeepL takes at most 50 texts per translate request.
MAX_TEXTS_PER_REQUEST = 50
# Targets DeepL only accepts with a regional variant; the European one for a European sender.
TARGET_VARIANTS = {"en": "EN-GB", "pt": "PT-PT", "zh": "ZH-HANS"}
# Targets for which DeepL accepts formality `more`/`less` (its /v2/languages list).
FORMALITY_TARGETS = frozenset({"DE", "FR", "IT", "ES", "NL", "PL", "PT-PT", "PT-BR", "RU", "JA"})
PREFERRED_FORMALITY = {"more": "prefer_more", "less": "prefer_less"}

Reason = Literal[
    "no_key", "disabled", "quota", "rate_limited", "unavailable", "auth", "glossary", "error"
]
T = TypeVar("T")


class TranslationUnavailable(LeadflowError):
    """No translation can be had for this text now; the renderer applies the fallback."""

    def __init__(self, message: str, reason: Reason = "error") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class TranslationStats:
    """What one translator did: texts served from memory and texts DeepL translated."""

    memory_hits: int = 0
    translated: int = 0


@dataclass(frozen=True)
class MemoryKey:
    """Everything besides the source text that decides a translation."""

    source: str
    target: str
    formality: str
    glossary_version: str


def glossary_version(terms: Iterable[str]) -> str:
    """12 hex digits naming this set of glossary terms; "none" for no terms."""
    unique = sorted(set(terms))
    if not unique:
        return "none"
    return hashlib.sha256("\n".join(unique).encode()).hexdigest()[:12]


def deepl_target(language: str) -> str:
    """The DeepL target code for a configuration language code: `en` → `EN-GB`."""
    return TARGET_VARIANTS.get(language.lower(), language.upper())


def deepl_formality(formality: str, target: str) -> str:
    """The formality to send for `target` (a DeepL code): `more` becomes `prefer_more`
    where DeepL has no formality, because DeepL rejects the request otherwise."""
    if target.upper() in FORMALITY_TARGETS:
        return formality
    return PREFERRED_FORMALITY.get(formality, formality)


def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Translator:
    """Translations of HTML fragments, from the memory or DeepL (see the module docstring)."""

    def __init__(
        self,
        settings: Translation,
        engine: Engine | None,
        client: deepl.DeepLClient | None,
        *,
        unavailable: TranslationUnavailable | None = None,
    ) -> None:
        self.settings = settings
        self._engine = engine
        self._client = client
        # Why DeepL cannot be asked (no key, provider none); None when it can.
        self._unavailable = unavailable
        self.glossary_terms = sorted(set(settings.glossary_terms))
        self.glossary_version = glossary_version(self.glossary_terms)
        self._glossaries: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.stats = TranslationStats()

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Config, engine: Engine) -> Translator:
        return cls.from_settings(config.company.translation, engine)

    @classmethod
    def from_settings(
        cls,
        settings: Translation,
        engine: Engine | None,
        *,
        env: Mapping[str, str] = os.environ,
    ) -> Translator:
        """A translator for `company.translation`; warns once if it cannot reach DeepL.
        Without `engine` there is no memory: every miss is a DeepL request."""
        outcome = _fallback_outcome(settings)
        if settings.provider == "none":
            log.warning(
                "translation provider is 'none': content without a human translation is %s",
                outcome,
            )
            reason = "translation is turned off (company.translation.provider: none)"
            return cls(settings, None, None, unavailable=TranslationUnavailable(reason, "disabled"))
        key = env.get(settings.api_key_env, "").strip()
        if not key:
            log.warning(
                "no DeepL key in $%s: content without a human translation is %s",
                settings.api_key_env,
                outcome,
            )
            reason = f"no DeepL key in ${settings.api_key_env}"
            return cls(settings, engine, None, unavailable=TranslationUnavailable(reason, "no_key"))
        client = deepl.DeepLClient(key, server_url=settings.server_url, send_platform_info=False)
        client.set_app_info("leadflow", leadflow.__version__)
        return cls(settings, engine, client)

    @classmethod
    def disabled(cls) -> Translator:
        """A translator that translates nothing (previews, tests): every target ≠ source raises."""
        unavailable = TranslationUnavailable("translation is disabled", "disabled")
        return cls(Translation(provider="none"), None, None, unavailable=unavailable)

    @property
    def available(self) -> bool:
        """Whether DeepL can be asked (memory hits are served either way)."""
        return self._client is not None

    @property
    def fallback(self) -> str:
        """`source_language` or `hold`: what the renderer does on TranslationUnavailable."""
        return self.settings.fallback

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # --- translating --------------------------------------------------------------------

    def translate(
        self, text_html: str, source: str, target: str, formality: str = "default"
    ) -> str:
        """`text_html` in `target`; raises TranslationUnavailable when it cannot be had."""
        return self.translate_many([text_html], source, target, formality)[0]

    def translate_many(
        self, texts: Sequence[str], source: str, target: str, formality: str = "default"
    ) -> list[str]:
        """Every text in `target`, in order: memory hits, then one DeepL request for the
        rest. All or nothing: raises TranslationUnavailable if any text cannot be had."""
        source, target = source.lower(), target.lower()
        wanted = {text for text in texts if text.strip()}
        if source == target or not wanted:
            return list(texts)
        key = MemoryKey(
            source, target, deepl_formality(formality, deepl_target(target)), self.glossary_version
        )
        found = self._recall(key, wanted)
        self.stats.memory_hits += len(found)
        missing = sorted(wanted - found.keys())
        if missing:
            found |= self._machine_translate(missing, key)
        return [found[text] if text in wanted else text for text in texts]

    def _machine_translate(self, texts: list[str], key: MemoryKey) -> dict[str, str]:
        if self._client is None:
            assert self._unavailable is not None
            reason = self._unavailable.reason
            raise TranslationUnavailable(
                f"{self._unavailable}: cannot translate {len(texts)} text(s) "
                f"{key.source}→{key.target}",
                reason,
            )
        glossary = self._glossary(key.source, key.target)
        translated: dict[str, str] = {}
        for start in range(0, len(texts), MAX_TEXTS_PER_REQUEST):
            chunk = texts[start : start + MAX_TEXTS_PER_REQUEST]
            pairs = dict(zip(chunk, self._request(chunk, key, glossary), strict=True))
            # Stored per chunk: a later chunk failing keeps what was paid for.
            self._remember(key, pairs)
            translated |= pairs
        self.stats.translated += len(translated)
        return translated

    def _request(self, texts: list[str], key: MemoryKey, glossary: str | None) -> list[str]:
        """One DeepL translate request; its errors as TranslationUnavailable."""
        assert self._client is not None
        try:
            results = self._client.translate_text(
                texts,
                source_lang=key.source.upper(),
                target_lang=deepl_target(key.target),
                formality=key.formality,
                glossary=glossary,
                tag_handling="html",
            )
        except deepl.DeepLException as error:
            unavailable = self._translation_error(error, f"{key.source}→{key.target}")
            if unavailable.reason == "error":
                # E.g. the glossary was deleted in the DeepL account: look it up again next time.
                with self._lock:
                    self._glossaries.clear()
            raise unavailable from error
        return [result.text for result in results]

    # --- glossary -----------------------------------------------------------------------

    def _glossary(self, source: str, target: str) -> str | None:
        """The id of this pair's product-name glossary, found or created once."""
        if not self.glossary_terms:
            return None
        base = deepl.Language.remove_regional_variant(deepl_target(target)).lower()
        with self._lock:
            if (source, base) not in self._glossaries:
                self._glossaries[(source, base)] = self._find_or_create_glossary(source, base)
            return self._glossaries[(source, base)]

    def glossary_name(self, source: str, target: str) -> str:
        return f"leadflow-{self.glossary_version}-{source}-{target}"

    def _find_or_create_glossary(self, source: str, target: str) -> str:
        assert self._client is not None
        client = self._client
        name = self.glossary_name(source, target)
        what = f"the glossary {name}"
        existing = self._deepl(client.list_glossaries, what)
        for glossary in existing:
            if glossary.name == name and glossary.ready:
                return glossary.glossary_id
        entries = {term: term for term in self.glossary_terms}
        try:
            created = client.create_glossary(name, source.upper(), target.upper(), entries)
        except deepl.DeepLException as error:
            if _is_client_error(error):
                raise TranslationUnavailable(
                    f"DeepL could not create {what} ({source}→{target}): {error}; "
                    "product names cannot be protected, so nothing is translated",
                    "glossary",
                ) from error
            raise self._translation_error(error, what) from error
        log.info("created DeepL glossary %s with %d terms", name, len(entries))
        return created.glossary_id

    # --- DeepL errors -------------------------------------------------------------------

    def _deepl(self, call: Callable[[], T], what: str) -> T:
        try:
            return call()
        except deepl.DeepLException as error:
            raise self._translation_error(error, what) from error

    def _translation_error(self, error: deepl.DeepLException, what: str) -> TranslationUnavailable:
        env = self.settings.api_key_env
        if isinstance(error, deepl.QuotaExceededException):
            return TranslationUnavailable(
                f"DeepL quota exceeded (HTTP 456) for {what}: the key in ${env} has used "
                "its characters for this billing period",
                "quota",
            )
        if isinstance(error, deepl.AuthorizationException):
            return TranslationUnavailable(
                f"DeepL refused the key in ${env} (HTTP 403) for {what}: check the key", "auth"
            )
        if isinstance(error, deepl.TooManyRequestsException):
            return TranslationUnavailable(
                f"DeepL still answers 429 (too many requests) for {what} after retries",
                "rate_limited",
            )
        if isinstance(error, deepl.ConnectionException):
            return TranslationUnavailable(
                f"DeepL cannot be reached for {what}: {error}", "unavailable"
            )
        status = error.http_status_code
        if status is not None and status >= 500:
            return TranslationUnavailable(
                f"DeepL is unavailable (HTTP {status}) for {what} after retries", "unavailable"
            )
        return TranslationUnavailable(f"DeepL refused {what}: {error}", "error")

    # --- memory -------------------------------------------------------------------------

    def _recall(self, key: MemoryKey, texts: set[str]) -> dict[str, str]:
        """The remembered translations of `texts` under `key`, by source text."""
        if self._engine is None:
            return {}
        by_hash = {source_hash(text): text for text in texts}
        query = sa.text(
            "select source_sha256, translated_text from ops.translation_memory"
            " where source_sha256 in :hashes and source_language = :source"
            " and target_language = :target and formality = :formality"
            " and glossary_version = :glossary_version"
        ).bindparams(sa.bindparam("hashes", expanding=True))
        with self._engine.connect() as connection:
            rows = connection.execute(query, {"hashes": list(by_hash), **_key_params(key)})
            return {by_hash[digest]: translated for digest, translated in rows}

    def _remember(self, key: MemoryKey, pairs: dict[str, str]) -> None:
        if self._engine is None or not pairs:
            return
        statement = sa.text(
            "insert into ops.translation_memory (source_sha256, source_language,"
            " target_language, formality, glossary_version, source_text, translated_text,"
            " provider) values (:source_sha256, :source, :target, :formality,"
            " :glossary_version, :source_text, :translated_text, :provider)"
            " on conflict do nothing"
        )
        rows = [
            {
                "source_sha256": source_hash(text),
                "source_text": text,
                "translated_text": translated,
                "provider": PROVIDER,
                **_key_params(key),
            }
            for text, translated in pairs.items()
        ]
        with self._engine.begin() as connection:
            connection.execute(statement, rows)


def _key_params(key: MemoryKey) -> dict[str, str]:
    return {
        "source": key.source,
        "target": key.target,
        "formality": key.formality,
        "glossary_version": key.glossary_version,
    }


def _fallback_outcome(settings: Translation) -> str:
    if settings.fallback == "hold":
        return "held (not sent)"
    return f"sent in the source language ({settings.source_language})"


def _is_client_error(error: deepl.DeepLException) -> bool:
    status = error.http_status_code
    return status is not None and 400 <= status < 500 and status not in (403, 429, 456)
