"""Redis credential store over `redis.asyncio` (standalone server; `redis://`, `rediss://`, `unix://`).

A lock is a plain key whose value is its owner: acquiring is `SET key owner NX PX lease`; renewing and
releasing compare the owner first, inside one Lua script, so a holder whose lease already expired can never
extend or delete the lock somebody else has taken since.

Each subscription holds its own connection. It is announced live only once the server has confirmed the
SUBSCRIBE (a message published before that would be missed), and an idle one is PINGed every
`pubsub_heartbeat_s`, so a server that stopped answering ends the subscription instead of leaving it
waiting forever on a socket that still looks open.

Every redis-py failure becomes `StoreUnavailable`. Its message names the operation and, for transport
failures, the socket error; it never carries a key's value, and the original exception is not chained
because some server replies echo the command's arguments.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Final, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.store import StoreUnavailable
from gateway.store.memory import ttl_to_milliseconds

DEFAULT_SOCKET_TIMEOUT_S: Final = 0.5
DEFAULT_PUBSUB_HEARTBEAT_S: Final = 5.0

# KEYS[1] = lock key, ARGV[1] = owner, ARGV[2] = lease in milliseconds. Returns 1 when extended, else 0.
RENEW_LOCK_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1] = lock key, ARGV[1] = owner. Returns 1 when deleted, else 0.
RELEASE_LOCK_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Errors that describe the connection, never the command's arguments, so their text is safe to repeat.
_TRANSPORT_ERRORS: Final = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisStore:
    """`CredentialStore` over a `redis.asyncio.Redis` client, which it owns and closes.

    The client must return bytes (`decode_responses=False`): values are opaque bytes, not text.
    """

    def __init__(
        self, client: Redis, *, pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S
    ) -> None:
        connection_kwargs = client.connection_pool.connection_kwargs
        if connection_kwargs.get("decode_responses"):
            raise ValueError(
                "RedisStore needs a client that returns bytes (decode_responses=False)"
            )
        self._client = client
        self._pubsub_heartbeat_s = pubsub_heartbeat_s
        # How long to wait for the SUBSCRIBE confirmation: the client's own reply timeout if it has one.
        self._reply_timeout_s: float = (
            connection_kwargs.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT_S
        )
        # register_script does no I/O: EVALSHA is tried first and the script is loaded on NOSCRIPT,
        # which also covers a server that restarted and lost its script cache.
        self._renew_lock = client.register_script(RENEW_LOCK_LUA)
        self._release_lock = client.register_script(RELEASE_LOCK_LUA)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S,
    ) -> RedisStore:
        """A store for `redis://`, `rediss://` (TLS, with optional CA and client cert) or `unix://`.

        No connection is made here; the first command connects.
        """
        options = _client_options(socket_timeout_s)
        options.update(_tls_options(url, ssl_ca_certs, ssl_certfile, ssl_keyfile))
        return cls(Redis.from_url(url, **options), pubsub_heartbeat_s=pubsub_heartbeat_s)

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        with _unavailable_on_error("GET"):
            value = await self._client.get(key)
        # redis-py types replies as bytes | str; the constructor refused a decoding client, so bytes.
        return cast("bytes | None", value)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s` seconds (> 0, millisecond precision)."""
        ttl_ms = ttl_to_milliseconds(ttl_s)
        with _unavailable_on_error("SET"):
            await self._client.set(key, value, px=ttl_ms)

    async def delete(self, key: str) -> bool:
        """Forget `key`; True when something was removed."""
        with _unavailable_on_error("DEL"):
            removed: int = await self._client.delete(key)
        return removed > 0

    async def acquire_lock(self, key: str, owner: str, lease_s: float) -> bool:
        """Take the lock `key` for `owner` if nobody holds it; True when taken."""
        lease_ms = ttl_to_milliseconds(lease_s)
        with _unavailable_on_error("SET NX (acquire lock)"):
            taken = await self._client.set(key, owner, nx=True, px=lease_ms)
        return taken is True  # None when the key already exists

    async def renew_lock(self, key: str, owner: str, lease_s: float) -> bool:
        """Extend the lease only if `owner` still holds it; False when the lease was lost."""
        lease_ms = ttl_to_milliseconds(lease_s)
        with _unavailable_on_error("EVALSHA (renew lock)"):
            renewed: int = await self._renew_lock(keys=[key], args=[owner, lease_ms])
        return renewed == 1

    async def release_lock(self, key: str, owner: str) -> bool:
        """Delete the lock only if `owner` holds it (compare-and-delete); True when released."""
        with _unavailable_on_error("EVALSHA (release lock)"):
            released: int = await self._release_lock(keys=[key], args=[owner])
        return released == 1

    async def publish(self, channel: str, message: str) -> None:
        """Send `message` to every current subscriber of `channel`, on any replica."""
        with _unavailable_on_error("PUBLISH"):
            await self._client.publish(channel, message)

    async def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        """Yields None once the server confirmed the subscription, then each message on `channel`.

        Raises StoreUnavailable when the connection fails or the server stops answering PINGs.
        """
        pubsub = self._client.pubsub()
        try:
            await self._start_subscription(pubsub, channel)
            yield None
            while True:
                yield await self._next_message(pubsub)
        finally:
            # Closing a connection that already broke can fail again; the subscription is over anyway.
            with suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    async def ping(self) -> None:
        """Return when the server answers; raise StoreUnavailable otherwise."""
        with _unavailable_on_error("PING"):
            await self._client.ping()

    async def close(self) -> None:
        """Close the client and its connection pool."""
        with _unavailable_on_error("close"):
            await self._client.aclose()

    async def _start_subscription(self, pubsub: PubSub, channel: str) -> None:
        with _unavailable_on_error("SUBSCRIBE"):
            await pubsub.subscribe(channel)
            confirmation = await pubsub.get_message(timeout=self._reply_timeout_s)
        if confirmation is None or confirmation["type"] != "subscribe":
            raise StoreUnavailable("redis SUBSCRIBE failed: no confirmation from the server")

    async def _next_message(self, pubsub: PubSub) -> str:
        """The next published message, PINGing while idle; StoreUnavailable when the server is gone."""
        awaiting_pong = False
        while True:
            with _unavailable_on_error("pub/sub read"):
                reply = await pubsub.get_message(timeout=self._pubsub_heartbeat_s)
            if reply is None:
                if awaiting_pong:
                    raise StoreUnavailable(
                        f"redis pub/sub failed: no answer to PING within {self._pubsub_heartbeat_s} s"
                    )
                with _unavailable_on_error("pub/sub PING"):
                    await pubsub.ping()
                awaiting_pong = True
                continue
            awaiting_pong = False  # any reply, a pong included, proves the connection alive
            if reply["type"] == "message":
                data: bytes = reply["data"]
                # Only str is published, but a foreign publisher must not kill the subscriber.
                return data.decode("utf-8", errors="replace")


