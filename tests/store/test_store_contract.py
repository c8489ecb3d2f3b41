"""The credential store contract, run against every backend; then what only one backend does.

The contract suite runs on MemoryStore, on RedisStore over fakeredis (fast), on RedisStore over a real
Redis (the proof), on ClusterStore over a real 3-node Redis Cluster and on SentinelStore over a real
master/replica/sentinels set-up (both started by the session). Expiry is tested with short TTLs and
polling, never long sleeps. What only Cluster or Sentinel does is in test_cluster_store.py and
test_sentinel_store.py.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.store import (
    Announcement,
    CredentialStore,
    Delete,
    LeaseRef,
    StoreUnavailable,
    Write,
)
from gateway.store.connection import Connection
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore
from tests.redis_server import StartRedisServer, free_loopback_port
from tests.store.ops import claim, claim_and_read, get, hand_back, publish

SHORT_S = 0.2  # a TTL or lease meant to run out during the test
LONG_S = 30.0  # a TTL or lease meant to outlive the test
POLL_LIMIT_S = (
    3.0  # how long a short TTL may take to show as expired (Redis expires lazily + by sampling)
)

BACKEND_FIXTURES = {
    "memory": "memory_store",
    "fakeredis": "fake_store",
    "redis": "redis_store",
    "cluster": "cluster_store",
    "sentinel": "sentinel_store",
}


@pytest.fixture(
    params=[
        "memory",
        "fakeredis",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
        pytest.param("sentinel", marks=pytest.mark.redis),
    ]
)
def store(request: pytest.FixtureRequest) -> CredentialStore:
    """Each backend in turn, behind the one interface the service sees."""
    backend: CredentialStore = request.getfixturevalue(BACKEND_FIXTURES[request.param])
    return backend


async def eventually(
    condition: Callable[[], Awaitable[bool]], limit_s: float = POLL_LIMIT_S
) -> bool:
    """Poll `condition` every 20 ms until it holds (True) or `limit_s` passes (False)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.02)
    return await condition()


# --- values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"session-id-d2c5",
        "令牌".encode(),
        bytes(range(256)),  # every byte, including ones that are not valid UTF-8
        b"\xff\xfe\x00\x80" * 50_000,  # 200 kB of non-UTF-8
    ],
    ids=["empty", "ascii", "utf8", "all-bytes", "large-binary"],
)
async def test_set_then_get_returns_the_exact_bytes(
    store: CredentialStore, key_prefix: str, value: bytes
) -> None:
    """A stored value reads back byte for byte, an empty value included (it is not "absent")."""
    await store.write(Write(f"{key_prefix}k", value, LONG_S))
    assert await get(store, f"{key_prefix}k") == value


async def test_get_of_an_absent_key_is_none(store: CredentialStore, key_prefix: str) -> None:
    """Reading a key nobody wrote gives None."""
    assert await get(store, f"{key_prefix}never-written") is None


async def test_keys_are_independent(store: CredentialStore, key_prefix: str) -> None:
    """Writing or deleting one key leaves the others as they were."""
    await store.write(Write(f"{key_prefix}a", b"A", LONG_S))
    await store.write(Write(f"{key_prefix}b", b"B", LONG_S))
    await store.delete(Delete([f"{key_prefix}a"]))
    assert await get(store, f"{key_prefix}a") is None
    assert await get(store, f"{key_prefix}b") == b"B"


async def test_a_value_expires_after_its_ttl_while_a_longer_one_stays(
    store: CredentialStore, key_prefix: str
) -> None:
    """A short-TTL value reads as absent once its TTL passes; a long-TTL value written with it stays."""
    await store.write(Write(f"{key_prefix}short", b"s", SHORT_S))
    await store.write(Write(f"{key_prefix}long", b"l", LONG_S))
    assert await get(store, f"{key_prefix}short") == b"s"

    async def short_is_gone() -> bool:
        return await get(store, f"{key_prefix}short") is None

    assert await eventually(short_is_gone)
    # Seconds mistaken for milliseconds would have dropped this one too.
    assert await get(store, f"{key_prefix}long") == b"l"


