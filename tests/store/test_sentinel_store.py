"""SentinelStore: what only Sentinel does. (The contract suite runs on it too: test_store_contract.py.)

Failover tests start their own master, replica and sentinels (`start_redis_sentinel`), so the session's
set-up that the contract suite uses keeps its master.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from gateway.store import StoreUnavailable, Write
from gateway.store.connection import Connection
from gateway.store.sentinel import SentinelStore
from tests.redis_server import RedisSentinelProcesses, distinct_free_ports
from tests.store.ops import claim, get, hand_back, publish
from tests.store.test_store_contract import (
    LONG_S,
    assert_all_unavailable,
    eventually,
    next_message,
    rounds_until_a_cancel_is_ignored,
    subscribed,
)

StartRedisSentinel = Callable[..., RedisSentinelProcesses]

# How soon after the failover starts the store's writes must land on the new master. A killed master
# costs the sentinels' down-after time and an election. A handed-over one stays up, accepting writes, until
# the sentinels demote it some 10 s later; the store must stop writing to it well before (it asks the
# sentinels every second), so that bound is tighter.
FAILOVER_LIMIT_S = {"master-killed": 15.0, "sentinel-failover": 7.0}


async def works_end_to_end(store: SentinelStore, key: str) -> bool:
    """True when a write, a read, a lock round and a script call all succeed through `store`."""
    lock = (
        f"{key}:lock:{uuid4().hex}"  # a fresh lock each try: a failed try may leave its lock held
    )
    try:
        await store.write(Write(key, b"after-failover", LONG_S))
        return (
            await get(store, key) == b"after-failover"
            and await claim(store, lock, "owner-a", LONG_S)
            and await store.renew(lock, "owner-a", LONG_S)
            and await hand_back(store, lock, "owner-a")
        )
    except StoreUnavailable:
        return False


async def value_on_server(port: int, key: str, password: str | None = None) -> bytes | None:
    """Read `key` straight from the server on `port`, bypassing the sentinels."""
    raw = Redis(host="127.0.0.1", port=port, password=password)
    try:
        value: bytes | None = await raw.get(key)
        return value
    finally:
        await raw.aclose()


@pytest.mark.redis
@pytest.mark.parametrize("how", ["master-killed", "sentinel-failover"])
async def test_the_same_store_follows_the_master_through_a_failover(
    start_redis_sentinel: StartRedisSentinel, how: str
) -> None:
    """After the master is killed (or handed over with SENTINEL FAILOVER), the same SentinelStore works
    again within the bound, against the new master; values may be lost, availability is what counts.
    A subscription held through the failover ends with StoreUnavailable (so its owner subscribes
    again) instead of listening to the old master."""
    setup = start_redis_sentinel()
    store = SentinelStore.from_url(setup.url, Connection(pubsub_heartbeat_s=0.2))
    held = store.subscribe("held")
    try:
        assert await works_end_to_end(store, "before")
        async with subscribed(store, "channel") as subscription:
            await publish(store, "channel", "before")
            assert await next_message(subscription) == "before"
        assert await next_message(held) is None
        old_port = setup.master_port()

        started = time.monotonic()
        if how == "master-killed":
            setup.server_on(old_port).kill()
        else:
            sentinel = Redis(host="127.0.0.1", port=setup.sentinels[0].port)
            try:
                await sentinel.execute_command("SENTINEL", "FAILOVER", setup.service)
            finally:
                await sentinel.aclose()

        async def writes_reach_the_new_master() -> bool:
            new_port = setup.master_port()
            # Not just "works": an old master that is still up accepts writes until it is demoted.
            return (
                new_port != old_port
                and await works_end_to_end(store, "after")
                and await value_on_server(new_port, "after") == b"after-failover"
            )

        limit_s = FAILOVER_LIMIT_S[how]
        assert await eventually(writes_reach_the_new_master, limit_s), (
            f"the store's writes did not reach a new master within {limit_s} s; master was "
            f"{old_port}, now {setup.master_port()}; the sentinels' logs:\n"
            + "\n---\n".join(sentinel.log_tail()[-1200:] for sentinel in setup.sentinels)
        )
        elapsed = time.monotonic() - started
        assert await store.take_rate_slot("rate", 1.0, 1) == 0  # the script cache is per server
        async with subscribed(store, "channel") as subscription:
            await publish(store, "channel", "after")
            assert await next_message(subscription) == "after"
        with pytest.raises(StoreUnavailable):  # nothing is published on "held": no message comes
            await asyncio.wait_for(anext(held), 5.0)
        print(f"{how}: the store worked against the new master after {elapsed:.1f} s")
    finally:
        await held.aclose()
        await store.close()


@pytest.mark.redis
async def test_passwords_reach_the_master_and_the_sentinels(
    start_redis_sentinel: StartRedisSentinel,
) -> None:
    """The URL's password goes to master (and pub/sub), sentinel_password to the sentinels; a wrong one
    is StoreUnavailable, and no message repeats a password."""
    setup = start_redis_sentinel(password="master-secret", sentinel_password="sentinel-secret")
    store = SentinelStore.from_url(setup.url)
    assert "master-secret" in setup.url and "sentinel-secret" in setup.url
    wrong_master = SentinelStore.from_url(setup.url.replace("master-secret", "not-it"))
    wrong_sentinels = SentinelStore.from_url(setup.url.replace("sentinel-secret", "not-it"))
    try:
        await store.write(Write("k", b"v", LONG_S))
        assert await get(store, "k") == b"v"
        async with subscribed(store, "channel") as subscription:
            await publish(store, "channel", "authenticated")
            assert await next_message(subscription) == "authenticated"
        for wrong in (wrong_master, wrong_sentinels):
            with pytest.raises(StoreUnavailable) as raised:
                await get(wrong, "k")
            for secret in ("master-secret", "sentinel-secret", "not-it"):
                assert secret not in str(raised.value)
    finally:
        for opened in (store, wrong_master, wrong_sentinels):
            await opened.close()


@pytest.mark.redis
async def test_an_unknown_service_is_store_unavailable(redis_sentinel_url: str) -> None:
    """Sentinels that monitor no such service make every call StoreUnavailable, promptly."""
    store = SentinelStore.from_url(redis_sentinel_url.replace("/mymaster/", "/no-such-service/"))
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="MasterNotFoundError"):
            await get(store, "k")
        assert time.monotonic() - started < 2
    finally:
        await store.close()


async def test_with_no_sentinel_listening_every_call_is_store_unavailable() -> None:
    """With nothing on the sentinels' ports every SentinelStore method raises StoreUnavailable fast."""
    hosts = ",".join(f"127.0.0.1:{port}" for port in distinct_free_ports(3))
    store = SentinelStore.from_url(f"redis+sentinel://{hosts}/mymaster")
    try:
        await assert_all_unavailable(store)
    finally:
        await store.close()


