"""The names of the Airflow Assets leadflow's DAGs exchange, importable without Airflow.

The DAGs build `airflow.sdk.Asset(uri)` from these; campaign DAGs schedule on the nightly
one, so every name lives here once.
"""

# Updated when a nightly run has rebuilt and validated the marts.
NIGHTLY_MARTS_URI = "leadflow://marts/nightly"
