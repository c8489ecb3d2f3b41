"""The extension contract: what a *kind* (one vendor call) and a *protocol* (the layer under it) provide.

A kind is one Python object registered under the entry-point group `auth_gateway.kinds`
(gateway/providers/registry.py finds them; the built-in kinds are registered the same way, in this
project's pyproject.toml). Everything the gateway, the sandbox, dev mode and the docs know about a kind
comes from that object — see docs/plugins.md for the walk-through with the example plug-in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson
from pydantic import BaseModel, ConfigDict

from gateway.providers.base import Credential, Inputs, SendContext, VendorRequest, VendorResponse
from gateway.settings import ProviderSettings


class NoOptions(BaseModel):
    """The options of a kind that has none: any extra key in the provider's config is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Sample:
    """A documented vendor answer: the sandbox's default success and the docs' answer table."""

    description: str
    response: VendorResponse
    success: bool = False


def json_answer(
    body: Any, status: int = 200, content_type: str = "application/json"
) -> VendorResponse:
    """A vendor answer with a JSON body (bytes are sent as they are)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return VendorResponse(status, {"Content-Type": content_type}, raw)


@runtime_checkable
class SandboxResponder(Protocol):
    """A protocol's stand-in for its vendor, served by `python -m gateway.sandbox` and dev mode.

    `answer` runs after the sandbox recorded the request and applied transport faults; it checks the
    request exactly as the vendor would (signature included) and answers as the vendor does."""

    vendor: str  # the name used in recorded requests and fault targets, e.g. "wechat"
    http_method: str  # "GET" or "POST"
    path: str  # e.g. "/sns/jscode2session"

    def api_of(self, query: Mapping[str, str], body: bytes) -> str | None:
        """Which API (the kind's vendor method) a request calls; None when unreadable."""
        ...

    def answer(
        self,
        apps: Mapping[str, str],
        memory: dict[str, Any],
        query: Mapping[str, str],
        body: bytes,
        now: float,
    ) -> VendorResponse:
        """The vendor's answer. `apps` maps the app keys it knows to their secrets; `memory` is this
        vendor's own records in this sandbox (kept across requests, e.g. codes already used)."""
        ...


@dataclass(frozen=True, slots=True)
class ProtocolInfo:
    """A protocol: its name (the part of a kind before `:`) and, for plug-in protocols, the sandbox
    responder that stands in for its vendor (the built-in TOP and Tencent simulators live in
    gateway/sandbox/)."""

    name: str
    sandbox: SandboxResponder | None = None


@runtime_checkable
class Kind(Protocol):
    """One vendor call. Attributes are read once, at start; the methods run per request."""

    @property
    def kind(self) -> str:
        """`<protocol>:<vendor method>`, the value of a provider's `kind` setting."""
        ...

    @property
    def protocol(self) -> ProtocolInfo: ...

    @property
    def api(self) -> str:
        """The vendor's name for the call (TOP method, Tencent Action…): the sandbox routes by it."""
        ...

    @property
    def input_model(self) -> type[Inputs]:
        """The caller's JSON body; also names the identity fields (the cache key's material)."""
        ...

    @property
    def options_model(self) -> type[BaseModel]:
        """Kind-specific provider settings, given beside the common ones (NoOptions: none)."""
        ...

    @property
    def samples(self) -> Sequence[Sample]:
        """Documented answers: each success shape and each documented vendor error."""
        ...

    @property
    def dev_provider(self) -> str:
        """The provider name dev mode configures for this kind, e.g. `zebra-miniapp`."""
        ...

    @property
    def example_inputs(self) -> Mapping[str, Any]:
        """A valid body for dev mode, the docs and the OpenAPI examples."""
        ...

    def build_request(
        self, inputs: Inputs, settings: ProviderSettings, secret: str, ctx: SendContext
    ) -> VendorRequest:
        """The exact, signed vendor request."""
        ...

    def read_response(
        self, response: VendorResponse, settings: ProviderSettings, now: float
    ) -> Credential:
        """The credential (absolute expiry or None for `token_ttl_s`), or a GatewayError."""
        ...

    def settles(self, data: Mapping[str, Any]) -> bool:
        """Whether an answer ends a poll (inputs with `poll_wait_s`); True for one-shot calls."""
        ...


def always_settled(data: Mapping[str, Any]) -> bool:
    return True


Settles = Callable[[Mapping[str, Any]], bool]
