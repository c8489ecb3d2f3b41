"""Redis Sentinel credential store: `redis+sentinel://` and `rediss+sentinel://`.

    redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/<service>[/<db>]
        [?password=…&username=…&sentinel_password=…&sentinel_username=…]

The hosts are the sentinels (port 26379 when left out); `<service>` is the name they monitor the master
under (`sentinel monitor <service> …`). The user and password (in the URL's user part or as query
parameters) are the master's; the sentinels' own, if they require one, are `sentinel_username` and
`sentinel_password`. `rediss+sentinel://` speaks TLS to the sentinels and to the master alike, with the
same CA and client certificate options as `rediss://`.

Every new connection asks the sentinels for the current master, so after a failover the store reaches the
new master on its next connection: a connection to the old master fails (killed, or refused because the
old master came back as a replica) with StoreUnavailable, and the pool replaces it. Data written to the old
master and not yet replicated is lost; the gateway treats that as an empty cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from gateway.store.redis import (
    DEFAULT_PUBSUB_HEARTBEAT_S,
    DEFAULT_SOCKET_TIMEOUT_S,
    RedisStore,
    client_options,
    parse_multi_host_url,
    tls_options,
    unavailable_on_error,
)

DEFAULT_SENTINEL_PORT: Final = 26379
QUERY_NAMES: Final = frozenset({"username", "password", "sentinel_username", "sentinel_password"})


class SentinelStore(RedisStore):
    """`RedisStore` on the master a set of sentinels names; owns and closes the `Sentinel` too."""

    def __init__(
        self,
        client: Redis,
        sentinel: Sentinel,
        *,
        pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S,
    ) -> None:
        super().__init__(client, pubsub_heartbeat_s=pubsub_heartbeat_s)
        self._sentinel = sentinel

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
    ) -> SentinelStore:
        """A store for a `redis+sentinel://` or `rediss+sentinel://` URL (see the module docstring).

        ValueError for a malformed URL, never quoting it. No connection is made here.
        """
        parsed = parse_sentinel_url(url)
        options = client_options(socket_timeout_s)
        tls = tls_options(url, ssl_ca_certs, ssl_certfile, ssl_keyfile)  # refuses them without TLS
        if parsed.tls:
            options.update(ssl=True, **tls)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            list(parsed.sentinels),
            # Without sentinel_kwargs only the socket_* options would reach the sentinel connections;
            # they too must not retry, or a dead sentinel would cost several timeouts per lookup.
            sentinel_kwargs={**options, **parsed.sentinel_auth},
            **options,
            **parsed.master_auth,
        )
        client = sentinel.master_for(parsed.service, db=parsed.db)
        return cls(client, sentinel, pubsub_heartbeat_s=pubsub_heartbeat_s)

    async def close(self) -> None:
        """Close the master client and the connections to the sentinels."""
        try:
            await super().close()
        finally:
            with unavailable_on_error("close (sentinels)"):
                await self._sentinel.aclose()


@dataclass(frozen=True)
class SentinelUrl:
    """What a `redis+sentinel://` URL says; the credentials are left out of the repr."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    tls: bool
    master_auth: Mapping[str, str] = field(default_factory=dict, repr=False)
    sentinel_auth: Mapping[str, str] = field(default_factory=dict, repr=False)


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Parse a `redis+sentinel://` or `rediss+sentinel://` URL; ValueError (never quoting it) if bad."""
    parts = parse_multi_host_url(url, default_port=DEFAULT_SENTINEL_PORT, query_names=QUERY_NAMES)
    scheme = parts.scheme
    if not parts.path:
        raise ValueError(
            f"bad {scheme}:// store URL: no service name "
            f"(give {scheme}://host:port[,host:port…]/<service>[/<db>])"
        )
    if len(parts.path) > 2:
        raise ValueError(f"bad {scheme}:// store URL: the path is /<service>[/<db>], nothing more")
    db_text = parts.path[1] if len(parts.path) == 2 else "0"
    if not (db_text.isascii() and db_text.isdigit()):
        raise ValueError(f"bad {scheme}:// store URL: the database must be a number")
    for name, in_user_part in (("username", parts.username), ("password", parts.password)):
        if name in parts.query and in_user_part is not None:
            raise ValueError(f"bad {scheme}:// store URL: {name} given twice (user part and query)")
    return SentinelUrl(
        sentinels=parts.hosts,
        service=unquote(parts.path[0]),
        db=int(db_text),
        tls=parts.tls,
        master_auth=_given(
            username=parts.query.get("username", parts.username),
            password=parts.query.get("password", parts.password),
        ),
        sentinel_auth=_given(
            username=parts.query.get("sentinel_username"),
            password=parts.query.get("sentinel_password"),
        ),
    )


def _given(**options: str | None) -> dict[str, str]:
    return {name: value for name, value in options.items() if value is not None}
