"""The single-flight lease on a real Redis: renewed while held, released only by its owner, loss detected."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache.lease import Lease
from gateway.store import Announcement, Delete
from gateway.store.redis import RedisStore
from tests.store.ops import get, hand_back


async def taken(lease: Lease) -> bool:
    """Try the lease, reading nothing beside it."""
    acquired, _ = await lease.acquire_and_get(())
    return acquired


pytestmark = pytest.mark.redis


async def test_lease_is_renewed_while_the_call_runs(
    redis_store: RedisStore, key_prefix: str
) -> None:
    """A 0.3 s lease held for 1 s is never free for another owner, and is free right after release."""
    key = key_prefix + "lock"
    holder = Lease(redis_store, key, lease_s=0.3)
    assert await taken(holder)
    async with holder:
        for _ in range(10):
            await asyncio.sleep(0.1)
            assert not await taken(Lease(redis_store, key, 0.3))
    assert not holder.lost
    assert await taken(Lease(redis_store, key, 0.3))


async def test_a_lost_lease_is_detected_and_never_releases_the_new_owners_lock(
    redis_store: RedisStore, key_prefix: str
) -> None:
    """If the lock expires and another owner takes it, renewal notices, and exit leaves the new lock alone."""
    key = key_prefix + "lock"
    first = Lease(redis_store, key, lease_s=0.3)
    assert await taken(first)
    async with first:
        await redis_store.delete(
            Delete([key])
        )  # as if the lease had run out while this process was stalled
        second = Lease(redis_store, key, lease_s=5)
        assert await taken(second)
        await asyncio.sleep(0.25)  # past first's next renewal
        assert first.lost
    assert not await taken(Lease(redis_store, key, 5)), "second still holds it"
    assert await hand_back(redis_store, key, second.owner)


async def test_handing_back_with_the_answer_stops_renewal_and_frees_the_lock(
    redis_store: RedisStore, key_prefix: str
) -> None:
    """set_and_release writes the value and frees the lock at once; no renewal runs after it (a late
    one would find the lock gone and report the lease lost)."""
    key, value_key = key_prefix + "lock", key_prefix + "cred"
    holder = Lease(redis_store, key, lease_s=0.3)
    assert await taken(holder)
    await asyncio.sleep(0.15)  # one renewal (due every 0.1 s) has run
    await holder.set_and_release(
        value_key, b"answer", 5, announce=Announcement(key_prefix + "c", "m")
    )
    assert await get(redis_store, value_key) == b"answer"
    assert await taken(Lease(redis_store, key, 5)), "the lock was freed"
    await asyncio.sleep(0.25)  # past two more renewal times
    assert not holder.lost and not holder.held
