"""Rendering: one outbox row and its contact → subject, HTML part, text part, tracked links.

What a mail is made of (see leadflow.messaging.templates for the files):

1. **Tenant and language.** The row's tenant (HQ when the row has none) gives the derived
   template. A campaign mail is in the contact's language when the tenant offers it, else
   in the tenant's language; a mail to the sales rep is in the tenant's language.
2. **Texts.** Subject, preheader and body come from the message file: a human translation
   for the language where one exists, else the source text translated by the `Translator`
   (Jinja expressions are swapped for placeholders first, so translation never touches
   template code, and the translation memory sees the same text for every recipient).
   Content blocks are resolved the same way, by key, at render time. When any part cannot
   be translated (`TranslationUnavailable`), the whole mail is rendered in the source
   language (`translation.fallback: source_language`) or not at all (`hold`:
   `TranslationHeld`) — never half translated.
3. **Jinja, sandboxed.** Subject, body and salutation run in the immutable sandbox with
   StrictUndefined (a misspelt variable fails the mail). Contact fields that are NULL or
   missing are blank values: they print as nothing, are false in `{% if %}` and take
   `default(...)`, so no mail ever says "Hallo None". Contact values are data, never
   template source, and the HTML environment escapes them.
4. **Layout.** The body goes into the master layout with the tenant's logo, slogan,
   salutation (formal when salutation and last name are known, neutral otherwise), imprint,
   unsubscribe and view-in-browser links and the open pixel.
5. **Links.** Every `<a href>` with an http(s) URL outside the tracking service becomes a
   signed click URL of a new random link id (`TrackedLink`; the dispatcher stores them in
   `ops.links`). Its tag is the nearest `data-tag` attribute (on the link or around it:
   content blocks wrap their links in their tag). mailto:, tel:, anchors and the service's
   own URLs (unsubscribe, view in browser) stay as they are. Mails to sales reps are not
   tracked at all: their clicks would count as the contact's.
6. **CSS and text.** CSS is inlined (css_inline) for mail clients that ignore `<style>`;
   the text part is the text layout around a real text rendering of the body (inscriptis:
   paragraphs, lists, `[label](url)` links), not HTML source.

`preview=True` renders the same mail without tracking: links keep their original URLs,
there is no open pixel, and unsubscribe/view URLs carry a token that never verifies, so a
preview can never count as an open, a click or an unsubscribe.

A problem with one mail (template error, sandbox violation, missing translation with
`hold`) raises `RenderError` for that mail only; the renderer stays usable for the next.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import css_inline
import lxml.html
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from jinja2 import TemplateError as JinjaError
from jinja2 import Undefined
from jinja2.exceptions import SecurityError
from markupsafe import Markup

from leadflow.config.fields import FIELDS
from leadflow.errors import LeadflowError
from leadflow.messaging import links as tracking
from leadflow.messaging.content import human_text, source_text
from leadflow.messaging.templates import Message, TemplateError, Templates
from leadflow.messaging.translation import TranslationUnavailable

_PLACEHOLDER = '<x-lf n="{}"></x-lf>'
_PLACEHOLDER_PATTERN = re.compile(r'<x-lf n="(\d+)"\s*/?>(?:\s*</x-lf>)?')
_JINJA_MARKUP = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
# A link in inscriptis' text output: [label](url).
_TEXT_LINK = re.compile(r"\]\((https?://[^)\s]+)\)")
_CACHE_LIMIT = 512
_MR = {
    "mr",
    "mr.",
    "herr",
    "hr.",
    "m",
    "m.",
    "monsieur",
    "sig",
    "sig.",
    "signor",
    "signore",
    "sr",
    "sr.",
    "señor",
    "senor",
    "don",
}
_MS = {
    "ms",
    "ms.",
    "mrs",
    "mrs.",
    "frau",
    "fr.",
    "mme",
    "mme.",
    "madame",
    "sig.ra",
    "sigra",
    "signora",
    "sra",
    "sra.",
    "señora",
    "senora",
    "doña",
}


class RenderError(LeadflowError):
    """This one mail cannot be rendered; the message names the outbox row and the cause."""


class TemplateSecurityError(RenderError):
    """A template tried something the sandbox forbids (private attributes, unsafe calls)."""


class TranslationHeld(RenderError):
    """No translation for the mail's language, and `translation.fallback` is `hold`."""


