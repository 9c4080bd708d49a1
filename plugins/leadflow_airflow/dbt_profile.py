"""The dbt profile Cosmos builds from the Airflow `warehouse` connection."""

from __future__ import annotations

from typing import Any

from cosmos.profiles import PostgresUserPasswordProfileMapping

WAREHOUSE_CONN_ID = "warehouse"
# dbt's profile name in dbt_project/dbt_project.yml.
DBT_PROFILE = "leadflow"


class WarehouseProfileMapping(PostgresUserPasswordProfileMapping):
    """Cosmos' Postgres mapping, accepting an empty password.

    The embedded warehouse trusts local socket connections and has no password. Cosmos'
    mapping treats an empty password as missing and refuses to render the profile, while
    dbt-postgres only needs the key to be present: so an empty password stays "". The host
    may be a Unix socket directory; dbt's psycopg2 takes it as is.
    """

    def get_dbt_value(self, name: str) -> Any:
        value = super().get_dbt_value(name)
        if name == "password" and value is None:
            return ""
        return value


def warehouse_profile_mapping(schema: str = "marts") -> WarehouseProfileMapping:
    """Reads the connection only when a task renders its profile, never at DAG parse time."""
    return WarehouseProfileMapping(conn_id=WAREHOUSE_CONN_ID, profile_args={"schema": schema})
