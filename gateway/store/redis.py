"""Redis credential store over `redis.asyncio` (standalone server; `redis://`, `rediss://`, `unix://`).

`RedisStore` holds what all the Redis backends share; `SentinelStore` (gateway.store.sentinel) and
`ClusterStore` (gateway.store.cluster) subclass it and differ in how they connect, where a subscription
goes and, for Sentinel, in following the master through a failover. The URL helpers for their
multi-host URLs are here too.

A lock is a plain key whose value is its owner: acquiring is `SET key owner NX PX lease`; renewing and
releasing compare the owner first, inside one Lua script, so a holder whose lease already expired can never
extend or delete the lock somebody else has taken since.

Each subscription holds its own connection. It is announced live only once the server has confirmed the
SUBSCRIBE (a message published before that would be missed), and an idle one is PINGed every
`pubsub_heartbeat_s`, so a server that stopped answering ends the subscription instead of leaving it
waiting forever on a socket that still looks open.

Every redis-py failure, the cluster client's own exceptions included, becomes `StoreUnavailable`. Its
message names the operation and, for transport failures, the socket error; it never carries a key's value,
and the original exception is not chained because some server replies (and cluster client errors) echo
the command's arguments.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Final, cast
from urllib.parse import parse_qsl, unquote

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
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

# KEYS[1] = lock key, KEYS[2..n] = keys to read; ARGV[1] = owner, ARGV[2] = lease in milliseconds,
# ARGV[3] = "1" to try the lock only while KEYS[2] is absent. Returns {1 when taken else 0, the value
# of each key read (nil when absent)} — or {0, KEYS[2]'s value} when it was there and ARGV[3] is "1".
ACQUIRE_LOCK_AND_GET_LUA: Final = """
if ARGV[3] == '1' and KEYS[2] then
    local first = redis.call('GET', KEYS[2])
    if first then
        return {0, first}
    end
end
local reply = {redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0}
for i = 2, #KEYS do
    reply[i] = redis.call('GET', KEYS[i])
end
return reply
"""

# KEYS[1] = key, KEYS[2] = lock key; ARGV[1] = value, ARGV[2] = TTL in milliseconds, ARGV[3] = owner,
# ARGV[4] = channel, ARGV[5] = message. Returns 1 when the lock was released, else 0.
SET_AND_RELEASE_LOCK_LUA: Final = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local released = 0
if redis.call('GET', KEYS[2]) == ARGV[3] then
    released = redis.call('DEL', KEYS[2])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return released
"""

