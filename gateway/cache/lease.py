"""A lock lease held while one replica calls the vendor for an identity.

The lease is renewed every third of its length while the call runs, so a slow vendor never outlives it;
it is released only by its owner (compare-and-delete in the store). If a renewal finds the lock taken
by someone else, the lease is marked lost: the call still completes and its answer is still used, and
the loss is counted, because another replica may now be calling the vendor too.

A miss costs the store two round trips for the lease: taking it (with the reads the caller needs) and
handing it back (with the answer written and announced). Renewal is a timer, not a task, because almost
every vendor call ends long before the first renewal is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import Sequence
from types import TracebackType

import structlog

from gateway.store import (
    Announcement,
    CredentialStore,
    Delete,
    LeaseClaim,
    LeaseRef,
    StoreUnavailable,
    Write,
)

log = structlog.get_logger("gateway.cache")

# Owners must differ across replicas and leases, not be unguessable: a random per-process prefix and a
# counter cost a fraction of uuid4() per miss.
_OWNER_PREFIX = secrets.token_hex(8)
_OWNER_COUNTER = itertools.count(1)


class Lease:
    def __init__(self, store: CredentialStore, key: str, lease_s: float) -> None:
        self._store = store
        self.key = key
        self.lease_s = lease_s
        self.owner = f"{_OWNER_PREFIX}-{next(_OWNER_COUNTER)}"
        self.held = False
        self.lost = False
        self._timer: asyncio.TimerHandle | None = None
        self._renewal: asyncio.Task[None] | None = None

    async def acquire_and_get(self, keys: Sequence[str]) -> tuple[bool, list[bytes | None]]:
        """Try to take the lease and read `keys` after the attempt, in one store round trip."""
        found = await self._store.read(keys, claim=LeaseClaim(self.key, self.owner, self.lease_s))
        if found.leased:
            self.held = True
            self._schedule_renewal()
        return found.leased, found.values

    async def set_and_release(
        self, key: str, value: bytes, ttl_s: float, *, announce: Announcement
    ) -> None:
        """Write the answer, hand the lease back and announce the write, in one round trip."""
        self._stop_renewal()
        self.held = False
        await self._store.write(Write(key, value, ttl_s, LeaseRef(self.key, self.owner), announce))

    async def release(self) -> None:
        """Hand the lease back if still held (a lost lease is the new owner's: left alone)."""
        self._stop_renewal()
        held, self.held = self.held, False
        if held and not self.lost:
            with contextlib.suppress(StoreUnavailable):
                await self._store.delete(Delete([self.key], owner=self.owner))

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()

    def _schedule_renewal(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.lease_s / 3, self._renewal_due)

    def _renewal_due(self) -> None:
        self._timer = None
        self._renewal = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        try:
            still_ours = await self._store.renew(self.key, self.owner, self.lease_s)
        except StoreUnavailable:
            still_ours = True  # the lease may still be ours; try again at the next third
        if not still_ours:
            self.lost = True
            log.warning("lock_lease_lost")
            return
        if self.held:
            self._schedule_renewal()

    def _stop_renewal(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._renewal is not None and not self._renewal.done():
            self._renewal.cancel()  # an extension in flight is harmless: the release follows
        self._renewal = None
