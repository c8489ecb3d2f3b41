"""Session-wide fixtures: a real Redis (found or started), a Redis Cluster and a Sentinel set-up (always
started here), and the credential store backends over each.

Real-Redis tests share a server with whoever else uses the machine, so they never FLUSHDB: each test
writes under its own `key_prefix` and `redis_store` deletes exactly those keys afterwards. The Cluster
and Sentinel set-ups are private to the session and thrown away at its end, keys and all.
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from uuid import uuid4

import fakeredis.aioredis
import pytest
import pytest_asyncio
from redis import Redis

from gateway.store.cluster import ClusterStore
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore
from gateway.store.sentinel import SentinelStore
from tests.redis_server import (
    NO_REDIS_MARKER,
    REQUIRE_REDIS_ENV,
    TEST_REDIS_URL_ENV,
    RedisClusterProcesses,
    RedisNotAvailable,
    RedisSentinelProcesses,
    RedisServerProcess,
    StartRedisServer,
    TlsFiles,
    find_or_start_redis,
    no_redis,
    no_redis_setup,
)

# How long the session's Cluster and Sentinel set-ups took to start, for the terminal summary.
_SETUP_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis for the whole session (skips or fails the test when there is none)."""
    try:
        url, started = find_or_start_redis()
    except RedisNotAvailable as error:
        no_redis(str(error))
    try:
        yield url
    finally:
        if started is not None:
            started.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A 3-master Redis Cluster on loopback for the whole session (skips or fails without the tools)."""
    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster"))  # node timeout 2 s
    _start_for_session("cluster", cluster.start, "a Redis Cluster")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: RedisClusterProcesses) -> str:
    """`redis+cluster://` URL of the session's Redis Cluster, every node a startup node."""
    return redis_cluster.url


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelProcesses]:
    """Master, replica and three sentinels on loopback for the whole session (skips or fails without
    the tools). Tests that fail the master over start their own set-up (`start_redis_sentinel`)."""
    # A slow moment on a busy machine must not fail the master over under the contract suite.
    sentinel = RedisSentinelProcesses(tmp_path_factory.mktemp("redis-sentinel"), down_after_ms=5000)
    _start_for_session("sentinel", sentinel.start, "a Redis Sentinel set-up")
    try:
        yield sentinel
    finally:
        sentinel.stop()


@pytest.fixture(scope="session")
def redis_sentinel_url(redis_sentinel: RedisSentinelProcesses) -> str:
    """`redis+sentinel://` URL of the session's sentinels, service `mymaster`, database 0."""
    return redis_sentinel.url


def _start_for_session(name: str, start: Callable[[], None], what: str) -> None:
    """Run `start`, timing it for the summary; skip (or fail) the test when the set-up cannot start.

    A session fixture that skips is not retried: every later test using it skips with the same reason.
    """
    began = time.monotonic()
    try:
        start()
    except (RedisNotAvailable, OSError) as error:
        no_redis_setup(f"could not start {what}: {error}")
    _SETUP_SECONDS[name] = time.monotonic() - began


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A prefix no other test (nor other user of the shared Redis) writes under.

    When the test also used `redis_url`, every key under the prefix is deleted from that Redis at
    teardown, whichever client wrote it, so tests leave nothing behind on a shared server.
    """
    prefix = f"test:{uuid4().hex}:"
    yield prefix
    # fixturenames also lists fixtures taken with getfixturevalue (the parametrised `store` does).
    if "redis_url" in request.fixturenames:
        # When there was no Redis, getfixturevalue re-raises the cached skip/fail: nothing to clean.
        with contextlib.suppress(pytest.skip.Exception, pytest.fail.Exception):
            delete_keys_with_prefix(request.getfixturevalue("redis_url"), prefix)


def delete_keys_with_prefix(url: str, prefix: str) -> None:
    """Delete every key starting with `prefix`, found with SCAN (never FLUSHDB: the server is shared)."""
    client = Redis.from_url(url)
    try:
        # The prefix is `test:<hex>:`, free of glob metacharacters, so MATCH sees it literally.
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest_asyncio.fixture
async def redis_store(redis_url: str, key_prefix: str) -> AsyncIterator[RedisStore]:
    """A RedisStore on the real Redis; `key_prefix` deletes the test's keys afterwards."""
    store = RedisStore.from_url(redis_url)
    try:
        yield store
    finally:
        await store.close()


@pytest_asyncio.fixture
async def cluster_store(redis_cluster_url: str) -> AsyncIterator[ClusterStore]:
    """A ClusterStore on the session's Redis Cluster."""
    store = ClusterStore.from_url(redis_cluster_url)
    try:
        yield store
    finally:
        await store.close()


@pytest_asyncio.fixture
async def sentinel_store(redis_sentinel_url: str) -> AsyncIterator[SentinelStore]:
    """A SentinelStore on the master the session's sentinels name."""
    store = SentinelStore.from_url(redis_sentinel_url)
    try:
        yield store
    finally:
        await store.close()