# KEYS[1] = bucket key, ARGV[1] = interval in ms, ARGV[2] = burst. GCRA on the server's own clock
# (TIME), so replicas with skewed clocks share one bucket fairly. Returns "0" when a slot was taken,
# else the milliseconds to wait, as a string so the fraction survives the reply conversion.
TAKE_RATE_SLOT_LUA: Final = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + tonumber(now_parts[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if allow_at > now then return tostring(allow_at - now) end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return '0'
"""

# Errors that describe the connection, never the command's arguments, so their text is safe to repeat.
_TRANSPORT_ERRORS: Final = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisStore:
    """`CredentialStore` over a `redis.asyncio.Redis` client, which it owns and closes.

    The client must return bytes (`decode_responses=False`): values are opaque bytes, not text. A
    Sentinel-managed client (`Sentinel.master_for`) works too; `SentinelStore` builds one from a URL.
    """

    def __init__(
        self, client: Redis, *, pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S
    ) -> None:
        self._setup(client, client.connection_pool.connection_kwargs, pubsub_heartbeat_s)

    def _setup(
        self,
        client: Redis | RedisCluster,
        connection_kwargs: Mapping[str, Any],
        pubsub_heartbeat_s: float,
    ) -> None:
        """What every constructor does: check the client, keep it, and register the scripts."""
        if connection_kwargs.get("decode_responses"):
            raise ValueError(
                f"{type(self).__name__} needs a client that returns bytes (decode_responses=False)"
            )
        # A RedisCluster only in ClusterStore, which routes each command (scripts included) by its key.
        self._client: Redis | RedisCluster = client
        self._pubsub_heartbeat_s = pubsub_heartbeat_s
        # How long to wait for the SUBSCRIBE confirmation: the client's own reply timeout if it has one.
        self._reply_timeout_s: float = (
            connection_kwargs.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT_S
        )
        # register_script does no I/O: EVALSHA is tried first and the script is loaded on NOSCRIPT,
        # which also covers a server that restarted and lost its script cache.
        self._renew_lock = client.register_script(RENEW_LOCK_LUA)
        self._release_lock = client.register_script(RELEASE_LOCK_LUA)
        self._take_rate_slot = client.register_script(TAKE_RATE_SLOT_LUA)
        self._acquire_lock_and_get = client.register_script(ACQUIRE_LOCK_AND_GET_LUA)
        self._set_and_release_lock = client.register_script(SET_AND_RELEASE_LOCK_LUA)

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
        options = client_options(socket_timeout_s)
        options.update(tls_options(url, ssl_ca_certs, ssl_certfile, ssl_keyfile))
        return cls(Redis.from_url(url, **options), pubsub_heartbeat_s=pubsub_heartbeat_s)

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        with unavailable_on_error("GET"):
            await self._ready()
            value = await self._client.get(key)
        # redis-py types replies as bytes | str; the constructor refused a decoding client, so bytes.
        return cast("bytes | None", value)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s` seconds (> 0, millisecond precision)."""
        ttl_ms = ttl_to_milliseconds(ttl_s)
        with unavailable_on_error("SET"):
            await self._ready()
            await self._client.set(key, value, px=ttl_ms)

    async def delete(self, key: str) -> bool:
        """Forget `key`; True when something was removed."""
        with unavailable_on_error("DEL"):
            await self._ready()
            removed: int = await self._client.delete(key)
        return removed > 0

    async def acquire_lock(self, key: str, owner: str, lease_s: float) -> bool:
        """Take the lock `key` for `owner` if nobody holds it; True when taken."""
        lease_ms = ttl_to_milliseconds(lease_s)
        with unavailable_on_error("SET NX (acquire lock)"):
            await self._ready()
            taken = await self._client.set(key, owner, nx=True, px=lease_ms)
        return taken is True  # None when the key already exists

    async def acquire_lock_and_get(
        self,
        lock_key: str,
        owner: str,
        lease_s: float,
        keys: Sequence[str],
        *,
        only_if_first_missing: bool = False,
    ) -> tuple[bool, list[bytes | None]]:
        """`acquire_lock`, then `get` of each of `keys`, in one script (one round trip)."""
        lease_ms = ttl_to_milliseconds(lease_s)
        with unavailable_on_error("EVALSHA (acquire lock and get)"):
            await self._ready()
            reply: list[Any] = await self._acquire_lock_and_get(
                keys=[lock_key, *keys], args=[owner, lease_ms, int(only_if_first_missing)]
            )
        # GET of an absent key is false in Lua (so the table goes on) and nil in the reply; the reply
        # is short only when the first key's value ended the script.
        values = [cast("bytes | None", value) for value in reply[1:]]
        return reply[0] == 1, values + [None] * (len(keys) - len(values))

    async def renew_lock(self, key: str, owner: str, lease_s: float) -> bool:
        """Extend the lease only if `owner` still holds it; False when the lease was lost."""
        lease_ms = ttl_to_milliseconds(lease_s)
        with unavailable_on_error("EVALSHA (renew lock)"):
            await self._ready()
            renewed: int = await self._renew_lock(keys=[key], args=[owner, lease_ms])
        return renewed == 1

    async def release_lock(self, key: str, owner: str) -> bool:
        """Delete the lock only if `owner` holds it (compare-and-delete); True when released."""
        with unavailable_on_error("EVALSHA (release lock)"):
            await self._ready()
            released: int = await self._release_lock(keys=[key], args=[owner])
        return released == 1

    async def set_and_release_lock(
        self,
        key: str,
        value: bytes,
        ttl_s: float,
        *,
        lock_key: str,
        owner: str,
        channel: str,
        message: str,
    ) -> bool:
        """`set`, then `release_lock`, then `publish`, in one script (one round trip)."""
        ttl_ms = ttl_to_milliseconds(ttl_s)
        with unavailable_on_error("EVALSHA (set and release lock)"):
            await self._ready()
            released: int = await self._set_and_release_lock(
                keys=[key, lock_key], args=[value, ttl_ms, owner, channel, message]
            )
        return released == 1

    async def take_rate_slot(self, key: str, interval_s: float, burst: int) -> float:
        """GCRA token bucket at `key`: 0 when a slot was taken, else seconds to wait."""
        with unavailable_on_error("EVALSHA (rate slot)"):
            await self._ready()
            wait_ms = await self._take_rate_slot(keys=[key], args=[interval_s * 1000, burst])
        return float(wait_ms) / 1000

    async def publish(self, channel: str, message: str) -> None:
        """Send `message` to every current subscriber of `channel`, on any replica."""
        with unavailable_on_error("PUBLISH"):
            await self._ready()
            await self._client.publish(channel, message)

    async def subscribe(self, channel: str) -> AsyncIterator[str | None]:
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
            await self._ready()
            await self._client.ping()

    async def close(self) -> None:
        """Close the client and its connection pool."""
        with unavailable_on_error("close"):
            await self._client.aclose()

    async def _ready(self) -> None:
        """Called before each command; a backend that must set something up first does it here."""

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


async def close_quietly(closable: PubSub | Redis) -> None:
    """Close a pub/sub or client whose connection may already have broken; it is over either way."""
    with suppress(RedisError, OSError):
        await closable.aclose()


def client_options(socket_timeout_s: float) -> dict[str, Any]:
    """Connection options every backend uses: timeouts on every socket operation, no retries."""
    return {
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": socket_timeout_s,
        "retry": no_retry(),
    }


def multi_host_options(
    url: str,
    *,
    tls: bool,
    socket_timeout_s: float,
    ssl_ca_certs: str | None,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
) -> dict[str, Any]:
    """client_options plus, for a TLS scheme, ssl=True and the TLS files (refused without TLS)."""
    options = client_options(socket_timeout_s)
    files = tls_options(url, ssl_ca_certs, ssl_certfile, ssl_keyfile)
    if tls:
        options.update(ssl=True, **files)
    return options


def no_retry() -> Retry:
    """No command retries: the pool already checks a connection on checkout and reconnects when the
    server closed it (restart, failover), and retrying a command whose reply was lost could repeat an
    acquire and report a lock we hold as taken. A failure costs at most one timeout."""
    return Retry(NoBackoff(), retries=0)


def tls_options(
    url: str, ssl_ca_certs: str | None, ssl_certfile: str | None, ssl_keyfile: str | None
) -> dict[str, Any]:
    """The TLS files given, as redis-py options; ValueError when the URL's scheme is not a TLS one."""
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
    scheme = url.partition("://")[0].lower()
    if given and not scheme.startswith("rediss"):
        raise ValueError(
            f"TLS options ({', '.join(sorted(given))}) need a rediss:// URL "
            "(or rediss+sentinel://, rediss+cluster://)"
        )
    return given


@dataclass(frozen=True)
class MultiHostUrl:
    """The parts of a `redis+sentinel://` or `redis+cluster://` URL (see `parse_multi_host_url`)."""

    scheme: str
    tls: bool
    hosts: tuple[tuple[str, int], ...]
    path: tuple[str, ...]
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    query: Mapping[str, str] = field(default_factory=dict, repr=False)


def parse_multi_host_url(
    url: str, *, default_port: int, query_names: frozenset[str] = frozenset()
) -> MultiHostUrl:
    """Split `<scheme>://[[user]:password@]host[:port][,host[:port]…][/path…][?name=value&…]`.

    Percent-escapes in the user, password and query values are decoded; `username` and `password`
    query parameters (when among the allowed `query_names`) stand for the user part, which must not
    give them too. ValueError for anything malformed, naming the problem and the scheme but never
    quoting the URL: it may carry a password, and a password with an unescaped `/`, `?` or `#` ends up
    where a host or path was expected.
    """
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator:
        raise ValueError("store URL has no scheme")

    def bad(problem: str) -> ValueError:
        return ValueError(f"bad {scheme}:// store URL: {problem}")

    rest, _, query_text = rest.partition("#")[0].partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, _, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) or None
    if not hostlist:
        raise bad("no hosts (give host:port[,host:port…])")
    hosts = tuple(
        _parse_address(entry, number, default_port, bad)
        for number, entry in enumerate(hostlist.split(","), start=1)
    )
    try:
        pairs = parse_qsl(query_text, keep_blank_values=True, strict_parsing=bool(query_text))
    except ValueError:
        raise bad("its query string is malformed") from None
    query = dict(pairs)
    if len(query) != len(pairs):
        raise bad("a query parameter is given twice")
    if unknown := set(query) - query_names:
        allowed = ", ".join(sorted(query_names)) or "none"
        raise bad(f"{len(unknown)} unsupported query parameter(s); allowed: {allowed}")
    if "username" in query:
        if username is not None:
            raise bad("username given twice (user part and query)")
        username = query["username"] or None
    if "password" in query:
        if password is not None:
            raise bad("password given twice (user part and query)")
        password = query["password"] or None
    return MultiHostUrl(
        scheme=scheme,
        tls=scheme.startswith("rediss"),
        hosts=hosts,
        path=tuple(segment for segment in path.split("/") if segment),
        username=username,
        password=password,
        query=query,
    )


def _parse_address(
    entry: str, number: int, default_port: int, bad: Callable[[str], ValueError]
) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port`; `number` says which entry, for the error."""
    where = f"address #{number}"
    if not entry:
        raise bad(f"{where} is empty (give host:port[,host:port…])")
    if entry.startswith("["):
        host, bracket, port_text = entry[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise bad(f"{where} has an unclosed or misplaced IPv6 bracket")
        port_text = port_text[1:]
        has_port = bool(port_text) or entry.endswith(":")
    else:
        host, has_colon, port_text = entry.rpartition(":")
        has_port = bool(has_colon)
        if not has_colon:
            host, port_text = entry, ""
    if not host:
        raise bad(f"{where} has no host name")
    if not has_port:
        return host, default_port
    if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
        raise bad(f"{where} has a bad port (must be a number from 1 to 65535)")
    return host, int(port_text)


@contextmanager
def unavailable_on_error(operation: str) -> Iterator[None]:
    """Turn redis-py failures into StoreUnavailable, and give back a cancellation redis-py swallowed."""
    task = asyncio.current_task()
    cancels_before = task.cancelling() if task is not None else 0
    try:
        yield
    # RedisClusterException (no node reachable, slot not covered, …) is not a RedisError.
    except (RedisError, RedisClusterException, OSError) as error:
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
    # The cluster client's own errors may quote the command ("… Command: (…)"), but when it could reach
    # no node at all, the transport error behind that is worth naming.
    if isinstance(error, RedisClusterException) and isinstance(error.__cause__, _TRANSPORT_ERRORS):
        return f"{type(error).__name__}: no node reachable ({_describe(error.__cause__)})"
    # Server replies (e.g. "unknown command … with args beginning with: …") may quote the value.
    return type(error).__name__
