"""Encryption at rest: a store wrapper that seals values on the way in and opens them on the way out.

See gateway.encryption for the layout and the rotation rule. A value that does not open reads as absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import structlog

from gateway.encryption import EncryptionKey, open_sealed, seal
from gateway.store import CredentialStore, LeaseClaim, ReadResult, Write
from gateway.store.forwarding import ForwardingStore

log = structlog.get_logger("gateway.store")


class SealedStore(ForwardingStore):
    """A `CredentialStore` that seals values on the way in and opens them on the way out."""

    def __init__(self, inner: CredentialStore, keys: Sequence[EncryptionKey]) -> None:
        if not keys:
            raise ValueError("SealedStore needs at least one key")
        super().__init__(inner)
        self._keys = list(keys)

    async def read(self, keys: Sequence[str], *, claim: LeaseClaim | None = None) -> ReadResult:
        found = await self._inner.read(keys, claim=claim)
        opened = [self._open(key, value) for key, value in zip(keys, found.values, strict=True)]
        return ReadResult(opened, leased=found.leased)

    async def write(self, request: Write) -> bool:
        sealed = seal(self._keys[0], request.key, request.value)
        return await self._inner.write(replace(request, value=sealed))

    def _open(self, key: str, sealed: bytes | None) -> bytes | None:
        if sealed is None:
            return None
        plaintext = open_sealed(self._keys, key, sealed)
        if plaintext is None:
            log.warning("cache_entry_not_sealed_by_a_known_key")
        return plaintext
