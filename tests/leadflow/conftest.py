"""Fixtures shared by leadflow's mail tests: private certificate authorities for SMTP servers
with TLS on loopback (tests/leadflow/messaging/tls_relay.py)."""

from __future__ import annotations

import pytest

from tests.leadflow.messaging.tls_relay import LocalCA


@pytest.fixture(scope="session")
def ca(tmp_path_factory) -> LocalCA:
    """The CA that issued the test servers' certificates."""
    return LocalCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory) -> LocalCA:
    """A CA that issued nothing the servers present: trusting it alone must fail."""
    return LocalCA.create(tmp_path_factory.mktemp("other-ca"))
