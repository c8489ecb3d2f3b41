"""Settings: environment variables with the `GATEWAY_` prefix over an optional YAML file.

Read once at start-up and passed down; secrets are `SecretStr` so they never show in a repr or a log.
A bad file fails start-up with `ConfigError`, whose message names every key at fault. One module per
part of the file: `service.py` (the top level), `provider.py` and `resilience.py` (a provider),
`client.py` (a calling app), `loading.py` (reading and checking it).
"""

from __future__ import annotations

from gateway.settings.client import HASH_EXPECTED, SHA256_HEX, ClientSettings
from gateway.settings.errors import PROVIDER_NAME, ConfigError
from gateway.settings.loading import load_settings
from gateway.settings.provider import ProviderSettings
from gateway.settings.resilience import BreakerSettings, LimitSettings, RetrySettings
from gateway.settings.service import Settings

__all__ = [
    "HASH_EXPECTED",
    "PROVIDER_NAME",
    "SHA256_HEX",
    "BreakerSettings",
    "ClientSettings",
    "ConfigError",
    "LimitSettings",
    "ProviderSettings",
    "RetrySettings",
    "Settings",
    "load_settings",
]
