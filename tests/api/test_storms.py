"""No storms: two replicas over real Redis servers killed the way they fail in production, and a dead
vendor — each test counts the vendor calls it cost, not only the statuses.

Every Redis here is private to its test (a server, a Cluster, a Sentinel set-up started and killed by
it). Load loops are bounded in count and time and target loopback only.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.crc import key_slot

from gateway.api.keys import SERVICE
from gateway.sandbox.faults import HttpStatus
from tests.api.conftest import APIS, INPUTS, WECHAT, Keys, StartGateway, Vendors
from tests.redis_server import (
    RedisClusterProcesses,
    RedisSentinelProcesses,
    RedisServerProcess,
    StartRedisServer,
)

pytestmark = pytest.mark.redis


def auth(keys: Keys) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.full}"}


def body_for(user: str) -> dict[str, Any]:
    return {**INPUTS[WECHAT], "wx_open_id": user}


async def login(gateway: TestClient, keys: Keys, user: str) -> tuple[int, dict[str, Any]]:
    response = await gateway.post(f"/auth/{WECHAT}", json=body_for(user), headers=auth(keys))
    return response.status, await response.json()


async def logins(
    gateway: TestClient, keys: Keys, users: list[str]
) -> list[tuple[int, dict[str, Any]]]:
    """The users' logins, all at once."""
    return await asyncio.gather(*(login(gateway, keys, user) for user in users))


async def eventually(condition: Callable[[], Awaitable[bool]], limit_s: float) -> float:
    """Poll until `condition` holds; how long it took (fails the test past `limit_s`)."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < limit_s, f"not within {limit_s} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def both_live(*gateways: TestClient) -> None:
    """Wait until every replica's invalidation subscription is live."""

    async def live() -> bool:
        return all(g.app[SERVICE].invalidation.live for g in gateways)

    await eventually(live, 10)


def cred_key(gateway: TestClient, user: str) -> str:
    """Where the replica keeps `user`'s credential (the cache key the service computes)."""
    service = gateway.app[SERVICE]
    provider = service.provider(WECHAT)
    return service.cache_key(provider, provider.parse_inputs(body_for(user)))


