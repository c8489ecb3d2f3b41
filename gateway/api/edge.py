"""One HTTP listener's side of the defences of gateway/api/server.py: its limits (`EdgeLimits`, from the
settings), its count of open connections, its `gateway_http_*` children and its quieted log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from gateway.burst_log import BurstLog
from gateway.metrics import HTTP_REJECTION_REASONS, Metrics
from gateway.settings import Settings


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """The settings of the defences, for one listener."""

    header_timeout_s: float = 10.0
    keepalive_timeout_s: float = 75.0
    max_connections: int = 1024  # 0: no cap
    quiet_s: float = 10.0  # a peer's repeated edge events within this share one log line

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            header_timeout_s=settings.header_timeout_s,
            keepalive_timeout_s=settings.keepalive_timeout_s,
            max_connections=settings.max_connections,
        )


class EdgeListener:
    """One listener's limits, its count of open connections, its metrics and its quieted log."""

    def __init__(self, name: str, limits: EdgeLimits, metrics: Metrics) -> None:
        self.name = name
        self.limits = limits
        self.open_connections = 0
        # Children made once (labels() costs a lock and a lookup), and at zero from the start.
        self._open = metrics.http_connections.labels(name)
        self._open.set(0)
        self._rejected = {
            reason: metrics.http_connections_rejected.labels(name, reason)
            for reason in HTTP_REJECTION_REASONS
        }
        self._parser_errors = metrics.http_parser_errors.labels(name)
        self._log = BurstLog("gateway.http", limits.quiet_s, listener=name)

    def at_capacity(self) -> bool:
        cap = self.limits.max_connections
        return cap > 0 and self.open_connections >= cap

    def opened(self) -> None:
        self.open_connections += 1
        self._open.inc()

    def closed(self) -> None:
        self.open_connections -= 1
        self._open.dec()

    def rejected(self, reason: str, peer: str) -> None:
        self._rejected[reason].inc()
        # The cap is the operator's concern (too few replicas, or an attack); a timeout the client's.
        level = "warning" if reason == "cap" else "info"
        self._log.note("http_connection_rejected", {"reason": reason, "peer": peer}, level=level)

    def parser_error(self, peer: str, error: HttpProcessingError, request_id: str) -> None:
        self._parser_errors.inc()
        # The class name says what kind of fault; the message would quote the bytes at fault.
        burst = {"reason": type(error).__name__, "peer": peer}
        self._log.note("http_parser_error", burst, request_id=request_id)

    def close(self) -> None:
        self._log.flush()


def peer(transport: Any) -> str:
    """The client's address (no port: one client opens many connections)."""
    peername = transport.get_extra_info("peername") if transport is not None else None
    return str(peername[0]) if isinstance(peername, tuple) and peername else "local"
