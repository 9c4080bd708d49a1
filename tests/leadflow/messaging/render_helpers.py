"""Shared pieces of the rendering tests: the shipped configuration, translators, copies."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from leadflow.config import load_config
from leadflow.messaging.render import TranslationUnavailable
from leadflow.paths import PROJECT_ROOT

INCLUDE = PROJECT_ROOT / "include"
SECRET = "test-secret-for-tracking-tokens"


def shipped_config() -> Any:
    return load_config(INCLUDE / "config")


class SourceOnlyTranslator:
    """No translation service: the source text for the source language, else unavailable."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def translate(self, text_html: str, source: str, target: str, formality: str) -> str:
        self.calls.append((source, target))
        if source == target:
            return text_html
        raise TranslationUnavailable(f"no translation {source} → {target}")


class MarkingTranslator:
    """A stand-in service whose 'translation' is the text with a `[xx] ` mark in front."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.texts: list[str] = []

    def translate(self, text_html: str, source: str, target: str, formality: str) -> str:
        self.calls.append((source, target, formality))
        self.texts.append(text_html)
        return f"[{target}] {text_html}"


def copy_of_templates(config: Any, tmp_path: Path) -> Any:
    """The config with its templates and content blocks copied to `tmp_path` (to edit)."""
    shutil.copytree(INCLUDE / "templates", tmp_path / "templates")
    shutil.copytree(INCLUDE / "content", tmp_path / "content")
    return dataclasses.replace(config, templates_dir=tmp_path / "templates")


def with_translation(config: Any, **changes: Any) -> Any:
    translation = config.company.translation.model_copy(update=changes)
    company = config.company.model_copy(update={"translation": translation})
    return dataclasses.replace(config, company=company)


def outbox_row(campaign: str, message: str, tenant: str | None = "hq", **extra: Any) -> dict:
    row = {
        "outbox_id": 4711,
        "kind": "campaign_mail",
        "campaign_id": campaign,
        "step_id": "step",
        "contact_id": "C-1",
        "tenant_code": tenant,
        "message": message,
        "content": [],
        "category": "marketing",
        "recipient_email": None,
    }
    return row | extra


def contact(**fields: Any) -> dict:
    base = {
        "contact_id": "C-1",
        "email": "claire.dubois@example.org",
        "salutation": "ms",
        "first_name": "Claire",
        "last_name": "Dubois",
        "language": "de",
        "account_name": "Dubois Usinage",
    }
    return base | fields
