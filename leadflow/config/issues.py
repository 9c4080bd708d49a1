"""Configuration errors as `file:LINE: label: key.path: what is wrong`.

An `Issue` is a file, a path of YAML keys/indexes inside it (pydantic's `loc`, or one built
by a check) and a message. Lines are found afterwards by walking the path through the
round-trip-loaded document, whose mappings and lists remember the line of every key and
item: the line of the offending key, or for a missing key the line of its parent.

Items of the main collections are named instead of indexed, so errors read
`segments.yaml:12: segment 'hs2000_upsell': filter.all[1].value: ...` and
`campaigns/upsell.yaml:30: campaign 'upsell': step 'check_click': branch.then: ...`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from leadflow.config.base import KNOWN_KEYS, LOC_TAGS, did_you_mean
from leadflow.config.fields import describe_value

Loc = tuple[str | int, ...]

# Pydantic loc components that name a validator or type rather than a YAML key.
_TYPE_COMPONENT = re.compile(r"^[a-z_-]+\[.*\]$")

# (collection path, noun, id key): items found there are named "<noun> '<id>'".
# An id key of None means the collection is a mapping and the item's key is its name.
_INDEX = object()
_KEY = object()
LABELS: dict[str, list[tuple[tuple[Any, ...], str, str | None]]] = {
    "company": [(("assets", _INDEX), "asset", "id")],
    "tenants": [(("tenants", _INDEX), "tenant", "code")],
    "products": [
        (("products", _INDEX), "product", "id"),
        (("families", _INDEX), "product family", "id"),
    ],
    "personas": [(("personas", _INDEX), "persona", "id")],
    "scoring": [
        (("profile_rules", _INDEX), "profile rule", "id"),
        (("activity_rules", _INDEX), "activity rule", "id"),
    ],
    "routing": [(("teams", _INDEX), "team", "id"), (("rules", _INDEX), "routing rule", "id")],
    "segments": [(("segments", _KEY), "segment", None)],
    "costs": [(("fairs", _INDEX), "fair", "id"), (("other", _INDEX), "cost item", "id")],
    "campaign": [((), "campaign", "id"), (("steps", _INDEX), "step", "id")],
}


@dataclass(frozen=True)
class Issue:
    """One thing wrong with the configuration."""

    file: Path
    loc: Loc
    message: str
    # Known up front for YAML syntax errors; otherwise found from `loc`.
    line: int | None = None


@dataclass
class Document:
    """A config file as loaded: its kind (company, tenants, ..., campaign) and YAML tree."""

    path: Path
    kind: str
    data: Any = None


def issues_from_validation_error(file: Path, error: ValidationError) -> list[Issue]:
    return [
        Issue(file, tuple(detail["loc"]), describe_error(detail))
        for detail in error.errors(include_url=False)
    ]


_EXPECTED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "string_type": "text",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
}
_BOUNDS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def describe_error(detail: dict[str, Any]) -> str:
    """Pydantic's error in the words of a YAML file (keys, lists, mappings, text)."""
    kind, message = detail["type"], detail["msg"]
    value = detail.get("input")
    if kind == "extra_forbidden":
        key = str(detail["loc"][-1])
        return f"unknown key {key!r}{did_you_mean(key, KNOWN_KEYS - {key})}"
    if kind == "missing":
        return "required key is missing"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe_value(value)}"
    if kind == "literal_error" or kind in _BOUNDS:
        return f"{message.replace('Input should be', 'expected')}, got {describe_value(value)}"
    if kind in ("too_short", "too_long"):
        context = detail.get("ctx", {})
        bound = context.get("min_length" if kind == "too_short" else "max_length")
        items = "item" if bound == 1 else "items"
        limit = "at least" if kind == "too_short" else "at most"
        return f"expected {limit} {bound} {items}, got {context.get('actual_length')}"
    if kind == "string_too_short":
        return "expected non-empty text"
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


# --- locating ---------------------------------------------------------------------------


def _is_marker(component: str | int) -> bool:
    return isinstance(component, str) and (
        component in LOC_TAGS or component == "[key]" or bool(_TYPE_COMPONENT.match(component))
    )