def _client_options(socket_timeout_s: float) -> dict[str, Any]:
    return {
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": socket_timeout_s,
        # No command retries: the pool already checks a connection on checkout and reconnects when the
        # server closed it (restart, failover), and retrying a command whose reply was lost could repeat
        # an acquire and report a lock we hold as taken. A failure costs at most one timeout.
        "retry": Retry(NoBackoff(), retries=0),
    }


def _tls_options(
    url: str, ssl_ca_certs: str | None, ssl_certfile: str | None, ssl_keyfile: str | None
) -> dict[str, Any]:
    given = {
        name: value
        for name, value in (
            ("ssl_ca_certs", ssl_ca_certs),
            ("ssl_certfile", ssl_certfile),
            ("ssl_keyfile", ssl_keyfile),
        )
        if value is not None
    }
    # Plain connections reject ssl_* keywords with a TypeError at first use; say it up front instead.
    if given and not url.lower().startswith("rediss://"):
        raise ValueError(f"TLS options ({', '.join(sorted(given))}) need a rediss:// URL")
    return given


@contextmanager
def _unavailable_on_error(operation: str) -> Iterator[None]:
    """Turn redis-py failures into StoreUnavailable, and give back a cancellation redis-py swallowed."""
    task = asyncio.current_task()
    cancels_before = task.cancelling() if task is not None else 0
    try:
        yield
    except (RedisError, OSError) as error:
        _raise_if_cancellation_was_swallowed(task, cancels_before)
        raise StoreUnavailable(f"redis {operation} failed: {_describe(error)}") from None
    _raise_if_cancellation_was_swallowed(task, cancels_before)


def _raise_if_cancellation_was_swallowed(
    task: asyncio.Task[Any] | None, cancels_before: int
) -> None:
    # On Python 3.11 asyncio.wait_for, which redis-py uses to time socket writes, drops a cancel() that
    # lands just as the write completes (CPython gh-86296, fixed in 3.12): the call returns normally and
    # the task runs on, so a cancelled subscriber would loop forever and shutdown would hang. A cancel
    # request that arrived during the call and is still pending means exactly that; deliver it.
    if task is not None and task.cancelling() > cancels_before:
        raise asyncio.CancelledError


def _describe(error: BaseException) -> str:
    if isinstance(error, _TRANSPORT_ERRORS):
        return f"{type(error).__name__}: {error}"
    # Server replies (e.g. "unknown command … with args beginning with: …") may quote the value.
    return type(error).__name__
