"""Run every benchmark in bench/ with its default sizes (`make bench`).

Each script prints its own figure next to a baseline measured in the same run; sizes can be
lowered for a quick look with `LEADFLOW_BENCH_SCALE=0.1`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).parent


def main() -> int:
    scripts = sorted(
        p for p in BENCH_DIR.glob("*.py") if p.name != "run_all.py" and not p.name.startswith("_")
    )
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.run([sys.executable, str(script)]).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
