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
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.encryption import parse_encryption_keys

PROVIDER_NAME = re.compile(r"^[a-z0-9-]+$")


class ConfigError(Exception):
    """The configuration cannot be used; the message names each key at fault."""


class RetrySettings(BaseModel):
    """Retries of transient vendor failures, with full-jitter exponential backoff, within a budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # 5 attempts: at 30 % transient failures, 1 - 0.3^5 = 99.76 % of logins succeed, ~1.43 calls each.
    max_attempts: Annotated[int, Field(ge=1, le=10)] = Field(
        5,
        description=(
            "Attempts per login, the first included; only transient failures (network, HTTP 5xx, "
            "the vendor's own 'unavailable' codes) are retried."
        ),
    )
    base_delay_s: Annotated[float, Field(ge=0, le=10)] = Field(
        0.1,
        description=(
            "Backoff before the first retry; each further retry doubles it, and the actual wait "
            "is drawn at random up to it (full jitter)."
        ),
    )
    max_delay_s: Annotated[float, Field(ge=0, le=60)] = Field(
        2.0, description="Cap on the backoff before one retry."
    )
    # Retries per first attempt over budget_window_s (per replica): a vendor that is down sees at
    # most (1 + budget_ratio) x the logins; 30 % transient faults need ~0.43, well inside 0.5.
    budget_ratio: Annotated[float, Field(ge=0, le=10)] = Field(
        0.5,
        description=(
            "Retries may add at most this share of the first attempts made over `budget_window_s`"
            " (per replica and provider): 0.5 lets a vendor that is down see at most 1.5 x the "
            "logins."
        ),
    )
    budget_min_retries: Annotated[int, Field(ge=0)] = Field(
        10,
        description=(
            "Retries always allowed per window whatever the ratio, so that at low traffic a "
            "single login keeps its retries."
        ),
    )
    budget_window_s: Annotated[float, Field(gt=0, le=600)] = Field(
        10.0,
        description=(
            "The sliding window over which first attempts and retries are counted for the budget."
        ),
    )


class BreakerSettings(BaseModel):
    """Per-provider circuit breaker over the vendor attempts (each retry counts), per replica.

    It opens when `consecutive_failures` attempts in a row failed — a dead vendor is cut off within
    that many attempts at any traffic — or when, among at least `min_calls` attempts in the last
    `window_s`, a share `failure_ratio` failed. The defaults stay closed under 30 % transient faults
    (twelve in a row has odds of 0.3^12, about 5e-7 per attempt)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: Annotated[float, Field(gt=0)] = Field(
        30.0, description="The sliding window of attempts the failure ratio is taken over."
    )
    min_calls: Annotated[int, Field(ge=1)] = Field(
        20, description="Attempts needed in the window before the ratio can open the breaker."
    )
    failure_ratio: Annotated[float, Field(gt=0, le=1)] = Field(
        0.8,
        description=(
            "Share of failed attempts in the window (at least `min_calls`) that opens the breaker."
        ),
    )
    consecutive_failures: Annotated[int, Field(ge=1)] | None = Field(
        12,
        description=(
            "Failed attempts in a row that open the breaker at any traffic (null: only the ratio "
            "opens it)."
        ),
    )
    open_s: Annotated[float, Field(gt=0)] = Field(
        15.0,
        description=(
            "How long an open breaker answers 503 vendor_circuit_open before it lets one probe "
            "call through."
        ),
    )


