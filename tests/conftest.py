"""Session-wide fixtures: a real Redis (found or started), and the three credential store backends.

Real-Redis tests share a server with whoever else uses the machine, so they never FLUSHDB: each test
writes under its own `key_prefix` and `redis_store` deletes exactly those keys afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import fakeredis.aioredis
import pytest
import pytest_asyncio
from redis import Redis

from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore
from tests.redis_server import (
    NO_REDIS_MARKER,
    REQUIRE_REDIS_ENV,
    TEST_REDIS_URL_ENV,
    RedisNotAvailable,
    RedisServerProcess,
    StartRedisServer,
    TlsFiles,
    find_or_start_redis,
    no_redis,
)


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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say at the end, in red, how many tests were skipped because no real Redis was available."""
    skipped = terminalreporter.stats.get("skipped", [])
    missing = sum(1 for report in skipped if NO_REDIS_MARKER in str(report.longrepr))
    if missing:
        terminalreporter.write_sep(
            "!",
            f"WARNING: {missing} test(s) SKIPPED for lack of a real Redis; the store is NOT proven "
            f"against a real server (set {TEST_REDIS_URL_ENV}, install redis-server, or "
            f"{REQUIRE_REDIS_ENV}=1 to fail instead)",
            red=True,
            bold=True,
        )
