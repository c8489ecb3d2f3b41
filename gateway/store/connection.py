"""How a Redis backend's connections are made: timeouts, reconnecting, TLS files, the pub/sub heartbeat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio.retry import Retry
from redis.backoff import FullJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.store.urls import tls_options

DEFAULT_SOCKET_TIMEOUT_S: Final = 0.5
DEFAULT_PUBSUB_HEARTBEAT_S: Final = 5.0
# A broken pooled connection is replaced and its command sent once more, after a jittered pause of at
# most this long; a second failure is the answer.
RECONNECT_JITTER_S: Final = 0.05


@dataclass(frozen=True, slots=True)
class Connection:
    """How every connection of a Redis backend is made: timeouts, TLS files, the pub/sub heartbeat.

    Each command, from sending it to its reply, and each connect is bounded by `socket_timeout_s`: the
    store puts one deadline around each command (gateway.store.deadlines: one ticker for all commands
    in flight, not a timer each) rather than have redis-py bound each socket operation (its
    socket_timeout costs an `asyncio.wait_for` — on Python 3.11 a task — around every send, and a timer
    around every read: ~18 us of CPU per command; a timer per command ~4 us; the ticker ~1 us). A
    command whose connection turns out to be broken is sent once more on a fresh connection, after a
    jittered pause of at most RECONNECT_JITTER_S, within the same deadline: a Redis restart (upgrade,
    eviction, node move) leaves every pooled connection dead, and the pool does not always notice at
    checkout (redis-py 8.1 skips that check when maintenance notifications are enabled, its default),
    so without this each one would cost a failed command — and a vendor call. Only connection errors
    are retried, never a timeout (a server that does not answer would just cost another timeout); the
    scripts are idempotent for their owner, so a command resent after its reply was lost does no harm.
    A failure costs at most two connects.
    """

    socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S

    def client_options(self, url: str, *, tls: bool | None) -> dict[str, Any]:
        """redis-py options for `url`'s connections. `tls`: whether to add ssl=True (the multi-host
        schemes; None for a URL whose scheme redis-py reads itself). TLS files without a TLS scheme
        are refused (ValueError). No socket timeout: the store bounds each command itself."""
        options: dict[str, Any] = {
            "socket_timeout": None,
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