async def test_a_sub_millisecond_ttl_still_stores_and_expires(
    store: CredentialStore, key_prefix: str
) -> None:
    """A positive TTL below one millisecond is accepted (rounded up to 1 ms) and expires at once."""
    await store.write(Write(f"{key_prefix}k", b"v", 0.0001))

    async def is_gone() -> bool:
        return await get(store, f"{key_prefix}k") is None

    assert await eventually(is_gone)


@pytest.mark.parametrize("ttl_s", [0.0, -1.0, math.nan, math.inf])
async def test_a_ttl_that_is_not_positive_and_finite_is_refused(
    store: CredentialStore, key_prefix: str, ttl_s: float
) -> None:
    """write and a lease claim raise ValueError for a zero, negative, NaN or infinite TTL and write nothing."""
    with pytest.raises(ValueError, match="positive finite"):
        await store.write(Write(f"{key_prefix}k", b"v", ttl_s))
    with pytest.raises(ValueError, match="positive finite"):
        await claim(store, f"{key_prefix}lock", "a", ttl_s)
    assert await get(store, f"{key_prefix}k") is None
    assert await claim(store, f"{key_prefix}lock", "b", LONG_S)


async def test_overwrite_replaces_both_value_and_ttl(
    store: CredentialStore, key_prefix: str
) -> None:
    """Setting a key again replaces its value and its TTL (a long TTL cut short expires)."""
    await store.write(Write(f"{key_prefix}k", b"old", LONG_S))
    await store.write(Write(f"{key_prefix}k", b"new", SHORT_S))
    assert await get(store, f"{key_prefix}k") == b"new"

    async def is_gone() -> bool:
        return await get(store, f"{key_prefix}k") is None

    assert await eventually(is_gone)


async def test_delete_says_whether_something_was_removed(
    store: CredentialStore, key_prefix: str
) -> None:
    """delete counts a present key (which is then absent) and not an absent one."""
    assert await store.delete(Delete([f"{key_prefix}k"])) == 0
    await store.write(Write(f"{key_prefix}k", b"v", LONG_S))
    assert await store.delete(Delete([f"{key_prefix}k"])) == 1
    assert await get(store, f"{key_prefix}k") is None
    assert await store.delete(Delete([f"{key_prefix}k"])) == 0


async def test_delete_of_an_expired_key_returns_false(
    store: CredentialStore, key_prefix: str
) -> None:
    """An expired key counts as absent for delete too."""
    await store.write(Write(f"{key_prefix}k", b"v", SHORT_S))

    async def is_gone() -> bool:
        return await get(store, f"{key_prefix}k") is None

    assert await eventually(is_gone)
    assert await store.delete(Delete([f"{key_prefix}k"])) == 0


async def test_ping_answers(store: CredentialStore) -> None:
    """ping returns when the backend is up."""
    await store.ping()


# --- locks ----------------------------------------------------------------------------------------


async def test_a_lease_is_exclusive_and_a_claim_is_idempotent_for_its_owner(
    store: CredentialStore, key_prefix: str
) -> None:
    """While one owner holds a lease nobody else can take it; the holder's own claim answers taken (and
    extends it), so a claim resent after its reply was lost reports the lease it took."""
    lock = f"{key_prefix}lock"
    assert await claim(store, lock, "owner-a", SHORT_S) is True
    assert await claim(store, lock, "owner-b", LONG_S) is False
    assert await claim(store, lock, "owner-a", LONG_S) is True
    await asyncio.sleep(SHORT_S * 2)  # past the first lease: the second claim extended it
    assert await claim(store, lock, "owner-b", LONG_S) is False
    assert await get(store, lock) == b"owner-a"


async def test_concurrent_acquires_have_exactly_one_winner(
    store: CredentialStore, key_prefix: str
) -> None:
    """Of many owners racing for the same free lock, exactly one gets it."""
    lock = f"{key_prefix}lock"
    results = await asyncio.gather(*(claim(store, lock, f"owner-{n}", LONG_S) for n in range(20)))
    assert results.count(True) == 1


async def test_a_lock_reads_as_a_key_holding_its_owner(
    store: CredentialStore, key_prefix: str
) -> None:
    """Locks and values share one key space: a held lock reads back as its owner's name."""
    lock = f"{key_prefix}lock"
    await claim(store, lock, "owner-ä", LONG_S)
    assert await get(store, lock) == "owner-ä".encode()


