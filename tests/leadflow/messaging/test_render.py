"""Rendering every shipped message; personalisation, escaping, sandbox, links, preview."""

from __future__ import annotations

import random
import re
from pathlib import Path

import lxml.html
import pytest

from leadflow.messaging import links
from leadflow.messaging.render import (
    Renderer,
    RenderError,
    TemplateSecurityError,
    TranslationHeld,
    _whitespace_controlled,
)
from leadflow.messaging.templates import Templates, html_environment
from tests.leadflow.messaging.render_helpers import (
    SECRET,
    MarkingTranslator,
    SourceOnlyTranslator,
    contact,
    copy_of_templates,
    outbox_row,
    shipped_config,
    with_translation,
)

TAG = re.compile(r"<[a-zA-Z/!]")
TOKEN = r"([A-Za-z0-9_\-\.]+)"
IMPRINT_FIRST_LINE = {
    ("hq", "de"): "Steinhoff Hydraulik GmbH · Industriestraße 12 · 70565 Stuttgart · Deutschland",
    ("hq", "en"): "Steinhoff Hydraulik GmbH · Industriestraße 12 · 70565 Stuttgart · Germany",
    ("fr", "fr"): "Steinhoff Hydraulique France SAS · 18 rue de l'Industrie · 69007 Lyon · France",
    (
        "it",
        "it",
    ): "Steinhoff Idraulica Italia S.r.l. · Via dell'Industria 24 · 20151 Milano · Italia",
    (
        "es",
        "es",
    ): "Steinhoff Hidráulica España S.L. · Calle de la Industria 7 · 08040 Barcelona · España",
}
FORMAL_MS = {
    "de": "Sehr geehrte Frau Dubois,",
    "en": "Dear Ms Dubois,",
    "fr": "Bonjour Madame Dubois,",
    "it": "Gentile Signora Dubois,",
    "es": "Estimada Sra. Dubois:",
}
NEUTRAL = {
    "de": "Guten Tag,",
    "fr": "Madame, Monsieur,",
    "it": "Gentile Cliente,",
    "es": "Estimado/a cliente:",
}


@pytest.fixture(scope="module")
def config():
    return shipped_config()


@pytest.fixture(scope="module")
def templates(config):
    return Templates.load(config)


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("LEADFLOW_TRACKING_SECRET", SECRET)


def renderer(config, templates=None, translator=None, **options) -> Renderer:
    return Renderer(config, translator or MarkingTranslator(), templates=templates, **options)


def html_text(html: str) -> str:
    """The HTML with entities decoded enough to compare human text (apostrophes)."""
    return html.replace("&#39;", "'").replace("&#x27;", "'")


# --- every message, every tenant, every language -----------------------------------------


def test_every_message_renders_for_every_tenant_and_language(config, templates):
    render = renderer(config, templates)
    counts = {"campaign_mail": 0, "owner_notification": 0}
    for campaign in config.campaigns.values():
        for index, kind, message in campaign.messages():
            row_kind = "campaign_mail" if kind == "send" else "owner_notification"
            for code in campaign.tenants:
                tenant = config.tenant(code)
                for language in tenant.languages:
                    row = outbox_row(
                        campaign.id, message, code, kind=row_kind, step_id=campaign.steps[index].id
                    )
                    mail = render.render(row, contact(language=language))
                    where = f"{campaign.id}/{message} {code} {language}"
                    expected_language = language if row_kind == "campaign_mail" else tenant.language
                    assert mail.language == expected_language, where
                    _assert_complete(mail, code, row_kind, where)
                    counts[row_kind] += 1
    # 33 campaign mails and 3 notifications; 4 tenants with 5 languages in all.
    assert counts == {"campaign_mail": 165, "owner_notification": 15}


