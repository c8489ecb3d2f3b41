"""Redis Cluster credential store: `redis+cluster://` and `rediss+cluster://`.

    redis+cluster://[[user]:password@]host[:port][,host[:port]…][/0][?username=…&password=…]

The hosts are startup nodes (port 6379 when left out): any one that answers is enough to discover the
cluster. Every command goes to the node owning its key's hash slot, Lua scripts included (a script runs
where its KEYS[1] lives, and is given only keys of that slot). The gateway's
keys for one identity share a hash tag (`<prefix>:v1:{<keyed hash>}:cred`, `…:lock`, `…:fail`), so an
identity's value, lock and failure record sit in one slot; different identities spread over the nodes.
`rediss+cluster://` speaks TLS to every node, with the same CA and client certificate options as `rediss://`.

Pub/sub: a classic PUBLISH reaches the subscribers on every node (the cluster bus broadcasts it), so a
subscription needs a connection to just one node. Each subscription opens its own plain connection,
trying first the node that last worked, then the startup nodes, then any node discovered since; one
that cannot be reached is passed over for the next. PUBLISH goes through the cluster client (to the node
owning the channel name's slot).

Failures: no command is retried (a retry after a lost reply could repeat an acquire and report our own
lock as taken). After a connection error or CLUSTERDOWN the client rediscovers the topology before its
next command; MOVED and ASK redirections (a failover, a resharding) are followed within the call. Every
failure, the cluster client's own exceptions included, surfaces as StoreUnavailable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import SSLConnection
from redis.crc import key_slot

from gateway.store import StoreUnavailable
from gateway.store.redis import (
    DEFAULT_PUBSUB_HEARTBEAT_S,
    DEFAULT_SOCKET_TIMEOUT_S,
    RedisStore,
    close_quietly,
    multi_host_options,
    no_retry,
    parse_multi_host_url,
    unavailable_on_error,
)

DEFAULT_CLUSTER_PORT: Final = 6379
QUERY_NAMES: Final = frozenset({"username", "password"})

# Connection options a subscriber's plain connection copies from the cluster client's.
_NODE_OPTION_NAMES: Final = (
    "username",
    "password",
    "credential_provider",
    "client_name",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
)

Address = tuple[str, int]


class ClusterStore(RedisStore):
    """`CredentialStore` over a `redis.asyncio.RedisCluster` client, which it owns and closes."""

    def __init__(
        self, client: RedisCluster, *, pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S
    ) -> None:
        connection_kwargs = client.get_connection_kwargs()
        self._setup(client, connection_kwargs, pubsub_heartbeat_s)
        self._cluster = client
        self._startup_nodes: list[Address] = [
            (node.host, int(node.port)) for node in client.nodes_manager.startup_nodes.values()
        ]
        self._node_options = _node_options(connection_kwargs)
        self._last_subscriber_node: Address | None = None

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
    ) -> ClusterStore:
        """A store for a `redis+cluster://` or `rediss+cluster://` URL (see the module docstring).

        ValueError for a malformed URL, never quoting it. No connection is made here.
        """
        parsed = parse_cluster_url(url)
        options = multi_host_options(
            url,
            tls=parsed.tls,
            socket_timeout_s=socket_timeout_s,
            ssl_ca_certs=ssl_ca_certs,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
            username=parsed.username,
            password=parsed.password,
            **options,
        )
        return cls(client, pubsub_heartbeat_s=pubsub_heartbeat_s)

    async def _ready(self) -> None:
        # Discover the topology before a command is routed (a no-op once done, until a failure asks for
        # it again). redis-py 8.1 routes a keyed command sent before discovery, or right after a
        # CLUSTERDOWN reset, to a random node; concurrent ones then earn MOVED replies, whose handling
        # closes every connection, including those other commands are using at that moment.
        await self._cluster.initialize()

    async def acquire_lock_and_get(
        self,
        lock_key: str,
        owner: str,
        lease_s: float,
        keys: Sequence[str],
        *,
        only_if_first_missing: bool = False,
    ) -> tuple[bool, list[bytes | None]]:
        """One script for the keys in the lock's hash slot; a GET each for the others, after it.

        A script may only touch keys of one slot; the gateway's per-identity keys share one, a
        per-provider key (a quota ban) does not. With `only_if_first_missing`, `keys[0]` must be in
        the lock's slot."""
        slot = key_slot(lock_key.encode())
        local = [key for key in keys if key_slot(key.encode()) == slot]
        if only_if_first_missing and keys and local[:1] != [keys[0]]:
            raise ValueError("only_if_first_missing needs keys[0] in the lock's hash slot")
        taken, local_values = await super().acquire_lock_and_get(
            lock_key, owner, lease_s, local, only_if_first_missing=only_if_first_missing
        )
        if only_if_first_missing and local_values and local_values[0] is not None:
            return False, [local_values[0]] + [None] * (len(keys) - 1)
        found = dict(zip(local, local_values, strict=True))
        values = [found[key] if key in found else await self.get(key) for key in keys]
        return taken, values

    async def ping(self) -> None:
        """Return when a node answers and reports the cluster healthy (every slot served).

        A node answers PING even while the cluster is down and refuses every key; that is not up.
        """
        with unavailable_on_error("CLUSTER INFO"):
            await self._ready()
            info: Mapping[str, Any] = await self._cluster.cluster_info()
        state = info.get("cluster_state")
        if state != "ok":
            raise StoreUnavailable(f"redis cluster is not serving: cluster_state is {state}")

    @asynccontextmanager
    async def _subscribed(self, channel: str) -> AsyncIterator[PubSub]:
        """A confirmed subscription on one node's own connection, closed afterwards."""
        client, pubsub = await self._subscribe_on_some_node(channel)
        try:
            yield pubsub
        finally:
            await close_quietly(pubsub)
            await close_quietly(client)

    async def _subscribe_on_some_node(self, channel: str) -> tuple[Redis, PubSub]:
        candidates = self._subscriber_candidates()
        failure: StoreUnavailable | None = None
        for host, port in candidates:
            client = Redis(host=host, port=port, **self._node_options)
            pubsub = client.pubsub()
            try:
                await self._start_subscription(pubsub, channel)
            except BaseException as error:
                await close_quietly(pubsub)
                await close_quietly(client)
                if not isinstance(error, StoreUnavailable):
                    raise
                failure = error
                continue
            self._last_subscriber_node = (host, port)
            return client, pubsub
        raise StoreUnavailable(
            f"redis SUBSCRIBE failed on all {len(candidates)} cluster nodes tried; last: {failure}"
        )

    def _subscriber_candidates(self) -> list[Address]:
        """The node that last worked, then the startup nodes, then the nodes discovered since."""
        discovered = [(node.host, int(node.port)) for node in self._cluster.get_nodes()]
        candidates: list[Address] = []
        for address in [self._last_subscriber_node, *self._startup_nodes, *discovered]:
            if address is not None and address not in candidates:
                candidates.append(address)
        return candidates


