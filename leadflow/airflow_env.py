"""The environment Airflow needs to run this project locally.

One function builds it, so `leadflow airflow run`, the Makefile, the tests and a user's shell
(`eval "$(leadflow airflow env)"`) all run the same Airflow: a SQLite metadata database and
logs under `<leadflow home>/airflow`, the project's `dags/` and `plugins/`, no example DAGs,
no telemetry (the machines have no internet), and the `warehouse` and `smtp_default`
connections pointing at the same warehouse and mail server the CLI uses.

Nothing here imports Airflow: the variables must be set before Airflow reads its config.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from leadflow import paths
from leadflow.errors import LeadflowError

DEFAULT_SMTP_HOST = "127.0.0.1"
DEFAULT_SMTP_PORT = 8025

# Every tool in the stack that could phone home, switched off.
TELEMETRY_OFF = {
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "DO_NOT_TRACK": "1",
    "SCARF_ANALYTICS": "false",
    # Cosmos reads SCARF_NO_ANALYTICS (not SCARF_ANALYTICS).
    "SCARF_NO_ANALYTICS": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
}


def airflow_home() -> Path:
    return paths.home() / "airflow"


def airflow_environment(home: Path | None = None) -> dict[str, str]:
    """Every variable Airflow needs for this project; `home` overrides the AIRFLOW_HOME."""
    home = (home or airflow_home()).resolve()
    return {
        **_core_settings(home),
        **TELEMETRY_OFF,
        **_leadflow_settings(),
        "AIRFLOW_CONN_WAREHOUSE": warehouse_connection_json(),
        "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection_json(),
    }


def _core_settings(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(paths.PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(paths.PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # Cosmos caches rendered profiles and partial-parse files; keep them with the rest.
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
    }


def _leadflow_settings() -> dict[str, str]:
    from leadflow.warehouse.engine import warehouse_url

    return {
        "LEADFLOW_HOME": str(paths.home()),
        "LEADFLOW_CONFIG_DIR": str(paths.config_dir().resolve()),
        # Tasks run in their own processes: they must reach the warehouse this shell reaches.
        "LEADFLOW_WAREHOUSE_URL": warehouse_url().render_as_string(hide_password=False),
    }


def warehouse_connection_json() -> str:
    """The Airflow `warehouse` connection (JSON form; the host may be a socket directory)."""
    from leadflow.warehouse.engine import connection_params

    params = connection_params()
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": params.host,
            "port": params.port,
            "login": params.user,
            "password": params.password,
            "schema": params.dbname,
        }
    )


def smtp_connection_json() -> str:
    """The Airflow `smtp_default` connection: the local mail sink unless LEADFLOW_SMTP_* say."""
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": os.environ.get("LEADFLOW_SMTP_HOST", DEFAULT_SMTP_HOST),
            "port": int(os.environ.get("LEADFLOW_SMTP_PORT", DEFAULT_SMTP_PORT)),
            # The local sink speaks plain SMTP.
            "extra": {"disable_ssl": True, "disable_tls": True},
        }
    )


def export_lines(environment: dict[str, str]) -> str:
    """`export K=V` lines, shell-quoted, for `eval "$(leadflow airflow env)"`."""
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in environment.items())


def airflow_executable() -> Path:
    """The `airflow` script of the Python environment leadflow runs in."""
    return Path(sys.executable).parent / "airflow"


def _migration_marker(home: Path) -> Path:
    return home / ".leadflow-db-migrated"


def ensure_migrated(environment: dict[str, str]) -> bool:
    """Run `airflow db migrate` once per Airflow version; returns True if it ran now.

    `airflow db migrate` is idempotent but takes many seconds even when there is nothing to
    do, so a marker file records the Airflow version the metadata database was migrated for.
    """
    home = Path(environment["AIRFLOW_HOME"])
    marker = _migration_marker(home)
    version = metadata.version("apache-airflow")
    database = home / "airflow.db"
    if database.exists() and marker.exists() and marker.read_text().strip() == version:
        return False
    home.mkdir(parents=True, exist_ok=True)
    migration = subprocess.run(
        [str(airflow_executable()), "db", "migrate"],
        env={**os.environ, **environment},
        stdout=subprocess.DEVNULL,
        check=False,
    )
    if migration.returncode != 0:
        raise LeadflowError(
            f"`airflow db migrate` failed (exit {migration.returncode}) for {database}; "
            "its errors are printed above."
        )
    marker.write_text(version + "\n")
    return True


def exec_airflow(arguments: list[str], environment: dict[str, str] | None = None) -> None:
    """Replace this process with `airflow ARGUMENTS` in the project's environment."""
    environment = environment or airflow_environment()
    ensure_migrated(environment)
    executable = airflow_executable()
    # `airflow standalone` starts its components as `airflow ...` found on PATH: put the
    # venv's bin first so they are this installation's, even when the venv is not activated.
    path = os.pathsep.join([str(executable.parent), os.environ.get("PATH", "")])
    os.execve(
        str(executable), [str(executable), *arguments], {**os.environ, **environment, "PATH": path}
    )
