"""A lock lease held while one replica calls the vendor for an identity.

The lease is renewed every third of its length while the call runs, so a slow vendor never outlives it;
it is released only by its owner (compare-and-delete in the store). If a renewal finds the lock taken
by someone else, the lease is marked lost: the call still completes and its answer is still used, and
the loss is counted, because another replica may now be calling the vendor too.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from types import TracebackType

import structlog

from gateway.store import CredentialStore, StoreUnavailable

log = structlog.get_logger("gateway.cache")


class Lease:
    def __init__(self, store: CredentialStore, key: str, lease_s: float) -> None:
        self._store = store
        self.key = key
        self.lease_s = lease_s
        self.owner = uuid.uuid4().hex
        self.lost = False
        self._renewal: asyncio.Task[None] | None = None

    async def acquire(self) -> bool:
        """True when taken; False when another owner holds it; StoreUnavailable passes through."""
        return await self._store.acquire_lock(self.key, self.owner, self.lease_s)

    async def __aenter__(self) -> Lease:
        self._renewal = asyncio.create_task(self._keep())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        if not self.lost:
            with contextlib.suppress(StoreUnavailable):
                await self._store.release_lock(self.key, self.owner)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                still_ours = await self._store.renew_lock(self.key, self.owner, self.lease_s)
            except StoreUnavailable:
                continue  # the lease may still be ours; try again at the next third
            if not still_ours:
                self.lost = True
                log.warning("lock_lease_lost")
                return
