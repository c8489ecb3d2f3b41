"""open_store: which backend each URL scheme gives, and what a bad URL says.

The Unix-socket and TLS cases connect to a private redis-server for real, and the Sentinel and Cluster
URLs to the session's set-ups, so a scheme is only counted as supported once a round trip over it works.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.store import Delete, StoreUnavailable, Write
from gateway.store.cluster import ClusterStore
from gateway.store.factory import open_store
from gateway.store.guarded import GuardedStore
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore
from gateway.store.sentinel import SentinelStore
from gateway.store.urls import SentinelUrl, parse_cluster_url, parse_sentinel_url
from tests.redis_server import (
    RedisClusterProcesses,
    RedisNotAvailable,
    RedisSentinelProcesses,
    StartRedisServer,
    TlsFiles,
    no_redis,
)
from tests.store.ops import get, publish


async def test_memory_url_opens_a_memory_store() -> None:
    """memory:// gives an in-process MemoryStore that works without any server."""
    store = open_store("memory://").store
    assert isinstance(store, MemoryStore)
    await store.write(Write("k", b"v", 30))
    assert await get(store, "k") == b"v"


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "REDIS://127.0.0.1:6379/0",
        "redis://:password@127.0.0.1:6379/2",
        "rediss://redis.internal:6380/0",
        "unix:///var/run/redis/redis.sock?db=0",
    ],
)
async def test_redis_urls_open_a_redis_store_without_connecting(url: str) -> None:
    """redis://, rediss:// and unix:// give a RedisStore; nothing connects until the first call."""
    store = open_store(url).store
    try:
        assert isinstance(store, GuardedStore) and isinstance(store.inner, RedisStore)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis+sentinel://h:26379/mymaster",
            SentinelUrl(sentinels=(("h", 26379),), service="mymaster", db=0, tls=False),
        ),
        (
            "REDIS+SENTINEL://s1:26379,s2:26380,s3/mymaster/2",
            SentinelUrl(
                sentinels=(("s1", 26379), ("s2", 26380), ("s3", 26379)),
                service="mymaster",
                db=2,
                tls=False,
            ),
        ),
        (
            "redis+sentinel://:p%40ss@h/mymaster/0?sentinel_password=s%26cret",
            SentinelUrl(
                sentinels=(("h", 26379),),
                service="mymaster",
                db=0,
                tls=False,
                password="p@ss",
                sentinel_password="s&cret",
            ),
        ),
        (
            "redis+sentinel://[::1]:26379,[fd00::2]/cache?username=gw&password=pw"
            "&sentinel_username=watch&sentinel_password=spw",
            SentinelUrl(
                sentinels=(("::1", 26379), ("fd00::2", 26379)),
                service="cache",
                db=0,
                tls=False,
                username="gw",
                password="pw",
                sentinel_username="watch",
                sentinel_password="spw",
            ),
        ),
        (
            "rediss+sentinel://app:pw@h:26380/mymaster/",
            SentinelUrl(
                sentinels=(("h", 26380),),
                service="mymaster",
                db=0,
                tls=True,
                username="app",
                password="pw",
            ),
        ),
    ],
)
async def test_sentinel_urls_open_a_sentinel_store_without_connecting(
    url: str, expected: SentinelUrl
) -> None:
    """redis+sentinel:// and rediss+sentinel:// give a SentinelStore (port 26379 by default, database 0
    by default, passwords from the user part or the query, percent-escapes decoded); nothing connects."""
    assert parse_sentinel_url(url) == expected
    store = open_store(url).store
    try:
        assert isinstance(store, GuardedStore) and isinstance(store.inner, SentinelStore)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "nodes", "tls", "password"),
    [
        ("redis+cluster://h:7000", (("h", 7000),), False, None),
        ("redis+cluster://a:7000,b:7001,c/0", (("a", 7000), ("b", 7001), ("c", 6379)), False, None),
        ("redis+cluster://:s%3Acret@a:7000,b:7001", (("a", 7000), ("b", 7001)), False, "s:cret"),
        ("rediss+cluster://a:7000?password=pw", (("a", 7000),), True, "pw"),
    ],
)
async def test_cluster_urls_open_a_cluster_store_without_connecting(
    url: str, nodes: tuple[tuple[str, int], ...], tls: bool, password: str | None
) -> None:
    """redis+cluster:// and rediss+cluster:// give a ClusterStore over the listed startup nodes (port
    6379 by default); nothing connects."""
    parsed = parse_cluster_url(url)
    assert (parsed.nodes, parsed.tls, parsed.password) == (nodes, tls, password)
    store = open_store(url).store
    try:
        assert isinstance(store, ClusterStore)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://:hunter2@h:26379", "no service name"),
        ("redis+sentinel://:hunter2@h:26379/", "no service name"),
        ("redis+sentinel://:hunter2@/mymaster", "no hosts"),
        ("redis+cluster://:hunter2@", "no hosts"),
        ("redis+sentinel://:hunter2@h:port/mymaster", "address #1 has a bad port"),
        ("redis+cluster://:hunter2@a:7000,b:0", "address #2 has a bad port"),
        ("redis+cluster://:hunter2@a:7000,b:65536", "address #2 has a bad port"),
        ("redis+cluster://:hunter2@a:7000,,c:7002", "address #2 is empty"),
        ("redis+cluster://:hunter2@a:", "address #1 has a bad port"),
        ("redis+cluster://:hunter2@:7000", "address #1 has no host"),
        ("redis+cluster://:hunter2@[::1:7000", "IPv6 bracket"),
        ("redis+sentinel://:hunter2@h/mymaster/x", "database must be a number"),
        ("redis+sentinel://:hunter2@h/mymaster/0/extra", "nothing more"),
        ("redis+cluster://:hunter2@h:7000/1", "only database 0"),
        ("redis+cluster://h:7000?hunter2=1", "unsupported query parameter"),
        ("redis+cluster://h:7000?password=hunter2&password=hunter2", "given twice"),
        ("redis+sentinel://:hunter2@h/mymaster?password=hunter2", "password given twice"),
        ("redis+sentinel://h/mymaster?sentinel_password", "malformed"),
        # An unescaped "/" in the password splits the URL in the wrong place; still nothing is echoed.
        ("redis+sentinel://:hun/ter2@h:26379/mymaster", "address #1"),
    ],
)
def test_a_malformed_sentinel_or_cluster_url_is_refused_without_echoing_it(
    url: str, problem: str
) -> None:
    """A missing service name, no hosts, a bad port, a bad database or query raise ValueError naming the
    problem and the scheme, and never any part of the URL that could be a password."""
    with pytest.raises(ValueError, match=problem) as raised:
        open_store(url)
    message = str(raised.value)
    assert url.split("://")[0].lower() + "://" in message
    for fragment in ("hunter2", "hun", "ter2"):
        assert fragment not in message


