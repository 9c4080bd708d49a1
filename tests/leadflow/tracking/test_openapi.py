"""The published OpenAPI schema, and schemathesis against it: no server errors."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings


def test_the_schema_is_published(client):
    schema = client.get("/openapi.json").json()
    assert {"/o/{token}.gif", "/c/{token}", "/u/{token}", "/preferences/{token}"} <= set(
        schema["paths"]
    )
    assert set(schema["paths"]["/u/{token}"]) == {"get", "post"}


def test_no_server_errors(client, mails):
    """Every operation of the schema, with generated paths, forms and headers: no 5xx.

    (schemathesis' own pytest integration does not run under this pytest version, so its
    strategies are driven by hypothesis directly.)"""
    api = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case):
            response = case.call()
            assert response.status_code < 500, (case.path, case.path_parameters, response.text)

        no_server_error()