class LimitSettings(BaseModel):
    """Outbound limits that keep a vendor account under its quota (null: unlimited).

    On by default: one client's flood must not earn the app key a quota ban (TOP code 7) that every
    other client shares. Size `rate_per_s` a little under the vendor's quota for this app key (it is
    shared by every replica through Redis), and `max_concurrency` to the rate times the vendor's p99
    latency, doubled, divided by the replicas."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_per_s: Annotated[float, Field(gt=0)] | None = Field(
        50.0,
        description=(
            "Vendor calls per second for this provider, shared by every replica through a GCRA "
            "bucket in Redis (null: no rate limit)."
        ),
    )
    burst: Annotated[int, Field(ge=1)] = Field(
        50, description="Calls the rate bucket lets through at once after a quiet period."
    )
    max_concurrency: Annotated[int, Field(ge=1)] | None = Field(
        64,
        description="Vendor calls in flight at once for this provider, per replica (null: no cap).",
    )


class ProviderSettings(BaseModel):
    """One vendor account: which call, where, and with which app key and secret.

    A kind may take options of its own (its `options_model`, listed on its page under Kinds); they
    are given beside these keys (or under `options`) and validated by the kind, so a misspelt key is
    still an error naming it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(
        description=(
            "The vendor call this provider makes, `<protocol>:<vendor method>`: one of the "
            "installed kinds (`python -m gateway kinds` lists them)."
        ),
    )
    endpoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] = Field(
        description=(
            "The vendor's URL (for TOP the router, e.g. https://eco.taobao.com/router/rest)."
        ),
    )
    app_key: Annotated[str, Field(min_length=1)] = Field(
        description="The app key the vendor issued for this account."
    )
    app_secret: SecretStr | None = Field(
        None,
        description="The app secret, inline (give exactly one of app_secret and app_secret_file).",
    )
    app_secret_file: Path | None = Field(
        None,
        description=(
            "A file holding the app secret, e.g. a mounted Kubernetes Secret (re-read when it "
            "changes; surrounding whitespace is ignored)."
        ),
    )
    sign_method: Literal["md5", "hmac", "hmac-sha256"] = Field(
        "hmac-sha256",
        description=(
            "How TOP requests are signed (TOP kinds only; the vendor must have the same method "
            "configured for the app)."
        ),
    )
    simplify: bool = Field(
        False,
        description=(
            "Ask TOP for its simplified answer shape (simplify=true); both shapes are read either"
            " way."
        ),
    )
    token_ttl_s: Annotated[int, Field(gt=0)] = Field(
        7200,
        description=(
            "Lifetime given to a credential whose answer carries no expiry (the AliGenie login)."
        ),
    )
    timeout_s: Annotated[float, Field(gt=0, le=120)] = Field(
        5.0, description="One vendor attempt, connect included."
    )
    connect_timeout_s: Annotated[float, Field(gt=0, le=60)] = Field(
        2.0, description="The TCP and TLS connect of one attempt."
    )
    deadline_s: Annotated[float, Field(gt=0, le=300)] = Field(
        10.0,
        description=(
            "The whole request to this provider: every attempt, backoff and wait for an outbound "
            "slot."
        ),
    )
    retry: RetrySettings = Field(
        RetrySettings(), description="Retries of transient vendor failures (below)."
    )
    breaker: BreakerSettings = Field(
        BreakerSettings(), description="The provider's circuit breaker (below)."
    )
    limits: LimitSettings = Field(
        LimitSettings(), description="Outbound limits towards the vendor (below)."
    )
    quota_ban_default_s: Annotated[int, Field(ge=1)] = Field(
        60,
        description=(
            "How long a call-limited answer (TOP codes 4-7) bans the app key when the vendor's "
            "message gives no duration."
        ),
    )
    bind_wait_max_s: Annotated[float, Field(ge=0, le=120)] = Field(
        30.0,
        description=(
            "Cap on the bind check's `wait_s` input (how long the gateway may poll the vendor "
            "until bound)."
        ),
    )
    max_concurrent_polls: Annotated[int, Field(ge=1)] = Field(
        200,
        description=(
            "Bind checks with `wait_s` that may wait at once for this provider, per replica; 429 "
            "polls_limited beyond."
        ),
    )

    options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "The kind's own settings (its page under Kinds lists them); they may equally be given "
            "beside the common keys."
        ),
    )
    _options: Any = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _gather_options(cls, data: Any) -> Any:
        """Move the keys the kind declares as options under `options`; any other key stays, and an
        unknown one is refused with its own name."""
        from gateway.providers.registry import installed_kinds  # the registry imports this module

        if not isinstance(data, dict) or data.get("kind") not in installed_kinds():
            return data
        declared = installed_kinds()[data["kind"]].kind.options_model.model_fields
        given = {key: data[key] for key in data if key in declared and key not in cls.model_fields}
        if not given:
            return data
        rest = {key: value for key, value in data.items() if key not in given}
        options = rest.get("options")
        return {**rest, "options": {**given, **(options if isinstance(options, dict) else {})}}

    @field_validator("kind")
    @classmethod
    def _installed(cls, value: str) -> str:
        from gateway.providers.registry import installed_kinds  # the registry imports this module

        installed = installed_kinds()
        if value not in installed:
            raise ValueError(
                f"unknown kind {value!r}; installed kinds: {', '.join(installed)} "
                "(a plug-in adds more: see the docs' Plug-ins page)"
            )
        return value

    @model_validator(mode="after")
    def _kind_options(self) -> ProviderSettings:
        from gateway.providers.registry import kind_named

        try:
            options = kind_named(self.kind).options_model.model_validate(self.options)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in error.errors(include_input=False, include_url=False)
            )
            raise ValueError(f"options: {problems} (for kind {self.kind})") from None
        self._options = options
        return self

    @property
    def kind_options(self) -> Any:
        """The kind's own options, validated by its `options_model`."""
        return self._options

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
        if self.app_secret_file is None:  # _one_secret makes this unreachable
            raise ConfigError("a provider has neither app_secret nor app_secret_file")
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

    api_key_sha256: list[str] = Field(
        default_factory=list,
        description=(
            "The hex SHA-256 of the client's API key, or a list of them during a rotation (a single "
            "string is accepted; `python -m gateway hash-key` makes one)."
        ),
    )
    api_key_sha256_file: Path | None = Field(
        None,
        description=(
            "A file of further hashes, one per line (a mounted Secret); a running gateway "
            "re-reads it when it changes. Give this, `api_key_sha256`, or both."
        ),
    )
    providers: Annotated[list[str], Field(min_length=1)] = Field(
        description='The providers this client may use, by name, or ["*"] for every provider.'
    )
    rate_limit_per_s: Annotated[float, Field(gt=0)] | None = Field(
        None,
        description=(
            "Requests per second this client may make, per replica; 429 client_rate_limited "
            "beyond (null: no limit)."
        ),
    )
    rate_limit_burst: Annotated[int, Field(ge=1)] = Field(
        20, description="Requests the client's rate limit lets through at once."
    )
    # On by default so one client cannot spend the vendor quota all clients share; size it to the
    # client's peak of new logins per second per replica, with room.
    vendor_calls_per_s: Annotated[float, Field(gt=0)] | None = Field(
        20.0,
        description=(
            "Requests that need the vendor (misses, forced refreshes, each poll; hits are free) "
            "per second, per replica; 429 client_rate_limited beyond (null: no limit)."
        ),
    )
    vendor_calls_burst: Annotated[int, Field(ge=1)] = Field(
        40, description="Vendor-bound requests the client's vendor-call limit lets through at once."
    )
    max_concurrent_polls: Annotated[int, Field(ge=1)] = Field(
        20,
        description=(
            "Bind checks with `wait_s` this client may have waiting at once, per replica; 429 "
            "polls_limited beyond."
        ),
    )

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

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description=(
            "The credential store: redis://, rediss:// (TLS), unix://, "
            "redis+sentinel://host:port,…/<service>[/db], redis+cluster://host:port,…, or "
            "memory:// (one process only)."
        ),
    )
    host: str = Field("127.0.0.1", description="The address to listen on.")
    port: Annotated[int, Field(ge=0, le=65535)] = Field(
        8080, description="The port to listen on (0: any free port)."
    )
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9:_-]+$")] = Field(
        "gw", description="Namespace of every Redis key the gateway writes."
    )
    cache_key_secret: SecretStr | None = Field(
        None,
        description=(
            "HMAC key for the cache keys; when unset, a key is derived per provider from its app "
            "secret (so rotating that secret empties its cache)."
        ),
    )
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description=(
            '"<kid>:<base64 of 32 bytes>" AES-256-GCM keys for cached values at rest: the first '
            "seals, every one opens. In the environment: comma-separated."
        ),
    )
    redis_tls_ca_file: Path | None = Field(
        None, description="CA bundle to trust for rediss:// (default: the system's)."
    )
    redis_tls_cert_file: Path | None = Field(
        None, description="Client certificate for rediss://, when Redis requires one."
    )
    redis_tls_key_file: Path | None = Field(
        None, description="Private key of the client certificate."
    )
    failure_cooldown_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        30.0,
        description=(
            "How long a login the vendor rejected (422) is answered from memory for that "
            "identity, without calling the vendor (0: off)."
        ),
    )
    local_cache_max_entries: Annotated[int, Field(ge=0)] = Field(
        10_000,
        description="Credentials kept in the in-process hit cache in front of Redis (0: none).",
    )
    local_cache_max_age_s: Annotated[float, Field(gt=0)] = Field(
        300.0,
        description=(
            "The longest an entry is served from the in-process cache before Redis is asked again."
        ),
    )
    max_body_bytes: Annotated[int, Field(gt=0)] = Field(
        16 * 1024,
        description="Largest request body, after decompression; 413 body_too_large beyond.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        description=(
            "Level of the JSON log lines on stdout (debug adds the string to sign: personal data)."
        ),
    )
    workers: Annotated[int, Field(ge=1, le=64)] = Field(
        1, description="Processes serving the port together (SO_REUSEPORT), their metrics shared."
    )
    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        None,
        description=(
            "Also serve /metrics alone on this port (null: only on `port`); must differ from "
            "`port`."
        ),
    )
    drain_delay_s: Annotated[float, Field(ge=0, le=120)] = Field(
        2.0,
        description=(
            "On SIGTERM, how long the gateway answers unready but keeps serving, so load "
            "balancers stop sending first."
        ),
    )
    reload_interval_s: Annotated[float, Field(gt=0, le=300)] = Field(
        2.0,
        description=(
            "How often the config file and the files it names (app_secret_file, "
            "api_key_sha256_file) are checked for changes; a change, or SIGHUP, reloads them "
            "without a restart."
        ),
    )
    shutdown_timeout_s: Annotated[float, Field(gt=0, le=300)] = Field(
        10.0,
        description="On SIGTERM, how long in-flight requests may take to finish after the drain.",
    )
    # The HTTP listener's defences against slow and idle clients (gateway/api/server.py).
    header_timeout_s: Annotated[float, Field(gt=0, le=300)] = Field(
        10.0,
        description=(
            "The request line and headers must arrive within this, counted from the connection's "
            "opening (or, on keep-alive, the next request's first byte); else the connection is "
            "closed."
        ),
    )
    body_timeout_s: Annotated[float, Field(gt=0, le=300)] = Field(
        10.0,
        description=(
            "The whole body must arrive within this once the handler reads it; else 408 "
            "request_timeout."
        ),
    )
    # aiohttp's own keep-alive default is about an hour.
    keepalive_timeout_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        75.0, description="An idle keep-alive connection is closed after this."
    )
    max_connections: Annotated[int, Field(ge=0)] = Field(
        1024,
        description=(
            "Open connections per process and listener; one more is closed at once (0: no cap)."
        ),
    )
    readiness_requires_store: bool = Field(
        False,
        description=(
            "Fail /readyz while the store has been down for longer than `store_down_grace_s` "
            "(off: a Redis outage is not a gateway outage)."
        ),
    )
    store_down_grace_s: Annotated[float, Field(ge=0)] = Field(
        30.0,
        description=(
            "How long the store may be down before `readiness_requires_store` fails readiness."
        ),
    )
    providers: dict[str, ProviderSettings] = Field(
        default_factory=dict,
        description=(
            "The vendor accounts, by name: the `<provider>` of POST /auth/<provider> ([a-z0-9-]+)."
        ),
    )
    clients: dict[str, ClientSettings] = Field(
        default_factory=dict, description="The apps that may call the gateway, by name."
    )

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
