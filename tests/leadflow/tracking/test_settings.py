"""TrackingSettings: secrets from the environment, no placeholders in production."""

from __future__ import annotations

import pytest

from leadflow.tracking.settings import TrackingSettings, TrackingSettingsError, is_placeholder
from tests.leadflow.tracking.data import SECRET

PRODUCTION = "https://go.steinhoff-hydraulik.de"


@pytest.mark.parametrize(
    "secret", ["changeme", "CHANGE_ME", "secret", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "test123"]
)
def test_placeholders_are_recognised(secret):
    assert is_placeholder(secret)


def test_a_random_secret_is_not_a_placeholder():
    assert not is_placeholder(SECRET)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (None, "is not set"),
        ("changeme", "placeholder"),
        ("0" * 40, "placeholder"),
        ("short-but-random-Qx7", "20 characters long"),
    ],
)
def test_production_refuses_weak_secrets(secret, message, config, monkeypatch):
    monkeypatch.delenv("LEADFLOW_TRACKING_SECRET", raising=False)
    with pytest.raises(ValueError, match=message):
        TrackingSettings(environment="production", base_url=PRODUCTION, secret=secret)
    if secret is not None:
        monkeypatch.setenv("LEADFLOW_TRACKING_SECRET", secret)
    with pytest.raises(TrackingSettingsError, match=message):
        TrackingSettings.from_config(config, base_url=PRODUCTION, environment="production")


def test_production_refuses_a_placeholder_fair_lead_key(config, monkeypatch):
    monkeypatch.setenv("LEADFLOW_TRACKING_SECRET", SECRET)
    monkeypatch.setenv("LEADFLOW_FAIR_LEAD_API_KEY", "your-secret-here")
    with pytest.raises(TrackingSettingsError, match="fair-lead API key is a placeholder"):
        TrackingSettings.from_config(config, environment="production")


def test_secrets_come_from_the_variables_the_config_names(config, monkeypatch):
    monkeypatch.setenv("LEADFLOW_TRACKING_SECRET", SECRET)
    monkeypatch.setenv("LEADFLOW_FAIR_LEAD_API_KEY", "k" + SECRET)
    settings = TrackingSettings.from_config(config, environment="production")
    assert settings.token_secret() == SECRET
    assert settings.fair_lead_api_key.get_secret_value() == "k" + SECRET
    assert (settings.batch_size, settings.flush_interval_seconds) == (500, 1.0)
    assert SECRET not in repr(settings)


def test_the_environment_defaults_by_host():
    # A reserved development host may run with a weak secret; a real host may not.
    dev = TrackingSettings(base_url="http://localhost:8765", secret="changeme")
    assert dev.environment == "development"
    with pytest.raises(ValueError, match="placeholder"):
        TrackingSettings(base_url=PRODUCTION, secret="changeme")


def test_development_without_a_secret_uses_the_machine_secret(config, monkeypatch, tmp_path):
    monkeypatch.delenv("LEADFLOW_TRACKING_SECRET", raising=False)
    monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path))
    settings = TrackingSettings.from_config(config)  # the shipped *.example host
    assert settings.environment == "development"
    assert settings.token_secret() == (tmp_path / "tracking-secret").read_text().strip()


def test_the_environment_variable_selects_production(config, monkeypatch):
    monkeypatch.delenv("LEADFLOW_TRACKING_SECRET", raising=False)
    monkeypatch.setenv("LEADFLOW_TRACKING_ENVIRONMENT", "production")
    with pytest.raises(TrackingSettingsError, match="is not set"):
        TrackingSettings.from_config(config)
