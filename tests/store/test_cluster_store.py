"""ClusterStore: what only Redis Cluster does. (The contract suite runs on it too: test_store_contract.py.)

Tests that stop nodes start their own cluster (`start_redis_cluster`); the session's cluster, which the
contract suite uses, stays whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import redis
from redis.asyncio import Redis

from gateway.store import StoreUnavailable, Write
from gateway.store.cluster import ClusterStore
from gateway.store.connection import Connection
from tests.redis_server import RedisClusterProcesses, RedisServerProcess, distinct_free_ports
from tests.store.ops import claim, get, hand_back, publish
from tests.store.test_store_contract import (
    LONG_S,
    SECRET_VALUE,
    assert_all_unavailable,
    eventually,
    every_operation,
    next_message,
    rounds_until_a_cancel_is_ignored,
    subscribed,
)

StartRedisCluster = Callable[..., RedisClusterProcesses]


@asynccontextmanager
async def node_clients(
    cluster: RedisClusterProcesses, password: str | None = None
) -> AsyncIterator[dict[int, Redis]]:
    """A plain client on each node, by port: it sees only that node's keys (no redirection)."""
    clients = {
        node.port: Redis(host="127.0.0.1", port=node.port, password=password)
        for node in cluster.nodes
    }
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()


async def slot_owners(client: Redis) -> dict[int, int]:
    """Hash slot -> port of the master serving it, from CLUSTER SLOTS."""
    owners: dict[int, int] = {}
    for start, end, master, *_replicas in await client.execute_command("CLUSTER SLOTS"):
        owners.update(dict.fromkeys(range(int(start), int(end) + 1), int(master[1])))
    return owners


async def key_slot(client: Redis, key: str) -> int:
    return int(await client.execute_command("CLUSTER", "KEYSLOT", key))


@pytest.mark.redis
async def test_one_identity_shares_a_slot_while_identities_spread_over_the_nodes(
    redis_cluster: RedisClusterProcesses, cluster_store: ClusterStore, key_prefix: str
) -> None:
    """The gateway's keys for one identity (`…:v1:{<hash>}:cred|lock|fail`) hash to one slot, so value,
    lock and failure record live on one node and the lock scripts run there; many identities land on
    every node. The per-provider rate key is a key of its own."""
    identities = [hashlib.sha256(f"identity-{n}".encode()).hexdigest()[:40] for n in range(60)]
    nodes_used: set[int] = set()
    async with node_clients(redis_cluster) as clients:
        any_node = next(iter(clients.values()))
        owners = await slot_owners(any_node)
        for digest in identities:
            keys = {
                part: f"{key_prefix}v1:{{{digest}}}:{part}" for part in ("cred", "lock", "fail")
            }
            slots = {await key_slot(any_node, key) for key in keys.values()}
            assert len(slots) == 1, f"an identity's keys span slots {slots}"
            owner = owners[slots.pop()]
            nodes_used.add(owner)

            await cluster_store.write(Write(keys["cred"], b"token-" + digest.encode(), LONG_S))
            await cluster_store.write(Write(keys["fail"], b"cooldown", LONG_S))
            assert await claim(cluster_store, keys["lock"], "owner-a", LONG_S)
            # The node owning the slot holds all three, as written through the store.
            on_owner = clients[owner]
            assert await on_owner.get(keys["cred"]) == b"token-" + digest.encode()
            assert await on_owner.get(keys["fail"]) == b"cooldown"
            assert await on_owner.get(keys["lock"]) == b"owner-a"
            assert await cluster_store.renew(keys["lock"], "owner-a", LONG_S)
            assert await hand_back(cluster_store, keys["lock"], "owner-a")
            assert await on_owner.exists(keys["lock"]) == 0
    assert nodes_used == {node.port for node in redis_cluster.nodes}
    assert await cluster_store.take_rate_slot(f"{key_prefix}v1:rate:taobao", 1.0, 1) == 0


async def test_with_no_node_listening_every_call_is_store_unavailable() -> None:
    """With nothing on the startup nodes' ports every ClusterStore method raises StoreUnavailable fast."""
    hosts = ",".join(f"127.0.0.1:{port}" for port in distinct_free_ports(3))
    store = ClusterStore.from_url(f"redis+cluster://{hosts}")
    try:
        await assert_all_unavailable(store)
    finally:
        await store.close()