def _assert_complete(mail, code, row_kind, where):
    language = mail.language
    imprint = IMPRINT_FIRST_LINE[(code, language)]
    assert imprint in html_text(mail.html), where
    assert imprint in mail.text, where
    assert TAG.search(mail.text) is None, where
    assert mail.subject and "None" not in mail.subject, where
    assert "None" not in mail.text, where
    base = "https://go.steinhoff-hydraulik.example"
    if row_kind == "campaign_mail":
        assert re.search(f"{base}/u/{TOKEN}", mail.html), where
        assert re.search(f"{base}/u/{TOKEN}", mail.text), where
        assert re.search(f'<img src="{base}/o/{TOKEN}\\.gif"', mail.html), where
        assert FORMAL_MS[language] in mail.text, where
        assert mail.links, where
    else:
        # Mails to sales reps: no unsubscribe, no pixel, no tracked link (their clicks
        # would count as the contact's), a neutral greeting.
        assert f"{base}/" not in mail.html, where
        assert mail.links == [], where
        assert mail.text.startswith(NEUTRAL[language] + "\n"), where


def test_text_part_is_real_text_with_salutation_and_blocks(config, templates):
    row = outbox_row("upsell_hs3000", "hs2000_vs_hs3000", "hq")
    mail = renderer(config, templates).render(row, contact())
    assert mail.text.startswith("Sehr geehrte Frau Dubois,\n\n")
    assert "Die neue HydroStat 3000: 30 % mehr Leistung" in mail.text
    assert "Filterwechsel  mit Werkzeug    werkzeuglos" in mail.text  # the table, as a table
    assert TAG.search(mail.text) is None
    assert "&amp;" not in mail.text and "&nbsp;" not in mail.text


def test_css_is_inlined(config, templates):
    mail = renderer(config, templates).render(outbox_row("onboarding", "welcome"), contact())
    assert re.search(r'<td class="content" style="[^"]*padding: 24px 32px', mail.html)
    assert "@media" in mail.html  # kept for clients that understand it
    assert ".content {" not in mail.html


# --- languages and translation --------------------------------------------------------


def test_language_is_the_contacts_if_the_tenant_offers_it(config, templates):
    render = renderer(config, templates)
    row = outbox_row("onboarding", "welcome", "hq")
    assert render.render(row, contact(language="en")).language == "en"
    assert render.render(row, contact(language="EN ")).language == "en"
    # HQ offers de and en: French falls back to the tenant's language.
    assert render.render(row, contact(language="fr")).language == "de"
    assert render.render(row, contact(language=None)).language == "de"
    fr_row = outbox_row("onboarding", "welcome", "fr")
    assert render.render(fr_row, contact(language="de")).language == "fr"


def test_human_translations_win_and_the_rest_is_translated(config, templates):
    translator = MarkingTranslator()
    mail = renderer(config, templates, translator).render(
        outbox_row("cross_sell", "cleaning_guide", "fr"), contact(language="fr")
    )
    assert mail.subject == "Votre guide : nettoyer une HydroStat en cinq étapes"
    assert "voici notre guide étape par étape" in html_text(mail.html)
    assert "Le nettoyage en cinq étapes" in mail.html  # the block's human French version
    # hydroclean_product has no French version: its title, alt text and body went to the
    # translator, with the tenant's formality.
    assert "[fr] HydroClean Konzentrat 10 l und 25 l" in mail.html
    assert "[fr] HydroClean Kanister" in mail.html
    assert {call[1:] for call in translator.calls} == {("fr", "more")}
    assert len(translator.calls) == 3


def test_template_code_never_reaches_the_translator(config, templates):
    translator = MarkingTranslator()
    render = renderer(config, templates, translator)
    # survey_invitation has no human body in Italian: the body source is translated.
    mail = render.render(outbox_row("loyalty", "survey_invitation", "it"), contact(language="it"))
    sent = "".join(translator.texts)
    assert "{{" not in sent and "{%" not in sent
    assert '<x-lf n="0"></x-lf>' in sent
    assert "Il team di" not in mail.html  # no human Italian body: the German one, translated
    assert "[it] <p>wie zufrieden sind Sie" in mail.html
    assert "Steinhoff Idraulica" in mail.html  # {{ tenant.sender }} restored and rendered


