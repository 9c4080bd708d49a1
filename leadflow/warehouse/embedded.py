"""The embedded warehouse: a PostgreSQL 16 from the `pgserver` wheel in `.leadflow/pg`.

Started on first use, left running for the next command (so a CLI call, a dbt run and an
Airflow task share one server), stopped with `leadflow db stop`. It listens on a Unix
socket inside its data directory only, so it never collides with another server's port.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from leadflow import paths

DATABASE = "leadflow"

# Sized for a 2-core, 24 GiB machine running the 1M-contact benchmark; harmless for the demo.
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "max_connections": "200",
    "jit": "off",
}


@dataclass(frozen=True)
class EmbeddedServer:
    data_dir: Path

    @property
    def socket_dir(self) -> Path:
        return self.data_dir

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"


def data_dir() -> Path:
    return paths.home() / "pg"


def _pgserver():
    # pgserver writes a harmless warning about XDG_RUNTIME_DIR on import; keep the CLI quiet.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver


def is_running(directory: Path | None = None) -> bool:
    pid_file = (directory or data_dir()) / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def ensure_running(directory: Path | None = None) -> EmbeddedServer:
    """Start the embedded server if needed and make sure the `leadflow` database exists."""
    directory = (directory or data_dir()).resolve()
    fresh = not (directory / "PG_VERSION").exists()
    directory.mkdir(parents=True, exist_ok=True)
    server = _pgserver().get_server(directory, cleanup_mode=None)
    if fresh:
        _tune(server, directory)
    if DATABASE not in server.psql("select datname from pg_database;"):
        server.psql(f"create database {DATABASE};")
    return EmbeddedServer(directory)


def _tune(server, directory: Path) -> None:
    statements = "".join(f"alter system set {k} = '{v}';\n" for k, v in SERVER_SETTINGS.items())
    server.psql(statements)
    _pg_ctl(directory, "restart")


def _pg_ctl(directory: Path, action: str) -> None:
    pgserver = _pgserver()
    bin_path = pgserver._commands.POSTGRES_BIN_PATH
    command = [str(bin_path / "pg_ctl"), "-D", str(directory), "-w", "-m", "fast", action]
    if action == "restart":
        command += ["-o", f'-h "" -k {directory}', "-l", str(directory / "log")]
    if os.geteuid() == 0:
        # pgserver runs the server as its own unprivileged user when invoked as root.
        command = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(_quote(c) for c in command)]
    subprocess.run(command, check=True, capture_output=True)


def _quote(part: str) -> str:
    return "'" + part.replace("'", "'\"'\"'") + "'"


def stop(directory: Path | None = None) -> bool:
    """Stop the embedded server; returns False if it was not running."""
    directory = (directory or data_dir()).resolve()
    if not is_running(directory):
        return False
    _pg_ctl(directory, "stop")
    return True
