"""Where leadflow keeps its files: one place, overridable by the environment."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def home() -> Path:
    """The project-local state directory (embedded warehouse, Airflow home, demo output)."""
    return Path(os.environ.get("LEADFLOW_HOME", PROJECT_ROOT / ".leadflow")).resolve()


def config_dir() -> Path:
    return Path(os.environ.get("LEADFLOW_CONFIG_DIR", PROJECT_ROOT / "include" / "config"))


def dbt_project_dir() -> Path:
    return PROJECT_ROOT / "dbt_project"


def templates_dir() -> Path:
    return PROJECT_ROOT / "include" / "templates"


def content_dir() -> Path:
    return PROJECT_ROOT / "include" / "content"


def demo_dir() -> Path:
    return home() / "demo"
