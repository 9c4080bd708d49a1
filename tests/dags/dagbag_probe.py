"""Load the DagBag with the network, the databases and subprocesses forbidden; print JSON.

Run by test_dag_integrity.py in a fresh interpreter with the project's Airflow environment,
so Airflow reads that configuration (it reads it once, at import) and nothing the test
process imported earlier can leak in. Usage: python dagbag_probe.py DAGS_FOLDER
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

# Importing Airflow sets up its own (SQLite) metadata engine: that is Airflow, not the DAGs.
from airflow.dag_processing.dagbag import DagBag

attempts: list[str] = []


def forbid(owner: object, name: str) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(f"{getattr(owner, '__name__', owner)}.{name}")
        raise RuntimeError(f"{name} called while importing DAGs")

    setattr(owner, name, refuse)


def forbid_everything_outside() -> None:
    import psycopg
    import psycopg2
    import sqlalchemy

    forbid(socket.socket, "connect")
    forbid(socket.socket, "connect_ex")
    forbid(socket, "create_connection")
    forbid(psycopg, "connect")
    forbid(psycopg.Connection, "connect")
    forbid(psycopg2, "connect")
    forbid(sqlalchemy, "create_engine")
    forbid(subprocess, "Popen")
    forbid(subprocess, "run")


def describe(bag: DagBag) -> dict[str, object]:
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "fileloc": dag.fileloc,
            "tags": sorted(dag.tags),
            "catchup": dag.catchup,
            "doc_md": dag.doc_md or "",
            "tasks": {
                task.task_id: {
                    "retries": task.retries,
                    "upstream": sorted(task.upstream_task_ids),
                    "outlets": [getattr(o, "uri", str(o)) for o in task.outlets],
                    "vars": getattr(task, "vars", None),
                    "operator": type(task).__name__,
                }
                for task in dag.tasks
            },
        }
    return {
        "import_errors": bag.import_errors,
        "dags": dags,
        "attempts": attempts,
        "dbt_runner_imported": "dbt.cli.main" in sys.modules,
    }


if __name__ == "__main__":
    forbid_everything_outside()
    bag = DagBag(dag_folder=sys.argv[1])
    print("DAGBAG-JSON " + json.dumps(describe(bag), default=str))
