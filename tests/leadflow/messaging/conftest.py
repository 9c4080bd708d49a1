"""Fixtures shared by the messaging tests."""

from __future__ import annotations

import pytest

from tests.leadflow.messaging.dispatch_data import create_pool


@pytest.fixture
def pool(warehouse):
    """The test database with the contacts relations the dispatcher reads."""
    create_pool(warehouse)
    return warehouse
