"""Redis credential store over `redis.asyncio` (standalone server; `redis://`, `rediss://`, `unix://`).

`RedisStore` speaks to one server. `SentinelStore` (gateway.store.sentinel) subclasses it to follow a
master through failovers; `ClusterStore` (gateway.store.cluster) routes each command to a `RedisStore`
per Cluster node.

Each method is one round trip: a plain command where one does the job, else one Lua script (claim the
lease and read; write, hand the lease back and publish; delete owner-checked and publish). The scripts
are idempotent for the lease's owner, because a command whose connection broke is sent once more (see
gateway.store.connection): a claim the first try made reads as taken, a hand-back already done is no
loss. Each command has one deadline, from sending it to its reply (`Connection.socket_timeout_s`).

Each subscription holds its own connection. It is announced live only once the server has confirmed the
SUBSCRIBE (a message published before that would be missed), and an idle one is PINGed every
`pubsub_heartbeat_s`, so a server that stopped answering ends the subscription instead of leaving it
waiting forever on a socket that still looks open.

Every redis-py failure becomes `StoreUnavailable` (gateway.store.redis_errors); the scripts are in
gateway.store.scripts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from gateway.store import Announcement, Delete, LeaseClaim, ReadResult, StoreUnavailable, Write
from gateway.store.connection import (
    DEFAULT_PUBSUB_HEARTBEAT_S,
    DEFAULT_SOCKET_TIMEOUT_S,
    Connection,
)
from gateway.store.deadlines import CommandDeadlines
from gateway.store.memory import ttl_to_milliseconds
from gateway.store.redis_errors import unavailable, unavailable_on_error
from gateway.store.scripts import (
    DELETE_LUA,
    READ_CLAIM_LUA,
    RENEW_LUA,
    TAKE_RATE_SLOT_LUA,
    WRITE_LUA,
)

T = TypeVar("T")


class RedisStore:
    """`CredentialStore` over a `redis.asyncio.Redis` client, which it owns and closes.

    The client must return bytes (`decode_responses=False`): values are opaque bytes, not text. A
    Sentinel-managed client (`Sentinel.master_for`) works too; `SentinelStore` builds one from a URL.
    Each command gives up after `command_timeout_s`, within a tenth of it (gateway.store.deadlines; a
    client with its own socket timeout keeps it too).
    """

    def __init__(
        self,
        client: Redis,
        *,
        pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S,
        command_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
    ) -> None:
        connection_kwargs: Mapping[str, Any] = client.connection_pool.connection_kwargs
        if connection_kwargs.get("decode_responses"):
            raise ValueError(
                f"{type(self).__name__} needs a client that returns bytes (decode_responses=False)"
            )
        self._client = client
        self._pubsub_heartbeat_s = pubsub_heartbeat_s
        self._command_timeout_s = command_timeout_s
        self._deadlines = CommandDeadlines(command_timeout_s)
        # register_script does no I/O: EVALSHA is tried first and the script is loaded on NOSCRIPT,
        # which also covers a server that restarted and lost its script cache.
        self._read_claim = client.register_script(READ_CLAIM_LUA)
        self._write = client.register_script(WRITE_LUA)
        self._delete = client.register_script(DELETE_LUA)
        self._renew = client.register_script(RENEW_LUA)
        self._take_rate_slot = client.register_script(TAKE_RATE_SLOT_LUA)

    @classmethod
    def from_url(cls, url: str, connection: Connection = Connection()) -> RedisStore:  # noqa: B008
        """A store for `redis://`, `rediss://` (TLS, with optional CA and client cert) or `unix://`.

        No connection is made here; the first command connects.
        """
        return cls(
            Redis.from_url(url, **connection.client_options(url, tls=None)),
            pubsub_heartbeat_s=connection.pubsub_heartbeat_s,
            command_timeout_s=connection.socket_timeout_s,
        )

    async def read(self, keys: Sequence[str], *, claim: LeaseClaim | None = None) -> ReadResult:
        """The values of `keys`, after trying `claim`'s lease (see CredentialStore.read)."""
        if claim is None:
            if len(keys) == 1:
                key = keys[0]
                values: list[Any] = [await self._command("GET", lambda: self._client.get(key))]
            else:
                values = await self._command("GET", lambda: self._client.mget(keys)) if keys else []
            # redis-py types replies as bytes | str; the constructor refused a decoding client: bytes.
            return ReadResult(cast("list[bytes | None]", values))
        lease_ms = ttl_to_milliseconds(claim.lease_s)
        reply: list[Any] = await self._command(
            "EVALSHA (claim and read)",
            lambda: self._read_claim(keys=[claim.key, *keys], args=[claim.owner, lease_ms]),
        )
        # GET of an absent key is false in Lua (so the table goes on) and nil in the reply.
        values = [cast("bytes | None", value) for value in reply[1:]]
        return ReadResult(values, leased=reply[0] == 1)

    async def write(self, request: Write) -> bool:
        """A SET, or one script when the lease is handed back or the write announced (see `Write`)."""
        ttl_ms = ttl_to_milliseconds(request.ttl_s)
        key, value, release = request.key, request.value, request.release
        if release is None and request.announce is None:
            await self._command("SET", lambda: self._client.set(key, value, px=ttl_ms))
            return True
        keys = [key] if release is None else [key, release.key]
        channel, message = _announced(request.announce)
        owner = release.owner if release else ""
        kept: int = await self._command(
            "EVALSHA (write)",
            lambda: self._write(keys=keys, args=[value, ttl_ms, owner, channel, message]),
        )
        return kept == 1

    async def delete(self, request: Delete) -> int:
        """A DEL, a PUBLISH, or one script for an owner-checked or announced delete (see `Delete`)."""
        keys, owner, announce = list(request.keys), request.owner, request.announce
        if owner is None and announce is None:
            if not keys:
                return 0
            removed: int = await self._command("DEL", lambda: self._client.delete(*keys))
            return removed
        channel, message = _announced(announce)
        if not keys:
            if announce is not None:
                await self._command("PUBLISH", lambda: self._client.publish(channel, message))
            return 0
        removed = await self._command(
            "EVALSHA (delete)",
            lambda: self._delete(keys=keys, args=[owner or "", channel, message]),
        )
        return removed

    async def renew(self, key: str, owner: str, lease_s: float) -> bool:
        """Extend the lease only if `owner` still holds it; False when the lease was lost."""
        lease_ms = ttl_to_milliseconds(lease_s)
        renewed: int = await self._command(
            "EVALSHA (renew)", lambda: self._renew(keys=[key], args=[owner, lease_ms])
        )
        return renewed == 1

    async def take_rate_slot(self, key: str, interval_s: float, burst: int) -> float:
        """GCRA token bucket at `key`: 0 when a slot was taken, else seconds to wait."""
        wait_ms = await self._command(
            "EVALSHA (rate slot)",
            lambda: self._take_rate_slot(keys=[key], args=[interval_s * 1000, burst]),
        )
        return float(wait_ms) / 1000

    async def subscribe(self, channel: str) -> AsyncGenerator[str | None, None]:
        """Yields None once the server confirmed the subscription, then each message on `channel`.

        Raises StoreUnavailable when the connection fails or the server stops answering PINGs.
        """
        async with self._subscribed(channel) as pubsub:
            yield None
            while True:
                yield await self._next_message(pubsub)

    async def ping(self) -> None:
        """Return when the server answers; raise StoreUnavailable otherwise."""
        await self._command("PING", self._client.ping)

    async def close(self) -> None:
        """Close the client and its connection pool."""
        with unavailable_on_error("close"):
            await self._client.aclose()

    async def _command(self, operation: str, send: Callable[[], Awaitable[T]]) -> T:
        """`send()`'s reply within the command deadline; StoreUnavailable naming `operation` otherwise."""
        try:
            self._ready()
            return await self._deadlines.run(send)
        except (RedisError, OSError) as error:
            raise unavailable(operation, error) from None

    def _ready(self) -> None:
        """Called before each command; a backend that keeps something up to date in the background
        (Sentinel: which server is the master) schedules it here."""

    def _subscription_is_current(self, pubsub: PubSub) -> bool:
        """False when `pubsub`'s server no longer serves this store (a Sentinel failover moved it)."""
        return True

    @asynccontextmanager
    async def _subscribed(self, channel: str) -> AsyncIterator[PubSub]:
        """A pub/sub connection with a confirmed subscription to `channel`, closed afterwards."""
        pubsub = self._client.pubsub()
        try:
            await self._start_subscription(pubsub, channel)
            yield pubsub
        finally:
            await close_quietly(pubsub)

    async def _start_subscription(self, pubsub: PubSub, channel: str) -> None:
        with unavailable_on_error("SUBSCRIBE"):
            async with asyncio.timeout(self._command_timeout_s):
                await pubsub.subscribe(channel)
            confirmation = await pubsub.get_message(timeout=self._command_timeout_s)
        if confirmation is None or confirmation["type"] != "subscribe":
            raise StoreUnavailable("redis SUBSCRIBE failed: no confirmation from the server")

    async def _next_message(self, pubsub: PubSub) -> str:
        """The next published message, PINGing while idle; StoreUnavailable when the server is gone."""
        awaiting_pong = False
        while True:
            if not self._subscription_is_current(pubsub):
                raise StoreUnavailable("redis pub/sub failed: its server is no longer the master")
            with unavailable_on_error("pub/sub read"):
                reply = await pubsub.get_message(timeout=self._pubsub_heartbeat_s)
            if reply is None:
                if awaiting_pong:
                    raise StoreUnavailable(
                        f"redis pub/sub failed: no answer to PING within {self._pubsub_heartbeat_s} s"
                    )
                with unavailable_on_error("pub/sub PING"):
                    async with asyncio.timeout(self._command_timeout_s):
                        await pubsub.ping()
                awaiting_pong = True
                continue
            awaiting_pong = False  # any reply, a pong included, proves the connection alive
            if reply["type"] == "message":
                data: bytes = reply["data"]
                # Only str is published, but a foreign publisher must not kill the subscriber.
                return data.decode("utf-8", errors="replace")


def _announced(announce: Announcement | None) -> tuple[str, str]:
    """The scripts' (channel, message) arguments; an empty channel means "publish nothing"."""
    return ("", "") if announce is None else (announce.channel, announce.message)


async def close_quietly(closable: PubSub | Redis) -> None:
    """Close a pub/sub or client whose connection may already have broken; it is over either way."""
    with suppress(RedisError, OSError):
        await closable.aclose()
