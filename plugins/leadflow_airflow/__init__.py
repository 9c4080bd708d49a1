"""leadflow's thin Airflow layer: what the DAGs need from Airflow and Cosmos, nothing else.

Everything here translates between Airflow (context, exceptions, connections) and the
`leadflow` package, where the work is done. Airflow puts `plugins/` on sys.path, so the DAGs
import this as `leadflow_airflow`.
"""