def _child_key(node: CommentedMap, component: str | int) -> Any:
    """The key of `node` that `component` names (YAML keys like `1:` are ints)."""
    for key in node:
        if key == component or str(key) == str(component):
            return key
    return _MISSING


_MISSING = object()


def locate(data: Any, loc: Loc) -> tuple[int, list[str | int]]:
    """(1-based line, path of YAML keys) for `loc` in the round-trip tree `data`.

    The line is that of the deepest key/item that exists; the path keeps every component
    of `loc` except union tags and validator names, so a missing key still shows up.
    """
    line = data.lc.line + 1 if isinstance(data, CommentedMap | CommentedSeq) else 1
    node, path, found = data, [], True
    for component in loc:
        if _is_marker(component):
            continue
        path.append(component)
        if not found:
            continue
        if isinstance(node, CommentedMap) and (key := _child_key(node, component)) is not _MISSING:
            line = _line(node, key, line)
            node = node[key]
        elif (
            isinstance(node, CommentedSeq)
            and isinstance(component, int)
            and 0 <= component < len(node)
        ):
            line = _line(node, component, line)
            node = node[component]
        else:
            found = False
    return line, path


def _line(node: CommentedMap | CommentedSeq, key: Any, fallback: int) -> int:
    """The 1-based line of a key or item; keys merged in with `<<:` have none of their own."""
    try:
        position = node.lc.key(key) if isinstance(node, CommentedMap) else node.lc.item(key)
    except (KeyError, IndexError, TypeError):
        return fallback
    return position[0] + 1 if position else fallback


def _labels(kind: str, data: Any, path: list[str | int]) -> tuple[list[str], list[str | int]]:
    """Names for the labelled collection items at the start of `path`, and the rest of it."""
    labels: list[str] = []
    rules = LABELS.get(kind, [])
    node = data
    for pattern, noun, id_key in rules:
        if pattern == ():
            name = node.get(id_key) if isinstance(node, dict) else None
            if isinstance(name, str):
                labels.append(f"{noun} {name!r}")
    position = 0
    matched = True
    while matched:
        matched = False
        for pattern, noun, id_key in rules:
            if not pattern or not _matches(pattern, path[position:]):
                continue
            item = _get(_get(node, pattern[0]), path[position + 1])
            name = path[position + 1] if id_key is None else _get(item, id_key)
            if not isinstance(name, str):
                continue
            labels.append(f"{noun} {name!r}")
            node, position, matched = item, position + len(pattern), True
            break
    return labels, path[position:]


def _matches(pattern: tuple[Any, ...], path: list[str | int]) -> bool:
    if len(path) < len(pattern) or path[0] != pattern[0]:
        return False
    marker = pattern[1]
    return isinstance(path[1], int) if marker is _INDEX else isinstance(path[1], str)


def _get(node: Any, key: str | int) -> Any:
    if isinstance(node, dict):
        found = _child_key(node, key) if isinstance(node, CommentedMap) else key
        return node.get(found) if found is not _MISSING else None
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return None


def format_path(path: Iterable[str | int]) -> str:
    text = ""
    for component in path:
        text += f"[{component}]" if isinstance(component, int) else f".{component}"
    return text.lstrip(".")


def format_issue(issue: Issue, document: Document | None) -> tuple[str, int, str]:
    """(file, line, text) of one issue; text starts with `file:line:`."""
    if document is None or document.data is None:
        line = issue.line
        parts = [format_path(issue.loc)] if issue.loc else []
    else:
        line, path = locate(document.data, issue.loc)
        line = issue.line or line
        labels, rest = _labels(document.kind, document.data, path)
        parts = [*labels, format_path(rest)] if rest else labels
    where = f"{issue.file}:{line}" if line else f"{issue.file}"
    text = ": ".join([where, *[part for part in parts if part], issue.message])
    return str(issue.file), line or 0, text


def format_issues(issues: Iterable[Issue], documents: dict[Path, Document]) -> list[str]:
    """Every issue as one line, sorted by file and line, duplicates dropped."""
    formatted = {format_issue(issue, documents.get(issue.file)) for issue in issues}
    return [text for _file, _line, text in sorted(formatted)]
