"""Store URLs: the one parser for `redis+sentinel://` and `redis+cluster://` multi-host URLs, and the TLS
file options every Redis URL may take.

Error messages name the problem and the scheme but never quote the URL: it may carry a password, and a
password with an unescaped `/`, `?` or `#` ends up where a host or path was expected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

DEFAULT_SENTINEL_PORT: Final = 26379
DEFAULT_CLUSTER_PORT: Final = 6379
SENTINEL_QUERY_NAMES: Final = frozenset(
    {"username", "password", "sentinel_username", "sentinel_password"}
)
CLUSTER_QUERY_NAMES: Final = frozenset({"username", "password"})
Address = tuple[str, int]


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case ('' when it has none); never parses the rest (it may not parse)."""
    scheme, separator, _ = url.partition("://")
    return scheme.lower() if separator else ""


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
    if given and not scheme_of(url).startswith("rediss"):
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
    give them too. ValueError for anything malformed, never quoting the URL.
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


@dataclass(frozen=True)
class SentinelUrl:
    """What a `redis+sentinel://` URL says; the credentials are left out of the repr."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    tls: bool
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Parse a `redis+sentinel://` or `rediss+sentinel://` URL; ValueError (never quoting it) if bad."""
    parts = parse_multi_host_url(
        url, default_port=DEFAULT_SENTINEL_PORT, query_names=SENTINEL_QUERY_NAMES
    )
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
    return SentinelUrl(
        sentinels=parts.hosts,
        service=unquote(parts.path[0]),
        db=int(db_text),
        tls=parts.tls,
        username=parts.username,
        password=parts.password,
        sentinel_username=parts.query.get("sentinel_username"),
        sentinel_password=parts.query.get("sentinel_password"),
    )


@dataclass(frozen=True)
class ClusterUrl:
    """What a `redis+cluster://` URL says; the credentials are left out of the repr."""

    nodes: tuple[Address, ...]
    tls: bool
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


def parse_cluster_url(url: str) -> ClusterUrl:
    """Parse a `redis+cluster://` or `rediss+cluster://` URL; ValueError (never quoting it) if bad."""
    parts = parse_multi_host_url(
        url, default_port=DEFAULT_CLUSTER_PORT, query_names=CLUSTER_QUERY_NAMES
    )
    if parts.path not in ((), ("0",)):
        raise ValueError(
            f"bad {parts.scheme}:// store URL: a cluster has only database 0 "
            "(leave the path out or give /0)"
        )
    return ClusterUrl(
        nodes=parts.hosts, tls=parts.tls, username=parts.username, password=parts.password
    )