async def test_another_owner_can_neither_renew_nor_release(
    store: CredentialStore, key_prefix: str
) -> None:
    """renew and release by a non-holder return False and leave the holder's lock in place."""
    lock = f"{key_prefix}lock"
    await claim(store, lock, "owner-a", LONG_S)
    assert await store.renew(lock, "owner-b", LONG_S) is False
    assert await hand_back(store, lock, "owner-b") is False
    assert await claim(store, lock, "owner-b", LONG_S) is False
    assert await store.renew(lock, "owner-a", LONG_S) is True


async def test_nobody_can_renew_or_release_a_free_lock(
    store: CredentialStore, key_prefix: str
) -> None:
    """renew and release of a lock nobody holds return False and do not create it."""
    lock = f"{key_prefix}lock"
    assert await store.renew(lock, "owner-a", LONG_S) is False
    assert await hand_back(store, lock, "owner-a") is False
    assert await get(store, lock) is None


async def test_release_by_the_owner_frees_the_lock(store: CredentialStore, key_prefix: str) -> None:
    """After its owner releases a lock, another owner can take it, and a second release is False."""
    lock = f"{key_prefix}lock"
    await claim(store, lock, "owner-a", LONG_S)
    assert await hand_back(store, lock, "owner-a") is True
    assert await claim(store, lock, "owner-b", LONG_S) is True
    assert await hand_back(store, lock, "owner-a") is False


async def test_lease_expiry_frees_the_lock_and_the_old_owner_loses_it(
    store: CredentialStore, key_prefix: str
) -> None:
    """Once a lease runs out another owner can acquire, and the old owner can no longer renew or release."""
    lock = f"{key_prefix}lock"
    await claim(store, lock, "owner-a", SHORT_S)

    async def b_takes_it() -> bool:
        return await claim(store, lock, "owner-b", LONG_S)

    assert await eventually(b_takes_it)
    assert await store.renew(lock, "owner-a", LONG_S) is False
    assert await hand_back(store, lock, "owner-a") is False
    assert await get(store, lock) == b"owner-b"


async def test_renew_extends_the_lease(store: CredentialStore, key_prefix: str) -> None:
    """A renewed lease outlives its original expiry: another owner still cannot acquire after it."""
    lock = f"{key_prefix}lock"
    await claim(store, lock, "owner-a", SHORT_S)
    assert await store.renew(lock, "owner-a", LONG_S) is True
    await asyncio.sleep(SHORT_S * 2)  # past the original lease; a poll cannot prove something stays
    assert await claim(store, lock, "owner-b", LONG_S) is False


async def test_a_claim_takes_the_lease_and_reads_each_key(
    store: CredentialStore, key_prefix: str
) -> None:
    """One read takes a free lease and returns each key's value in order, None for an absent one; keys
    of one identity (one hash tag) and a key elsewhere (a provider-wide record) alike."""
    tag = f"{key_prefix}{{identity}}"
    lock, value, absent, elsewhere = f"{tag}:lock", f"{tag}:cred", f"{tag}:fail", f"{key_prefix}ban"
    await store.write(Write(value, b"\x00cached\xff", LONG_S))
    await store.write(Write(elsewhere, b"banned", LONG_S))
    taken, values = await claim_and_read(store, lock, "owner-a", LONG_S, [value, absent, elsewhere])
    assert (taken, values) == (True, [b"\x00cached\xff", None, b"banned"])
    assert await get(store, lock) == b"owner-a"


async def test_a_claim_reads_even_when_the_lease_is_taken(
    store: CredentialStore, key_prefix: str
) -> None:
    """A held lease answers not taken, leaves the holder in place, and still returns the values."""
    tag = f"{key_prefix}{{identity}}"
    lock, value = f"{tag}:lock", f"{tag}:cred"
    await claim(store, lock, "owner-a", LONG_S)
    await store.write(Write(value, b"written by owner-a", LONG_S))
    assert await claim_and_read(store, lock, "owner-b", LONG_S, [value]) == (
        False,
        [b"written by owner-a"],
    )
    assert await claim_and_read(store, lock, "owner-b", LONG_S, []) == (False, [])
    assert await get(store, lock) == b"owner-a"