def cluster_state(node: RedisServerProcess) -> str | None:
    """The node's cluster_state (ok, fail), or None when it does not answer."""
    client = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=0.3)
    try:
        info = client.execute_command("CLUSTER INFO")
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()
    return str(info["cluster_state"]) if isinstance(info, dict) else None


@pytest.mark.redis
async def test_a_node_down_is_store_unavailable_and_the_store_recovers_when_it_returns(
    start_redis_cluster: StartRedisCluster,
) -> None:
    """With a master down (no replica to take over) the cluster refuses keys: every key operation and
    ping raise StoreUnavailable promptly, never quoting a value, and a subscription on that node ends.
    Once the node is back the same store works again, pub/sub included."""
    cluster = start_redis_cluster(node_timeout_ms=1000)  # the survivors notice within seconds
    store = ClusterStore.from_url(cluster.url, Connection(pubsub_heartbeat_s=0.5))
    victim, *survivors = cluster.nodes
    try:
        await store.write(Write("k", b"before", LONG_S))
        async with subscribed(store, "channel") as subscription:  # the first startup node: victim
            victim.stop()
            with pytest.raises(StoreUnavailable):
                await next_message(subscription)

        async def cluster_refuses_keys() -> bool:
            return all(cluster_state(node) == "fail" for node in survivors)

        assert await eventually(cluster_refuses_keys, 10.0)
        down = {
            name: call
            for name, call in every_operation(store).items()
            if name not in ("publish", "subscribe")
        }
        for name, call in down.items():
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as raised:
                await call()
            assert time.monotonic() - started < 5, name
            assert SECRET_VALUE.decode() not in str(raised.value), name
            assert raised.value.__cause__ is None, name

        victim.start()
        cluster.wait_until_ok()

        async def works_again() -> bool:
            try:
                await store.ping()
                await store.write(Write("k", b"after", LONG_S))
                return await get(store, "k") == b"after"
            except StoreUnavailable:
                return False

        assert await eventually(works_again, 10.0)
        for n in range(20):  # keys on every node, scripts included
            assert await claim(store, f"lock-{n}", "owner-a", LONG_S)
            assert await hand_back(store, f"lock-{n}", "owner-a")
        async with subscribed(store, "channel") as subscription:
            await publish(store, "channel", "after")
            assert await next_message(subscription) == "after"
    finally:
        await store.close()


@pytest.mark.redis
async def test_a_password_reaches_every_node_and_the_subscriber(
    start_redis_cluster: StartRedisCluster,
) -> None:
    """The URL's password authenticates the cluster client and the subscription's own connection; a
    wrong one is StoreUnavailable without the password in the message."""
    cluster = start_redis_cluster(password="cluster-secret")
    store = ClusterStore.from_url(cluster.url)
    wrong = ClusterStore.from_url(cluster.url.replace("cluster-secret", "not-it"))
    try:
        for n in range(10):
            await store.write(Write(f"k{n}", b"v", LONG_S))
            assert await get(store, f"k{n}") == b"v"
        async with subscribed(store, "channel") as subscription:
            await publish(store, "channel", "authenticated")
            assert await next_message(subscription) == "authenticated"
        for call in (get(wrong, "k0"), anext(wrong.subscribe("channel"))):
            with pytest.raises(StoreUnavailable) as raised:
                await call
            assert "cluster-secret" not in str(raised.value)
            assert "not-it" not in str(raised.value)
    finally:
        await store.close()
        await wrong.close()


@pytest.mark.redis
async def test_cancelling_a_task_that_uses_the_store_always_stops_it(
    redis_cluster_url: str, key_prefix: str
) -> None:
    """A task looping over ClusterStore calls or reading a subscription stops when cancelled."""
    store = ClusterStore.from_url(redis_cluster_url, Connection(pubsub_heartbeat_s=0.005))

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


def test_a_decoding_cluster_client_is_refused() -> None:
    """ClusterStore refuses node options that decode replies to str, since values are bytes."""
    with pytest.raises(ValueError, match="decode_responses"):
        ClusterStore([("127.0.0.1", 7000)], node_options={"decode_responses": True})
