"""`Settings`: everything the gateway reads at start-up, environment over the YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.encryption import parse_encryption_keys
from gateway.settings.client import ClientSettings
from gateway.settings.errors import PROVIDER_NAME
from gateway.settings.provider import ProviderSettings


class Settings(BaseSettings):
    """Everything the gateway reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    redis_url: str = "redis://127.0.0.1:6379/0"
    """The credential store: redis://, rediss:// (TLS), unix://,
    redis+sentinel://host:port,…/<service>[/db], redis+cluster://host:port,…, or memory:// (one
    process only)."""

    host: str = "127.0.0.1"
    """The address to listen on."""

    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    """The port to listen on (0: any free port)."""

    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9:_-]+$")] = "gw"
    """Namespace of every Redis key the gateway writes."""

    cache_key_secret: SecretStr | None = None
    """HMAC key for the cache keys; when unset, a key is derived per provider from its app secret
    (so rotating that secret empties its cache)."""

    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """\"<kid>:<base64 of 32 bytes>" AES-256-GCM keys for cached values at rest: the first seals,
    every one opens. In the environment: comma-separated."""

    redis_tls_ca_file: Path | None = None
    """CA bundle to trust for rediss:// (default: the system's)."""

    redis_tls_cert_file: Path | None = None
    """Client certificate for rediss://, when Redis requires one."""

    redis_tls_key_file: Path | None = None
    """Private key of the client certificate."""

    failure_cooldown_s: Annotated[float, Field(ge=0, le=3600)] = 30.0
    """How long a login the vendor rejected (422) is answered from memory for that identity, without
    calling the vendor (0: off)."""

    local_cache_max_entries: Annotated[int, Field(ge=0)] = 10_000
    """Credentials kept in the in-process hit cache in front of Redis (0: none)."""

    local_cache_max_age_s: Annotated[float, Field(gt=0)] = 300.0
    """The longest an entry is served from the in-process cache before Redis is asked again."""

    max_body_bytes: Annotated[int, Field(gt=0)] = 16 * 1024
    """Largest request body, after decompression; 413 body_too_large beyond."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Level of the JSON log lines on stdout (debug adds the string to sign: personal data)."""

    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Processes serving the port together (SO_REUSEPORT), their metrics shared."""

    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Also serve /metrics alone on this port (null: only on `port`); must differ from `port`."""

    drain_delay_s: Annotated[float, Field(ge=0, le=120)] = 2.0
    """On SIGTERM, how long the gateway answers unready but keeps serving, so load balancers stop
    sending first."""

    reload_interval_s: Annotated[float, Field(gt=0, le=300)] = 2.0
    """How often the config file and the files it names (app_secret_file, api_key_sha256_file) are
    checked for changes; a change, or SIGHUP, reloads them without a restart."""

    shutdown_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """On SIGTERM, how long in-flight requests may take to finish after the drain."""

    # The HTTP listener's defences against slow and idle clients (gateway/api/server.py).
    header_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """The request line and headers must arrive within this, counted from the connection's opening
    (or, on keep-alive, the next request's first byte); else the connection is closed."""

    body_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """The whole body must arrive within this once the handler reads it; else 408 request_timeout.
    """

    # aiohttp's own keep-alive default is about an hour.
    keepalive_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 75.0
    """An idle keep-alive connection is closed after this."""

    max_connections: Annotated[int, Field(ge=0)] = 1024
    """Open connections per process and listener; one more is closed at once (0: no cap)."""

    readiness_requires_store: bool = False
    """Fail /readyz while the store has been down for longer than `store_down_grace_s` (off: a Redis
    outage is not a gateway outage)."""

    store_down_grace_s: Annotated[float, Field(ge=0)] = 30.0
    """How long the store may be down before `readiness_requires_store` fails readiness."""

    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    """The vendor accounts, by name: the `<provider>` of POST /auth/<provider> ([a-z0-9-]+)."""

    clients: dict[str, ClientSettings] = Field(default_factory=dict)
    """The apps that may call the gateway, by name."""

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
        return (ShellProviderNames(settings_cls, env_settings), init_settings)


class ShellProviderNames(PydanticBaseSettingsSource):
    """The environment, with `_` in a provider's name read as `-`.

    A POSIX shell cannot export `GATEWAY_PROVIDERS__TENCENT-WECHAT__APP_SECRET` (only env(1) and
    Kubernetes can set such a name); provider names are [a-z0-9-]+, never `_`, so
    `GATEWAY_PROVIDERS__TENCENT_WECHAT__APP_SECRET` can only mean providers.tencent-wechat."""

    def __init__(self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._env.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = self._env()
        providers = values.get("providers")
        if not isinstance(providers, dict):
            return values
        named: dict[str, Any] = {}
        for name, given in providers.items():
            key = name.replace("_", "-") if isinstance(name, str) else name
            if isinstance(named.get(key), dict) and isinstance(given, dict):
                named[key] = {**named[key], **given}  # both spellings set: one provider
            else:
                named[key] = given
        return {**values, "providers": named}
