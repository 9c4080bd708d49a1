"""Fixtures for the tracking service: the app on a fresh warehouse, a client, sample mails."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from leadflow.tracking.app import create_app
from leadflow.tracking.settings import TrackingSettings
from tests.leadflow.tracking.data import (
    BASE,
    BROWSER,
    SECRET,
    add_contact,
    add_link,
    add_mail,
    shipped_config,
)


@pytest.fixture(scope="session")
def config():
    return shipped_config()


@pytest.fixture
def settings() -> TrackingSettings:
    return TrackingSettings(
        environment="production",
        base_url=BASE,
        secret=SECRET,
        batch_size=50,
        flush_interval_seconds=0.05,
    )


@pytest.fixture
def app(settings, warehouse, config):
    return create_app(settings, engine=warehouse, config=config)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, headers={"User-Agent": BROWSER}, follow_redirects=False) as client:
        yield client


@dataclass
class Mails:
    """Anna got the newsletter (two links and a honeypot); Ben got another campaign's mail."""

    anna_mail: int
    ben_mail: int
    product_link: str
    pricing_link: str
    honeypot_link: str
    ben_link: str


@pytest.fixture
def mails(warehouse) -> Mails:
    add_contact(warehouse, "C-1", "Anna@Example.com")
    add_contact(warehouse, "C-2", "ben@example.com")
    anna = add_mail(warehouse, "C-1", campaign_id="newsletter", step_id="send_1")
    ben = add_mail(warehouse, "C-2", campaign_id="fair_follow_up", step_id="mail_2")
    return Mails(
        anna_mail=anna,
        ben_mail=ben,
        product_link=add_link(
            warehouse, anna, "https://www.steinhoff.example/hydrostat?x=1", "product"
        ),
        pricing_link=add_link(warehouse, anna, "https://www.steinhoff.example/pricing", "pricing"),
        honeypot_link=add_link(warehouse, anna, "https://www.steinhoff.example/trap", "honeypot"),
        ben_link=add_link(warehouse, ben, "https://fair.steinhoff.example/booth", "booth"),
    )


def written(client: TestClient) -> None:
    """Flush the app's buffered events so the test can count them."""
    client.app.state.writer.flush()
