"""A real `leadflow tracking serve` process on loopback, for the shutdown and crash tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping

import httpx
from sqlalchemy.engine import URL

from leadflow.paths import PROJECT_ROOT
from tests.leadflow.tracking.data import SECRET


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """The service in a subprocess; `url` is its base URL."""

    def __init__(self, warehouse_url: URL, env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "LEADFLOW_WAREHOUSE_URL": warehouse_url.render_as_string(hide_password=False),
            "LEADFLOW_TRACKING_SECRET": SECRET,
            **(env or {}),
        }
        command = [sys.executable, "-m", "leadflow.tracking.cli", "serve"]
        command += ["--port", str(self.port), "--log-level", "warning"]
        command += ["--config", str(PROJECT_ROOT / "include" / "config")]
        self.process = subprocess.Popen(command, env=environment, cwd=PROJECT_ROOT)
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError("the service did not start")

    def stop(self, signal_number: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal_number)
        return self.process.wait(timeout)