async def test_concurrent_claims_have_exactly_one_winner(
    store: CredentialStore, key_prefix: str
) -> None:
    """Of many owners racing for the same free lease through a claiming read, exactly one gets it."""
    lock = f"{key_prefix}{{identity}}:lock"
    results = await asyncio.gather(
        *(claim_and_read(store, lock, f"owner-{n}", LONG_S, [lock]) for n in range(20))
    )
    assert [taken for taken, _ in results].count(True) == 1
    # The read comes after the attempt: every caller sees the winner's name in the lock.
    winner = next(f"owner-{n}".encode() for n, (taken, _) in enumerate(results) if taken)
    assert {values[0] for _, values in results} == {winner}


async def test_a_write_that_hands_the_lease_back_stores_frees_and_announces(
    store: CredentialStore, key_prefix: str
) -> None:
    """The holder's write stores the value with its TTL, frees the lease for the next owner and
    delivers the message to subscribers; it answers True."""
    tag = f"{key_prefix}{{identity}}"
    lock, value, channel = f"{tag}:lock", f"{tag}:cred", f"{key_prefix}channel"
    await claim(store, lock, "owner-a", LONG_S)
    async with subscribed(store, channel) as subscription:
        released = await store.write(
            Write(
                value,
                b"token",
                SHORT_S,
                release=LeaseRef(lock, "owner-a"),
                announce=Announcement(channel, "m1"),
            )
        )
        assert released is True
        assert await next_message(subscription) == "m1"
    assert await get(store, value) == b"token"
    assert await claim(store, lock, "owner-b", LONG_S) is True

    async def value_expired() -> bool:
        return await get(store, value) is None

    assert await eventually(value_expired)


async def test_a_write_by_a_lost_holder_stores_but_leaves_the_new_lease(
    store: CredentialStore, key_prefix: str
) -> None:
    """A holder whose lease passed to another owner still stores its answer and announces it, but
    the other owner's lock stays, and it answers False."""
    tag = f"{key_prefix}{{identity}}"
    lock, value, channel = f"{tag}:lock", f"{tag}:cred", f"{key_prefix}channel"
    await claim(store, lock, "owner-b", LONG_S)
    async with subscribed(store, channel) as subscription:
        released = await store.write(
            Write(
                value,
                b"late",
                LONG_S,
                release=LeaseRef(lock, "owner-a"),
                announce=Announcement(channel, "m2"),
            )
        )
        assert released is False
        assert await next_message(subscription) == "m2"
    assert await get(store, value) == b"late"
    assert await get(store, lock) == b"owner-b"


async def test_a_write_can_announce_without_a_lease(
    store: CredentialStore, key_prefix: str
) -> None:
    """A write with an announcement and no lease stores the value and delivers the message."""
    channel = f"{key_prefix}channel"
    async with subscribed(store, channel) as subscription:
        assert await store.write(
            Write(f"{key_prefix}k", b"v", LONG_S, announce=Announcement(channel, "w"))
        )
        assert await next_message(subscription) == "w"
    assert await get(store, f"{key_prefix}k") == b"v"


async def test_a_delete_forgets_several_keys_and_announces_it(
    store: CredentialStore, key_prefix: str
) -> None:
    """One delete removes an identity's entry and failure record, counts them and tells subscribers;
    keys of other hash slots go in the same call."""
    tag = f"{key_prefix}{{identity}}"
    keys = [f"{tag}:cred", f"{tag}:fail", f"{key_prefix}elsewhere"]
    for key in keys:
        await store.write(Write(key, b"v", LONG_S))
    channel = f"{key_prefix}channel"
    async with subscribed(store, channel) as subscription:
        removed = await store.delete(
            Delete([*keys, f"{tag}:absent"], announce=Announcement(channel, "d"))
        )
        assert removed == 3
        assert await next_message(subscription) == "d"
    assert [await get(store, key) for key in keys] == [None, None, None]


async def test_an_owner_checked_delete_removes_only_keys_holding_that_owner(
    store: CredentialStore, key_prefix: str
) -> None:
    """A lease handed back without an answer goes only if `owner` still holds it."""
    mine, theirs = f"{key_prefix}{{a}}:lock", f"{key_prefix}{{b}}:lock"
    assert await claim(store, mine, "owner-a", LONG_S)
    assert await claim(store, theirs, "owner-b", LONG_S)
    assert await store.delete(Delete([mine, theirs], owner="owner-a")) == 1
    assert await get(store, mine) is None
    assert await get(store, theirs) == b"owner-b"


