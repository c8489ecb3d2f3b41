"""Redis Sentinel credential store: `redis+sentinel://` and `rediss+sentinel://`.

    redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/<service>[/<db>]
        [?password=…&username=…&sentinel_password=…&sentinel_username=…]

The hosts are the sentinels (port 26379 when left out); `<service>` is the name they monitor the master
under (`sentinel monitor <service> …`). The user and password (in the URL's user part or as query
parameters) are the master's; the sentinels' own, if they require one, are `sentinel_username` and
`sentinel_password`. `rediss+sentinel://` speaks TLS to the sentinels and to the master alike, with the
same CA and client certificate options as `rediss://`.

Every new connection asks the sentinels for the current master. A connection to a master that died fails
with StoreUnavailable and the pool replaces it. A master that is still up when the sentinels name another
(a `SENTINEL FAILOVER`, a network partition) keeps accepting writes until the sentinels demote it, which
can take ten seconds; so while the store is in use it also asks the sentinels at most once every
`master_check_interval_s` (in the background, never delaying a command). Its pool hands out and takes
back only connections to the master named last, reconnecting any other, and a subscription on the old
master ends with StoreUnavailable (subscribe again). Data written to the old master and not yet
replicated is lost; the gateway treats that as an empty cache.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from typing import Final

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError

from gateway.store.connection import (
    DEFAULT_PUBSUB_HEARTBEAT_S,
    DEFAULT_SOCKET_TIMEOUT_S,
    Connection,
)
from gateway.store.redis import RedisStore
from gateway.store.redis_errors import unavailable_on_error
from gateway.store.urls import parse_sentinel_url

DEFAULT_MASTER_CHECK_INTERVAL_S: Final = 1.0


class MasterFollowingPool(SentinelConnectionPool):
    """A Sentinel master pool that hands out, and takes back, only connections to the master it was
    told of last; any other is reconnected (asking the sentinels again) before use.

    redis-py's asyncio pool asks the sentinels only when it opens a connection, so without this a
    connection opened before a failover keeps talking to the old master for as long as it stays open.
    """

    # redis-py leaves these methods untyped, hence the ignores.
    async def get_connection(self, *args: object, **options: object) -> AbstractConnection:
        # Passed through as given: redis-py warns about arguments (deprecated) that nobody passed.
        connection: AbstractConnection = await super().get_connection(  # type: ignore[no-untyped-call]
            *args, **options
        )
        if self._on_master(connection):
            return connection
        try:
            await connection.disconnect()
            await connection.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        if not self._on_master(connection):
            connection.mark_for_reconnect()  # type: ignore[no-untyped-call]  # closed on the way back
        await super().release(connection)

    def _on_master(self, connection: AbstractConnection) -> bool:
        master = self.master_address
        if master is None or not connection.is_connected:
            return True  # nothing to compare yet; connecting asks the sentinels anyway
        # A SentinelManagedConnection has both; the abstract type declares no port.
        address = (getattr(connection, "host", None), getattr(connection, "port", None))
        return address == (master[0], master[1])


class SentinelStore(RedisStore):
    """`RedisStore` on the master of `service` that `sentinel`'s sentinels name; it owns and closes the
    `Sentinel` (its connections to the sentinels) as well as the master connections."""

    def __init__(
        self,
        sentinel: Sentinel,
        service: str,
        *,
        db: int = 0,
        pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S,
        command_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
        master_check_interval_s: float = DEFAULT_MASTER_CHECK_INTERVAL_S,
    ) -> None:
        client: Redis = sentinel.master_for(
            service, db=db, connection_pool_class=MasterFollowingPool
        )
        super().__init__(
            client, pubsub_heartbeat_s=pubsub_heartbeat_s, command_timeout_s=command_timeout_s
        )
        self._sentinel = sentinel
        self._pool: MasterFollowingPool = client.connection_pool  # type: ignore[assignment]
        self._master_check_interval_s = master_check_interval_s
        self._next_master_check = 0.0
        self._master_check: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, connection: Connection = Connection()) -> SentinelStore:  # noqa: B008
        """A store for a `redis+sentinel://` or `rediss+sentinel://` URL (see the module docstring).

        ValueError for a malformed URL, never quoting it. No connection is made here.
        """
        parsed = parse_sentinel_url(url)
        options = connection.client_options(url, tls=parsed.tls)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            list(parsed.sentinels),
            # Without sentinel_kwargs only the socket_* options would reach the sentinel connections;
            # they too must not retry, or a dead sentinel would cost several timeouts per lookup.
            # Their queries are not store commands (no deadline of the store's around them, some run
            # in the background): redis-py bounds each of their socket operations itself.
            sentinel_kwargs={
                **options,
                "socket_timeout": connection.socket_timeout_s,
                "username": parsed.sentinel_username,
                "password": parsed.sentinel_password,
            },
            username=parsed.username,
            password=parsed.password,
            **options,
        )
        return cls(
            sentinel,
            parsed.service,
            db=parsed.db,
            pubsub_heartbeat_s=connection.pubsub_heartbeat_s,
            command_timeout_s=connection.socket_timeout_s,
        )

    async def close(self) -> None:
        """Close the master connections and the connections to the sentinels."""
        check, self._master_check = self._master_check, None
        if check is not None:
            check.cancel()
            await asyncio.wait({check})
        try:
            await super().close()
        finally:
            with unavailable_on_error("close (sentinels)"):
                await self._sentinel.aclose()

    def _ready(self) -> None:
        self._schedule_master_check()

    def _subscription_is_current(self, pubsub: PubSub) -> bool:
        self._schedule_master_check()
        connection = pubsub.connection
        return connection is None or self._pool._on_master(connection)

    def _schedule_master_check(self) -> None:
        """Start a background master check if none ran in the last interval (and none is running)."""
        now = time.monotonic()
        if self._master_check is not None or now < self._next_master_check:
            return
        self._next_master_check = now + self._master_check_interval_s
        self._master_check = asyncio.get_running_loop().create_task(self._check_master())
        self._master_check.add_done_callback(self._master_check_done)

    def _master_check_done(self, task: asyncio.Task[None]) -> None:
        if self._master_check is task:
            self._master_check = None

    async def _check_master(self) -> None:
        """Ask the sentinels for the master and tell the pool (which also closes idle connections to a
        previous one)."""
        # No answer now is no news: the commands themselves report trouble, and the next check retries.
        with suppress(RedisError, OSError):
            await self._pool.get_master_address()  # type: ignore[no-untyped-call]