class TranslatorLike(Protocol):
    def translate(self, text_html: str, source: str, target: str, formality: str) -> str: ...


@dataclass(frozen=True)
class TrackedLink:
    """A link of one mail: the click URL carries `link_id`, the redirect goes to `url`."""

    link_id: str
    url: str
    tag: str | None


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    html: str
    text: str
    language: str
    links: list[TrackedLink]
    # Extra headers for this mail; Message-ID and List-Unsubscribe are the dispatcher's.
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Texts:
    subject: Any
    preheader: Any
    body: Any


class Blank(Undefined):
    """A NULL or missing contact field: prints as nothing and takes `default(...)`."""

    __slots__ = ()


class Renderer:
    """Renders outbox rows for one configuration (see the module docstring)."""

    def __init__(
        self,
        config: Any,
        translator: TranslatorLike,
        *,
        preview: bool = False,
        templates: Templates | None = None,
    ) -> None:
        self.config = config
        self.translator = translator
        self.preview = preview
        self.templates = templates if templates is not None else Templates.load(config)
        self.source_language = config.company.translation.source_language
        self.fallback = config.company.translation.fallback
        self._secret = None if preview else tracking.tracking_secret(config)
        self._inliner = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)
        # Per-renderer caches: one batch translates and compiles each text once.
        self._translated: dict[tuple[str, str, str, bool], str | Exception] = {}
        self._compiled: dict[tuple[str, str, str, str], _Texts] = {}
        self._blocks: dict[tuple[str, str, str], Markup] = {}
        self._salutations: dict[tuple[str, str, str], Any] = {}
        self._texts_of_bodies: dict[str, str] = {}

    # -- public

    def render(self, row: Mapping[str, Any], contact: Mapping[str, Any]) -> RenderedMessage:
        """The mail for outbox row `row` to `contact`; RenderError if this mail fails."""
        with _errors_for(row):
            tenant = self._tenant(row)
            language = self.language_for(row, tenant, contact)
            try:
                return self._render(row, contact, tenant, language)
            except TranslationUnavailable as error:
                if self.fallback == "hold":
                    raise TranslationHeld(
                        f"{_describe(row)}: no {language!r} translation ({error}); "
                        "translation.fallback is hold"
                    ) from error
            return self._render(row, contact, tenant, self.source_language)

    def language_for(self, row: Mapping[str, Any], tenant: Any, contact: Mapping[str, Any]) -> str:
        """The contact's language if the tenant offers it, else the tenant's."""
        if row.get("kind") == "owner_notification":
            return tenant.language
        wanted = str(contact.get("language") or "").strip().lower()
        return wanted if wanted in tenant.languages else tenant.language

    # -- one mail

    def _render(
        self, row: Mapping[str, Any], contact: Mapping[str, Any], tenant: Any, language: str
    ) -> RenderedMessage:
        message = self.templates.message(row["campaign_id"], row["message"])
        derived = self.templates.tenant(tenant.template)
        strings = derived.languages.get(language)
        if strings is None:
            raise TemplateError(f"derived template {tenant.template!r} has no {language!r}")
        formality = tenant.deepl_formality
        texts = self._texts(message, language, formality)
        context = self._context(row, contact, tenant, language, formality)
        subject = _one_line(texts.subject.render(context))
        body = texts.body.render(context)
        salutation = _one_line(
            self._salutation(
                tenant.template, language, salutation_kind(row, contact), strings
            ).render(context)
        )
        urls = self._service_urls(row)
        document = self.templates.master_html.render(
            **context,
            subject=subject,
            preheader=_one_line(texts.preheader.render(context)),
            logo=derived.logo,
            accent_color=derived.accent_color,
            strings=strings,
            imprint_lines=strings.imprint.strip().splitlines(),
            salutation=salutation,
            body=Markup(body),
            **urls,
        )
        tracked = self._tracks(row)
        document, found = self._rewrite_links(document, track=tracked)
        text = self.templates.master_text.render(
            **context,
            subject=subject,
            strings=strings,
            imprint_lines=strings.imprint.strip().splitlines(),
            salutation=salutation,
            body_text=self._body_text(body, found),
            **urls,
        )
        return RenderedMessage(
            subject=subject,
            html=self._inliner.inline(document),
            text=_tidy_text(text),
            language=language,
            links=found,
        )

    def _tenant(self, row: Mapping[str, Any]) -> Any:
        code = row.get("tenant_code")
        return self.config.global_tenant if not code else self.config.tenant(code)

    def _tracks(self, row: Mapping[str, Any]) -> bool:
        return not self.preview and row.get("kind") != "owner_notification"

    def _context(
        self,
        row: Mapping[str, Any],
        contact: Mapping[str, Any],
        tenant: Any,
        language: str,
        formality: str,
    ) -> dict[str, Any]:
        company = self.config.company
        return {
            "contact": contact_view(contact),
            "tenant": {"code": tenant.code, "name": tenant.name, "sender": tenant.sender.name},
            "company": {
                "name": company.name,
                "legal_name": company.legal_name or company.name,
                "website": company.website or "",
            },
            "language": language,
            "campaign_id": row["campaign_id"],
            "step_id": row.get("step_id"),
            "step_content": list(row.get("content") or ()),
            "content": self._content_function(language, formality),
        }

    def _service_urls(self, row: Mapping[str, Any]) -> dict[str, str | None]:
        """Unsubscribe, view-in-browser and pixel URLs (none for mails to sales reps)."""
        if row.get("kind") == "owner_notification":
            return {
                "unsubscribe_url": None,
                "view_url": None,
                "pixel_url": None,
                "honeypot_url": None,
                "honeypot_tag": None,
            }
        config = self.config
        honeypot = config.company.tracking.machine_traffic.honeypot_link_tag
        website = config.company.website
        honeypot_url = f"{website.rstrip('/')}/#" if honeypot and website else None
        if self.preview:
            return {
                "unsubscribe_url": tracking.preview_url(config, "unsubscribe"),
                "view_url": tracking.preview_url(config, "view"),
                "pixel_url": None,
                "honeypot_url": None,
                "honeypot_tag": None,
            }
        outbox_id, contact_id, secret = row["outbox_id"], row["contact_id"], self._secret
        return {
            "unsubscribe_url": tracking.unsubscribe_url(
                config, outbox_id, contact_id, secret=secret
            ),
            "view_url": tracking.view_in_browser_url(config, outbox_id, contact_id, secret=secret),
            "pixel_url": tracking.open_pixel_url(config, outbox_id, contact_id, secret=secret),
            "honeypot_url": honeypot_url,
            "honeypot_tag": honeypot,
        }

    # -- texts and translation

    def _texts(self, message: Message, language: str, formality: str) -> _Texts:
        key = (message.campaign_id, message.message, language, formality)
        if key not in self._compiled:
            source = message.source
            human = message.human(language) if language != self.source_language else None
            parts = {}
            for name, plain in (("subject", True), ("preheader", True), ("body", False)):
                written = getattr(human, name) if human is not None else None
                text = (
                    written
                    if written is not None
                    else self._translate(getattr(source, name), language, formality, plain=plain)
                )
                environment = self.templates.text if plain else self.templates.html
                parts[name] = environment.from_string(text)
            self._compiled[key] = _Texts(**parts)
        return self._compiled[key]

    def _translate(self, text: str, language: str, formality: str, *, plain: bool) -> str:
        """`text` (a template source) in `language`; template code is kept out of it."""
        if language == self.source_language or not text.strip():
            return text
        key = (text, language, formality, plain)
        if key not in self._translated:
            try:
                self._translated[key] = self._translate_now(text, language, formality, plain)
            except TranslationUnavailable as error:
                self._translated[key] = error
        result = self._translated[key]
        if isinstance(result, Exception):
            raise result
        return result

    def _translate_now(self, text: str, language: str, formality: str, plain: bool) -> str:
        protected, pieces = protect_template_code(
            html_lib.escape(text, quote=False) if plain else text
        )
        translated = self.translator.translate(protected, self.source_language, language, formality)
        restored = restore_template_code(translated, pieces)
        return html_lib.unescape(restored) if plain else restored

    # -- content blocks

    def _content_function(self, language: str, formality: str) -> Callable[[str], Markup]:
        def content(key: str) -> Markup:
            return self._block(str(key), language, formality)

        return content

    def _block(self, key: str, language: str, formality: str) -> Markup:
        cache_key = (key, language, formality)
        if cache_key not in self._blocks:
            block = self.templates.blocks.get(key)
            if block is None:
                raise RenderError(f"unknown content block {key!r}")
            source = source_text(block)
            human = human_text(block, language) if language != self.source_language else source

            def part(name: str, plain: bool) -> str | None:
                written = getattr(human, name)
                if written is not None:
                    return written
                original = getattr(source, name)
                if original is None:
                    return None
                return self._translate(original, language, formality, plain=plain)

            self._blocks[cache_key] = Markup(
                self.templates.block_html.render(
                    key=key,
                    tag=block.tag,
                    title=part("title", True),
                    html=Markup(part("html", False) or ""),
                    image=block.image,
                    image_alt=part("image_alt", True) or "",
                )
            )
        return self._blocks[cache_key]

    # -- links

    def _rewrite_links(self, document: str, *, track: bool) -> tuple[str, list[TrackedLink]]:
        """The document with tracked click URLs for its links, and those links."""
        tree = lxml.html.document_fromstring(document)
        base = self.config.company.tracking.base_url.rstrip("/")
        found: dict[tuple[str, str | None], TrackedLink] = {}
        for anchor in tree.iter("a"):
            href = (anchor.get("href") or "").strip()
            if not track or not _is_trackable(href, base):
                continue
            tag = link_tag(anchor)
            link = found.get((href, tag))
            if link is None:
                link = TrackedLink(tracking.new_link_id(), href, tag)
                found[(href, tag)] = link
            anchor.set("href", tracking.click_url(self.config, link.link_id, secret=self._secret))
        for element in tree.xpath("//*[@data-tag]"):
            del element.attrib["data-tag"]
        html = lxml.html.tostring(tree, encoding="unicode", doctype="<!DOCTYPE html>")
        return html, list(found.values())

    def _body_text(self, body: str, found: list[TrackedLink]) -> str:
        """The body as plain text, its links pointing to the same click URLs as the HTML.

        Converting HTML to text is the slowest step of a mail, and most bodies are the same
        for every recipient of a message: the text of the untracked body is cached and the
        mail's click URLs are put in afterwards (a URL used with two tags in one body gets
        the first one's link in the text)."""
        if body not in self._texts_of_bodies:
            if len(self._texts_of_bodies) >= _CACHE_LIMIT:
                self._texts_of_bodies.clear()
            self._texts_of_bodies[body] = html_to_text(body)
        text = self._texts_of_bodies[body]
        clicks: dict[str, str] = {}
        for link in found:
            clicks.setdefault(
                link.url, tracking.click_url(self.config, link.link_id, secret=self._secret)
            )
        if not clicks:
            return text
        return _TEXT_LINK.sub(
            lambda match: f"]({clicks.get(match.group(1), match.group(1))})", text
        )

    def _salutation(self, template: str, language: str, kind: str, strings: Any) -> Any:
        key = (template, language, kind)
        if key not in self._salutations:
            self._salutations[key] = self.templates.text.from_string(
                getattr(strings.salutation, kind)
            )
        return self._salutations[key]