async def test_claims_and_hand_backs_refuse_a_ttl_that_is_not_positive_and_finite(
    store: CredentialStore, key_prefix: str
) -> None:
    """A claiming read and a handing-back write check the lease and the TTL too."""
    tag = f"{key_prefix}{{identity}}"
    with pytest.raises(ValueError, match="TTL"):
        await claim_and_read(store, f"{tag}:lock", "a", 0, [f"{tag}:cred"])
    await claim(store, f"{tag}:lock", "a", LONG_S)
    with pytest.raises(ValueError, match="TTL"):
        await store.write(
            Write(
                f"{tag}:cred",
                b"v",
                math.inf,
                release=LeaseRef(f"{tag}:lock", "a"),
                announce=Announcement("c", "m"),
            )
        )
    assert await get(store, f"{tag}:cred") is None
    assert await get(store, f"{tag}:lock") == b"a"


# --- rate slots -----------------------------------------------------------------------------------


async def test_a_rate_bucket_grants_its_burst_then_asks_to_wait_one_interval(
    store: CredentialStore, key_prefix: str
) -> None:
    """`burst` slots are granted at once; the next caller is told to wait about one interval."""
    bucket = f"{key_prefix}rate"
    assert [await store.take_rate_slot(bucket, 10.0, 3) for _ in range(3)] == [0, 0, 0]
    wait = await store.take_rate_slot(bucket, 10.0, 3)
    assert 9.0 < wait <= 10.0
    assert await store.take_rate_slot(bucket, 10.0, 3) == pytest.approx(wait, abs=1.0)


async def test_rate_buckets_are_independent_and_refill(
    store: CredentialStore, key_prefix: str
) -> None:
    """An empty bucket leaves other buckets alone, and grants again once the wait it named is over."""
    bucket = f"{key_prefix}rate"
    assert await store.take_rate_slot(bucket, SHORT_S, 1) == 0
    wait = await store.take_rate_slot(bucket, SHORT_S, 1)
    assert 0 < wait <= SHORT_S
    assert await store.take_rate_slot(f"{key_prefix}other-rate", SHORT_S, 1) == 0

    async def granted() -> bool:
        return await store.take_rate_slot(bucket, SHORT_S, 1) == 0

    await asyncio.sleep(wait)
    assert await eventually(granted)


async def test_concurrent_callers_share_one_burst(store: CredentialStore, key_prefix: str) -> None:
    """Of many callers racing for a bucket, exactly `burst` get a slot (the update is atomic)."""
    waits = await asyncio.gather(
        *(store.take_rate_slot(f"{key_prefix}rate", LONG_S, 5) for _ in range(30))
    )
    assert sum(1 for wait in waits if wait == 0) == 5


# --- publish / subscribe --------------------------------------------------------------------------

Subscription = AsyncIterator[str | None]


async def next_message(subscription: Subscription) -> str | None:
    """The subscription's next item, failing the test instead of hanging when none comes."""
    return await asyncio.wait_for(anext(subscription), POLL_LIMIT_S)


@asynccontextmanager
async def subscribed(store: CredentialStore, channel: str) -> AsyncIterator[Subscription]:
    """A subscription that is live (its first item, None, was received), closed on exit."""
    subscription = store.subscribe(channel)
    try:
        assert await next_message(subscription) is None
        yield subscription
    finally:
        close = getattr(
            subscription, "aclose", None
        )  # async generators have it; the Protocol does not
        if close is not None:
            await close()


async def test_a_live_subscriber_receives_each_message_in_order(
    store: CredentialStore, key_prefix: str
) -> None:
    """Messages published once the subscription is live arrive in publishing order, text intact."""
    channel = f"{key_prefix}channel"
    async with subscribed(store, channel) as subscription:
        for message in ("first", "replica-1 v1:{abc}:cred", "ünïcødé 令牌"):
            await publish(store, channel, message)
        assert [await next_message(subscription) for _ in range(3)] == [
            "first",
            "replica-1 v1:{abc}:cred",
            "ünïcødé 令牌",
        ]


async def test_every_subscriber_receives_each_message(
    store: CredentialStore, key_prefix: str
) -> None:
    """Two subscribers of one channel (two replicas) both get every message."""
    channel = f"{key_prefix}channel"
    async with subscribed(store, channel) as one, subscribed(store, channel) as two:
        await publish(store, channel, "hello")
        assert await next_message(one) == "hello"
        assert await next_message(two) == "hello"