def test_without_translation_the_whole_mail_is_in_the_source_language(config, templates):
    render = renderer(config, templates, SourceOnlyTranslator())
    mail = render.render(outbox_row("upsell_hs3000", "care_tips", "fr"), contact(language="fr"))
    # Only the subject has a French version; never half translated: all German.
    assert mail.language == "de"
    assert mail.subject == "Pflegetipps bis zur Wartung"
    assert mail.text.startswith("Sehr geehrte Frau Dubois,")
    assert "Abmelden" in mail.text
    assert "Steinhoff Hydraulique France SAS" in mail.text  # the tenant's own imprint, in German
    assert "Frankreich" in mail.text


def test_fully_human_translated_mail_needs_no_translator(config, templates):
    translator = SourceOnlyTranslator()
    mail = renderer(config, templates, translator).render(
        outbox_row("ebook_nurture", "ebook_delivery", "es"), contact(language="es")
    )
    assert mail.language == "es"
    assert mail.subject == "Su e-book «Se acabó la falta de impulso»"
    assert "Estimada Sra. Dubois:" in mail.text
    assert translator.calls == []


def test_hold_fallback_raises_translation_held(config, templates):
    held = with_translation(config, fallback="hold")
    render = renderer(held, templates, SourceOnlyTranslator())
    with pytest.raises(TranslationHeld, match=r"outbox row 4711 .*no 'it' translation"):
        render.render(outbox_row("upsell_hs3000", "care_tips", "it"), contact(language="it"))
    # German mails of the same renderer still render.
    assert render.render(outbox_row("upsell_hs3000", "care_tips", "hq"), contact()).language == "de"


# --- personalisation and salutations -----------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "language", "salutation", "last_name", "expected"),
    [
        ("hq", "de", "mr", "Müller", "Sehr geehrter Herr Müller,"),
        ("hq", "de", "Frau", "Weber", "Sehr geehrte Frau Weber,"),
        ("hq", "de", None, "Weber", "Guten Tag,"),
        ("hq", "de", "mr", None, "Guten Tag,"),
        ("hq", "de", "ms", "  ", "Guten Tag,"),
        ("hq", "en", "mr", "Smith", "Dear Mr Smith,"),
        ("hq", "en", "dr", "Smith", "Hello,"),
        ("fr", "fr", "Mme", "Martin", "Bonjour Madame Martin,"),
        ("fr", "fr", "M.", "Martin", "Bonjour Monsieur Martin,"),
        ("fr", "fr", None, "Martin", "Madame, Monsieur,"),
        ("it", "it", "ms", "Rossi", "Gentile Signora Rossi,"),
        ("it", "it", None, None, "Gentile Cliente,"),
        ("es", "es", "mr", "García", "Estimado Sr. García:"),
        ("es", "es", "x", "García", "Estimado/a cliente:"),
    ],
)
def test_salutation_rules(config, templates, tenant, language, salutation, last_name, expected):
    person = contact(salutation=salutation, last_name=last_name, language=language)
    mail = renderer(config, templates).render(outbox_row("onboarding", "welcome", tenant), person)
    assert mail.text.splitlines()[0] == expected
    assert '<p class="salutation"' in mail.html
    assert expected in html_text(mail.html)


def test_missing_first_name_never_renders_none(config, templates):
    render = renderer(config, templates)
    row = outbox_row("loyalty", "thank_you", "hq")
    for first_name in (None, "", "   "):
        mail = render.render(row, contact(first_name=first_name))
        assert mail.subject == "Danke für Ihre Treue, liebe Kundin, lieber Kunde"
        assert "None" not in mail.html and "None" not in mail.text
    assert render.render(row, contact(first_name="Jana")).subject == "Danke für Ihre Treue, Jana"


def test_a_field_missing_from_the_contact_is_blank(config, templates):
    person = contact()
    del person["account_name"]
    mail = renderer(config, templates).render(
        outbox_row("cross_sell", "range_overview", "hq"), person
    )
    assert "leistet bei Ihnen gute Dienste" in mail.text


