"""The tracking service's settings: one pydantic settings class, secrets from the environment.

`TrackingSettings.from_config(config)` is the usual way in: it takes the public values from
`company.tracking` (base URL, batch size, flush interval) and reads the secrets from the
environment variables that config names (`token_secret_env`, `fair_lead_api_key_env`), so
the signing key never lives in a YAML file. Fields can also be set directly from
`LEADFLOW_TRACKING_*` variables (e.g. `LEADFLOW_TRACKING_ENVIRONMENT=production`,
`LEADFLOW_TRACKING_BATCH_SIZE=200`), which win over the configuration.

Environment: `development` or `production`. When not given it is `development` only for a
tracking host that can never be public (localhost, `*.example`, `*.test`, loopback — the same
rule that lets `leadflow.messaging.links` use a per-machine random secret) and `production`
otherwise, so forgetting the variable never weakens a real deployment. Outside development
the settings refuse to exist with a missing, short (< 32 characters) or placeholder secret
("changeme", "secret", "xxxx", ...): a guessable key would let anyone forge click,
open and unsubscribe tokens.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadflow.errors import LeadflowError
from leadflow.messaging import links

MIN_SECRET_LENGTH = 32
# Values people paste from examples; compared case-insensitively after removing separators.
PLACEHOLDERS = frozenset(
    {
        "changeme",
        "changethis",
        "change",
        "secret",
        "secretkey",
        "password",
        "placeholder",
        "example",
        "todo",
        "test",
        "dev",
        "default",
        "none",
        "null",
        "yoursecret",
        "yoursecrethere",
        "insertsecrethere",
    }
)


class TrackingSettingsError(LeadflowError):
    """The tracking service cannot start with these settings."""


class TrackingSettings(BaseSettings):
    """Everything the tracking service needs to start (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_TRACKING_", extra="ignore", frozen=True)

    environment: Literal["development", "production"] | None = None
    base_url: str = "http://localhost:8765"
    secret: SecretStr | None = None
    fair_lead_api_key: SecretStr | None = None
    # None: LEADFLOW_WAREHOUSE_URL, else the embedded warehouse (leadflow.warehouse.engine).
    warehouse_url: str | None = None
    batch_size: int = Field(default=500, gt=0)
    flush_interval_seconds: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _check_secrets(self) -> TrackingSettings:
        if self.environment is None:
            development = links.is_development_host(self.base_url)
            object.__setattr__(self, "environment", "development" if development else "production")
        if self.environment == "development":
            return self
        _check_secret("the tracking token secret", self.secret)
        if self.fair_lead_api_key is not None:
            _check_secret("the fair-lead API key", self.fair_lead_api_key)
        return self

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> TrackingSettings:
        """Settings from `company.tracking` and the environment variables it names.

        In development without a secret in the environment, the per-machine secret of
        `leadflow.messaging.links` is used, so mails minted by the local dispatcher verify.
        """
        tracking = config.company.tracking
        # A LEADFLOW_TRACKING_* variable wins over the configuration (tuning one host).
        values: dict[str, Any] = {
            name: getattr(tracking, name)
            for name in ("base_url", "batch_size", "flush_interval_seconds")
            if f"LEADFLOW_TRACKING_{name.upper()}" not in os.environ
        }
        secret = os.environ.get(tracking.token_secret_env, "").strip()
        if secret:
            values["secret"] = secret
        api_key = os.environ.get(tracking.fair_lead_api_key_env, "").strip()
        if api_key:
            values["fair_lead_api_key"] = api_key
        values.update(overrides)
        try:
            settings = cls(**values)
        except ValueError as error:
            raise TrackingSettingsError(_first_message(error)) from None
        if settings.secret is None and settings.environment == "development":
            settings = settings.model_copy(
                update={"secret": SecretStr(links.tracking_secret(config))}
            )
        return settings

    def token_secret(self) -> str:
        """The key that verifies tracking tokens."""
        if self.secret is None:
            raise TrackingSettingsError(
                "no tracking token secret: set the environment variable named by "
                "company.tracking.token_secret_env"
            )
        return self.secret.get_secret_value()


def _check_secret(what: str, value: SecretStr | None) -> None:
    if value is None:
        raise ValueError(f"{what} is not set; production needs a long random value")
    text = value.get_secret_value().strip()
    if is_placeholder(text):
        raise ValueError(f"{what} is a placeholder; set a long random value in production")
    if len(text) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{what} is {len(text)} characters long; production needs at least "
            f"{MIN_SECRET_LENGTH} random characters"
        )


def is_placeholder(value: str) -> bool:
    """True for example values: known words, or one character repeated ("xxxxxxxx")."""
    squeezed = re.sub(r"[\s_\-.:]", "", value.lower())
    if not squeezed or len(set(squeezed)) == 1:
        return True
    return squeezed in PLACEHOLDERS or squeezed.strip("0123456789") in PLACEHOLDERS


def _first_message(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        messages = [str(item.get("msg", "")).removeprefix("Value error, ") for item in errors()]
        return "; ".join(message for message in messages if message)
    return str(error)