@pytest.mark.redis
async def test_a_stopped_sentinel_is_passed_over(
    start_redis_sentinel: StartRedisSentinel,
) -> None:
    """With the first sentinel of the URL down, the store asks the next one."""
    setup = start_redis_sentinel()
    setup.sentinels[0].stop()
    store = SentinelStore.from_url(setup.url)
    try:
        await store.write(Write("k", b"v", LONG_S))
        assert await get(store, "k") == b"v"
    finally:
        await store.close()


@pytest.mark.redis
async def test_cancelling_a_task_that_uses_the_store_always_stops_it(
    redis_sentinel_url: str, key_prefix: str
) -> None:
    """A task looping over SentinelStore calls or reading a subscription stops when cancelled."""
    store = SentinelStore.from_url(redis_sentinel_url, Connection(pubsub_heartbeat_s=0.005))

    async def poll(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await get(store, f"{key_prefix}k")

    async def listen(stop: asyncio.Event) -> None:
        subscription = store.subscribe(f"{key_prefix}channel")
        while not stop.is_set():
            await anext(subscription)

    try:
        assert await rounds_until_a_cancel_is_ignored(poll, rounds=30) is None
        assert await rounds_until_a_cancel_is_ignored(listen, rounds=30) is None
    finally:
        await store.close()
