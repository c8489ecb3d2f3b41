"""One vendor account (`providers.<name>`): its kind, endpoint, app key and secret, and its kind's options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

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

from gateway.settings.errors import ConfigError
from gateway.settings.resilience import BreakerSettings, LimitSettings, RetrySettings


class ProviderSettings(BaseModel):
    """One vendor account: which call, where, and with which app key and secret.

    A kind may take options of its own (its `options_model`, listed on its page under Kinds); they
    are given beside these keys (or under `options`) and validated by the kind, so a misspelt key is
    still an error naming it."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    kind: str
    """The vendor call this provider makes, `<protocol>:<vendor method>`: one of the installed kinds
    (`python -m gateway kinds` lists them)."""

    endpoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]
    """The vendor's URL (for TOP the router, e.g. https://eco.taobao.com/router/rest)."""

    app_key: Annotated[str, Field(min_length=1)]
    """The app key the vendor issued for this account."""

    app_secret: SecretStr | None = None
    """The app secret, inline (give exactly one of app_secret and app_secret_file)."""

    app_secret_file: Path | None = None
    """A file holding the app secret, e.g. a mounted Kubernetes Secret (re-read when it changes;
    surrounding whitespace is ignored)."""

    sign_method: Literal["md5", "hmac", "hmac-sha256"] = "hmac-sha256"
    """How TOP requests are signed (TOP kinds only; the vendor must have the same method configured
    for the app)."""

    simplify: bool = False
    """Ask TOP for its simplified answer shape (simplify=true); both shapes are read either way."""

    token_ttl_s: Annotated[int, Field(gt=0)] = 7200
    """Lifetime given to a credential whose answer carries no expiry (the AliGenie login)."""

    timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    """One vendor attempt, connect included."""

    connect_timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    """The TCP and TLS connect of one attempt."""

    deadline_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """The whole request to this provider: every attempt, backoff and wait for an outbound slot."""

    retry: RetrySettings = RetrySettings()
    """Retries of transient vendor failures (below)."""

    breaker: BreakerSettings = BreakerSettings()
    """The provider's circuit breaker (below)."""

    limits: LimitSettings = LimitSettings()
    """Outbound limits towards the vendor (below)."""

    quota_ban_default_s: Annotated[int, Field(ge=1)] = 60
    """How long a call-limited answer (TOP codes 4-7) bans the app key when the vendor's message
    gives no duration."""

    bind_wait_max_s: Annotated[float, Field(ge=0, le=120)] = 30.0
    """Cap on the bind check's `wait_s` input (how long the gateway may poll the vendor until
    bound)."""

    max_concurrent_polls: Annotated[int, Field(ge=1)] = 200
    """Bind checks with `wait_s` that may wait at once for this provider, per replica; 429
    polls_limited beyond."""

    options: dict[str, Any] = Field(default_factory=dict)
    """The kind's own settings (its page under Kinds lists them); they may equally be given beside
    the common keys."""

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
