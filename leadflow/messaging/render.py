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

**Prepared variants.** Inlining CSS, laying out the text part and finding the links cost
milliseconds, and none of it depends on the recipient. A renderer therefore does that work
once per *variant* — one message for one tenant, language, campaign step and kind of mail —
on the variant's template source: the layout is rendered around the body with every piece
of Jinja code and every per-recipient value (subject, preheader, salutation, the signed
URLs) held by a placeholder, content blocks are put in, links are found and tagged, CSS is
inlined and the text part laid out, and the placeholders become Jinja again: an HTML and a
text template. Per recipient there remain the sandboxed Jinja renders and the mail's own
signed tokens and link ids. The first mail of every variant is also rendered step by step
as above, and the two must agree (tokens aside). A variant the placeholders cannot follow —
content blocks chosen at run time, template code inside tables, in link targets, `class` or
`style` attributes, macros, `|safe`, a first mail that disagrees — is rendered step by step
for every recipient (`rendered_in_full` says which and why). Caches belong to the renderer:
a new renderer sees changed templates and content blocks.
"""

from __future__ import annotations

import html as html_lib
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import css_inline
import lxml.html
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from jinja2 import Template, Undefined, meta, nodes
from jinja2 import TemplateError as JinjaError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
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
_JINJA_SPLIT = re.compile(f"({_JINJA_MARKUP.pattern})", re.DOTALL)
# A link in inscriptis' text output: [label](url).
_TEXT_LINK = re.compile(r"\]\((https?://[^)\s]+)\)")
_CACHE_LIMIT = 512
# Placeholders of prepared variants: private-use characters, kept as they are by lxml,
# css_inline and inscriptis in text and in attribute values alike.
_TOKEN = re.compile("\ue000(\\d+)\ue001")
# A "{" of the prepared document that Jinja would read as the start of template code.
_JINJA_OPENING = re.compile("\\{(?=[{%#\ue000])")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# `{{ content("key") }}`, the one form of content block a variant puts in beforehand.
_CONTENT_CALL = re.compile(r"""\{\{\s*content\(\s*(?:"([^"\\]*)"|'([^'\\]*)')\s*\)\s*\}\}""")
_RAW = re.compile(r"\{%-?\s*(?:end)?raw\b")
# Names of the layouts and of the prepared templates: body code must not assign them.
_LAYOUT_NAMES = frozenset(
    {
        "subject",
        "preheader",
        "salutation",
        "body",
        "body_text",
        "logo",
        "accent_color",
        "strings",
        "imprint_lines",
        "unsubscribe_url",
        "view_url",
        "pixel_url",
        "honeypot_url",
        "honeypot_tag",
        "click_urls",
    }
)
# Service URLs that carry a token of their own recipient.
_SIGNED_URLS = ("unsubscribe_url", "view_url", "pixel_url")
# Template constructs whose output a prepared variant could not inline or track: markup
# made at run time (macros, call and filter blocks, autoescape switches) and templates
# that pull in others.
_UNPREPARABLE_NODES = (
    nodes.Macro,
    nodes.CallBlock,
    nodes.FilterBlock,
    nodes.AssignBlock,
    nodes.EvalContextModifier,
    nodes.Block,
    nodes.Extends,
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
)
# Filters that turn a value into markup (its links would not be tracked, its CSS not inlined).
_MARKUP_FILTERS = frozenset({"safe", "urlize", "xmlattr"})
# Attributes that decide styling or tracking, or that lxml writes URL-escaped: template
# code in them would make a per-recipient difference the prepared document cannot follow.
_STRUCTURAL_ATTRIBUTES = frozenset({"href", "src", "data-tag", "class", "id", "style"})
# A placeholder in a URL attribute as lxml writes it (non-ASCII characters URL-escaped).
_ESCAPED_TOKEN = re.compile(r"%EE%80%80(\d+)%EE%80%81")
_NON_TEXT_ELEMENTS = frozenset({"head", "title", "style", "script"})
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
    # The body's template source (translated), from which variants are prepared.
    body_source: str


class Blank(Undefined):
    """A NULL or missing contact field: prints as nothing and takes `default(...)`."""

    __slots__ = ()


@dataclass
class _Mail:
    """Everything about one mail that is known before its body is rendered."""

    row: Mapping[str, Any]
    language: str
    formality: str
    derived: Any
    strings: Any
    texts: _Texts
    context: dict[str, Any]
    subject: str
    preheader: str
    salutation: str
    urls: dict[str, str | None]
    tracked: bool
    # The variant: every mail with the same key shares the prepared templates.
    key: tuple[Any, ...]


@dataclass
class _Variant:
    """A message prepared for one tenant, language, step and kind of mail."""

    html: Template
    text: Template
    # (url, tag) of each tracked link; the templates print `click_urls[i]` for link i.
    links: list[tuple[str, str | None]]
    # The service URLs signed for each recipient (the others are part of the templates).
    signed_urls: tuple[str, ...]
    # Whether a mail rendered step by step has agreed with the prepared templates.
    checked: bool = False


class _FixedText:
    """A one-line text without template code (most preheaders, many greetings): rendering
    it would only cost time."""

    def __init__(self, text: str) -> None:
        self.text = text

    def render(self, *_: Any, **__: Any) -> str:
        return self.text


def _one_line_template(environment: ImmutableSandboxedEnvironment, source: str) -> Any:
    """A template for a text shown on one line (subject, preheader, greeting)."""
    if "{" in source:
        return environment.from_string(source)
    return _FixedText(_one_line(source))


class _Unpreparable(Exception):
    """The variant cannot be prepared; its mails are rendered step by step."""


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
        self._base = config.company.tracking.base_url.rstrip("/")
        self._inliner = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)
        # Per-renderer caches: one batch translates, compiles and prepares each text once.
        self._translated: dict[tuple[str, str, str, bool], str | Exception] = {}
        self._compiled: dict[tuple[str, str, str, str], _Texts] = {}
        self._blocks: dict[tuple[str, str, str], Markup] = {}
        self._salutations: dict[tuple[str, str, str], Any] = {}
        self._texts_of_bodies: dict[str, str] = {}
        self._variants: dict[tuple[Any, ...], _Variant | None] = {}
        self._in_full: dict[tuple[Any, ...], str] = {}  # variants not prepared, and why
        # Prepared templates hold the body's code with its whitespace control already
        # applied (`_whitespace_controlled`), so they are compiled without trimming.
        self._prepared_html = self.templates.html.overlay(trim_blocks=False, lstrip_blocks=False)
        self._prepared_text = self.templates.text.overlay(trim_blocks=False, lstrip_blocks=False)

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

    def rendered_in_full(self) -> dict[str, str]:
        """The variants this renderer renders step by step for every recipient, and why
        ("campaign/message tenant language" → reason); every other variant is prepared."""
        return {f"{key[0]}/{key[1]} {key[2]} {key[3]}": why for key, why in self._in_full.items()}

    # -- one mail

    def _render(
        self, row: Mapping[str, Any], contact: Mapping[str, Any], tenant: Any, language: str
    ) -> RenderedMessage:
        mail = self._mail(row, contact, tenant, language)
        variant = self._variant(mail)
        if variant is None:
            return self._render_in_full(mail)
        if variant.checked:
            return self._render_variant(variant, mail)
        full = self._render_in_full(mail)
        try:
            agrees = _same_mail(full, self._render_variant(variant, mail), self._base)
        except Exception as error:  # any failure of the prepared templates alone
            agrees = False
            self._in_full[mail.key] = f"the prepared templates fail: {error}"
        if agrees:
            variant.checked = True
        else:
            self._in_full.setdefault(mail.key, "the prepared templates render another mail")
            self._variants[mail.key] = None
        return full

    def _mail(
        self, row: Mapping[str, Any], contact: Mapping[str, Any], tenant: Any, language: str
    ) -> _Mail:
        message = self.templates.message(row["campaign_id"], row["message"])
        derived = self.templates.tenant(tenant.template)
        strings = derived.languages.get(language)
        if strings is None:
            raise TemplateError(f"derived template {tenant.template!r} has no {language!r}")
        formality = tenant.deepl_formality
        texts = self._texts(message, language, formality)
        context = self._context(row, contact, tenant, language, formality)
        subject = _one_line(texts.subject.render(context))
        preheader = _one_line(texts.preheader.render(context))
        salutation = _one_line(
            self._salutation(
                tenant.template, language, salutation_kind(row, contact), strings
            ).render(context)
        )
        key = (
            row["campaign_id"],
            row["message"],
            tenant.code,
            language,
            row.get("kind"),
            row.get("step_id"),
            tuple(row.get("content") or ()),
            bool(subject),
            bool(preheader),
            bool(salutation),
        )
        return _Mail(
            row=row,
            language=language,
            formality=formality,
            derived=derived,
            strings=strings,
            texts=texts,
            context=context,
            subject=subject,
            preheader=preheader,
            salutation=salutation,
            urls=self._service_urls(row),
            tracked=self._tracks(row),
            key=key,
        )

    def _layout_values(self, mail: _Mail) -> dict[str, Any]:
        """What the layouts get besides the mail's context and texts."""
        strings = mail.strings
        return {
            "logo": mail.derived.logo,
            "accent_color": mail.derived.accent_color,
            "strings": strings,
            "imprint_lines": strings.imprint.strip().splitlines(),
        }

    def _render_in_full(self, mail: _Mail) -> RenderedMessage:
        """The mail step by step: body, layout, links, CSS, text part."""
        body = mail.texts.body.render(mail.context)
        layout = self._layout_values(mail)
        document = self.templates.master_html.render(
            **mail.context,
            **layout,
            subject=mail.subject,
            preheader=mail.preheader,
            salutation=mail.salutation,
            body=Markup(body),
            **mail.urls,
        )
        link_ids: list[str] = []
        hrefs: list[str] = []

        def click(index: int) -> str:
            while len(hrefs) <= index:
                link_ids.append(tracking.new_link_id())
                hrefs.append(self._click_url(link_ids[-1]))
            return hrefs[index]

        tree = lxml.html.document_fromstring(document)
        found = _rewrite_links(tree, self._base, click if mail.tracked else None)
        text = self.templates.master_text.render(
            **mail.context,
            **layout,
            subject=mail.subject,
            salutation=mail.salutation,
            body_text=_with_click_urls(self._body_text(body), _first_click_urls(found, hrefs)),
            **mail.urls,
        )
        return RenderedMessage(
            subject=mail.subject,
            html=self._inliner.inline(_serialize(tree)),
            text=_tidy_text(text),
            language=mail.language,
            links=[
                TrackedLink(link_id, url, tag)
                for link_id, (url, tag) in zip(link_ids, found, strict=True)
            ],
        )

    def _render_variant(self, variant: _Variant, mail: _Mail) -> RenderedMessage:
        """The mail from its variant's prepared templates."""
        values = dict(mail.context)
        values["subject"] = mail.subject
        values["preheader"] = mail.preheader
        values["salutation"] = mail.salutation
        for name in variant.signed_urls:
            values[name] = mail.urls[name]
        link_ids = [tracking.new_link_id() for _ in variant.links]
        click_urls = [self._click_url(link_id) for link_id in link_ids]
        values["click_urls"] = click_urls
        html = variant.html.render(values)
        # A link inside `{% if %}` may be missing from this recipient's mail.
        found = [
            TrackedLink(link_id, url, tag)
            for link_id, href, (url, tag) in zip(link_ids, click_urls, variant.links, strict=True)
            if href in html
        ]
        return RenderedMessage(
            subject=mail.subject,
            html=html,
            text=_tidy_text(variant.text.render(values)),
            language=mail.language,
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

    def _click_url(self, link_id: str) -> str:
        return tracking.click_url(self.config, link_id, secret=self._secret)

    # -- prepared variants

    def _variant(self, mail: _Mail) -> _Variant | None:
        """The prepared variant of `mail`, or None when it is rendered step by step."""
        if mail.key not in self._variants:
            try:
                self._variants[mail.key] = self._prepare(mail)
            except _Unpreparable as why:
                self._variants[mail.key] = None
                self._in_full[mail.key] = str(why)
        return self._variants[mail.key]

    def _prepare(self, mail: _Mail) -> _Variant:
        """The HTML and text templates of `mail`'s variant (see the module docstring)."""
        pieces: list[str] = []

        def token(piece: str) -> str:
            pieces.append(piece)
            return f"\ue000{len(pieces) - 1}\ue001"

        body = self._prepared_body(mail, token)
        body_code = len(pieces)
        layout = {
            **mail.context,
            **self._layout_values(mail),
            "contact": _PerRecipient(),
            "subject": _Slot(token("{{ subject }}"), bool(mail.subject)),
            "preheader": _Slot(token("{{ preheader }}"), bool(mail.preheader)),
            "salutation": _Slot(token("{{ salutation }}"), bool(mail.salutation)),
        }
        signed_urls = []
        for name, value in mail.urls.items():
            if mail.tracked and name in _SIGNED_URLS and value is not None:
                layout[name] = _Slot(token(f"{{{{ {name} }}}}"), True)
                signed_urls.append(name)
            else:
                layout[name] = value
        document = _render_layout(self.templates.master_html, layout, body=Markup(body))
        tree = lxml.html.document_fromstring(document)
        _check_code_positions(tree, body_code)
        hrefs: list[str] = []

        def click(index: int) -> str:
            while len(hrefs) <= index:
                hrefs.append(token(f"{{{{ click_urls[{len(hrefs)}] }}}}"))
            return hrefs[index]

        found = _rewrite_links(tree, self._base, click if mail.tracked else None)
        rewritten = _ESCAPED_TOKEN.sub("\ue000\\1\ue001", _serialize(tree))
        inlined = self._inliner.inline(rewritten)
        if _TOKEN.findall(inlined) != _TOKEN.findall(rewritten):
            raise _Unpreparable("inlining CSS moved template code")
        body_text = _with_click_urls(html_to_text(body), _first_click_urls(found, hrefs))
        text = _render_layout(self.templates.master_text, layout, body_text=body_text)
        return _Variant(
            html=_template(self._prepared_html, inlined, pieces),
            text=_template(self._prepared_text, text, pieces),
            links=found,
            signed_urls=tuple(signed_urls),
        )

    def _prepared_body(self, mail: _Mail, token: Callable[[str], str]) -> str:
        """The body's template source with its code as placeholders and its content blocks
        put in; _Unpreparable when something in it can only be decided per recipient."""
        source = mail.texts.body_source
        references = _check_body_code(self.templates.html, source, set(mail.context))
        blocks: list[str] = []

        def swap(code: str) -> str:
            block = _CONTENT_CALL.fullmatch(code)
            if block is None:
                if _RAW.match(code):
                    raise _Unpreparable("{% raw %} in the body")
                return token(code)
            key = block.group(1) if block.group(1) is not None else block.group(2)
            blocks.append(key)
            try:
                return str(self._block(key, mail.language, mail.formality))
            except (LeadflowError, TranslationUnavailable) as error:
                # Left to each mail: it fails, holds or falls back on its own.
                raise _Unpreparable(f"content block {key!r}: {error}") from error

        parts = _whitespace_controlled(source)
        body = "".join(swap(part) if odd else part for odd, part in _alternating(parts))
        if len(blocks) != references:
            raise _Unpreparable("the body chooses content blocks at run time")
        _check_no_code_in_tables(body)
        return body

    # -- texts and translation

    def _texts(self, message: Message, language: str, formality: str) -> _Texts:
        key = (message.campaign_id, message.message, language, formality)
        if key not in self._compiled:
            source = message.source
            human = message.human(language) if language != self.source_language else None
            parts = {}
            sources = {}
            for name, plain in (("subject", True), ("preheader", True), ("body", False)):
                written = getattr(human, name) if human is not None else None
                text = (
                    written
                    if written is not None
                    else self._translate(getattr(source, name), language, formality, plain=plain)
                )
                if plain:
                    parts[name] = _one_line_template(self.templates.text, text)
                else:
                    parts[name] = self.templates.html.from_string(text)
                sources[name] = text
            self._compiled[key] = _Texts(**parts, body_source=sources["body"])
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

    # -- text part

    def _body_text(self, body: str) -> str:
        """The body as plain text, links as `[label](url)` with their original URLs.

        Converting HTML to text is slow, and a body rendered step by step is often the same
        for many recipients: the texts of recent bodies are kept."""
        if body not in self._texts_of_bodies:
            if len(self._texts_of_bodies) >= _CACHE_LIMIT:
                self._texts_of_bodies.clear()
            self._texts_of_bodies[body] = html_to_text(body)
        return self._texts_of_bodies[body]

    def _salutation(self, template: str, language: str, kind: str, strings: Any) -> Any:
        key = (template, language, kind)
        if key not in self._salutations:
            self._salutations[key] = _one_line_template(
                self.templates.text, getattr(strings.salutation, kind)
            )
        return self._salutations[key]


# --- preparing variants -------------------------------------------------------------------


class _Slot(str):
    """A per-recipient value while a variant is prepared: prints as its placeholder and is
    true or false as the recipient's value is (a layout may test `{% if preheader %}`)."""

    truthy: bool

    def __new__(cls, placeholder: str, truthy: bool) -> _Slot:
        slot = super().__new__(cls, placeholder)
        slot.truthy = truthy
        return slot

    def __bool__(self) -> bool:
        return self.truthy


class _PerRecipient:
    """`contact` while a layout is prepared: a layout that reads the contact differs per
    recipient, so its variant is rendered step by step."""

    def _refuse(self, *_: Any) -> Any:
        raise _Unpreparable("the layout reads the contact")

    __getattr__ = __getitem__ = __str__ = __bool__ = __iter__ = __len__ = _refuse
    __html__ = _refuse


def _render_layout(layout: Template, values: dict[str, Any], **more: Any) -> str:
    """A layout rendered with placeholders; _Unpreparable when it fails with them (the mail
    rendered step by step then shows whether the layout itself is wrong)."""
    try:
        return layout.render(**values, **more)
    except _Unpreparable:
        raise
    except Exception as error:  # whatever a layout does to a placeholder
        raise _Unpreparable(f"the layout cannot be prepared: {error}") from error


def _whitespace_controlled(source: str) -> list[str]:
    """The template source as [text, code, text, code, ..., text] with Jinja's whitespace
    control applied to the texts (`-`/`+` modifiers, trim_blocks, lstrip_blocks, the
    dropped trailing line break) and the modifiers removed from the code: the texts are
    what Jinja outputs around the code, wherever the code ends up."""
    lines = _LINE_BREAK.split(source)
    if lines[-1] == "":
        del lines[-1]
    parts = _JINJA_SPLIT.split("\n".join(lines))
    line_starting = True  # the text before the next code starts a line
    for index in range(1, len(parts), 2):
        code = parts[index]
        block = code[1] in "%#"
        opening = code[2] if code[2:3] in ("-", "+") else ""
        closing = code[-3] if len(code) > 4 and code[-3] in "-+" else ""
        before, after = parts[index - 1], parts[index + 1]
        if opening == "-":
            before = before.rstrip()
        elif block and opening != "+":
            line_start = before.rfind("\n") + 1
            if (line_start > 0 or line_starting) and not before[line_start:].strip(" \t"):
                before = before[:line_start]
        line_starting = False
        if closing == "-":
            after = after.lstrip()
        elif block and closing != "+" and after.startswith("\n"):
            after = after[1:]
            line_starting = True
        parts[index - 1], parts[index + 1] = before, after
        parts[index] = code[:2] + code[2 + len(opening) : len(code) - 2 - len(closing)] + code[-2:]
    return parts


def _alternating(parts: list[str]) -> Iterator[tuple[bool, str]]:
    """(is code, part) of `_whitespace_controlled` parts."""
    for index, part in enumerate(parts):
        yield index % 2 == 1, part


def _check_body_code(
    environment: ImmutableSandboxedEnvironment, source: str, names: set[str]
) -> int:
    """How often the body names `content`; _Unpreparable when its code makes markup at run
    time or uses names the body alone does not have (such a variant is rendered step by
    step, with the same result or error as ever)."""
    tree = environment.parse(source)
    for node in tree.find_all(_UNPREPARABLE_NODES):
        raise _Unpreparable(f"the body uses {{% {type(node).__name__.lower()} %}}")
    for node in tree.find_all(nodes.Filter):
        if node.name in _MARKUP_FILTERS:
            raise _Unpreparable(f"the body uses |{node.name}")
    unknown = meta.find_undeclared_variables(tree) - names
    if unknown:
        raise _Unpreparable(f"the body uses {', '.join(sorted(unknown))}")
    references = 0
    for node in tree.find_all(nodes.Name):
        if node.ctx != "load" and node.name in _LAYOUT_NAMES:
            raise _Unpreparable(f"the body assigns {node.name!r}")
        references += node.name == "content"
    return references


def _has_code(text: str | None, body_code: int) -> bool:
    """Whether `text` holds a placeholder of the body's own code (numbers below
    `body_code`; the higher ones stand for the layout's per-recipient values)."""
    return bool(text) and any(int(n) < body_code for n in _TOKEN.findall(text))


def _code_containers(root: Any, body_code: int) -> Iterator[Any]:
    """The elements whose own text holds body code (an element's tail is its parent's)."""
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if _has_code(element.text, body_code):
            yield element
        if _has_code(element.tail, body_code) and element.getparent() is not None:
            yield element.getparent()


def _check_code_positions(tree: Any, body_code: int) -> None:
    """_Unpreparable when body code sits where the prepared document could not follow it:
    in link targets, link tags, classes or styles (they decide tracking and inlined CSS),
    or in the head."""
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        for name, value in element.attrib.items():
            if name.lower() in _STRUCTURAL_ATTRIBUTES and _has_code(value, body_code):
                raise _Unpreparable(f"template code in a {name} attribute")
    for element in _code_containers(tree, body_code):
        tags = {element.tag, *(parent.tag for parent in element.iterancestors())}
        if tags & _NON_TEXT_ELEMENTS:
            raise _Unpreparable(f"template code inside <{element.tag}>")


def _check_no_code_in_tables(body: str) -> None:
    """_Unpreparable when body code is inside a table: a parser may move it out of the
    table, and the text part lays tables out by the width of their cells."""
    if not _TOKEN.search(body):
        return
    fragment = lxml.html.fragment_fromstring(body, create_parent="div")
    for element in _code_containers(fragment, sys.maxsize):
        tags = {element.tag, *(parent.tag for parent in element.iterancestors())}
        if "table" in tags:
            raise _Unpreparable("template code inside a table")


def _template(
    environment: ImmutableSandboxedEnvironment, prepared: str, pieces: list[str]
) -> Template:
    """A prepared document as a template: placeholders back to their Jinja, every other
    `{` that Jinja would read as code printed as a string."""
    numbers = [int(n) for n in _TOKEN.findall(prepared)]
    if any(number >= len(pieces) for number in numbers):
        raise _Unpreparable("a placeholder character in the templates or content")
    escaped = _JINJA_OPENING.sub('{{ "{" }}', prepared)
    source = _TOKEN.sub(lambda match: pieces[int(match.group(1))], escaped)
    if source.endswith("\n"):  # Jinja drops one trailing line break; this one is output
        source += "\n"
    try:
        return environment.from_string(source)
    except JinjaError as error:
        raise _Unpreparable(f"the prepared template does not compile: {error}") from error


def _same_mail(full: RenderedMessage, fast: RenderedMessage, base: str) -> bool:
    """Whether two renderings of one mail agree, tokens and link ids aside (and entities:
    a value printed by Jinja may spell `'` as `&#39;` where css_inline writes `'`)."""
    if (full.subject, full.language) != (fast.subject, fast.language):
        return False
    if [(link.url, link.tag) for link in full.links] != [
        (link.url, link.tag) for link in fast.links
    ]:
        return False
    tokens = re.compile(re.escape(base) + r"/([couv])/[A-Za-z0-9_\-.]+")

    def plain(text: str) -> str:
        return tokens.sub(lambda match: f"{base}/{match.group(1)}/-", text)

    if plain(full.text) != plain(fast.text):
        return False
    html, fast_html = plain(full.html), plain(fast.html)
    return html == fast_html or _canonical(html) == _canonical(fast_html)


def _canonical(html: str) -> str:
    return lxml.html.tostring(lxml.html.document_fromstring(html), encoding="unicode")


# --- links -------------------------------------------------------------------------------


def _rewrite_links(
    tree: Any, base: str, click: Callable[[int], str] | None
) -> list[tuple[str, str | None]]:
    """Point the document's trackable links to `click(i)` for link i (None: leave them) and
    drop the data-tag attributes; the (url, tag) of each link, in order of appearance."""
    found: dict[tuple[str, str | None], int] = {}
    if click is not None:
        for anchor in tree.iter("a"):
            href = (anchor.get("href") or "").strip()
            if not _is_trackable(href, base):
                continue
            key = (href, link_tag(anchor))
            index = found.setdefault(key, len(found))
            anchor.set("href", click(index))
    for element in tree.xpath("//*[@data-tag]"):
        del element.attrib["data-tag"]
    return list(found)


def _serialize(tree: Any) -> str:
    return lxml.html.tostring(tree, encoding="unicode", doctype="<!DOCTYPE html>")


def _first_click_urls(found: list[tuple[str, str | None]], hrefs: list[str]) -> dict[str, str]:
    """URL → the click URL of the first link to it (a URL with two tags gets the first)."""
    clicks: dict[str, str] = {}
    for (url, _), href in zip(found, hrefs, strict=True):
        clicks.setdefault(url, href)
    return clicks


def _with_click_urls(text: str, clicks: dict[str, str]) -> str:
    """A text part's `[label](url)` links pointed to the same click URLs as the HTML."""
    if not clicks:
        return text
    return _TEXT_LINK.sub(lambda match: f"]({clicks.get(match.group(1), match.group(1))})", text)


# --- helpers ----------------------------------------------------------------------------

# A blank value per field of the catalogue, shared by every contact (they never change).
_BLANK_FIELDS: dict[str, Any] = {name: Blank(name=name) for name in FIELDS}


def contact_view(contact: Mapping[str, Any]) -> dict[str, Any]:
    """The contact as templates see it: every known field, NULL/missing/blank ones Blank."""
    view = dict(_BLANK_FIELDS)
    for name, value in contact.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            view[name] = _BLANK_FIELDS.get(name) or Blank(name=name)
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
