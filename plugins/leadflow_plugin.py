"""The leadflow Airflow plugin: the quality gates' latest results, browsable in the Airflow UI.

The pages are the static ones `leadflow.quality` writes under `<leadflow home>/quality/`;
the API server serves them at `/leadflow/quality/` and the UI lists them under Browse.
They hold counts and non-personal examples only (see `leadflow.quality.suites.PII_COLUMNS`).
"""

from __future__ import annotations

from typing import ClassVar

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from leadflow.quality.report import report_dir

URL_PREFIX = "/leadflow"


def reports_app() -> FastAPI:
    directory = report_dir()
    # The directory exists before the first gate runs, so the link never 404s on a fresh home.
    directory.mkdir(parents=True, exist_ok=True)
    app = FastAPI(title="leadflow reports")
    app.mount("/quality", StaticFiles(directory=directory, html=True), name="quality")
    return app


class LeadflowPlugin(AirflowPlugin):
    name = "leadflow"
    fastapi_apps: ClassVar[list[dict]] = [
        {"app": reports_app(), "url_prefix": URL_PREFIX, "name": "leadflow reports"}
    ]
    external_views: ClassVar[list[dict]] = [
        {
            "name": "Quality gates",
            "href": f"{URL_PREFIX}/quality/index.html",
            "destination": "nav",
            "category": "browse",
            "url_route": "leadflow-quality",
        }
    ]