# --- helpers ----------------------------------------------------------------------------


def contact_view(contact: Mapping[str, Any]) -> dict[str, Any]:
    """The contact as templates see it: every known field, NULL/missing/blank ones Blank."""
    view: dict[str, Any] = {}
    for name in (*FIELDS, *contact):
        value = contact.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            view[name] = Blank(name=name)
        else:
            view[name] = value
    return view


def salutation_kind(row: Mapping[str, Any], contact: Mapping[str, Any]) -> str:
    """`mr`/`ms` when the contact's salutation and last name are known, else `neutral`
    (and always neutral in mails to sales reps)."""
    if row.get("kind") == "owner_notification":
        return "neutral"
    if not str(contact.get("last_name") or "").strip():
        return "neutral"
    salutation = str(contact.get("salutation") or "").strip().lower()
    if salutation in _MR:
        return "mr"
    if salutation in _MS:
        return "ms"
    return "neutral"


def link_tag(anchor: Any) -> str | None:
    """The nearest data-tag on the link or an element around it."""
    element = anchor
    while element is not None:
        tag = element.get("data-tag")
        if tag:
            return tag
        element = element.getparent()
    return None


def _is_trackable(href: str, base: str) -> bool:
    lowered = href.lower()
    if not lowered.startswith(("http://", "https://")):
        return False
    return not (lowered == base.lower() or lowered.startswith(base.lower() + "/"))


