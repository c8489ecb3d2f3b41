"""Store health: after a few failures in a row the backend is skipped for a while, then probed again.

Without this, every request during a Redis outage would wait out a socket timeout before falling back
to the vendor. With it, one request pays that cost per `retry_interval_s`; the rest fail over at once.
One slow answer under a burst is a blip, not an outage: the store is marked down only after
`failures_to_mark_down` consecutive failures.
The state (up or down, since when) feeds `/readyz` and the `gateway_store_up` metric.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import structlog

from gateway.store import CredentialStore, StoreUnavailable

log = structlog.get_logger("gateway.store")
T = TypeVar("T")


class GuardedStore:
    """A `CredentialStore` that remembers the backend's health and fails fast while it is down."""

    def __init__(
        self,
        inner: CredentialStore,
        *,
        retry_interval_s: float = 1.0,
        failures_to_mark_down: int = 3,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._inner = inner
        self._retry_interval_s = retry_interval_s
        self._failures_to_mark_down = failures_to_mark_down
        self._failures = 0
        self._clock = clock
        self._on_change = on_change
        self.up = True
        self.changed_at = clock()
        self._next_try = 0.0

    def seconds_in_state(self) -> float:
        return self._clock() - self.changed_at

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        if not self.up and self._clock() < self._next_try:
            raise StoreUnavailable("the store is marked down; it will be tried again shortly")
        try:
            result = await call()
        except StoreUnavailable:
            self._mark(up=False)
            raise
        self._mark(up=True)
        return result

    def _mark(self, *, up: bool) -> None:
        now = self._clock()
        self._failures = 0 if up else self._failures + 1
        if not up:
            if self.up and self._failures < self._failures_to_mark_down:
                return  # a blip
            self._next_try = now + self._retry_interval_s
        if up == self.up:
            return
        self.up = up
        self.changed_at = now
        log.warning("store_up" if up else "store_down")
        if self._on_change is not None:
            self._on_change(up)

    async def get(self, key: str) -> bytes | None:
        return await self._guard(lambda: self._inner.get(key))

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._guard(lambda: self._inner.set(key, value, ttl_s))

    async def delete(self, key: str) -> bool:
        return await self._guard(lambda: self._inner.delete(key))

    async def acquire_lock(self, key: str, owner: str, lease_s: float) -> bool:
        return await self._guard(lambda: self._inner.acquire_lock(key, owner, lease_s))

    async def acquire_lock_and_get(
        self,
        lock_key: str,
        owner: str,
        lease_s: float,
        keys: Sequence[str],
        *,
        only_if_first_missing: bool = False,
    ) -> tuple[bool, list[bytes | None]]:
        return await self._guard(
            lambda: self._inner.acquire_lock_and_get(
                lock_key, owner, lease_s, keys, only_if_first_missing=only_if_first_missing
            )
        )

    async def renew_lock(self, key: str, owner: str, lease_s: float) -> bool:
        return await self._guard(lambda: self._inner.renew_lock(key, owner, lease_s))

    async def release_lock(self, key: str, owner: str) -> bool:
        return await self._guard(lambda: self._inner.release_lock(key, owner))

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
        return await self._guard(
            lambda: self._inner.set_and_release_lock(
                key,
                value,
                ttl_s,
                lock_key=lock_key,
                owner=owner,
                channel=channel,
                message=message,
            )
        )

    async def take_rate_slot(self, key: str, interval_s: float, burst: int) -> float:
        return await self._guard(lambda: self._inner.take_rate_slot(key, interval_s, burst))

    async def publish(self, channel: str, message: str) -> None:
        await self._guard(lambda: self._inner.publish(channel, message))

    def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        return self._inner.subscribe(channel)

    async def ping(self) -> None:
        # A ping always reaches the backend: it is how /readyz and the probe loop learn it is back.
        try:
            await self._inner.ping()
        except StoreUnavailable:
            self._mark(up=False)
            raise
        self._mark(up=True)

    async def close(self) -> None:
        await self._inner.close()
