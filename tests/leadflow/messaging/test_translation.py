"""Translator: the real deepl client against a local fake of DeepL, memory in a real PostgreSQL.

The fake "translates" a text node `t` into `[<TARGET>] t`, with "HydroStat" rendered as
"HydroStatique" unless a glossary term covers it (fake_deepl.py), so every expected output
below is written out by hand.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from pathlib import Path

import deepl
import pytest
import sqlalchemy as sa

from leadflow.config import load_config
from leadflow.config.models import Translation
from leadflow.messaging.translation import (
    TranslationUnavailable,
    Translator,
    deepl_formality,
    glossary_version,
)
from tests.leadflow.messaging.fake_deepl import FAKE_AUTH_KEY, FakeDeepL

PROJECT_ROOT = Path(__file__).resolve().parents[3]
TERMS = ["HydroStat 3000", "HydroClean"]
KEY_ENV = {"DEEPL_AUTH_KEY": FAKE_AUTH_KEY}
LAUNCH = "<p>Die neue <b>HydroStat 3000</b> ersetzt die HydroStat 2000.</p>"
LAUNCH_FR = "<p>[FR] Die neue <b>[FR] HydroStat 3000</b> [FR] ersetzt die HydroStatique 2000.</p>"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    """Two retries after 10 ms instead of five after up to a minute: tests stay fast."""
    monkeypatch.setattr(deepl.http_client, "max_network_retries", 2)
    monkeypatch.setattr(deepl.http_client, "min_connection_timeout", 5.0)
    monkeypatch.setattr(deepl.http_client._BackoffTimer, "BACKOFF_INITIAL", 0.01)


@pytest.fixture
def fake(httpserver) -> FakeDeepL:
    return FakeDeepL(httpserver).install()


def settings_for(fake: FakeDeepL, terms=TERMS, **overrides) -> Translation:
    return Translation(server_url=fake.url, glossary_terms=terms, **overrides)


def translator_for(fake: FakeDeepL, engine, terms=TERMS, env=KEY_ENV, **overrides) -> Translator:
    return Translator.from_settings(settings_for(fake, terms, **overrides), engine, env=env)


def memory_rows(engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                "select source_language, target_language, formality, glossary_version,"
                " source_text, translated_text, provider from ops.translation_memory"
                " order by glossary_version, source_text"
            )
        ).all()


# --- DeepL is called the way the spec says ----------------------------------------------


def test_html_is_kept_and_the_glossary_keeps_product_names(fake, warehouse):
    translator = translator_for(fake, warehouse)

    assert translator.translate(LAUNCH, "de", "fr", "more") == LAUNCH_FR

    # One glossary for the pair, every term mapped to itself, used in the request.
    [glossary] = fake.glossaries.values()
    assert glossary["name"] == f"leadflow-{glossary_version(TERMS)}-de-fr"
    assert glossary["entries"] == {"HydroClean": "HydroClean", "HydroStat 3000": "HydroStat 3000"}
    [call] = fake.translate_calls
    assert call.body["glossary_id"] == glossary["glossary_id"]
    assert call.body["tag_handling"] == "html"
    assert call.body["source_lang"] == "DE"
    assert call.body["target_lang"] == "FR"
    assert call.body["text"] == [LAUNCH]


def test_without_glossary_terms_product_names_are_machine_translated(fake, warehouse):
    translator = translator_for(fake, warehouse, terms=[])

    assert translator.translate(LAUNCH, "de", "fr", "more") == (
        "<p>[FR] Die neue <b>[FR] HydroStatique 3000</b> [FR] ersetzt die HydroStatique 2000.</p>"
    )
    assert fake.glossaries == {}
    assert "glossary_id" not in fake.translate_calls[0].body
    assert translator.glossary_version == "none"


def test_escaped_plain_text_keeps_its_entities(fake, warehouse):
    subject = html.escape("Wartung & Service: HydroClean <jetzt>")
    translated = translator_for(fake, warehouse).translate(subject, "de", "fr", "more")

    assert html.unescape(translated) == "[FR] Wartung & Service: HydroClean <jetzt>"


def test_same_language_and_blank_text_are_not_translated(fake, warehouse):
    translator = translator_for(fake, warehouse)

    assert translator.translate(LAUNCH, "de", "de", "more") == LAUNCH
    assert translator.translate_many(["", "  "], "de", "fr", "more") == ["", "  "]
    assert fake.requests == []
    assert memory_rows(warehouse) == []


def test_glossary_is_found_by_name_and_reused(fake, warehouse):
    translator_for(fake, warehouse).translate("<p>Eins</p>", "de", "it", "more")
    # A new translator (another process) finds the glossary by name instead of creating one.
    second = translator_for(fake, warehouse)
    assert second.translate("<p>Zwei</p>", "de", "it", "more") == "<p>[IT] Zwei</p>"
    second.translate("<p>Drei</p>", "de", "it", "more")

    assert len(fake.calls("/v2/glossaries", "POST")) == 1
    # The first translator listed once; the second listed once and then kept the id.
    assert len(fake.calls("/v2/glossaries", "GET")) == 2
    assert len(fake.glossaries) == 1
    glossary_ids = {call.body["glossary_id"] for call in fake.translate_calls}
    assert glossary_ids == set(fake.glossaries)


def test_a_glossary_deleted_in_the_account_is_created_again(fake, warehouse):
    translator = translator_for(fake, warehouse)
    translator.translate("<p>Eins</p>", "de", "fr", "more")
    fake.glossaries.clear()

    with pytest.raises(TranslationUnavailable, match="Glossary not found") as raised:
        translator.translate("<p>Zwei</p>", "de", "fr", "more")
    assert raised.value.reason == "error"
    assert translator.translate("<p>Zwei</p>", "de", "fr", "more") == "<p>[FR] Zwei</p>"
    assert len(fake.calls("/v2/glossaries", "POST")) == 2
    assert len(fake.glossaries) == 1


# --- translation memory -----------------------------------------------------------------


def test_memory_hit_makes_no_request(fake, warehouse):
    translator = translator_for(fake, warehouse)
    assert translator.translate(LAUNCH, "de", "fr", "more") == LAUNCH_FR
    requests_after_first = len(fake.requests)
    assert requests_after_first == 3  # list glossaries, create glossary, translate

    assert translator.translate(LAUNCH, "de", "fr", "more") == LAUNCH_FR
    assert (
        Translator.from_settings(settings_for(fake), warehouse, env=KEY_ENV).translate(
            LAUNCH, "de", "fr", "more"
        )
        == LAUNCH_FR
    )
    assert len(fake.requests) == requests_after_first
    assert translator.stats.memory_hits == 1
    assert translator.stats.translated == 1
    assert memory_rows(warehouse) == [
        ("de", "fr", "more", glossary_version(TERMS), LAUNCH, LAUNCH_FR, "deepl")
    ]


def test_changed_source_text_is_translated_again(fake, warehouse):
    translator = translator_for(fake, warehouse)
    translator.translate("<p>Neu: HydroClean</p>", "de", "fr", "more")
    changed = translator.translate("<p>Jetzt neu: HydroClean</p>", "de", "fr", "more")

    assert changed == "<p>[FR] Jetzt neu: HydroClean</p>"
    assert [call.body["text"] for call in fake.translate_calls] == [
        ["<p>Neu: HydroClean</p>"],
        ["<p>Jetzt neu: HydroClean</p>"],
    ]
    assert len(memory_rows(warehouse)) == 2


def test_changed_glossary_makes_new_memory_keys(fake, warehouse):
    before = translator_for(fake, warehouse, terms=["HydroStat 3000"])
    assert before.translate(LAUNCH, "de", "fr", "more") == LAUNCH_FR

    # HydroStat 2000 joins the glossary: the old translation must not be reused.
    after = translator_for(fake, warehouse, terms=["HydroStat 3000", "HydroStat 2000"])
    assert after.translate(LAUNCH, "de", "fr", "more") == (
        "<p>[FR] Die neue <b>[FR] HydroStat 3000</b> [FR] ersetzt die HydroStat 2000.</p>"
    )

    assert len(fake.translate_calls) == 2
    assert sorted(g["name"] for g in fake.glossaries.values()) == sorted(
        [
            f"leadflow-{glossary_version(['HydroStat 3000'])}-de-fr",
            f"leadflow-{glossary_version(['HydroStat 2000', 'HydroStat 3000'])}-de-fr",
        ]
    )
    versions = {row[3] for row in memory_rows(warehouse)}
    assert versions == {before.glossary_version, after.glossary_version}
    assert before.glossary_version != after.glossary_version


def test_translate_many_sends_one_request_for_the_misses_in_order(fake, warehouse):
    translator = translator_for(fake, warehouse)
    translator.translate("<p>B</p>", "de", "es", "less")

    result = translator.translate_many(
        ["<p>A</p>", "<p>B</p>", "", "<p>C</p>", "<p>A</p>"], "de", "es", "less"
    )

    assert result == ["<p>[ES] A</p>", "<p>[ES] B</p>", "", "<p>[ES] C</p>", "<p>[ES] A</p>"]
    assert [call.body["text"] for call in fake.translate_calls] == [
        ["<p>B</p>"],
        ["<p>A</p>", "<p>C</p>"],
    ]
    assert translator.stats.memory_hits == 1
    assert translator.stats.translated == 3


# --- formality --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant_formality", "target", "deepl_target", "sent"),
    [
        ("more", "fr", "FR", "more"),
        ("less", "es", "ES", "less"),
        ("default", "it", "IT", "default"),
        # English has no formality: DeepL would refuse more/less, so prefer_* is sent.
        ("more", "en", "EN-GB", "prefer_more"),
        ("less", "en", "EN-GB", "prefer_less"),
        ("prefer_more", "en", "EN-GB", "prefer_more"),
    ],
)
def test_tenant_formality_is_passed_to_deepl(
    fake, warehouse, tenant_formality, target, deepl_target, sent
):
    translator = translator_for(fake, warehouse)

    result = translator.translate("<p>Guten Tag</p>", "de", target, tenant_formality)

    assert result == f"<p>[{deepl_target}] Guten Tag</p>"
    [call] = fake.translate_calls
    assert (call.body["target_lang"], call.body["formality"]) == (deepl_target, sent)
    assert memory_rows(warehouse)[0][2] == sent


def test_deepl_refuses_formality_more_for_english(fake):
    """Why deepl_formality exists: the fake answers as DeepL does."""
    client = deepl.DeepLClient(FAKE_AUTH_KEY, server_url=fake.url)
    with pytest.raises(deepl.DeepLException, match="formality"):
        client.translate_text("Hallo", source_lang="DE", target_lang="EN-GB", formality="more")
    assert deepl_formality("more", "EN-GB") == "prefer_more"
    assert deepl_formality("more", "DE") == "more"


# --- DeepL errors -----------------------------------------------------------------------


def test_429_is_retried_then_succeeds(fake, warehouse):
    fake.fail_next(429)
    translator = translator_for(fake, warehouse)

    assert translator.translate("<p>Hallo</p>", "de", "fr", "more") == "<p>[FR] Hallo</p>"
    assert len(fake.translate_calls) == 2


def test_429_after_all_retries_is_unavailable(fake, warehouse):
    fake.fail_next(429, 429, 429)
    translator = translator_for(fake, warehouse)

    with pytest.raises(TranslationUnavailable, match="429") as raised:
        translator.translate("<p>Hallo</p>", "de", "fr", "more")
    assert raised.value.reason == "rate_limited"
    assert len(fake.translate_calls) == 3  # first try + 2 retries
    assert memory_rows(warehouse) == []


def test_quota_exceeded(fake, warehouse):
    fake.character_limit = 5
    translator = translator_for(fake, warehouse)

    with pytest.raises(TranslationUnavailable, match="DeepL quota exceeded") as raised:
        translator.translate("<p>Hallo</p>", "de", "fr", "more")
    assert raised.value.reason == "quota"
    assert len(fake.translate_calls) == 1  # 456 is not retried
    assert memory_rows(warehouse) == []


def test_server_error_after_retries_is_unavailable(fake, warehouse):
    fake.fail_next(500, 500, 500)
    translator = translator_for(fake, warehouse)

    with pytest.raises(TranslationUnavailable, match=r"unavailable \(HTTP 500\)") as raised:
        translator.translate("<p>Hallo</p>", "de", "fr", "more")
    assert raised.value.reason == "unavailable"
    assert len(fake.translate_calls) == 3

    # The next message, once DeepL is back, is translated normally.
    assert translator.translate("<p>Hallo</p>", "de", "fr", "more") == "<p>[FR] Hallo</p>"


def test_server_error_then_success(fake, warehouse):
    fake.fail_next(503)
    translator = translator_for(fake, warehouse)

    assert translator.translate("<p>Hallo</p>", "de", "fr", "more") == "<p>[FR] Hallo</p>"
    assert len(fake.translate_calls) == 2


def test_wrong_key_says_which_variable(fake, warehouse):
    translator = translator_for(fake, warehouse, env={"DEEPL_AUTH_KEY": "wrong:fx"})

    with pytest.raises(
        TranslationUnavailable, match=r"refused the key in \$DEEPL_AUTH_KEY"
    ) as raised:
        translator.translate("<p>Hallo</p>", "de", "fr", "more")
    assert raised.value.reason == "auth"


def test_a_batch_is_all_or_nothing(fake, warehouse):
    """60 texts go in two requests (50 + 10); the second runs out of quota: no result at all,
    the 50 paid for are remembered and not asked for again."""
    texts = [f"<p>Text {n:02}</p>" for n in range(60)]  # 14 characters each
    fake.character_limit = 50 * 14
    translator = translator_for(fake, warehouse, terms=[])

    with pytest.raises(TranslationUnavailable, match="quota"):
        translator.translate_many(texts, "de", "fr", "more")
    assert len(memory_rows(warehouse)) == 50

    fake.character_limit = 60 * 14
    result = translator.translate_many(texts, "de", "fr", "more")
    assert result == [f"<p>[FR] Text {n:02}</p>" for n in range(60)]
    assert [len(call.body["text"]) for call in fake.translate_calls] == [50, 10, 10]


# --- no key, provider none ----------------------------------------------------------------


def test_no_key_warns_once_and_never_calls_deepl(fake, warehouse, caplog):
    caplog.set_level(logging.WARNING, logger="leadflow.messaging.translation")
    translator = translator_for(fake, warehouse, env={})

    for _ in range(2):
        with pytest.raises(
            TranslationUnavailable, match=r"no DeepL key in \$DEEPL_AUTH_KEY"
        ) as raised:
            translator.translate("<p>Hallo</p>", "de", "fr", "more")
        assert raised.value.reason == "no_key"
    assert translator.translate("<p>Hallo</p>", "de", "de", "more") == "<p>Hallo</p>"

    assert fake.requests == []
    assert not translator.available
    assert translator.fallback == "source_language"
    assert [record.getMessage() for record in caplog.records] == [
        "no DeepL key in $DEEPL_AUTH_KEY: content without a human translation is sent in the "
        "source language (de)"
    ]


def test_no_key_still_reuses_the_memory(fake, warehouse):
    translator_for(fake, warehouse).translate("<p>Hallo</p>", "de", "fr", "more")
    requests = len(fake.requests)

    keyless = translator_for(fake, warehouse, env={})
    assert keyless.translate("<p>Hallo</p>", "de", "fr", "more") == "<p>[FR] Hallo</p>"
    with pytest.raises(TranslationUnavailable):
        # One text missing fails the whole batch: never a half-translated message.
        keyless.translate_many(["<p>Hallo</p>", "<p>Tschüss</p>"], "de", "fr", "more")
    assert len(fake.requests) == requests


def test_no_key_with_hold_fallback_says_so(fake, warehouse, caplog):
    caplog.set_level(logging.WARNING, logger="leadflow.messaging.translation")
    translator = translator_for(fake, warehouse, env={}, fallback="hold")

    assert translator.fallback == "hold"
    assert [record.getMessage() for record in caplog.records] == [
        "no DeepL key in $DEEPL_AUTH_KEY: content without a human translation is held (not sent)"
    ]


def test_provider_none_and_disabled_translate_nothing(fake, warehouse, caplog):
    caplog.set_level(logging.WARNING, logger="leadflow.messaging.translation")
    translator = translator_for(fake, warehouse, provider="none")

    with pytest.raises(TranslationUnavailable, match="provider: none") as raised:
        translator.translate("<p>Hallo</p>", "de", "fr", "more")
    assert raised.value.reason == "disabled"
    assert [record.getMessage() for record in caplog.records] == [
        "translation provider is 'none': content without a human translation is sent in the "
        "source language (de)"
    ]

    disabled = Translator.disabled()
    assert disabled.translate("<p>Hallo</p>", "de", "de") == "<p>Hallo</p>"
    with pytest.raises(TranslationUnavailable, match="disabled"):
        disabled.translate("<p>Hallo</p>", "de", "fr")
    assert fake.requests == []


def test_from_config_reads_the_example_company(fake, warehouse, monkeypatch):
    config = load_config(PROJECT_ROOT / "include" / "config")
    monkeypatch.setenv("DEEPL_AUTH_KEY", FAKE_AUTH_KEY)
    settings = config.company.translation.model_copy(update={"server_url": fake.url})
    company = config.company.model_copy(update={"translation": settings})
    translator = Translator.from_config(dataclasses.replace(config, company=company), warehouse)

    assert translator.available
    assert (
        translator.translate(
            "<p>HydroStat 2000 und HydroScope von Steinhoff Hydraulik</p>", "de", "en", "more"
        )
        == "<p>[EN-GB] HydroStat 2000 und HydroScope von Steinhoff Hydraulik</p>"
    )
    [glossary] = fake.glossaries.values()
    assert glossary["name"] == "leadflow-470f8614d46d-de-en"
    assert len(glossary["entries"]) == 5
