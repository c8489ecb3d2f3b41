"""The canonical log line, one per request, written by the request middleware through `REQUEST_LINE`.

As JSON (production: stdout is not a terminal) the line is rendered here in one function: the request's
log-context fields, its own fields, the level and the timestamp in one dict, the key and value
redaction of every other line (the same processor objects), one orjson call and one write(). The
structlog chain gives the same line at about three times the cost — its bound logger copies the event
and runs seven processors on each call — and this line is written on every request, the cache hits
included. tests/test_request_line.py holds the two renderings equal.

On a terminal (the console renderer), and before `configure_logging` has run, the line goes through
structlog like every other line.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any, Protocol

import orjson
import structlog

from gateway.log_context import merge_log_context
from gateway.log_processors import REDACTED_KEYS, CurrentStdout, IsoTimestamp, redact_secrets

# Module level, so that tests which re-read structlog's configuration find it (a cached logger is
# an attribute of the lazy proxy, see tests/api/test_no_leaks.py forget_cached_loggers).
log = structlog.get_logger("gateway.access")

EVENT = "request"
LEVEL = "info"


class Processor(Protocol):
    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any], /
    ) -> MutableMapping[str, Any]: ...


class TextStream(Protocol):
    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class StructlogRequestLine:
    """The line through structlog's configured chain (the console renderer on a terminal)."""

    def write(self, fields: dict[str, Any]) -> None:
        log.info(EVENT, **fields)


class JsonRequestLine:
    """The line rendered directly: what `configure_logging`'s JSON chain renders for
    `log.info("request", …)`, key for key and in the same order, at `level` and above only."""

    def __init__(
        self,
        level: int,
        redact_values: Processor,
        timestamp: IsoTimestamp | None = None,
        out: TextStream | None = None,
    ) -> None:
        self._enabled = level <= logging.INFO
        self._redact_values = redact_values
        self._timestamp = timestamp or IsoTimestamp()
        self._out = out or CurrentStdout()

    def write(self, fields: dict[str, Any]) -> None:
        """`fields` (the middleware's own dict, taken over) in the chain's order: the call's keys then
        `event` (structlog's bound logger), the context's fields before them (merge_log_context), then
        level, timestamp, key and value redaction."""
        if not self._enabled:
            return
        fields["event"] = EVENT
        event = merge_log_context(None, LEVEL, fields)
        event["level"] = LEVEL
        event["timestamp"] = self._timestamp.now()
        if not REDACTED_KEYS.isdisjoint(event):
            redact_secrets(None, LEVEL, event)
        event = self._redact_values(None, LEVEL, event)
        # One write() with the newline: the workers of `serve --workers` share stdout and must not
        # splice their lines; the flush after each line is what structlog's WriteLogger does, so a
        # crash loses no line the OS was handed.
        out = self._out
        out.write(orjson.dumps(event, default=str, option=orjson.OPT_APPEND_NEWLINE).decode())
        out.flush()


RequestLine = StructlogRequestLine | JsonRequestLine


class RequestLineRoute:
    """Where the middleware's line goes; `configure_logging` chooses (`use`)."""

    def __init__(self) -> None:
        self.line: RequestLine = StructlogRequestLine()
        self.write = self.line.write  # the bound method itself: one call on the hit path

    def use(self, line: RequestLine) -> None:
        self.line, self.write = line, line.write


REQUEST_LINE = RequestLineRoute()
