"""Global content blocks: articles, product news, images, referenced by key from messages.

A block is one file `include/content/<key>.yaml` (the folder beside the templates folder):
a title, an HTML body in the source language, an optional image, the link tag its links
carry in click tracking, and optional human translations per language. Messages name
blocks (`{{ content("hs3000_product_news") }}`) and the campaign step lists them
(`send.content`); a block is looked up by key when a mail is rendered, so changing one file
changes every mailing, tenant and language that uses it.

Block bodies are static HTML written by the company, not templates: they are never run
through Jinja, so they can hold no personalisation and no template code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

BLOCK_SUFFIX = ".yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class BlockTranslation(_Strict):
    """A human translation; a missing part is translated (or falls back) at render time."""

    title: str | None = None
    html: str | None = None
    image_alt: str | None = None


class ContentBlock(_Strict):
    title: str
    html: str
    image: str | None = None
    image_alt: str | None = None
    # Link tag for click tracking of every link in the block without its own data-tag.
    tag: str | None = None
    translations: dict[str, BlockTranslation] = {}


@dataclass(frozen=True)
class BlockText:
    """A block's translatable parts in one language (None: no text in that language)."""

    title: str | None
    html: str | None
    image_alt: str | None


def content_dir(templates_dir: Path) -> Path:
    """Content blocks live beside the templates folder (`include/content`)."""
    return Path(templates_dir).parent / "content"


def source_text(block: ContentBlock) -> BlockText:
    return BlockText(block.title, block.html, block.image_alt)


def human_text(block: ContentBlock, language: str) -> BlockText:
    """The parts a person translated into `language` (each None where nobody did)."""
    translation = block.translations.get(language)
    if translation is None:
        return BlockText(None, None, None)
    return BlockText(translation.title, translation.html, translation.image_alt)


def load_blocks(folder: Path, read_yaml: Any) -> tuple[dict[str, ContentBlock], list[str]]:
    """Every block in `folder` by key, and a problem line per file that is not a valid block."""
    blocks: dict[str, ContentBlock] = {}
    problems: list[str] = []
    if not folder.is_dir():
        return blocks, [f"{folder}: content folder not found"]
    for path in sorted(folder.glob(f"*{BLOCK_SUFFIX}")):
        data, problem = read_yaml(path)
        if problem:
            problems.append(problem)
            continue
        try:
            blocks[path.stem] = ContentBlock.model_validate(data)
        except ValidationError as error:
            problems += format_validation(path, error)
    return blocks, problems


def format_validation(path: Path, error: ValidationError) -> list[str]:
    """One line per pydantic error: `file: key.path: message`."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(file)"
        lines.append(f"{path}: {where}: {item['msg']}")
    return lines
