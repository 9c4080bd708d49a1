"""The leadflow Airflow plugin serves the quality gates' pages (FastAPI's test client, no
API server needed: the app is the one the API server mounts)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys

import pytest
from fastapi.testclient import TestClient

from leadflow import paths
from leadflow.quality.gate import GateResult
from leadflow.quality.report import write_report

PLUGIN = paths.PROJECT_ROOT / "plugins" / "leadflow_plugin.py"


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path))
    spec = importlib.util.spec_from_file_location("leadflow_plugin_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("leadflow_plugin_under_test", None)


def test_the_quality_pages_are_served_under_the_plugins_prefix(plugin, tmp_path):
    write_report(GateResult("raw", dt.datetime(2026, 11, 27, 2, tzinfo=dt.UTC)))
    [mounted] = plugin.LeadflowPlugin.fastapi_apps
    client = TestClient(mounted["app"])

    index = client.get("/quality/index.html")
    page = client.get("/quality/raw.html")

    assert index.status_code == 200 and '<a href="raw.html">raw</a>' in index.text
    assert page.status_code == 200 and "Quality gate <code>raw</code>" in page.text
    assert client.get("/quality/marts.html").status_code == 404
    [view] = plugin.LeadflowPlugin.external_views
    assert view["href"] == mounted["url_prefix"] + "/quality/index.html"
    assert (tmp_path / "quality").is_dir()
