"""Transforms: running the dbt project in `dbt_project/` against the warehouse."""