async def test_a_subscriber_gets_only_its_channel_and_only_later_messages(
    store: CredentialStore, key_prefix: str
) -> None:
    """Neither a message published before subscribing nor one on another channel is delivered."""
    channel = f"{key_prefix}channel"
    await publish(store, channel, "too early, and nobody listens")
    # A cluster relays a PUBLISH to its other nodes over the cluster bus, asynchronously: a subscriber
    # on another node that went live within milliseconds could still see it (seen once in CI).
    await asyncio.sleep(0.1)
    async with subscribed(store, channel) as subscription:
        await publish(store, f"{key_prefix}other", "elsewhere")
        await publish(store, channel, "mine")
        assert await next_message(subscription) == "mine"


# --- RedisStore: failures -------------------------------------------------------------------------

SECRET_VALUE = b"secret-token-must-not-leak"


def every_operation(store: CredentialStore) -> dict[str, Callable[[], Awaitable[object]]]:
    """One call of each store method (and each form of it) that talks to the server, by name."""
    key, lock = "{id}:cred", "{id}:lock"  # one hash slot, as the gateway's keys for an identity
    return {
        "read": lambda: get(store, key),
        "read many": lambda: store.read([key, "{id}:fail"]),
        "read claiming": lambda: claim_and_read(store, lock, "owner-a", LONG_S, [key]),
        "write": lambda: store.write(Write(key, SECRET_VALUE, LONG_S)),
        "write handing back": lambda: store.write(
            Write(
                key,
                SECRET_VALUE,
                LONG_S,
                release=LeaseRef(lock, "owner-a"),
                announce=Announcement("c", "m"),
            )
        ),
        "delete": lambda: store.delete(Delete([key])),
        "delete owner-checked": lambda: hand_back(store, lock, "owner-a"),
        "announce": lambda: publish(store, "channel", SECRET_VALUE.decode()),
        "renew": lambda: store.renew(lock, "owner-a", LONG_S),
        "take_rate_slot": lambda: store.take_rate_slot("rate", 1.0, 1),
        "subscribe": lambda: anext(store.subscribe("channel")),
        "ping": store.ping,
    }


async def assert_all_unavailable(store: CredentialStore) -> None:
    """Every operation raises StoreUnavailable promptly, and no message carries the value."""
    for name, call in every_operation(store).items():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as raised:
            await call()
        # Loose bound: refused connections fail at once; this only catches minutes-long retry loops.
        assert time.monotonic() - started < 5, name
        assert SECRET_VALUE.decode() not in str(raised.value), name
        assert raised.value.__cause__ is None, name


async def test_redis_store_with_nothing_listening_raises_store_unavailable() -> None:
    """With no server on the port, every RedisStore method raises StoreUnavailable fast; close still works."""
    store = RedisStore.from_url(f"redis://127.0.0.1:{free_loopback_port()}/0")
    try:
        await assert_all_unavailable(store)
    finally:
        await store.close()


@pytest.mark.redis
async def test_redis_store_survives_a_server_restart(start_redis_server: StartRedisServer) -> None:
    """The same RedisStore fails with StoreUnavailable while Redis is down and works again once it is back."""
    server = start_redis_server()
    store = RedisStore.from_url(server.url)
    try:
        await store.write(Write("k", b"before", LONG_S))
        assert await claim(store, "lock", "owner-a", LONG_S)
        assert await store.renew("lock", "owner-a", LONG_S)  # loads the renew script
        async with subscribed(store, "channel") as subscription:
            server.stop()
            with pytest.raises(StoreUnavailable):
                await next_message(subscription)
        await assert_all_unavailable(store)

        server.start()  # same port; no persistence, so the data is gone, and so is the script cache
        await store.ping()
        async with subscribed(store, "channel") as subscription:
            await publish(store, "channel", "after")
            assert await next_message(subscription) == "after"
        assert await get(store, "k") is None
        await store.write(Write("k", b"after", LONG_S))
        assert await get(store, "k") == b"after"
        assert await claim(store, "lock", "owner-a", LONG_S)
        assert await store.renew("lock", "owner-a", LONG_S)
        assert await hand_back(store, "lock", "owner-a")
    finally:
        await store.close()