def test_markup_in_contact_fields_is_escaped(config, templates):
    person = contact(
        account_name="<script>alert(1)</script>",
        last_name='<img src=x onerror="alert(2)">',
        first_name="{{ 7 * 7 }}",
    )
    render = renderer(config, templates)
    mail = render.render(outbox_row("upsell_hs3000", "maintenance_notice", "hq"), person)
    assert "<script" not in mail.html.lower()
    assert "<img src=x" not in mail.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    assert "&lt;img src=x" in mail.html
    # Contact data is data: template code in it is shown, not run.
    owner = render.render(
        outbox_row("ebook_nurture", "owner_qualified_lead", "hq", kind="owner_notification"),
        person,
    )
    assert owner.subject.startswith("Qualifizierter Lead: {{ 7 * 7 }} <img")
    assert "49" not in owner.subject


# --- the sandbox ---------------------------------------------------------------------------


PAYLOADS_BLOCKED_BY_THE_SANDBOX = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''|attr('__class__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ content.__globals__ }}",
    "{{ contact.__class__ }}",
    "{{ step_content.append('x') }}",
]


@pytest.fixture
def editable(config, tmp_path):
    return copy_of_templates(config, tmp_path)


def _replace_body(editable, campaign: str, message: str, body: str) -> Path:
    path = Path(editable.templates_dir) / "messages" / campaign / f"{message}.yaml"
    path.write_text(f"subject: Betreff\nbody: {body!r}\n")
    return path


@pytest.mark.parametrize("payload", PAYLOADS_BLOCKED_BY_THE_SANDBOX)
def test_sandbox_blocks_the_payload_and_only_that_mail(editable, payload):
    _replace_body(editable, "loyalty", "survey_reminder", f"<p>{payload}</p>")
    render = renderer(editable)
    with pytest.raises(TemplateSecurityError, match=r"outbox row 4711 .*survey_reminder.*sandbox"):
        render.render(outbox_row("loyalty", "survey_reminder"), contact())
    mail = render.render(outbox_row("loyalty", "survey_invitation"), contact())
    assert "Zur Befragung" in mail.html


@pytest.mark.parametrize("payload", ["{{ config }}", "{{ request.environ }}", "{{ os }}"])
def test_names_outside_the_context_are_errors_not_blanks(editable, payload):
    _replace_body(editable, "loyalty", "survey_reminder", f"<p>{payload}</p>")
    with pytest.raises(RenderError, match="is undefined"):
        renderer(editable).render(outbox_row("loyalty", "survey_reminder"), contact())


def test_sandbox_payload_in_a_subject_is_blocked(editable):
    path = Path(editable.templates_dir) / "messages" / "loyalty" / "survey_reminder.yaml"
    path.write_text("subject: \"{{ ''.__class__.__base__ }}\"\nbody: <p>Hallo</p>\n")
    with pytest.raises(TemplateSecurityError):
        renderer(editable).render(outbox_row("loyalty", "survey_reminder"), contact())


# --- content blocks ------------------------------------------------------------------------


def test_changing_a_content_block_changes_every_tenants_mail(editable):
    block = Path(editable.templates_dir).parent / "content" / "hs3000_product_news.yaml"
    old = "https://www.steinhoff-hydraulik.example/media/hydrostat-3000-launch.jpg"
    new = "https://www.steinhoff-hydraulik.example/media/hydrostat-3000-launch-v2.jpg"
    mails_before = _comparison_mails(editable)
    block.write_text(block.read_text().replace(old, new))
    mails_after = _comparison_mails(editable)
    assert len(mails_before) == len(mails_after) == 5  # hq de/en, fr, it, es
    assert all(old in mail.html and new not in mail.html for mail in mails_before)
    assert all(new in mail.html and old not in mail.html for mail in mails_after)


