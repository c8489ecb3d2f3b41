"""Encryption at rest: a store wrapper that seals values on the way in and opens them on the way out.

See gateway.encryption for the layout and the rotation rule. A value that does not open reads as absent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import structlog

from gateway.encryption import EncryptionKey, open_sealed, seal
from gateway.store import CredentialStore

log = structlog.get_logger("gateway.store")


class SealedStore:
    """A `CredentialStore` that seals values on the way in and opens them on the way out."""

    def __init__(self, inner: CredentialStore, keys: Sequence[EncryptionKey]) -> None:
        if not keys:
            raise ValueError("SealedStore needs at least one key")
        self._inner = inner
        self._keys = list(keys)

    async def get(self, key: str) -> bytes | None:
        return self._open(key, await self._inner.get(key))

    def _open(self, key: str, sealed: bytes | None) -> bytes | None:
        if sealed is None:
            return None
        plaintext = open_sealed(self._keys, key, sealed)
        if plaintext is None:
            log.warning("cache_entry_not_sealed_by_a_known_key")
        return plaintext

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._inner.set(key, seal(self._keys[0], key, value), ttl_s)

    async def delete(self, key: str) -> bool:
        return await self._inner.delete(key)

    async def acquire_lock(self, key: str, owner: str, lease_s: float) -> bool:
        return await self._inner.acquire_lock(key, owner, lease_s)

    async def acquire_lock_and_get(
        self,
        lock_key: str,
        owner: str,
        lease_s: float,
        keys: Sequence[str],
        *,
        only_if_first_missing: bool = False,
    ) -> tuple[bool, list[bytes | None]]:
        taken, values = await self._inner.acquire_lock_and_get(
            lock_key, owner, lease_s, keys, only_if_first_missing=only_if_first_missing
        )
        return taken, [self._open(key, value) for key, value in zip(keys, values, strict=True)]

    async def renew_lock(self, key: str, owner: str, lease_s: float) -> bool:
        return await self._inner.renew_lock(key, owner, lease_s)

    async def release_lock(self, key: str, owner: str) -> bool:
        return await self._inner.release_lock(key, owner)

    async def set_and_release_lock(
        self,
        key: str,
        value: bytes,
        ttl_s: float,
        *,
        lock_key: str,
        owner: str,
        channel: str,
        message: str,
    ) -> bool:
        return await self._inner.set_and_release_lock(
            key,
            seal(self._keys[0], key, value),
            ttl_s,
            lock_key=lock_key,
            owner=owner,
            channel=channel,
            message=message,
        )

    async def take_rate_slot(self, key: str, interval_s: float, burst: int) -> float:
        return await self._inner.take_rate_slot(key, interval_s, burst)

    async def publish(self, channel: str, message: str) -> None:
        await self._inner.publish(channel, message)

    def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        return self._inner.subscribe(channel)

    async def ping(self) -> None:
        await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()
