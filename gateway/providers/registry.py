"""Every supported kind, and `Provider`: a configured vendor account bound to its operation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError
from gateway.providers.base import (
    Credential,
    Inputs,
    Operation,
    SendContext,
    VendorRequest,
    VendorResponse,
)
from gateway.providers.tencent_iot import WECHAT_LOGIN
from gateway.providers.top_calls import AI_CLOUD_LOGIN, BIND_CHECK, MINI_APP_AUTH
from gateway.redaction import Redactor
from gateway.settings import KINDS, ProviderSettings

OPERATIONS: Mapping[str, Operation] = {
    op.kind: op for op in (MINI_APP_AUTH, AI_CLOUD_LOGIN, BIND_CHECK, WECHAT_LOGIN)
}
assert set(OPERATIONS) == set(KINDS), "settings.KINDS and the registry must list the same kinds"


@dataclass(frozen=True, slots=True)
class Provider:
    """A `<provider>` path segment: its settings, its operation and its (never printed) secret."""

    name: str
    settings: ProviderSettings
    operation: Operation
    secret: str = field(repr=False)
    # Knows this provider's secret: what the vendor says is redacted with it before it becomes an error.
    redactor: Redactor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "redactor", Redactor([self.secret]))  # frozen: set once, here

    @property
    def kind(self) -> str:
        return self.operation.kind

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
            return self.operation.read_response(response, now)
        except GatewayError as error:
            error.redact(self.redactor.redact)  # the words were cut where they were read
            raise


def bind_providers(configured: Mapping[str, ProviderSettings]) -> dict[str, Provider]:
    """One `Provider` per configured entry; the secret is read once, here."""
    return {
        name: Provider(name, settings, OPERATIONS[settings.kind], settings.secret())
        for name, settings in configured.items()
    }
