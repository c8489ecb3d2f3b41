"""Settings: environment variables with the `GATEWAY_` prefix over an optional YAML file.

Read once at start-up and passed down; secrets are `SecretStr` so they never show in a repr or a log.
A bad file fails start-up with `ConfigError`, whose message names every key at fault.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.encryption import parse_encryption_keys

KINDS = (
    "top:yunos.aiot.thirdminiapp.auth.get",
    "top:taobao.ailab.aicloud.top.auth.get",
    "top:alibaba.ailabs.iot.device.inside.checkbind.invoke",
    "tencent-iot:AppGetTokenByWeiXin",
)
Kind = Literal[
    "top:yunos.aiot.thirdminiapp.auth.get",
    "top:taobao.ailab.aicloud.top.auth.get",
    "top:alibaba.ailabs.iot.device.inside.checkbind.invoke",
    "tencent-iot:AppGetTokenByWeiXin",
]
PROVIDER_NAME = re.compile(r"^[a-z0-9-]+$")


class ConfigError(Exception):
    """The configuration cannot be used; the message names each key at fault."""


class RetrySettings(BaseModel):
    """Retries of transient vendor failures, with full-jitter exponential backoff, within a budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # 5 attempts: at 30 % transient failures, 1 - 0.3^5 = 99.76 % of logins succeed, ~1.43 calls each.
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 5
    base_delay_s: Annotated[float, Field(ge=0, le=10)] = 0.1
    max_delay_s: Annotated[float, Field(ge=0, le=60)] = 2.0
    # Retries per first attempt over budget_window_s (per replica): a vendor that is down sees at
    # most (1 + budget_ratio) x the logins; 30 % transient faults need ~0.43, well inside 0.5.
    budget_ratio: Annotated[float, Field(ge=0, le=10)] = 0.5
    # Retries always allowed per window, so that at low traffic a single login keeps its retries.
    budget_min_retries: Annotated[int, Field(ge=0)] = 10
    budget_window_s: Annotated[float, Field(gt=0, le=600)] = 10.0


class BreakerSettings(BaseModel):
    """Per-provider circuit breaker over the vendor attempts (each retry counts), per replica.

    It opens when `consecutive_failures` attempts in a row failed — a dead vendor is cut off within
    that many attempts at any traffic — or when, among at least `min_calls` attempts in the last
    `window_s`, a share `failure_ratio` failed. The defaults stay closed under 30 % transient faults
    (twelve in a row has odds of 0.3^12, about 5e-7 per attempt)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: Annotated[float, Field(gt=0)] = 30.0
    min_calls: Annotated[int, Field(ge=1)] = 20
    failure_ratio: Annotated[float, Field(gt=0, le=1)] = 0.8
    consecutive_failures: Annotated[int, Field(ge=1)] | None = 12
    open_s: Annotated[float, Field(gt=0)] = 15.0


class LimitSettings(BaseModel):
    """Outbound limits that keep a vendor account under its quota (null: unlimited).

    On by default: one client's flood must not earn the app key a quota ban (TOP code 7) that every
    other client shares. Size `rate_per_s` a little under the vendor's quota for this app key (it is
    shared by every replica through Redis), and `max_concurrency` to the rate times the vendor's p99
    latency, doubled, divided by the replicas."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_per_s: Annotated[float, Field(gt=0)] | None = 50.0  # shared by every replica (Redis)
    burst: Annotated[int, Field(ge=1)] = 50
    max_concurrency: Annotated[int, Field(ge=1)] | None = 64  # per replica