def _comparison_mails(config):
    render = renderer(config)
    mails = []
    for tenant in config.tenants:
        for language in tenant.languages:
            row = outbox_row("upsell_hs3000", "hs2000_vs_hs3000", tenant.code)
            mails.append(render.render(row, contact(language=language)))
    return mails


# --- links ---------------------------------------------------------------------------------


def test_links_become_signed_click_urls_with_tags(config, templates):
    mail = renderer(config, templates).render(
        outbox_row("upsell_hs3000", "hs2000_vs_hs3000", "hq"), contact()
    )
    by_url = {link.url: link for link in mail.links}
    site = "https://www.steinhoff-hydraulik.example"
    assert {url: link.tag for url, link in by_url.items()} == {
        site: "logo",
        f"{site}/produkte/hydrostat-3000": "hydrostat_3000",
        f"{site}/downloads/vergleich-hs2000-hs3000.pdf": "hydrostat_3000",
        f"{site}/preise/hydrostat-3000": "pricing",  # its own data-tag beats the block's
        f"{site}/#": "honeypot",
    }
    clicks = re.findall(
        r'href="https://go\.steinhoff-hydraulik\.example/c/' + TOKEN + '"', mail.html
    )
    assert len(clicks) == 5
    ids = {links.verify(token, SECRET, purpose="click")["link_id"] for token in clicks}
    assert ids == {link.link_id for link in mail.links}
    assert f'href="{site}/' not in mail.html  # no untracked web link is left
    assert "data-tag" not in mail.html
    # The text part points to the same click URLs as the HTML part.
    text_clicks = set(re.findall(r"/c/" + TOKEN + r"\)", mail.text))
    assert text_clicks and text_clicks <= set(clicks)


def test_mailto_tel_and_service_links_stay_as_they_are(config, templates):
    mail = renderer(config, templates).render(outbox_row("onboarding", "welcome", "hq"), contact())
    assert 'href="tel:+497115550199"' in mail.html
    assert 'href="mailto:service@steinhoff-hydraulik.example"' in mail.html
    (unsubscribe,) = re.findall(
        r'href="https://go\.steinhoff-hydraulik\.example/u/' + TOKEN, mail.html
    )
    assert links.verify(unsubscribe, SECRET, purpose="unsubscribe") == {
        "outbox_id": 4711,
        "contact_id": "C-1",
    }
    (view,) = re.findall(r'href="https://go\.steinhoff-hydraulik\.example/v/' + TOKEN, mail.html)
    assert links.verify(view, SECRET, purpose="view")["outbox_id"] == 4711
    (pixel,) = re.findall(
        r'src="https://go\.steinhoff-hydraulik\.example/o/' + TOKEN + r"\.gif", mail.html
    )
    assert links.verify(pixel, SECRET, purpose="open") == {"outbox_id": 4711, "contact_id": "C-1"}


def test_preview_never_counts(config, templates, monkeypatch):
    monkeypatch.delenv("LEADFLOW_TRACKING_SECRET")
    monkeypatch.setenv("LEADFLOW_HOME", "/nonexistent/never-written")
    mail = renderer(config, templates, preview=True).render(
        outbox_row("upsell_hs3000", "hs2000_vs_hs3000", "hq"), contact()
    )
    assert mail.links == []
    assert "/o/" not in mail.html and "/c/" not in mail.html
    assert 'href="https://www.steinhoff-hydraulik.example/produkte/hydrostat-3000"' in mail.html
    assert "https://go.steinhoff-hydraulik.example/u/preview" in mail.html
    with pytest.raises(links.InvalidToken):
        links.verify("preview", SECRET, purpose="unsubscribe")


# --- prepared variants ---------------------------------------------------------------------


class FullRenderer(Renderer):
    """Renders every mail step by step (the reference the prepared variants must match)."""

    def _variant(self, mail):
        return None


