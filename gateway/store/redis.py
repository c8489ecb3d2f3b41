"""Redis credential store over `redis.asyncio` (standalone server; `redis://`, `rediss://`, `unix://`).

`RedisStore` speaks to one server. `SentinelStore` (gateway.store.sentinel) subclasses it to follow a
master through failovers; `ClusterStore` (gateway.store.cluster) routes each command to a `RedisStore`
per Cluster node.

Each method is one round trip: a plain command where one does the job, else one Lua script (claim the
lease and read; write, hand the lease back and publish; delete owner-checked and publish). The scripts
are idempotent for the lease's owner, because a command whose connection broke is sent once more (see
`Connection`): a claim the first try made reads as taken, a hand-back already done is no loss.

Each subscription holds its own connection. It is announced live only once the server has confirmed the
SUBSCRIBE (a message published before that would be missed), and an idle one is PINGed every
`pubsub_heartbeat_s`, so a server that stopped answering ends the subscription instead of leaving it
waiting forever on a socket that still looks open.

Every redis-py failure becomes `StoreUnavailable` (gateway.store.redis_errors); the scripts are in
gateway.store.scripts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import FullJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from gateway.store import (
    Announcement,
    Delete,
    LeaseClaim,
    ReadResult,
    StoreUnavailable,
    Write,
)
from gateway.store.memory import ttl_to_milliseconds
from gateway.store.redis_errors import unavailable_on_error
from gateway.store.scripts import (
    DELETE_LUA,
    READ_CLAIM_LUA,
    RENEW_LUA,
    TAKE_RATE_SLOT_LUA,
    WRITE_LUA,
)
from gateway.store.urls import tls_options

DEFAULT_SOCKET_TIMEOUT_S: Final = 0.5
DEFAULT_PUBSUB_HEARTBEAT_S: Final = 5.0
# A broken pooled connection is replaced and its command sent once more, after a jittered pause of at
# most this long; a second failure is the answer.
RECONNECT_JITTER_S: Final = 0.05


@dataclass(frozen=True, slots=True)
class Connection:
    """How every connection of a Redis backend is made: timeouts, TLS files, the pub/sub heartbeat.

    Every socket operation is bounded by `socket_timeout_s`. A command whose connection turns out to be
    broken is sent once more on a fresh connection, after a jittered pause of at most
    RECONNECT_JITTER_S: a Redis restart (upgrade, eviction, node move) leaves every pooled connection
    dead, and the pool does not always notice at checkout (redis-py 8.1 skips that check when
    maintenance notifications are enabled, its default), so without this each one would cost a failed
    command — and a vendor call. Only connection errors are retried, never a timeout (a server that
    does not answer would just cost another timeout); the scripts are idempotent for their owner, so a
    command resent after its reply was lost does no harm. A failure costs at most two connects.
    """

    socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S

    def client_options(self, url: str, *, tls: bool | None) -> dict[str, Any]:
        """redis-py options for `url`'s connections. `tls`: whether to add ssl=True (the multi-host
        schemes; None for a URL whose scheme redis-py reads itself). TLS files without a TLS scheme
        are refused (ValueError)."""
        options: dict[str, Any] = {
            "socket_timeout": self.socket_timeout_s,
            "socket_connect_timeout": self.socket_timeout_s,
            "retry": Retry(
                FullJitterBackoff(cap=RECONNECT_JITTER_S, base=RECONNECT_JITTER_S / 4),
                retries=1,
                supported_errors=(RedisConnectionError,),
            ),
        }
        files = tls_options(url, self.ssl_ca_certs, self.ssl_certfile, self.ssl_keyfile)
        if tls is None or tls:
            options.update(files)
        if tls:
            options["ssl"] = True
        return options


class RedisStore:
    """`CredentialStore` over a `redis.asyncio.Redis` client, which it owns and closes.

    The client must return bytes (`decode_responses=False`): values are opaque bytes, not text. A
    Sentinel-managed client (`Sentinel.master_for`) works too; `SentinelStore` builds one from a URL.
    """

    def __init__(
        self, client: Redis, *, pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S
    ) -> None:
        connection_kwargs: Mapping[str, Any] = client.connection_pool.connection_kwargs
        if connection_kwargs.get("decode_responses"):
            raise ValueError(
                f"{type(self).__name__} needs a client that returns bytes (decode_responses=False)"
            )
        self._client = client
        self._pubsub_heartbeat_s = pubsub_heartbeat_s
        # How long to wait for the SUBSCRIBE confirmation: the client's own reply timeout if it has one.
        self._reply_timeout_s: float = (
            connection_kwargs.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT_S
        )
        # register_script does no I/O: EVALSHA is tried first and the script is loaded on NOSCRIPT,
        # which also covers a server that restarted and lost its script cache.
        self._read_claim = client.register_script(READ_CLAIM_LUA)
        self._write = client.register_script(WRITE_LUA)
        self._delete = client.register_script(DELETE_LUA)
        self._renew = client.register_script(RENEW_LUA)
        self._take_rate_slot = client.register_script(TAKE_RATE_SLOT_LUA)

    @classmethod
    def from_url(cls, url: str, connection: Connection = Connection()) -> RedisStore:
        """A store for `redis://`, `rediss://` (TLS, with optional CA and client cert) or `unix://`.

        No connection is made here; the first command connects.
        """
        options = connection.client_options(url, tls=None)
        return cls(Redis.from_url(url, **options), pubsub_heartbeat_s=connection.pubsub_heartbeat_s)

    async def read(self, keys: Sequence[str], *, claim: LeaseClaim | None = None) -> ReadResult:
        """The values of `keys`, after trying `claim`'s lease (see CredentialStore.read)."""
        if claim is None:
            with unavailable_on_error("GET"):
                self._ready()
                if len(keys) == 1:
                    values: list[Any] = [await self._client.get(keys[0])]
                else:
                    values = await self._client.mget(keys) if keys else []
            # redis-py types replies as bytes | str; the constructor refused a decoding client: bytes.
            return ReadResult(cast("list[bytes | None]", values))
        lease_ms = ttl_to_milliseconds(claim.lease_s)
        with unavailable_on_error("EVALSHA (claim and read)"):
            self._ready()
            reply: list[Any] = await self._read_claim(
                keys=[claim.key, *keys], args=[claim.owner, lease_ms]
            )
        # GET of an absent key is false in Lua (so the table goes on) and nil in the reply.
        values = [cast("bytes | None", value) for value in reply[1:]]
        return ReadResult(values, leased=reply[0] == 1)

    async def write(self, request: Write) -> bool:
        """A SET, or one script when the lease is handed back or the write announced (see `Write`)."""
        ttl_ms = ttl_to_milliseconds(request.ttl_s)
        release = request.release
        if release is None and request.announce is None:
            with unavailable_on_error("SET"):
                self._ready()
                await self._client.set(request.key, request.value, px=ttl_ms)
            return True
        keys = [request.key] if release is None else [request.key, release.key]
        channel, message = _announced(request.announce)
        owner = release.owner if release else ""
        with unavailable_on_error("EVALSHA (write)"):
            self._ready()
            kept: int = await self._write(
                keys=keys, args=[request.value, ttl_ms, owner, channel, message]
            )
        return kept == 1

    async def delete(self, request: Delete) -> int:
        """A DEL, a PUBLISH, or one script for an owner-checked or announced delete (see `Delete`)."""
        keys, owner, announce = request.keys, request.owner, request.announce
        if owner is None and announce is None:
            if not keys:
                return 0
            with unavailable_on_error("DEL"):
                self._ready()
                removed: int = await self._client.delete(*keys)
            return removed
        if not keys:
            if announce is not None:
                with unavailable_on_error("PUBLISH"):
                    self._ready()
                    await self._client.publish(announce.channel, announce.message)
            return 0
        channel, message = _announced(announce)
        with unavailable_on_error("EVALSHA (delete)"):
            self._ready()
            removed = await self._delete(keys=list(keys), args=[owner or "", channel, message])
        return removed

    async def renew(self, key: str, owner: str, lease_s: float) -> bool:
        """Extend the lease only if `owner` still holds it; False when the lease was lost."""
        lease_ms = ttl_to_milliseconds(lease_s)
        with unavailable_on_error("EVALSHA (renew)"):
            self._ready()
            renewed: int = await self._renew(keys=[key], args=[owner, lease_ms])
        return renewed == 1

    async def take_rate_slot(self, key: str, interval_s: float, burst: int) -> float:
        """GCRA token bucket at `key`: 0 when a slot was taken, else seconds to wait."""
        with unavailable_on_error("EVALSHA (rate slot)"):
            self._ready()
            wait_ms = await self._take_rate_slot(keys=[key], args=[interval_s * 1000, burst])
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
        with unavailable_on_error("PING"):
            self._ready()
            await self._client.ping()

    async def close(self) -> None:
        """Close the client and its connection pool."""
        with unavailable_on_error("close"):
            await self._client.aclose()

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
            await pubsub.subscribe(channel)
            confirmation = await pubsub.get_message(timeout=self._reply_timeout_s)
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