async def test_a_dead_vendor_gets_at_most_one_and_a_half_attempts_per_login_and_both_breakers_open(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """40 concurrent logins over two replicas against a vendor answering 503: at most 60 vendor
    attempts (the retry budget and the per-attempt breaker), both breakers open, and no login takes
    long."""
    vendors.state.inject(APIS[WECHAT], HttpStatus(503), times=None)
    a, b = await start_gateway(), await start_gateway()
    started = time.monotonic()
    answers = await asyncio.gather(
        *(login((a, b)[n % 2], keys, f"dead-vendor-{n}") for n in range(40))
    )
    elapsed = time.monotonic() - started
    assert {status for status, _ in answers} <= {502, 503}
    assert vendors.calls(WECHAT) <= 60, vendors.calls(WECHAT)
    assert elapsed < 5, elapsed
    for replica in (a, b):
        metrics = await (await replica.get("/metrics")).text()
        assert f'gateway_breaker_state{{provider="{WECHAT}"}} 2.0' in metrics
    status, problem = await login(a, keys, "after-it-opened")
    assert (status, problem["code"]) == (503, "vendor_circuit_open")


async def test_an_empty_redis_restart_with_warm_pools_costs_no_vendor_call(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors, start_redis_server: StartRedisServer
) -> None:
    """Both replicas' pools grown by 20 concurrent clients; Redis SIGKILLed and restarted empty; 20 new
    logins on one replica are then served from the shared cache by the other: exactly 20 vendor calls,
    shared within 1.5 s of Redis accepting connections again."""
    server: RedisServerProcess = start_redis_server()
    a, b = await start_gateway(redis=server.url), await start_gateway(redis=server.url)
    await both_live(a, b)
    warm = [f"warm-{n}" for n in range(20)]
    for replica in (a, b):
        assert {status for status, _ in await logins(replica, keys, warm)} == {200}
    before = vendors.calls(WECHAT)
    assert before == 20

    server.kill()
    server.start()  # returns once the empty server answers PING
    back_at = time.monotonic()
    fresh = [f"fresh-{n}" for n in range(20)]
    on_a = await logins(a, keys, fresh)
    assert [status for status, _ in on_a] == [200] * 20
    assert vendors.calls(WECHAT) - before == 20

    on_b = await logins(b, keys, fresh)
    shared_after = time.monotonic() - back_at
    assert [(status, body["cached"]) for status, body in on_b] == [(200, True)] * 20
    assert [body["token"] for _, body in on_b] == [body["token"] for _, body in on_a]
    assert vendors.calls(WECHAT) - before == 20, "no login went to the vendor twice"
    assert shared_after < 1.5, shared_after


async def test_after_an_empty_restart_concurrent_misses_on_both_replicas_make_one_call_each(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors, start_redis_server: StartRedisServer
) -> None:
    """Once an emptied Redis is back, the first replica to miss takes each identity's lease and the
    other waits for its answer: 10 identities asked on both replicas at once cost 10 vendor calls."""
    vendors.state.latency_s = 0.2  # long enough for the other replica to find the lease taken
    server: RedisServerProcess = start_redis_server()
    a, b = await start_gateway(redis=server.url), await start_gateway(redis=server.url)
    await both_live(a, b)
    await logins(a, keys, [f"warm-{n}" for n in range(10)])
    server.kill()
    server.start()
    before = vendors.calls(WECHAT)
    users = [f"cold-{n}" for n in range(10)]
    on_a, on_b = await asyncio.gather(logins(a, keys, users), logins(b, keys, users))
    assert {status for status, _ in on_a + on_b} == {200}
    assert [x["token"] for _, x in on_a] == [y["token"] for _, y in on_b]
    assert vendors.calls(WECHAT) - before == len(users)


async def test_with_the_store_down_concurrent_misses_of_one_identity_make_one_call(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors, start_redis_server: StartRedisServer
) -> None:
    """Redis killed: 20 concurrent requests for one identity on one replica share one vendor call
    (the in-process single flight holds without the store), and the store shows down."""
    vendors.state.latency_s = 0.2
    server: RedisServerProcess = start_redis_server()
    gateway = await start_gateway(redis=server.url)
    await both_live(gateway)
    server.kill()
    answers = await logins(gateway, keys, ["one-identity"] * 20)
    assert {status for status, _ in answers} == {200}
    assert len({body["token"] for _, body in answers}) == 1
    assert vendors.calls(WECHAT) == 1
    metrics = await (await gateway.get("/metrics")).text()
    assert 'gateway_store_errors_total{operation="read",reason="failed"}' in metrics


async def test_redis_killed_and_restarted_empty_under_20_clients_on_two_replicas(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors, start_redis_server: StartRedisServer
) -> None:
    """20 clients loop over 20 identities on two replicas while Redis is SIGKILLed and restarted
    empty: every answer is 200 and each identity logged in exactly once (the replicas' own copies
    cover the outage); identities first seen after the restart are shared again, once each."""
    server: RedisServerProcess = start_redis_server()
    a, b = await start_gateway(redis=server.url), await start_gateway(redis=server.url)
    await both_live(a, b)
    statuses: Counter[int] = Counter()
    users = [f"user-{n}" for n in range(20)]

    async def client(number: int) -> None:
        replica = (a, b)[number % 2]
        deadline = time.monotonic() + 3.0
        sent = 0
        while time.monotonic() < deadline and sent < 400:  # bounded in time and count
            status, _ = await login(replica, keys, users[(number + sent) % len(users)])
            statuses[status] += 1
            sent += 1

    async def outage() -> None:
        await asyncio.sleep(0.8)
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(0.7)
        await asyncio.to_thread(server.start)

    await asyncio.gather(outage(), *(client(n) for n in range(20)))
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) > 200
    assert vendors.calls(WECHAT) == len(users), "each identity logged in once, no storm"

    newcomers = [f"newcomer-{n}" for n in range(5)]
    await logins(a, keys, newcomers)
    answers = await logins(b, keys, newcomers)
    assert all(body["cached"] for _, body in answers)
    assert vendors.calls(WECHAT) == len(users) + len(newcomers)


async def slot_owners(node: RedisServerProcess) -> dict[int, int]:
    """Hash slot -> port of the primary serving it, as `node` sees the cluster."""
    client = Redis(host="127.0.0.1", port=node.port)
    try:
        reply = await client.execute_command("CLUSTER SLOTS")
    finally:
        await client.aclose()
    owners: dict[int, int] = {}
    for first, last, primary, *_ in reply:
        owners.update(dict.fromkeys(range(int(first), int(last) + 1), int(primary[1])))
    return owners


async def test_a_cluster_missing_a_primary_keeps_sharing_the_healthy_slots(
    start_gateway: StartGateway,
    keys: Keys,
    vendors: Vendors,
    start_redis_cluster: Callable[..., RedisClusterProcesses],
) -> None:
    """With the primary of slot 0 killed (no replica; the cluster keeps serving the rest), logins on
    one replica whose keys live on healthy slots are served from the cache by the other; only those
    on the dead node's slots cost a second vendor call. Once it is back, its keys are shared too."""
    cluster = start_redis_cluster(full_coverage=False, node_timeout_ms=1000)
    owners = await slot_owners(cluster.nodes[0])
    victim = next(n for n in cluster.nodes if n.port == owners[0])
    a, b = await start_gateway(redis=cluster.url), await start_gateway(redis=cluster.url)
    await both_live(a, b)
    victim.kill()

    users = [f"cluster-user-{n}" for n in range(30)]
    on_dead_node = {u for u in users if owners[key_slot(cred_key(a, u).encode())] == victim.port}
    assert 0 < len(on_dead_node) < len(users)
    first = await logins(a, keys, users)
    second = await logins(b, keys, users)
    assert {status for status, _ in first + second} == {200}
    for user, (_, answer) in zip(users, second, strict=True):
        assert answer["cached"] is (user not in on_dead_node), user
    assert vendors.calls(WECHAT) == len(users) + len(on_dead_node)
    ready = await (await b.get("/readyz")).json()
    assert ready["status"] == "ready" and ready["store"] == "degraded", ready

    victim.start()
    candidates = (f"after-return-{n}" for n in range(100_000))

    async def shared_again() -> bool:
        """A new login whose key lives on the returned node is a cache hit on the other replica."""
        user = next(
            u for u in candidates if owners[key_slot(cred_key(a, u).encode())] == victim.port
        )
        await login(a, keys, user)
        _, on_b = await login(b, keys, user)
        return on_b["cached"] is True

    await eventually(shared_again, 10)

    async def ready_says_up() -> bool:
        return (await (await b.get("/readyz")).json())["store"] == "up"

    await eventually(ready_says_up, 5)