def _comparable(mail, base="https://go.steinhoff-hydraulik.example"):
    """A mail with its tokens blanked and its HTML re-serialised (Jinja writes `'` as
    `&#39;` where css_inline writes `'`: the same document)."""
    tokens = re.compile(re.escape(base) + r"/([couv])/" + TOKEN)

    def plain(text):
        return tokens.sub(lambda match: f"{base}/{match.group(1)}/-", text)

    html = lxml.html.tostring(lxml.html.document_fromstring(plain(mail.html)), encoding="unicode")
    links = [(link.url, link.tag) for link in mail.links]
    return mail.subject, mail.language, plain(mail.text), html, links


def test_prepared_variants_render_what_the_full_rendering_renders(config, templates):
    prepared = renderer(config, templates)
    full = FullRenderer(config, MarkingTranslator(), templates=templates)
    people = [
        contact(),
        contact(last_name="O'Brien", first_name="Seán", account_name="Müller & Söhne <GmbH>"),
        contact(salutation=None, first_name=None, account_name=None),
        contact(salutation="mr", last_name="Rossi", first_name='"Quoted"  spaced'),
    ]
    compared = 0
    for campaign in config.campaigns.values():
        for index, kind, message in campaign.messages():
            row_kind = "campaign_mail" if kind == "send" else "owner_notification"
            for code in campaign.tenants:
                for language in config.tenant(code).languages:
                    row = outbox_row(
                        campaign.id, message, code, kind=row_kind, step_id=campaign.steps[index].id
                    )
                    for person in people:
                        person = person | {"language": language}
                        where = f"{campaign.id}/{message} {code} {language} {person}"
                        assert _comparable(prepared.render(row, person)) == _comparable(
                            full.render(row, person)
                        ), where
                        compared += 1
    assert compared == 180 * len(people)
    # Every campaign mail is prepared; the three notifications to sales reps list the
    # contact in a table (their text part lays the table out by the cell widths), so they
    # are rendered step by step.
    in_full = prepared.rendered_in_full()
    assert set(in_full.values()) == {"template code inside a table"}
    assert {name.split()[0] for name in in_full} == {
        "ebook_nurture/owner_qualified_lead",
        "fair_followup/owner_fair_lead",
        "upsell_hs3000/owner_upgrade_interest",
    }


def test_each_recipient_of_a_variant_gets_their_own_mail(config, templates):
    render = renderer(config, templates)
    first_row = outbox_row("upsell_hs3000", "hs2000_vs_hs3000", "hq")
    second_row = first_row | {"outbox_id": 4712, "contact_id": "C-2"}
    first = render.render(first_row, contact())
    second = render.render(
        second_row, contact(contact_id="C-2", salutation="Herr", last_name="Krüger")
    )
    third = render.render(
        second_row | {"outbox_id": 4713}, contact(salutation=None, last_name="Weber")
    )
    assert render.rendered_in_full() == {}  # the 2nd and 3rd mail came from the variant
    assert first.text.startswith("Sehr geehrte Frau Dubois,\n")
    assert second.text.startswith("Sehr geehrter Herr Krüger,\n")
    assert third.text.startswith("Guten Tag,\n")
    assert "Sehr geehrter Herr Krüger," in second.html and "Dubois" not in second.html
    # Own unsubscribe, view and pixel tokens: each verifies to its own outbox row.
    for mail, outbox_id, contact_id in ((first, 4711, "C-1"), (second, 4712, "C-2")):
        (unsubscribe,) = re.findall(r"/u/" + TOKEN + '"', mail.html)
        assert links.verify(unsubscribe, SECRET, purpose="unsubscribe") == {
            "outbox_id": outbox_id,
            "contact_id": contact_id,
        }
        (pixel,) = re.findall(r"/o/" + TOKEN + r"\.gif", mail.html)
        assert links.verify(pixel, SECRET, purpose="open")["outbox_id"] == outbox_id
        assert f"/u/{unsubscribe}" in mail.text
    # Own link ids for the same five links, and the click URLs lead to them.
    assert [(link.url, link.tag) for link in first.links] == [
        (link.url, link.tag) for link in second.links
    ]
    assert len(first.links) == len(second.links) == 5
    ids = [{link.link_id for link in mail.links} for mail in (first, second, third)]
    assert len(ids[0] | ids[1] | ids[2]) == 15
    clicks = re.findall(r"/c/" + TOKEN + '"', second.html)
    assert {links.verify(token, SECRET, purpose="click")["link_id"] for token in clicks} == ids[1]


