"""open_store: which backend each URL scheme gives, and what a bad URL says.

The Unix-socket and TLS cases connect to a private redis-server for real, so a scheme is only counted as
supported once a round trip over it works.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import StoreUnavailable
from gateway.store.factory import open_store
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore
from tests.redis_server import RedisNotAvailable, StartRedisServer, TlsFiles, no_redis


async def test_memory_url_opens_a_memory_store() -> None:
    """memory:// gives an in-process MemoryStore that works without any server."""
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    await store.set("k", b"v", 30)
    assert await store.get("k") == b"v"


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
    store = open_store(url)
    try:
        assert isinstance(store, RedisStore)
    finally:
        await store.close()


@pytest.mark.parametrize("url", ["redis+sentinel://h:26379/mymaster", "redis+cluster://h:7000"])
def test_sentinel_and_cluster_say_not_supported_yet(url: str) -> None:
    """Sentinel and Cluster URLs are refused with a message saying they are not supported yet."""
    scheme = url.split("://")[0]
    with pytest.raises(ValueError, match="not supported yet") as raised:
        open_store(url)
    assert f"{scheme}://" in str(raised.value)


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
    assert "redis+sentinel://" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "unix:///tmp/r.sock", "memory://"])
def test_tls_options_without_rediss_are_refused(url: str) -> None:
    """TLS files given with a non-TLS URL raise ValueError instead of being silently ignored."""
    with pytest.raises(ValueError, match="rediss://"):
        open_store(url, ssl_ca_certs="/etc/ssl/ca.pem")


@pytest.mark.redis
async def test_open_store_talks_to_the_real_redis(redis_url: str, key_prefix: str) -> None:
    """The store opened from the session's Redis URL answers and round-trips a value."""
    store = open_store(redis_url)
    try:
        await store.ping()
        await store.set(f"{key_prefix}k", b"\x00\xff", 30)
        assert await store.get(f"{key_prefix}k") == b"\x00\xff"
        assert await store.delete(f"{key_prefix}k") is True
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
    store = open_store(server.unix_url)
    try:
        await store.set("k", b"over-unix", 30)
        assert await store.get("k") == b"over-unix"
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
    store = open_store(server.url, ssl_ca_certs=str(tls_files.ca_cert))
    try:
        await store.set("k", b"over-tls", 30)
        assert await store.get("k") == b"over-tls"
    finally:
        await store.close()


@pytest.mark.redis
async def test_rediss_url_without_the_ca_refuses_an_untrusted_server(
    start_redis_server: StartRedisServer, tls_files: TlsFiles
) -> None:
    """rediss:// without the server's CA fails certificate verification, as StoreUnavailable."""
    server = start_redis_server(tls=tls_files)
    store = open_store(server.url)
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
    )
    without_cert = open_store(server.url, ssl_ca_certs=str(tls_files.ca_cert))
    try:
        await with_cert.ping()
        with pytest.raises(StoreUnavailable):
            await without_cert.ping()
    finally:
        await with_cert.close()
        await without_cert.close()