@pytest.mark.redis
async def test_a_redis_restart_costs_each_pooled_connection_one_reconnect_and_no_call(
    start_redis_server: StartRedisServer,
) -> None:
    """Redis killed (SIGKILL) and restarted empty while the pool holds 20 idle connections: the next
    20 concurrent calls all succeed — each broken connection is replaced and its command sent once
    more — and the new server sees at most one connection per pooled one."""
    server = start_redis_server()
    store = RedisStore.from_url(server.url)
    try:
        started = asyncio.Event()

        async def hold_a_connection(n: int) -> None:
            await store.write(Write(f"k{n}", b"v", LONG_S))
            await started.wait()

        waiting = [asyncio.create_task(hold_a_connection(n)) for n in range(20)]
        await asyncio.sleep(0.2)
        started.set()
        await asyncio.gather(*waiting)
        server.kill()
        server.start()  # same port, empty

        async def call(n: int) -> object:
            try:
                return await store.write(Write(f"k{n}", b"after", LONG_S)) and await get(
                    store, f"k{n}"
                )
            except StoreUnavailable as error:
                return error

        outcomes = await asyncio.gather(*(call(n) for n in range(20)))
        assert outcomes == [b"after"] * 20
        raw = Redis.from_url(server.url)
        try:
            stats = await raw.info("stats")
        finally:
            await raw.aclose()
        # + the start-up check's PING and the client reading the stats
        assert stats["total_connections_received"] <= 20 + 2
    finally:
        await store.close()


@pytest.mark.redis
async def test_a_hung_redis_costs_one_socket_timeout(start_redis_server: StartRedisServer) -> None:
    """When Redis stops answering, calls and subscriptions give up with StoreUnavailable, each promptly."""
    server = start_redis_server()
    store = RedisStore.from_url(
        server.url, Connection(socket_timeout_s=0.2, pubsub_heartbeat_s=0.2)
    )
    try:
        await store.ping()  # a pooled connection exists before the server hangs
        async with subscribed(store, "channel") as subscription:
            server.pause()
            # An idle subscription notices through its heartbeat PING going unanswered.
            with pytest.raises(StoreUnavailable, match="PING"):
                await next_message(subscription)
        for name, call in every_operation(store).items():
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await call()
            # Several retries would stack timeouts; one call must not cost many of them.
            assert time.monotonic() - started < 1.5, name
        server.resume()
        await store.ping()
    finally:
        await store.close()


async def rounds_until_a_cancel_is_ignored(
    work: Callable[[asyncio.Event], Coroutine[Any, Any, None]], rounds: int
) -> int | None:
    """Run `work` as a task and cancel it at a random moment, `rounds` times.

    Returns the round in which the task ignored its cancellation (then stops it through the event), or
    None when every cancellation took effect.
    """
    for round_number in range(rounds):
        stop = asyncio.Event()
        task = asyncio.create_task(work(stop))
        await asyncio.sleep(random.uniform(0, 0.02))
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1.0)
        if not done:
            stop.set()
            await asyncio.wait({task}, timeout=2.0)
            return round_number
    return None