class ProviderSettings(BaseModel):
    """One vendor account: which call, where, and with which app key and secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    endpoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]
    app_key: Annotated[str, Field(min_length=1)]
    app_secret: SecretStr | None = None
    app_secret_file: Path | None = None
    sign_method: Literal["md5", "hmac", "hmac-sha256"] = "hmac-sha256"
    simplify: bool = False
    token_ttl_s: Annotated[int, Field(gt=0)] = 7200
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0  # one attempt, connect included
    connect_timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    deadline_s: Annotated[float, Field(gt=0, le=300)] = 10.0  # the whole request, retries included
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    limits: LimitSettings = LimitSettings()
    quota_ban_default_s: Annotated[int, Field(ge=1)] = 60  # when a call-limited answer gives none
    bind_wait_max_s: Annotated[float, Field(ge=0, le=120)] = 30.0  # cap on the bind check's wait_s
    # Bind checks with wait_s waiting at once for this provider (per replica); 429 beyond.
    max_concurrent_polls: Annotated[int, Field(ge=1)] = 200

    @model_validator(mode="after")
    def _one_secret(self) -> ProviderSettings:
        if (self.app_secret is None) == (self.app_secret_file is None):
            raise ValueError("give exactly one of app_secret and app_secret_file")
        if self.sign_method != "hmac-sha256" and not self.kind.startswith("top:"):
            raise ValueError("sign_method applies to TOP kinds only")
        return self

    def secret(self) -> str:
        """The app secret, read from the mounted file when configured that way (Kubernetes Secret)."""
        if self.app_secret is not None:
            return self.app_secret.get_secret_value()
        assert self.app_secret_file is not None  # guaranteed by _one_secret
        return self.app_secret_file.read_text(encoding="utf-8").strip()


SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
HASH_EXPECTED = (
    "expected the hex sha256 of the key, 64 characters "
    "(printf %s KEY | sha256sum, or python -m gateway hash-key)"
)


class ClientSettings(BaseModel):
    """One calling app: the sha256 of its API key(s) and the providers it may use.

    Several hashes may be listed at once, so a key is rotated without downtime: add the new key's hash,
    move the app to the new key, then remove the old hash. The hashes may also (or instead) be kept in
    `api_key_sha256_file`, one per line (a Secret volume): a running gateway re-reads it on change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # One hash, or a list during a rotation (a single string is accepted).
    api_key_sha256: list[str] = Field(default_factory=list)
    api_key_sha256_file: Path | None = None
    providers: Annotated[list[str], Field(min_length=1)]
    rate_limit_per_s: Annotated[float, Field(gt=0)] | None = None  # per replica; 429 beyond it
    rate_limit_burst: Annotated[int, Field(ge=1)] = 20
    # Requests that need the vendor (misses, forced refreshes, each poll), per replica; hits are free.
    # On by default so one client cannot spend the vendor quota all clients share; size it to the
    # client's peak of new logins per second per replica, with room (null: unlimited).
    vendor_calls_per_s: Annotated[float, Field(gt=0)] | None = 20.0
    vendor_calls_burst: Annotated[int, Field(ge=1)] = 40
    # Bind checks with wait_s this client may have waiting at once (per replica); 429 beyond.
    max_concurrent_polls: Annotated[int, Field(ge=1)] = 20

    @field_validator("api_key_sha256", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        values = [value] if isinstance(value, str) else value
        if isinstance(values, list):
            return [v.strip().lower() if isinstance(v, str) else v for v in values]
        return value

    @field_validator("api_key_sha256")
    @classmethod
    def _sha256_hex(cls, value: list[str]) -> list[str]:
        if not all(SHA256_HEX.match(v) for v in value):
            raise ValueError(HASH_EXPECTED)
        return value

    @model_validator(mode="after")
    def _some_key(self) -> ClientSettings:
        if not self.api_key_sha256 and self.api_key_sha256_file is None:
            raise ValueError("give api_key_sha256, api_key_sha256_file, or both")
        return self

    def key_hashes(self) -> list[str]:
        """The inline hashes and those of `api_key_sha256_file` (read now: it may have changed)."""
        if self.api_key_sha256_file is None:
            return self.api_key_sha256
        lines = self.api_key_sha256_file.read_text(encoding="utf-8").split()
        return self.api_key_sha256 + [line.strip().lower() for line in lines]

    def may_use(self, provider: str) -> bool:
        return "*" in self.providers or provider in self.providers


class Settings(BaseSettings):
    """Everything the gateway reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    redis_url: str = "redis://127.0.0.1:6379/0"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9:_-]+$")] = "gw"
    cache_key_secret: SecretStr | None = None
    # "<kid>:<base64 of 32 bytes>"; the first seals, all open. In the environment: comma-separated.
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    redis_tls_ca_file: Path | None = None
    redis_tls_cert_file: Path | None = None
    redis_tls_key_file: Path | None = None
    failure_cooldown_s: Annotated[float, Field(ge=0, le=3600)] = 30.0
    local_cache_max_entries: Annotated[int, Field(ge=0)] = 10_000
    local_cache_max_age_s: Annotated[float, Field(gt=0)] = 300.0
    max_body_bytes: Annotated[int, Field(gt=0)] = 16 * 1024
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    workers: Annotated[int, Field(ge=1, le=64)] = 1  # processes sharing the port (SO_REUSEPORT)
    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None  # also serve /metrics here
    drain_delay_s: Annotated[float, Field(ge=0, le=120)] = 2.0  # unready before closing, on SIGTERM
    # How often the config file and the files it names (app_secret_file, api_key_sha256_file) are
    # checked for changes; a change (or SIGHUP) reloads them without a restart.
    reload_interval_s: Annotated[float, Field(gt=0, le=300)] = 2.0
    shutdown_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0  # for in-flight requests
    # The HTTP listener's defences against slow and idle clients (gateway/api/server.py).
    # The request line and headers must be complete within this, counted from the connection's
    # opening (first request) or from the first byte of the next request (keep-alive); else closed.
    header_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    # The whole body must arrive within this once the handler reads it; else 408 request_timeout.
    body_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    # An idle keep-alive connection between requests is closed after this (aiohttp's own: ~1 h).
    keepalive_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 75.0
    # Open connections per process and listener; one more is closed at once. 0: no cap.
    max_connections: Annotated[int, Field(ge=0)] = 1024
    readiness_requires_store: bool = False  # see README "Health": off, a Redis outage is no outage
    store_down_grace_s: Annotated[float, Field(ge=0)] = 30.0  # hysteresis when it is on
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    clients: dict[str, ClientSettings] = Field(default_factory=dict)

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, value: dict[str, ProviderSettings]) -> dict[str, ProviderSettings]:
        for name in value:
            if not PROVIDER_NAME.match(name):
                raise ValueError(f"provider name {name!r} must match [a-z0-9-]+")
        return value

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _valid_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        parse_encryption_keys([k.get_secret_value() for k in value])  # raises naming the entry
        return value

    @model_validator(mode="after")
    def _metrics_port_is_its_own(self) -> Settings:
        # With --workers both sites bind with SO_REUSEPORT, so one port would not fail: the kernel
        # would hand half the logins to the metrics site, which answers them 404.
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError(f"metrics_port must differ from port (both are {self.port})")
        return self

    @model_validator(mode="after")
    def _clients_name_known_providers(self) -> Settings:
        for client_name, client in self.clients.items():
            for provider in client.providers:
                if provider != "*" and provider not in self.providers:
                    raise ValueError(
                        f"clients.{client_name}.providers names unknown provider {provider!r}"
                    )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment over explicit values (the YAML file, passed as init values) — the usual
        # twelve-factor order, so a Deployment can override one key of a shared ConfigMap.
        return (env_settings, init_settings)


def load_settings(config_path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (`config_path` or `GATEWAY_CONFIG`), then the environment, then `overrides`."""
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
