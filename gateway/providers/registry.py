"""The installed kinds, found through the entry-point group `auth_gateway.kinds`, and `Provider`: a
configured vendor account bound to its kind.

The four built-in kinds (and the TOP code exchange) are registered in this project's own
pyproject.toml through the same group as any plug-in; nothing here names one of them.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError
from gateway.providers.base import Credential, Inputs, SendContext, VendorRequest, VendorResponse
from gateway.providers.kind import Kind
from gateway.redaction import Redactor
from gateway.settings import ConfigError, ProviderSettings

ENTRY_POINT_GROUP = "auth_gateway.kinds"


class PluginError(ConfigError):
    """An installed plug-in cannot be used; the message names the package and its entry point.

    A ConfigError: the gateway cannot start (or reload) with it, and says so the same way."""


@dataclass(frozen=True, slots=True)
class InstalledKind:
    kind: Kind
    package: str  # the distribution that registered it, e.g. auth-gateway
    entry_point: str  # `name = module:attribute`, as the package declares it


def _describe(ep: importlib.metadata.EntryPoint) -> tuple[str, str]:
    package = ep.dist.name if ep.dist is not None else "(unknown package)"
    return package, f"{ep.name} = {ep.value}"


def _check(obj: object, package: str, where: str) -> Kind:
    """The loaded object, if it is a kind; PluginError naming what is missing otherwise."""
    missing = [
        name
        for name in (
            "kind",
            "protocol",
            "api",
            "input_model",
            "options_model",
            "samples",
            "dev_provider",
            "example_inputs",
            "build_request",
            "read_response",
            "settles",
        )
        if not hasattr(obj, name)
    ]
    if missing:
        raise PluginError(
            f"plug-in {package}: entry point {where!r} in group {ENTRY_POINT_GROUP} is not a kind "
            f"(it has no {', '.join(missing)}; see docs/plugins.md)"
        )
    kind: Any = obj
    if not (isinstance(kind.kind, str) and kind.kind.startswith(f"{kind.protocol.name}:")):
        raise PluginError(
            f"plug-in {package}: entry point {where!r}: kind {kind.kind!r} must be "
            f"'<protocol>:<vendor method>' with its protocol's name ({kind.protocol.name!r})"
        )
    if not (isinstance(kind.input_model, type) and issubclass(kind.input_model, Inputs)):
        raise PluginError(
            f"plug-in {package}: entry point {where!r}: input_model must subclass "
            "gateway.providers.base.Inputs"
        )
    return obj  # type: ignore[return-value]  # duck-typed against the Kind protocol above


@functools.cache
def installed_kinds() -> Mapping[str, InstalledKind]:
    """Every installed kind by name, loaded once; PluginError for a plug-in that cannot be used."""
    found: dict[str, InstalledKind] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        package, where = _describe(ep)
        try:
            obj = ep.load()
        except Exception as error:  # any import-time failure of someone else's code
            raise PluginError(
                f"plug-in {package}: entry point {where!r} in group {ENTRY_POINT_GROUP} cannot be "
                f"loaded: {type(error).__name__}: {error}"
            ) from error
        kind = _check(obj, package, where)
        if kind.kind in found:
            other = found[kind.kind]
            if other.entry_point == where and other.package == package:
                continue  # one distribution seen twice on sys.path (an editable install)
            raise PluginError(
                f"kind {kind.kind!r} is registered twice: by {other.package} ({other.entry_point})"
                f" and by {package} ({where})"
            )
        found[kind.kind] = InstalledKind(kind, package, where)
    return dict(sorted(found.items()))


def kind_named(name: str) -> Kind:
    """The installed kind `name`; KeyError when it is not installed."""
    return installed_kinds()[name].kind


@dataclass(frozen=True, slots=True)
class Provider:
    """A `<provider>` path segment: its settings, its kind and its (never printed) secret."""

    name: str
    settings: ProviderSettings
    operation: Kind
    secret: str = field(repr=False)
    # Knows this provider's secret: what the vendor says is redacted with it before it becomes an error.
    redactor: Redactor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "redactor", Redactor([self.secret]))  # frozen: set once, here

    @property
    def kind(self) -> str:
        return self.operation.kind

    @property
    def input_model(self) -> type[Inputs]:
        return self.operation.input_model

    def parse_inputs(self, raw: Mapping[str, Any]) -> Inputs:
        """Validated inputs; raises pydantic.ValidationError naming each bad field."""
        return self.operation.input_model.model_validate(raw)

    def identity(self, inputs: Inputs) -> dict[str, Any]:
        """The input fields that name whose credential this is (the cache key's material), as the
        input model declares them (`Inputs.identity_fields`), already normalised."""
        return {name: getattr(inputs, name) for name in inputs.identity_fields}

    def build_request(self, inputs: Inputs, ctx: SendContext) -> VendorRequest:
        return self.operation.build_request(inputs, self.settings, self.secret, ctx)

    def read_response(self, response: VendorResponse, now: float) -> Credential:
        """The vendor's credential, or the error it answered with — its words redacted (credential
        shapes, and this provider's own secret should the vendor echo it), so neither the caller nor the
        failure record the service keeps ever holds them."""
        try:
            return self.operation.read_response(response, self.settings, now)
        except GatewayError as error:
            error.redact(self.redactor.redact)  # the words were cut where they were read
            raise

    def settles(self, data: Mapping[str, Any]) -> bool:
        """Whether an answer ends a poll (the bind check's `bound`); True for one-shot calls."""
        return self.operation.settles(data)


def bind_providers(configured: Mapping[str, ProviderSettings]) -> dict[str, Provider]:
    """One `Provider` per configured entry; the secret is read once, here."""
    return {
        name: Provider(name, settings, kind_named(settings.kind), settings.secret())
        for name, settings in configured.items()
    }
