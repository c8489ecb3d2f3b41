"""Credential store: one small interface, backed by Redis or by in-process memory.

The store is a dumb key-value cache with per-key expiry plus an owner-checked lock; what the keys and
values mean is the service's business. Every backend raises `StoreUnavailable` (and nothing else) when it
cannot answer, so the service can decide to carry on without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol


class StoreUnavailable(Exception):
    """The backend did not answer (connection refused, timeout, cluster down, …)."""


class CredentialStore(Protocol):
    """What the service needs from a cache backend."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s` seconds (> 0, millisecond precision)."""

    async def delete(self, key: str) -> bool:
        """Forget `key`; True when something was removed."""

    async def acquire_lock(self, key: str, owner: str, lease_s: float) -> bool:
        """Take the lock `key` for `owner` if nobody holds it; True when taken."""

    async def acquire_lock_and_get(
        self,
        lock_key: str,
        owner: str,
        lease_s: float,
        keys: Sequence[str],
        *,
        only_if_first_missing: bool = False,
    ) -> tuple[bool, list[bytes | None]]:
        """`acquire_lock`, then `get` of each of `keys`, in one round trip where the backend allows.

        The keys are read after the attempt, so a value the lock's last holder wrote before releasing
        it is always seen. Keys outside the lock's Redis Cluster hash slot cost a round trip more.
        With `only_if_first_missing`, `keys[0]` is read first, and when it holds a value the lock is
        not tried: the answer is (False, [that value, None, …]) — a read that takes the lease only
        when there is nothing to read."""

    async def renew_lock(self, key: str, owner: str, lease_s: float) -> bool:
        """Extend the lease only if `owner` still holds it; False when the lease was lost."""

    async def release_lock(self, key: str, owner: str) -> bool:
        """Delete the lock only if `owner` holds it (compare-and-delete); True when released."""

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
        """`set`, then `release_lock`, then `publish`, in one round trip: what a lock holder does when
        its work is done. True when the lock was released (False: the lease had been lost)."""

    async def take_rate_slot(self, key: str, interval_s: float, burst: int) -> float:
        """GCRA token bucket at `key`: 0 when a slot was taken, else seconds to wait before retrying.

        One slot per `interval_s` on average, up to `burst` at once; atomic across all clients."""

    async def publish(self, channel: str, message: str) -> None:
        """Send `message` to every current subscriber of `channel` (all replicas)."""

    def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        """Messages published on `channel`: first yields None once the subscription is live, then each
        message as it arrives; raises StoreUnavailable when the connection is lost (subscribe again)."""

    async def ping(self) -> None:
        """Return when the backend answers; raise StoreUnavailable otherwise."""

    async def close(self) -> None:
        """Release connections."""
