"""`load_settings`: the YAML file, then the environment, checked as a whole; `ConfigError` names each key at fault."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from gateway.settings.client import HASH_EXPECTED, SHA256_HEX
from gateway.settings.errors import ConfigError
from gateway.settings.service import Settings


def load_settings(config_path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (`config_path` or `GATEWAY_CONFIG`), then the environment, then `overrides`."""
    from gateway.providers.registry import installed_kinds  # the registry imports this module

    installed_kinds()  # a broken plug-in stops the start here, named, whatever the config says
    path = config_path or os.environ.get("GATEWAY_CONFIG")
    values: dict[str, Any] = _read_yaml(Path(path)) if path else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path)) from None
    _check_secret_files(settings)
    return settings


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return loaded


def _explain(exc: ValidationError, path: str | Path | None) -> str:
    where = f"config file {path}" if path else "configuration"
    lines = [f"{where} is invalid:"]
    for error in exc.errors(include_input=False, include_url=False):
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {key}: {error['msg']}")
    return "\n".join(lines)


def _check_secret_files(settings: Settings) -> None:
    for name, client in settings.clients.items():
        if client.api_key_sha256_file is None:
            continue
        where = f"clients.{name}.api_key_sha256_file: {client.api_key_sha256_file}"
        try:
            hashes = client.key_hashes()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read it: {exc.strerror}") from None
        if not hashes or not all(SHA256_HEX.match(h) for h in hashes):
            raise ConfigError(f"{where}: {HASH_EXPECTED}, one per line")
    for name, provider in settings.providers.items():
        if provider.app_secret_file is None:
            continue
        try:
            secret = provider.secret()
        except OSError as exc:
            raise ConfigError(
                f"providers.{name}.app_secret_file: cannot read {provider.app_secret_file}: "
                f"{exc.strerror}"
            ) from None
        if not secret:
            raise ConfigError(
                f"providers.{name}.app_secret_file: {provider.app_secret_file} is empty"
            )