@pytest_asyncio.fixture
async def fake_store() -> AsyncIterator[RedisStore]:
    """A RedisStore over fakeredis: the real client code path against an in-process server model."""
    if importlib.util.find_spec("lupa") is None:
        # Without it fakeredis answers EVALSHA with "unknown command", which would read as lock bugs.
        pytest.fail(
            "fakeredis runs the lock scripts only with its Lua extra: pip install 'fakeredis[lua]'"
        )
    store = RedisStore(fakeredis.aioredis.FakeRedis())
    try:
        yield store
    finally:
        await store.close()


@pytest_asyncio.fixture
async def memory_store() -> AsyncIterator[MemoryStore]:
    """A fresh in-process MemoryStore."""
    store = MemoryStore()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def start_redis_server() -> Iterator[StartRedisServer]:
    """Start private redis-server processes on free ports, all stopped at teardown."""
    started: list[RedisServerProcess] = []

    def start(
        *,
        tls: TlsFiles | None = None,
        tls_client_auth: bool = False,
        unix_socket: Path | None = None,
    ) -> RedisServerProcess:
        server = RedisServerProcess(
            tls=tls, tls_client_auth=tls_client_auth, unix_socket=unix_socket
        )
        started.append(server)
        try:
            server.start()
        except (RedisNotAvailable, OSError) as error:
            no_redis(f"could not start a private redis-server: {error}")
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def start_redis_cluster(tmp_path: Path) -> Iterator[Callable[..., RedisClusterProcesses]]:
    """Start a private Redis Cluster (`start(password=…, tls=…, node_timeout_ms=…, replicas=…,
    full_coverage=…)`), stopped at teardown; for tests that stop nodes. Skips, or fails under
    GATEWAY_REQUIRE_REDIS=1, when it cannot start."""
    started: list[RedisClusterProcesses] = []

    def start(
        *,
        password: str | None = None,
        tls: TlsFiles | None = None,
        node_timeout_ms: int = 2000,
        replicas: int = 0,
        full_coverage: bool = True,
    ) -> RedisClusterProcesses:
        cluster = RedisClusterProcesses(
            tmp_path / f"cluster-{len(started)}",
            password=password,
            tls=tls,
            node_timeout_ms=node_timeout_ms,
            replicas=replicas,
            full_coverage=full_coverage,
        )
        cluster.directory.mkdir()
        started.append(cluster)
        try:
            cluster.start()
        except (RedisNotAvailable, OSError) as error:
            no_redis_setup(f"could not start a private Redis Cluster: {error}")
        return cluster

    try:
        yield start
    finally:
        for cluster in started:
            cluster.stop()


@pytest.fixture
def start_redis_sentinel(tmp_path: Path) -> Iterator[Callable[..., RedisSentinelProcesses]]:
    """Start a private master + replica + three sentinels (`start(password=…, sentinel_password=…,
    tls=…)`; the sentinels fail over a master silent for 1 s), stopped at teardown; for failover tests.
    Skips, or fails under GATEWAY_REQUIRE_REDIS=1, when it cannot start."""
    started: list[RedisSentinelProcesses] = []

    def start(
        *,
        password: str | None = None,
        sentinel_password: str | None = None,
        tls: TlsFiles | None = None,
    ) -> RedisSentinelProcesses:
        sentinel = RedisSentinelProcesses(
            tmp_path / f"sentinel-{len(started)}",
            password=password,
            sentinel_password=sentinel_password,
            tls=tls,
        )
        sentinel.directory.mkdir()
        started.append(sentinel)
        try:
            sentinel.start()
        except (RedisNotAvailable, OSError) as error:
            no_redis_setup(f"could not start a private Redis Sentinel set-up: {error}")
        return sentinel

    try:
        yield start
    finally:
        for sentinel in started:
            sentinel.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say at the end, in red, how many tests were skipped because no real Redis was available; and
    how long the session's Cluster and Sentinel set-ups took to start."""
    if _SETUP_SECONDS:
        started = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in _SETUP_SECONDS.items())
        terminalreporter.write_line(f"Redis set-ups started for this session: {started}")
    skipped = terminalreporter.stats.get("skipped", [])
    missing = sum(1 for report in skipped if NO_REDIS_MARKER in str(report.longrepr))
    if missing:
        terminalreporter.write_sep(
            "!",
            f"WARNING: {missing} test(s) SKIPPED for lack of a real Redis; the store is NOT proven "
            f"against a real server, Cluster or Sentinel (set {TEST_REDIS_URL_ENV}, install "
            f"redis-server, redis-sentinel and redis-cli, or {REQUIRE_REDIS_ENV}=1 to fail instead)",
            red=True,
            bold=True,
        )