@pytest.mark.parametrize(
    "url", ["redis+sentinel://h:26379/mymaster", "redis+cluster://h:7000", "redis://h:6379/0"]
)
def test_tls_options_need_a_rediss_scheme(url: str) -> None:
    """TLS files with a plain redis+sentinel:// or redis+cluster:// URL are refused, not ignored."""
    with pytest.raises(ValueError, match="rediss"):
        open_store(url, ssl_ca_certs="/etc/ssl/ca.pem")


@pytest.mark.parametrize("url", ["rediss+sentinel://h:26379/mymaster", "rediss+cluster://h:7000"])
async def test_tls_options_are_taken_with_a_rediss_scheme(url: str) -> None:
    """rediss+sentinel:// and rediss+cluster:// take the CA and client certificate options."""
    store = open_store(
        url, ssl_ca_certs="/etc/ssl/ca.pem", ssl_certfile="c.pem", ssl_keyfile="k.pem"
    ).store
    await store.close()


@pytest.mark.redis
async def test_open_store_talks_to_the_real_sentinels_and_cluster(
    redis_sentinel_url: str, redis_cluster_url: str, key_prefix: str
) -> None:
    """The stores opened from the session's Sentinel and Cluster URLs round-trip values."""
    for url in (redis_sentinel_url, redis_cluster_url):
        store = open_store(url).store
        try:
            await store.ping()
            await store.write(Write(f"{key_prefix}k", b"\x00\xff", 30))
            assert await get(store, f"{key_prefix}k") == b"\x00\xff"
            assert await store.delete(Delete([f"{key_prefix}k"])) == 1
        finally:
            await store.close()


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://user:hunter2@cache:6379/0", "http://"),
        ("memcached://cache:11211", "memcached://"),
        ("", "(none)"),
    ],
)
def test_an_unsupported_scheme_is_named_with_the_supported_ones(url: str, named: str) -> None:
    """Any other scheme raises ValueError naming it and every supported scheme, never the password."""
    with pytest.raises(ValueError, match="unsupported store URL scheme") as raised:
        open_store(url)
    message = str(raised.value)
    assert named in message
    for supported in ("memory://", "redis://", "rediss://", "unix://"):
        assert supported in message
    for supported in ("redis+sentinel://", "rediss+sentinel://", "redis+cluster://"):
        assert supported in message
    assert "hunter2" not in message


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "unix:///tmp/r.sock", "memory://"])
def test_tls_options_without_rediss_are_refused(url: str) -> None:
    """TLS files given with a non-TLS URL raise ValueError instead of being silently ignored."""
    with pytest.raises(ValueError, match="rediss://"):
        open_store(url, ssl_ca_certs="/etc/ssl/ca.pem")