async def test_a_primary_failover_under_load_keeps_every_answer_200_and_shares_within_a_second(
    start_gateway: StartGateway,
    keys: Keys,
    vendors: Vendors,
    start_redis_cluster: Callable[..., RedisClusterProcesses],
) -> None:
    """A 6-node Cluster (3 primaries with a replica each) loses a primary under load from two
    replicas: no answer is other than 200, and within a second of the promotion logins whose keys
    moved are shared across replicas again."""
    cluster = start_redis_cluster(replicas=1, node_timeout_ms=1000)
    owners = await slot_owners(cluster.nodes[0])
    victim_port = owners[0]
    victim = next(n for n in cluster.nodes if n.port == victim_port)
    survivor = next(n for n in cluster.nodes if n.port != victim_port)
    a, b = await start_gateway(redis=cluster.url), await start_gateway(redis=cluster.url)
    await both_live(a, b)
    statuses: Counter[int] = Counter()
    stop = asyncio.Event()

    async def client(number: int) -> None:
        sent = 0
        while not stop.is_set() and sent < 2000:  # bounded in count; the test bounds the time
            status, _ = await login((a, b)[number % 2], keys, f"load-{number}-{sent % 10}")
            statuses[status] += 1
            sent += 1
            await asyncio.sleep(0.005)

    clients = [asyncio.create_task(client(n)) for n in range(10)]
    await asyncio.sleep(0.5)
    victim.kill()

    async def promoted() -> bool:
        return (await slot_owners(survivor)).get(0) not in (None, victim_port)

    await eventually(promoted, 20)
    promoted_at = time.monotonic()

    moved = {slot for slot, port in owners.items() if port == victim_port}
    candidates = (f"moved-{n}" for n in range(100_000))

    async def shared_on_the_moved_slots() -> bool:
        user = next(u for u in candidates if key_slot(cred_key(a, u).encode()) in moved)
        await login(a, keys, user)
        _, on_b = await login(b, keys, user)
        return on_b["cached"] is True

    await eventually(shared_on_the_moved_slots, 5)
    shared_after = time.monotonic() - promoted_at
    stop.set()
    await asyncio.gather(*clients)
    assert set(statuses) == {200}, statuses
    assert shared_after < 1.0, shared_after
    assert vendors.calls(WECHAT) > 0


async def test_a_sentinel_failover_under_load_keeps_every_answer_200(
    start_gateway: StartGateway,
    keys: Keys,
    vendors: Vendors,
    start_redis_sentinel: Callable[..., RedisSentinelProcesses],
) -> None:
    """The master killed under load from two replicas on Sentinel: no answer is other than 200, and
    once the sentinels have promoted the replica, new logins are shared across replicas again."""
    setup = start_redis_sentinel()
    a, b = await start_gateway(redis=setup.url), await start_gateway(redis=setup.url)
    await both_live(a, b)
    statuses: Counter[int] = Counter()
    stop = asyncio.Event()

    async def client(number: int) -> None:
        sent = 0
        while not stop.is_set() and sent < 2000:  # bounded in count; the test bounds the time
            status, _ = await login((a, b)[number % 2], keys, f"sentinel-{number}-{sent % 10}")
            statuses[status] += 1
            sent += 1
            await asyncio.sleep(0.005)

    clients = [asyncio.create_task(client(n)) for n in range(10)]
    await asyncio.sleep(0.5)
    old_master = setup.master_port()
    setup.server_on(old_master).kill()
    candidates = (f"after-failover-{n}" for n in range(100_000))

    async def shared_on_the_new_master() -> bool:
        if setup.master_port() == old_master:
            return False
        user = next(candidates)
        await login(a, keys, user)
        _, on_b = await login(b, keys, user)
        return on_b["cached"] is True

    await eventually(shared_on_the_new_master, 20)
    stop.set()
    await asyncio.gather(*clients)
    assert set(statuses) == {200}, statuses
    assert vendors.calls(WECHAT) > 0