@dataclass(frozen=True)
class ClusterUrl:
    """What a `redis+cluster://` URL says; the credentials are left out of the repr."""

    nodes: tuple[Address, ...]
    tls: bool
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


def parse_cluster_url(url: str) -> ClusterUrl:
    """Parse a `redis+cluster://` or `rediss+cluster://` URL; ValueError (never quoting it) if bad."""
    parts = parse_multi_host_url(url, default_port=DEFAULT_CLUSTER_PORT, query_names=QUERY_NAMES)
    scheme = parts.scheme
    if parts.path not in ((), ("0",)):
        raise ValueError(
            f"bad {scheme}:// store URL: a cluster has only database 0 (leave the path out or give /0)"
        )
    return ClusterUrl(
        nodes=parts.hosts,
        tls=parts.tls,
        username=parts.username,
        password=parts.password,
    )


def _node_options(connection_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Options for a plain connection to one node, matching the cluster client's (auth, TLS, timeouts)."""
    options = {
        name: connection_kwargs[name]
        for name in _NODE_OPTION_NAMES
        if connection_kwargs.get(name) is not None
    }
    if connection_kwargs.get("connection_class") is SSLConnection:
        options["ssl"] = True
        options.update(
            (name, value)
            for name, value in connection_kwargs.items()
            if name.startswith("ssl_") and value is not None
        )
    # Like every store connection: bytes, and no retries (see client_options).
    options.update(decode_responses=False, retry=no_retry())
    return options