@pytest.mark.redis
async def test_cancelling_a_task_that_uses_the_store_always_stops_it(
    redis_url: str, key_prefix: str
) -> None:
    """A task looping over store calls or reading a subscription stops when cancelled, whatever the moment.

    Python 3.11's asyncio.wait_for, which redis-py uses to time socket writes, drops a cancellation that
    lands as the write completes; the store must not let such a task run on (shutdown would hang).
    """
    store = RedisStore.from_url(redis_url, Connection(pubsub_heartbeat_s=0.005))
    channel = f"{key_prefix}channel"

    async def poll(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await get(store, f"{key_prefix}k")

    async def listen(stop: asyncio.Event) -> None:
        # The heartbeat PINGs every 5 ms keep redis-py writing while the subscription idles.
        subscription = store.subscribe(channel)
        while not stop.is_set():
            await anext(subscription)

    try:
        assert await rounds_until_a_cancel_is_ignored(poll, rounds=50) is None
        assert await rounds_until_a_cancel_is_ignored(listen, rounds=50) is None
    finally:
        await store.close()


@pytest.mark.redis
async def test_a_server_error_reply_becomes_store_unavailable(
    redis_store: RedisStore, redis_url: str, key_prefix: str
) -> None:
    """A Redis error reply (WRONGTYPE on a key another program made a list) surfaces as StoreUnavailable."""
    key = f"{key_prefix}list"
    raw = Redis.from_url(redis_url)
    try:
        await raw.lpush(key, b"x")
    finally:
        await raw.aclose()
    with pytest.raises(StoreUnavailable, match="ResponseError"):
        await get(redis_store, key)
    with pytest.raises(StoreUnavailable, match="ResponseError"):
        await redis_store.renew(key, "owner-a", LONG_S)


@pytest.mark.redis
async def test_a_foreign_non_utf8_message_does_not_end_the_subscription(
    redis_store: RedisStore, redis_url: str, key_prefix: str
) -> None:
    """Bytes another program published that are not UTF-8 arrive with replacement characters."""
    channel = f"{key_prefix}channel"
    raw = Redis.from_url(redis_url)
    try:
        async with subscribed(redis_store, channel) as subscription:
            await raw.publish(channel, b"key \xff")
            await publish(redis_store, channel, "next")
            assert await next_message(subscription) == "key \ufffd"
            assert await next_message(subscription) == "next"
    finally:
        await raw.aclose()


async def test_a_decoding_redis_client_is_refused() -> None:
    """RedisStore refuses a client that decodes replies to str, since values are bytes."""
    client = Redis(decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RedisStore(client)
    finally:
        await client.aclose()


# --- MemoryStore: the size cap --------------------------------------------------------------------


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_store_evicts_the_oldest_write_beyond_its_cap() -> None:
    """Past `max_entries`, the least recently written key goes; a rewrite makes a key young again."""
    store = MemoryStore(max_entries=3)
    for key in ("a", "b", "c"):
        await store.write(Write(key, key.encode(), LONG_S))
    await store.write(Write("a", b"a2", LONG_S))
    await store.write(Write("d", b"d", LONG_S))
    assert len(store) == 3
    assert await get(store, "b") is None
    assert [await get(store, key) for key in ("a", "c", "d")] == [b"a2", b"c", b"d"]


async def test_memory_store_drops_expired_keys_before_live_ones() -> None:
    """At the cap, expired keys are purged first, so no live key is evicted while dead ones remain."""
    clock = FakeClock()
    store = MemoryStore(max_entries=3, clock=clock)
    await store.write(Write("old-but-expired", b"x", 1))
    await store.write(Write("b", b"b", LONG_S))
    await store.write(Write("c", b"c", LONG_S))
    clock.now += 2
    await store.write(Write("d", b"d", LONG_S))
    assert [await get(store, key) for key in ("b", "c", "d")] == [b"b", b"c", b"d"]


async def test_memory_store_does_not_hoard_expired_keys() -> None:
    """Expired keys are purged as writes come in, so the dict does not grow with dead entries."""
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for n in range(1000):
        await store.write(Write(f"k{n}", b"v", 1))
    clock.now += 2
    await store.write(Write("fresh", b"v", LONG_S))
    assert len(store) == 1


async def test_memory_store_rejects_a_cap_below_one() -> None:
    """A MemoryStore must be allowed at least one entry and one pending message per subscriber."""
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(max_entries=0)
    with pytest.raises(ValueError, match="max_pending_messages"):
        MemoryStore(max_pending_messages=0)


async def test_memory_store_cuts_off_a_subscriber_that_falls_behind() -> None:
    """A subscriber with more pending messages than allowed gets StoreUnavailable, and may resubscribe."""
    store = MemoryStore(max_pending_messages=2)
    async with subscribed(store, "channel") as slow:
        for n in range(3):
            await publish(store, "channel", f"m{n}")
        with pytest.raises(StoreUnavailable, match="fell behind"):
            await next_message(slow)
    async with subscribed(store, "channel") as again:
        await publish(store, "channel", "fresh")
        assert await next_message(again) == "fresh"


async def test_memory_store_close_ends_subscriptions() -> None:
    """Closing a MemoryStore ends its live subscriptions with StoreUnavailable instead of leaving them hanging."""
    store = MemoryStore()
    async with subscribed(store, "channel") as subscription:
        await store.close()
        with pytest.raises(StoreUnavailable, match="closed"):
            await next_message(subscription)