def test_a_block_changed_after_preparing_is_seen_by_a_new_renderer(editable):
    block = Path(editable.templates_dir).parent / "content" / "comparison_table.yaml"
    row = outbox_row("upsell_hs3000", "hs2000_vs_hs3000", "hq")
    before = renderer(editable)
    assert "ca. 25 min" in before.render(row, contact()).html  # the variant is prepared
    block.write_text(block.read_text().replace("ca. 25 min", "ca. 20 min"))
    # The renderer keeps what it loaded and prepared; a new renderer reads the files again.
    assert "ca. 25 min" in before.render(row, contact(last_name="Weber")).html
    after = renderer(editable)
    first, second = (after.render(row, contact(last_name=name)) for name in ("Weber", "Roth"))
    for mail in (first, second):
        assert "ca. 20 min" in mail.html and "ca. 25 min" not in mail.html
        assert "ca. 20 min" in mail.text
    assert before.rendered_in_full() == after.rendered_in_full() == {}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            "<p>Hallo</p>{% set key = 'service_hotline' %}{{ content(key) }}",
            "the body chooses content blocks at run time",
        ),
        ("<p>{{ contact.account_name | safe }}</p>", "the body uses |safe"),
        (
            '<p><a href="https://www.steinhoff-hydraulik.example/k/{{ contact.contact_id }}">'
            "Ihr Konto</a></p>",
            "template code in a href attribute",
        ),
    ],
)
def test_bodies_a_variant_cannot_follow_are_rendered_step_by_step(editable, body, reason):
    _replace_body(editable, "loyalty", "survey_reminder", body)
    render = renderer(editable)
    row = outbox_row("loyalty", "survey_reminder")
    mails = [render.render(row, contact(account_name=name)) for name in ("A & B", "C")]
    assert render.rendered_in_full() == {"loyalty/survey_reminder hq de": reason}
    full = FullRenderer(editable, MarkingTranslator())
    for mail, name in zip(mails, ("A & B", "C"), strict=True):
        assert _comparable(mail) == _comparable(full.render(row, contact(account_name=name)))
        assert mail.links and "data-tag" not in mail.html


def test_whitespace_control_is_applied_as_jinja_applies_it():
    """The prepared body carries Jinja's trimming with it (the text part of `bei
    {{ account }}{% endif %}⏎steht` must read as the HTML does)."""
    environment = html_environment()
    untrimmed = environment.overlay(trim_blocks=False, lstrip_blocks=False)
    atoms = [
        "a", " ", "\n", "  ", "\t", "{{ v }}", "{#c#}", "{{- v }}", "{{ v -}}",
        "{% if x %}", "{%- if x %}", "{%+ if x %}", "{% endif %}", "{% endif -%}", "{% endif +%}",
    ]  # fmt: skip
    generator = random.Random(5)
    sources = ["bei {% if x %}{{ v }}{% endif %}\nsteht\n", "  {% if x %}\n  a\n  {% endif %}\n"]
    for _ in range(400):
        parts, opened = [], 0
        for atom in generator.choices(atoms, k=generator.randint(1, 10)):
            if "endif" in atom and not opened:
                continue
            opened += ("if x" in atom) - ("endif" in atom)
            parts.append(atom)
        sources.append("".join(parts) + "{% endif %}" * opened)
    for source in sources:
        prepared = "".join(_whitespace_controlled(source))
        prepared += "\n" if prepared.endswith("\n") else ""
        for x in (True, False):
            expected = environment.from_string(source).render(x=x, v="V")
            assert untrimmed.from_string(prepared).render(x=x, v="V") == expected, source