@pytest.mark.redis
async def test_open_store_talks_to_the_real_redis(redis_url: str, key_prefix: str) -> None:
    """The store opened from the session's Redis URL answers and round-trips a value."""
    store = open_store(redis_url).store
    try:
        await store.ping()
        await store.write(Write(f"{key_prefix}k", b"\x00\xff", 30))
        assert await get(store, f"{key_prefix}k") == b"\x00\xff"
        assert await store.delete(Delete([f"{key_prefix}k"])) == 1
    finally:
        await store.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a Unix socket path must fit in about 100 bytes."""
    with tempfile.TemporaryDirectory(prefix="gw-") as directory:
        yield Path(directory)


@pytest.mark.redis
async def test_unix_url_reaches_redis_over_a_unix_socket(
    start_redis_server: StartRedisServer, short_dir: Path
) -> None:
    """unix:// connects over the server's Unix socket."""
    server = start_redis_server(unix_socket=short_dir / "redis.sock")
    store = open_store(server.unix_url).store
    try:
        await store.write(Write("k", b"over-unix", 30))
        assert await get(store, "k") == b"over-unix"
    finally:
        await store.close()


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1."""
    try:
        return TlsFiles.create(tmp_path)
    except RedisNotAvailable as error:
        no_redis(str(error))


@pytest.mark.redis
async def test_rediss_url_with_the_ca_reaches_redis_over_tls(
    start_redis_server: StartRedisServer, tls_files: TlsFiles
) -> None:
    """rediss:// with ssl_ca_certs verifies the server's certificate and round-trips a value over TLS."""
    server = start_redis_server(tls=tls_files)
    store = open_store(server.url, ssl_ca_certs=str(tls_files.ca_cert)).store
    try:
        await store.write(Write("k", b"over-tls", 30))
        assert await get(store, "k") == b"over-tls"
    finally:
        await store.close()


@pytest.mark.redis
async def test_rediss_url_without_the_ca_refuses_an_untrusted_server(
    start_redis_server: StartRedisServer, tls_files: TlsFiles
) -> None:
    """rediss:// without the server's CA fails certificate verification, as StoreUnavailable."""
    server = start_redis_server(tls=tls_files)
    store = open_store(server.url).store
    try:
        with pytest.raises(StoreUnavailable, match=r"(?i)certificate verify failed"):
            await store.ping()
    finally:
        await store.close()


@pytest.mark.redis
async def test_rediss_url_presents_the_client_certificate_when_the_server_asks(
    start_redis_server: StartRedisServer, tls_files: TlsFiles
) -> None:
    """With ssl_certfile and ssl_keyfile the store passes mutual TLS; without them the server refuses it."""
    server = start_redis_server(tls=tls_files, tls_client_auth=True)
    with_cert = open_store(
        server.url,
        ssl_ca_certs=str(tls_files.ca_cert),
        ssl_certfile=str(tls_files.client_cert),
        ssl_keyfile=str(tls_files.client_key),
    ).store
    without_cert = open_store(server.url, ssl_ca_certs=str(tls_files.ca_cert)).store
    try:
        await with_cert.ping()
        with pytest.raises(StoreUnavailable):
            await without_cert.ping()
    finally:
        await with_cert.close()
        await without_cert.close()


@pytest.mark.redis
async def test_rediss_sentinel_and_cluster_urls_reach_tls_set_ups(
    start_redis_sentinel: Callable[..., RedisSentinelProcesses],
    start_redis_cluster: Callable[..., RedisClusterProcesses],
    tls_files: TlsFiles,
) -> None:
    """rediss+sentinel:// speaks TLS to sentinels and master, rediss+cluster:// to every node (pub/sub
    included), verifying certificates with the CA given; without it they refuse, as StoreUnavailable."""
    urls = [start_redis_sentinel(tls=tls_files).url, start_redis_cluster(tls=tls_files).url]
    for url in urls:
        assert url.startswith("rediss+")
        store = open_store(url, ssl_ca_certs=str(tls_files.ca_cert)).store
        untrusting = open_store(url).store
        try:
            for n in range(5):  # on every cluster node
                await store.write(Write(f"k{n}", b"over-tls", 30))
                assert await get(store, f"k{n}") == b"over-tls"
            subscription = store.subscribe("channel")
            assert await anext(subscription) is None
            await publish(store, "channel", "over-tls")
            assert await anext(subscription) == "over-tls"
            await subscription.aclose()  # type: ignore[attr-defined]
            with pytest.raises(StoreUnavailable, match=r"(?i)certificate verify failed|no master"):
                await get(untrusting, "k0")
        finally:
            await store.close()
            await untrusting.close()
