"""The single-flight lease on a real Redis: renewed while held, released only by its owner, loss detected."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache.lease import Lease
from gateway.store.redis import RedisStore

pytestmark = pytest.mark.redis


async def test_lease_is_renewed_while_the_call_runs(
    redis_store: RedisStore, key_prefix: str
) -> None:
    """A 0.3 s lease held for 1 s is never free for another owner, and is free right after release."""
    key = key_prefix + "lock"
    holder = Lease(redis_store, key, lease_s=0.3)
    assert await holder.acquire()
    async with holder:
        for _ in range(10):
            await asyncio.sleep(0.1)
            assert not await Lease(redis_store, key, 0.3).acquire()
    assert not holder.lost
    assert await Lease(redis_store, key, 0.3).acquire()


async def test_a_lost_lease_is_detected_and_never_releases_the_new_owners_lock(
    redis_store: RedisStore, key_prefix: str
) -> None:
    """If the lock expires and another owner takes it, renewal notices, and exit leaves the new lock alone."""
    key = key_prefix + "lock"
    first = Lease(redis_store, key, lease_s=0.3)
    assert await first.acquire()
    async with first:
        await redis_store.delete(key)  # as if the lease had run out while this process was stalled
        second = Lease(redis_store, key, lease_s=5)
        assert await second.acquire()
        await asyncio.sleep(0.25)  # past first's next renewal
        assert first.lost
    assert not await Lease(redis_store, key, 5).acquire(), "second still holds it"
    assert await redis_store.release_lock(key, second.owner)
