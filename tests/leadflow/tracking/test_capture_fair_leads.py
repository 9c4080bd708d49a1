"""The fair-lead endpoint: API key, snapADDY-style JSON → raw.fair_leads (SPEC §2.12)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from leadflow.config import load_config
from leadflow.imports import fair_lead_id
from leadflow.paths import PROJECT_ROOT
from leadflow.tracking.app import create_app
from leadflow.tracking.settings import TrackingSettings

CONFIG = load_config(PROJECT_ROOT / "include" / "config")
API_KEY = "fair-lead-key-0123456789abcdefghijkl"
LEAD = {
    "fair": "hannover_messe_2026",
    "captured_at": "2026-04-21T10:15:00+02:00",
    "captured_by": "m.keller",
    "first_name": "Jana",
    "last_name": "Novak",
    "email": "Jana.Novak@example.com",
    "company": "Novak Maschinenbau",
    "country": "de",
    "interests": ["hydrostat", "maintenance"],
    "consent_proof": "signature:scan-0815",
}
CAPTURED = dt.datetime(2026, 4, 21, 8, 15, tzinfo=dt.UTC)
JANA = fair_lead_id("hannover_messe_2026", "jana.novak@example.com", CAPTURED)


@pytest.fixture
def client(warehouse):
    settings = TrackingSettings.from_config(
        CONFIG, environment="development", secret="x" * 40, fair_lead_api_key=API_KEY
    )
    with TestClient(create_app(settings, engine=warehouse, config=CONFIG)) as test_client:
        yield test_client


def post(client: TestClient, body, key: str | None = API_KEY):
    headers = {} if key is None else {"X-API-Key": key}
    return client.post("/fair-leads", json=body, headers=headers)


def leads(engine) -> list[tuple]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.text(
                    "select fair_lead_id, fair, captured_at, email, company, country, "
                    "interests, notes from raw.fair_leads order by lower(email)"
                )
            )
        ]


def test_without_the_right_key_nothing_lands(warehouse, client):
    answers = [post(client, LEAD, key=None), post(client, LEAD, key=API_KEY[:-1] + "X")]
    assert [a.status_code for a in answers] == [401, 401]
    assert leads(warehouse) == []


def test_one_lead_lands_once_and_a_resend_changes_nothing(warehouse, client):
    first = post(client, LEAD)
    again = post(client, [LEAD])
    assert first.status_code == again.status_code == 200
    assert first.json() == {
        "received": 1,
        "inserted": 1,
        "updated": 0,
        "unchanged": 0,
        "fair_lead_ids": [JANA],
    }
    assert again.json()["unchanged"] == 1
    expected = (
        JANA,
        "hannover_messe_2026",
        CAPTURED,
        "Jana.Novak@example.com",
        "Novak Maschinenbau",
        "DE",
        ["hydrostat", "maintenance"],
        None,
    )
    assert leads(warehouse) == [expected]
    changed = post(client, {**LEAD, "notes": "call back in May", "interests": "hydrostat"})
    assert changed.json()["updated"] == 1
    assert leads(warehouse) == [(*expected[:6], ["hydrostat"], "call back in May")]


def test_an_invalid_lead_rejects_the_request_naming_lead_and_field(warehouse, client):
    bert = {**LEAD, "email": "bert@example.com", "first_name": "Bert"}
    answer = post(
        client,
        [bert, {**LEAD, "email": "jana@", "country": "Germany"}, {"fair": "x"}, "text"],
    )
    assert answer.status_code == 422
    assert [(d["loc"], d["msg"].split(" (")[0]) for d in answer.json()["detail"]] == [
        (["body", 1, "email"], "'jana@' is not a valid email address"),
        (
            ["body", 1, "country"],
            "'Germany' is not an ISO 3166 alpha-2 country code",
        ),
        (["body", 2, "captured_at"], "a value is required"),
        (["body", 2, "email"], "a value is required"),
        (["body", 3], "a lead is a JSON object"),
    ]
    assert leads(warehouse) == []
    unknown = post(client, {**LEAD, "badge_colour": "red"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", 0, "badge_colour"]
    assert [post(client, []).status_code, post(client, 7).status_code] == [422, 422]


def test_a_list_lands_every_lead(warehouse, client):
    bert = {**LEAD, "email": "bert@example.com", "interests": None, "captured_at": "2026-04-21"}
    answer = post(client, [LEAD, bert])
    assert answer.json()["inserted"] == 2
    assert [row[3] for row in leads(warehouse)] == ["bert@example.com", "Jana.Novak@example.com"]
    assert leads(warehouse)[0][2] == dt.datetime(2026, 4, 21, tzinfo=dt.UTC)
    assert leads(warehouse)[0][6] == []
