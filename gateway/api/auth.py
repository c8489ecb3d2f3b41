"""Caller authentication: `Authorization: Bearer <key>` checked against sha256 hashes from the config."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import MissingApiKey, ProviderForbidden, UnknownApiKey
from gateway.settings import ClientSettings


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    settings: ClientSettings

    def require(self, provider: str) -> None:
        if not self.settings.may_use(provider):
            raise ProviderForbidden(
                f"the key of {self.name!r} may not use provider {provider!r}", provider=provider
            )


class CallerAuth:
    """Finds the client an API key belongs to, comparing every configured hash in constant time."""

    def __init__(self, clients: Mapping[str, ClientSettings]) -> None:
        self._clients = [(name, bytes.fromhex(c.api_key_sha256), c) for name, c in clients.items()]

    def authenticate(self, authorization: str | None) -> Caller:
        if not authorization:
            raise MissingApiKey("send the API key as 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise MissingApiKey("send the API key as 'Authorization: Bearer <key>'")
        digest = hashlib.sha256(key.strip().encode("utf-8")).digest()
        found: Caller | None = None
        # No early exit: every hash is compared, so timing says nothing about which clients exist.
        for name, expected, settings in self._clients:
            if hmac.compare_digest(digest, expected) and found is None:
                found = Caller(name, settings)
        if found is None:
            raise UnknownApiKey("the API key is not known")
        return found
