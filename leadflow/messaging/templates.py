"""Message templates: the master layout, the tenants' derived templates, the campaign messages.

Layout of `include/templates/` (the `templates_dir` of company.yaml):

- `master.html` — the corporate layout (Jinja): logo, slogan, preheader, salutation, body,
  footer with imprint, unsubscribe and view-in-browser links, and the open pixel.
  `master.txt` is the same layout for the plain-text part; `block.html` lays out one
  content block. Every mail of every tenant goes through these files, so changing the
  master changes every derived mail.
- `tenants/<template>.yaml` — a derived template: the only things a country changes. Its
  logo, and per language the slogan, the salutation rules (`mr`, `ms`, `neutral`; small
  Jinja expressions over `contact`), the imprint and the footer labels. A new country is
  one such file. It must cover every language of the tenants that use it and, when the
  translation fallback is the source language, the source language too (a mail that
  cannot be translated is sent wholly in the source language, never half-translated).
- `messages/<campaign>/<message>.yaml` — one file per message a campaign step sends
  (`send.message`, `notify_owner.message`): subject, preheader and an HTML body in the
  source language, as Jinja with `{{ contact.first_name }}`-style personalisation and
  `{{ content("key") }}` references to global content blocks (leadflow.messaging.content),
  plus optional human translations per language (`translations: {fr: {subject: ...}}`).

All Jinja runs in `ImmutableSandboxedEnvironment` (no attribute starting with `_`, no
mutation of passed objects, bounded `range`) with StrictUndefined: a misspelt variable is an
error for that one mail, never an empty gap. The HTML environment autoescapes, so contact
data can never add markup; the text environment (subjects, salutations, the text layout)
does not escape, because its output is not HTML.

`Templates.load(config)` reads and checks everything once and reports every problem at
once (`TemplateError`): a missing or invalid file, a Jinja syntax error, a content block
that is referenced but does not exist (naming campaign, step and key), a derived template
that lacks a language.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, ValidationError

from leadflow.errors import LeadflowError
from leadflow.messaging.content import (
    ContentBlock,
    content_dir,
    format_validation,
    load_blocks,
)

MASTER_HTML = "master.html"
MASTER_TEXT = "master.txt"
BLOCK_HTML = "block.html"
SUFFIX = ".yaml"
SALUTATION_KINDS = ("mr", "ms", "neutral")


class TemplateError(LeadflowError):
    """Template or content files are missing or invalid; the message lists every problem."""

    exit_code = 2


# --- file models ------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Salutations(_Strict):
    """Greeting lines: `mr`/`ms` when the salutation and last name are known, else neutral."""

    mr: str
    ms: str
    neutral: str


class TenantLanguage(_Strict):
    slogan: str
    salutation: Salutations
    imprint: str
    unsubscribe: str
    view_in_browser: str
    # Why the reader gets this mail (shown above the unsubscribe link).
    footer_note: str = ""


class Logo(_Strict):
    url: str
    alt: str
    width: int = 180


class TenantTemplate(_Strict):
    """A derived template (`tenants/<template>.yaml`)."""

    logo: Logo
    accent_color: str = "#0b4f8a"
    languages: dict[str, TenantLanguage]


class MessageText(_Strict):
    """A message in one language; in a translation every part is optional."""

    subject: str | None = None
    preheader: str | None = None
    body: str | None = None


class MessageFile(_Strict):
    subject: str
    preheader: str = ""
    body: str
    translations: dict[str, MessageText] = {}


@dataclass(frozen=True)
class Message:
    campaign_id: str
    message: str
    path: Path
    source: MessageFile

    def human(self, language: str) -> MessageText:
        return self.source.translations.get(language) or MessageText()


# --- the Jinja environments -------------------------------------------------------------


def html_environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )


def text_environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        autoescape=False, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )


def content_references(environment: ImmutableSandboxedEnvironment, source: str) -> set[str]:
    """The keys of every `content("key")` call with a literal key in a template."""
    keys = set()
    for call in environment.parse(source).find_all(nodes.Call):
        target = call.node
        if isinstance(target, nodes.Name) and target.name == "content" and call.args:
            first = call.args[0]
            if isinstance(first, nodes.Const) and isinstance(first.value, str):
                keys.add(first.value)
    return keys


# --- loading ----------------------------------------------------------------------------


def read_yaml(path: Path) -> tuple[Any, str | None]:
    """The YAML document in `path`, or a problem line naming the file and line."""
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        return None, f"{where}: invalid YAML: {getattr(error, 'problem', error)}"
    except OSError as error:
        return None, f"{path}: cannot be read: {error.strerror}"
    if not isinstance(data, dict):
        return None, f"{path}: expected a mapping of keys"
    return data, None


@dataclass
class Templates:
    """Every template and content block of a configuration, loaded and checked."""

    templates_dir: Path
    html: ImmutableSandboxedEnvironment
    text: ImmutableSandboxedEnvironment
    master_html: Template
    master_text: Template
    block_html: Template
    tenants: dict[str, TenantTemplate]
    messages: dict[tuple[str, str], Message]
    blocks: dict[str, ContentBlock]

    @classmethod
    def load(cls, config: Any) -> Templates:
        """Load the templates of `config`; TemplateError lists every problem found."""
        loading = _Loading(config)
        templates = loading.run()
        if loading.problems:
            count = len(loading.problems)
            noun = "problem" if count == 1 else "problems"
            raise TemplateError(
                f"invalid templates in {loading.templates_dir} ({count} {noun}):\n"
                + "\n".join(f"  {line}" for line in loading.problems)
            )
        return templates

    def message(self, campaign_id: str, message: str) -> Message:
        try:
            return self.messages[(campaign_id, message)]
        except KeyError:
            raise TemplateError(
                f"no template for message {message!r} of campaign {campaign_id!r}"
            ) from None

    def tenant(self, template: str) -> TenantTemplate:
        try:
            return self.tenants[template]
        except KeyError:
            raise TemplateError(f"no derived template {template!r}") from None


class _Loading:
    """One pass over the template and content folders, collecting problems as it goes."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.templates_dir = Path(config.templates_dir)
        self.problems: list[str] = []
        self.html = html_environment()
        self.text = text_environment()

    def run(self) -> Templates:
        blocks, block_problems = load_blocks(content_dir(self.templates_dir), read_yaml)
        self.problems += block_problems
        return Templates(
            templates_dir=self.templates_dir,
            html=self.html,
            text=self.text,
            master_html=self._layout(MASTER_HTML, self.html),
            master_text=self._layout(MASTER_TEXT, self.text),
            block_html=self._layout(BLOCK_HTML, self.html),
            tenants=self._tenants(),
            messages=self._messages(blocks),
            blocks=blocks,
        )

    def _layout(self, name: str, environment: ImmutableSandboxedEnvironment) -> Template:
        path = self.templates_dir / name
        try:
            return environment.from_string(path.read_text(encoding="utf-8"))
        except OSError:
            self.problems.append(f"{path}: file not found")
        except TemplateSyntaxError as error:
            self.problems.append(f"{path}:{error.lineno}: template syntax: {error.message}")
        return environment.from_string("")

    # -- derived templates

    def _tenants(self) -> dict[str, TenantTemplate]:
        loaded: dict[str, TenantTemplate] = {}
        needed = self._languages_needed()
        for template, languages in needed.items():
            path = self.templates_dir / "tenants" / f"{template}{SUFFIX}"
            model = self._model(path, TenantTemplate)
            if model is None:
                continue
            loaded[template] = model
            for language in sorted(languages - set(model.languages)):
                self.problems.append(
                    f"{path}: languages: no {language!r} section (needed by "
                    f"{', '.join(sorted(needed_by(self.config, template)))} or the "
                    "translation fallback)"
                )
            for language, strings in model.languages.items():
                for kind in SALUTATION_KINDS:
                    self._check_syntax(
                        path,
                        f"languages.{language}.salutation.{kind}",
                        self.text,
                        getattr(strings.salutation, kind),
                    )
        return loaded

    def _languages_needed(self) -> dict[str, set[str]]:
        """Languages each derived template must offer: its tenants' languages, plus the
        source language when untranslatable mails fall back to it."""
        translation = self.config.company.translation
        needed: dict[str, set[str]] = {}
        for tenant in self.config.tenants:
            languages = needed.setdefault(tenant.template, set())
            languages.update(tenant.languages)
            if translation.fallback == "source_language":
                languages.add(translation.source_language)
        return needed

    # -- messages

    def _messages(self, blocks: dict[str, ContentBlock]) -> dict[tuple[str, str], Message]:
        loaded: dict[tuple[str, str], Message] = {}
        for campaign, step_id, message, content in _campaign_messages(self.config):
            key = (campaign.id, message)
            where = f"campaign {campaign.id!r}, step {step_id!r}"
            for block in content:
                if block not in blocks:
                    self.problems.append(f"{where}: unknown content block {block!r}")
            if key in loaded:
                continue
            path = self.templates_dir / "messages" / campaign.id / f"{message}{SUFFIX}"
            model = self._model(path, MessageFile)
            if model is None:
                continue
            loaded[key] = Message(campaign.id, message, path, model)
            self._check_message(path, where, model, blocks)
        return loaded

    def _check_message(
        self, path: Path, where: str, model: MessageFile, blocks: dict[str, ContentBlock]
    ) -> None:
        parts = [("", model)] + [
            (f"translations.{language}.", text) for language, text in model.translations.items()
        ]
        for prefix, text in parts:
            for name, environment in (("subject", self.text), ("preheader", self.text)):
                self._check_syntax(path, prefix + name, environment, getattr(text, name))
            body = text.body
            if body is None or not self._check_syntax(path, prefix + "body", self.html, body):
                continue
            for key in sorted(content_references(self.html, body) - set(blocks)):
                self.problems.append(
                    f"{path}: {prefix}body: {where}: unknown content block {key!r}"
                )

    # -- helpers

    def _model(self, path: Path, model: type[BaseModel]) -> Any:
        if not path.is_file():
            self.problems.append(f"{path}: file not found")
            return None
        data, problem = read_yaml(path)
        if problem:
            self.problems.append(problem)
            return None
        try:
            return model.model_validate(data)
        except ValidationError as error:
            self.problems += format_validation(path, error)
            return None

    def _check_syntax(
        self, path: Path, key: str, environment: ImmutableSandboxedEnvironment, source: Any
    ) -> bool:
        if source is None:
            return True
        try:
            environment.parse(source)
        except TemplateSyntaxError as error:
            self.problems.append(
                f"{path}: {key}: template syntax (line {error.lineno}): {error.message}"
            )
            return False
        return True


def _campaign_messages(config: Any) -> Iterator[tuple[Any, str, str, list[str]]]:
    """(campaign, step id, message, content keys) of every message step of every campaign."""
    for campaign in config.campaigns.values():
        for index, _kind, message in campaign.messages():
            step = campaign.steps[index]
            send = getattr(step, "send", None)
            content = list(send.content) if send is not None else []
            yield campaign, step.id, message, content


def needed_by(config: Any, template: str) -> list[str]:
    """The tenants whose derived template is `template`."""
    return [tenant.code for tenant in config.tenants if tenant.template == template]
