"""Fixtures for the configuration tests: the example config and editable copies of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from leadflow.config import Config, load_config
from leadflow.errors import ConfigError
from leadflow.paths import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "include" / "config"


@pytest.fixture
def example_dir() -> Path:
    return EXAMPLE


@pytest.fixture(scope="session")
def example_config() -> Config:
    """The example config, loaded once (loading reads ~1000 lines of YAML round-trip)."""
    return load_config(EXAMPLE)


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A copy of the example config in tmp_path/config (no templates folder beside it)."""
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE, target)
    return target


def _edit(path: Path, old: str, new: str) -> int:
    """Replace the one occurrence of `old` in `path` by `new`; the 1-based line `new` starts on."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def _line_of(path: Path, snippet: str) -> int:
    """The 1-based line of the one occurrence of `snippet` in `path`."""
    text = path.read_text(encoding="utf-8")
    assert text.count(snippet) == 1, f"{snippet!r} occurs {text.count(snippet)} times in {path}"
    return text[: text.index(snippet)].count("\n") + 1


@pytest.fixture
def edit() -> Callable[[Path, str, str], int]:
    """edit(path, old, new): replace the one `old` by `new`; returns the line `new` starts on."""
    return _edit


@pytest.fixture
def line_of() -> Callable[[Path, str], int]:
    """line_of(path, snippet): the 1-based line of the one occurrence of `snippet`."""
    return _line_of


@pytest.fixture
def errors_of() -> Callable[[Path], list[str]]:
    """Load a config that must be invalid; return its error lines (header dropped)."""

    def load_errors(directory: Path) -> list[str]:
        with pytest.raises(ConfigError) as raised:
            load_config(directory)
        header, *lines = str(raised.value).splitlines()
        assert header.startswith(f"invalid configuration in {directory} ({len(lines)} error")
        return lines

    return load_errors