def protect_template_code(text: str) -> tuple[str, list[str]]:
    """`text` with each Jinja expression/statement/comment replaced by an empty placeholder
    element (kept in place by HTML-aware translation), and the replaced pieces."""
    pieces: list[str] = []

    def swap(match: re.Match[str]) -> str:
        pieces.append(match.group(0))
        return _PLACEHOLDER.format(len(pieces) - 1)

    return _JINJA_MARKUP.sub(swap, text), pieces


def restore_template_code(text: str, pieces: list[str]) -> str:
    """The inverse of `protect_template_code`; a translation that lost or duplicated a
    placeholder is unusable (TranslationUnavailable), never a broken template."""
    seen: list[int] = []

    def swap(match: re.Match[str]) -> str:
        index = int(match.group(1))
        seen.append(index)
        return pieces[index] if index < len(pieces) else ""

    restored = _PLACEHOLDER_PATTERN.sub(swap, text)
    if sorted(seen) != list(range(len(pieces))):
        raise TranslationUnavailable(
            "the translation did not keep the template placeholders", "error"
        )
    return restored


def html_to_text(fragment: str) -> str:
    """A readable plain-text rendering of an HTML fragment (links as `[label](url)`)."""
    if not fragment.strip():
        return ""
    # The strict profile: no indentation for nested blocks, which reads as noise in mail.
    return get_text(fragment, ParserConfig(css=CSS_PROFILES["strict"], display_links=True))


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    tidy = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return tidy + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _describe(row: Mapping[str, Any]) -> str:
    return (
        f"outbox row {row.get('outbox_id')} (campaign {row.get('campaign_id')!r}, "
        f"message {row.get('message')!r})"
    )


@contextmanager
def _errors_for(row: Mapping[str, Any]) -> Iterator[None]:
    """Turn any failure of one mail into a RenderError that names its outbox row."""
    where = _describe(row)
    try:
        yield
    except RenderError:
        raise
    except SecurityError as error:
        raise TemplateSecurityError(f"{where}: blocked by the template sandbox: {error}") from error
    except (JinjaError, LeadflowError) as error:
        raise RenderError(f"{where}: {error}") from error
    except KeyError as error:
        raise RenderError(f"{where}: {error.args[0] if error.args else error}") from error
