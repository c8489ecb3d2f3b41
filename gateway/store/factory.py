"""Pick the credential store backend from the `redis_url` setting's scheme."""

from __future__ import annotations

from typing import Final, TypedDict, Unpack
from urllib.parse import urlsplit

from gateway.store import CredentialStore
from gateway.store.cluster import ClusterStore
from gateway.store.memory import MemoryStore
from gateway.store.redis import DEFAULT_SOCKET_TIMEOUT_S, RedisStore
from gateway.store.sentinel import SentinelStore

SUPPORTED_SCHEMES: Final = (
    "memory",
    "redis",
    "rediss",
    "unix",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
)
# Schemes named in errors as coming later; none at the moment.
PLANNED_SCHEMES: Final[tuple[str, ...]] = ()


class TlsOptions(TypedDict, total=False):
    """Files for `rediss://`: the CA bundle to trust, and a client certificate and key if required."""

    ssl_ca_certs: str | None
    ssl_certfile: str | None
    ssl_keyfile: str | None


def open_store(
    url: str,
    *,
    socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
    **tls_options: Unpack[TlsOptions],
) -> CredentialStore:
    """The store `url` names; ValueError for a malformed URL or a scheme this gateway cannot serve.

    No connection is made here, so a Redis that is down shows up at the first call as StoreUnavailable.
    Error messages never quote the URL beyond its scheme (it may carry a password).
    """
    # The scheme by hand: urlsplit would parse a multi-host netloc and choke on it (or on a bad port).
    scheme = url.partition("://")[0].lower() if "://" in url else urlsplit(url).scheme.lower()
    if scheme == "memory":
        if any(value is not None for value in tls_options.values()):
            raise ValueError("TLS options need a rediss:// URL, not memory://")
        return MemoryStore()
    if scheme in ("redis", "rediss", "unix"):
        return RedisStore.from_url(url, socket_timeout_s=socket_timeout_s, **tls_options)
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        return SentinelStore.from_url(url, socket_timeout_s=socket_timeout_s, **tls_options)
    if scheme in ("redis+cluster", "rediss+cluster"):
        return ClusterStore.from_url(url, socket_timeout_s=socket_timeout_s, **tls_options)
    raise ValueError(_unsupported_scheme_message(scheme))


def _unsupported_scheme_message(scheme: str) -> str:
    # Name only the scheme: the rest of the URL may carry a password.
    supported = ", ".join(f"{name}://" for name in SUPPORTED_SCHEMES)
    if scheme in PLANNED_SCHEMES:
        return f"store URL scheme {scheme}:// is not supported yet; supported: {supported}"
    shown = f"{scheme}://" if scheme else "(none)"
    message = f"unsupported store URL scheme {shown}; supported: {supported}"
    if PLANNED_SCHEMES:
        planned = ", ".join(f"{name}://" for name in PLANNED_SCHEMES)
        message += f" ({planned} are not supported yet)"
    return message
