"""`leadflow config validate`: exit 0 with a summary, or exit 2 with every error on stderr."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.paths import PROJECT_ROOT


def test_validate_accepts_the_example(example_dir):
    result = CliRunner().invoke(app, ["config", "validate", "--config", str(example_dir)])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "configuration valid: 4 tenants, 7 products, 3 personas, 23 scoring rules, "
        "8 routing rules, 14 segments, 5 fairs, 7 campaigns"
    )


def test_validate_reports_errors_on_stderr_with_exit_2(config_copy, edit):
    segments = config_copy / "segments.yaml"
    line = edit(
        segments,
        '        - {field: total_revenue, op: ">=", value: 20000}',
        "        - {field: total_revenue, op: between, value: 20000}",
    )

    result = CliRunner().invoke(app, ["config", "validate", "--config", str(config_copy)])

    assert result.exit_code == 2
    assert result.stdout == ""
    # Square brackets in messages survive (rich must not take them for console markup).
    assert result.stderr.splitlines() == [
        f"error: invalid configuration in {config_copy} (1 error):",
        f"{segments}:{line}: segment 'loyal_customers': filter.all[2].value: "
        "total_revenue (numeric): 'between' needs a list [low, high], got 20000",
    ]


def test_the_installed_command_uses_the_config_dir_from_the_environment(config_copy, edit):
    products = config_copy / "products.yaml"
    line = edit(products, "  - id: CLN-25\n", "  - id: CLN-10\n")
    environment = {**os.environ, "LEADFLOW_CONFIG_DIR": str(config_copy)}

    broken = subprocess.run(
        [sys.executable, "-m", "leadflow.cli", "config", "validate"],
        capture_output=True, text=True, env=environment, cwd=PROJECT_ROOT, check=False,
    )  # fmt: skip
    environment["LEADFLOW_CONFIG_DIR"] = str(PROJECT_ROOT / "include" / "config")
    valid = subprocess.run(
        [sys.executable, "-m", "leadflow.cli", "config", "validate"],
        capture_output=True, text=True, env=environment, cwd=PROJECT_ROOT, check=False,
    )  # fmt: skip

    assert broken.returncode == 2
    assert f"{products}:{line}: product 'CLN-10': id: duplicate id 'CLN-10'" in broken.stderr
    assert valid.returncode == 0, valid.stderr
    assert "configuration valid: 4 tenants" in valid.stdout


def test_validate_checks_the_message_templates_too(tmp_path, example_dir):
    # Config, templates and content side by side, as in include/.
    include = tmp_path / "include"
    shutil.copytree(example_dir.parent, include)
    welcome = include / "templates" / "messages" / "onboarding" / "welcome.yaml"
    welcome.write_text(welcome.read_text(encoding="utf-8") + "\n{% if %}\n", encoding="utf-8")

    result = CliRunner().invoke(app, ["config", "validate", "--config", str(include / "config")])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "welcome.yaml" in result.stderr
