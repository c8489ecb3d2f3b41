"""The base of the store wrappers: every method forwards to the wrapped store through `_forward`, so a
wrapper declares only what it changes and a new store method is added here once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from gateway.store import CredentialStore, Delete, LeaseClaim, ReadResult, Write

T = TypeVar("T")


class ForwardingStore:
    """A `CredentialStore` that hands each call to `inner`; override `_forward` to wrap every call."""

    def __init__(self, inner: CredentialStore) -> None:
        self._inner = inner

    @property
    def inner(self) -> CredentialStore:
        """The wrapped store."""
        return self._inner

    async def _forward(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one call of the wrapped store; `operation` names it (read, write, …)."""
        return await call()

    async def read(self, keys: Sequence[str], *, claim: LeaseClaim | None = None) -> ReadResult:
        return await self._forward("read", lambda: self._inner.read(keys, claim=claim))

    async def write(self, request: Write) -> bool:
        return await self._forward("write", lambda: self._inner.write(request))

    async def delete(self, request: Delete) -> int:
        return await self._forward("delete", lambda: self._inner.delete(request))

    async def renew(self, key: str, owner: str, lease_s: float) -> bool:
        return await self._forward("renew", lambda: self._inner.renew(key, owner, lease_s))

    async def take_rate_slot(self, key: str, interval_s: float, burst: int) -> float:
        return await self._forward(
            "rate", lambda: self._inner.take_rate_slot(key, interval_s, burst)
        )

    def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        return self._inner.subscribe(channel)

    async def ping(self) -> None:
        await self._forward("ping", self._inner.ping)

    async def close(self) -> None:
        await self._inner.close()
