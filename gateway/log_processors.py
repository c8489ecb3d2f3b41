"""The pieces every log line goes through — key and value redaction, the timestamp, the stream — shared
by the structlog chain (gateway.logging) and the directly rendered request line (gateway.request_line)."""

from __future__ import annotations

import sys
import time
from collections.abc import MutableMapping
from typing import Any

from gateway.redaction import Redactor

# Keys whose values are never logged, whatever a call site passes (defence in depth: no call site
# should pass them in the first place).
REDACTED_KEYS = frozenset(
    {
        "app_secret",
        "secret",
        "sign",
        "signature",
        "token",
        "authorization",
        "api_key",
        "access_token",
    }
)


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in event.keys() & REDACTED_KEYS:
        event[key] = "[redacted]"
    return event


class RedactValues:
    """Redact every logged string with the one Redactor (gateway/redaction.py): configured secrets and
    credential shapes, wherever they appear — defence in depth against a secret or token that ends up in
    an exception message or a vendor's echo."""

    # Request, trace and span ids look like tokens (hex digits) and must survive for correlation; the
    # timestamp is our own (and unique per line, so worth skipping). Only configured secrets are taken
    # out of them.
    SHAPES_ALLOWED = frozenset({"request_id", "trace_id", "span_id", "timestamp"})
    MEMO_ENTRIES, MEMO_LENGTH = 4096, 128

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._version = redactor.version
        # Most logged strings repeat on every line (event, path, provider, kind, client, outcome):
        # remembering their redacted form keeps this processor at a dict lookup per field on the hit path.
        self._memo: dict[str, str] = {}

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        redactor = self.redactor
        if redactor.version != self._version:  # it learnt a secret: memoized lines may hold it
            self._memo.clear()
            self._version = redactor.version
        # Names bound once per call, not per field: this loop runs for every field of every line.
        memo, allowed, limit = self._memo, self.SHAPES_ALLOWED, self.MEMO_LENGTH
        for key, value in event.items():
            if not isinstance(value, str):
                continue
            if key in allowed:
                event[key] = redactor.redact_secrets(value)
                continue
            redacted = memo.get(value)
            if redacted is None:
                redacted = redactor.redact(value)
                if len(value) <= limit:
                    if len(memo) >= self.MEMO_ENTRIES:
                        memo.clear()  # simpler than LRU; the repeating values come back at once
                    memo[value] = redacted
            event[key] = redacted
        return event


class CurrentStdout:
    """Writes to whatever `sys.stdout` is now, so loggers cached at first use never hold a stream that
    was later replaced or closed (test capture, a reopened stdout)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


class IsoTimestamp:
    """`timestamp` as ISO 8601 UTC with milliseconds; the date-time part is formatted once per second
    (structlog's TimeStamper formats it on every line: profiled at ~2 % of a cache hit)."""

    def __init__(self) -> None:
        # (second, its text) and (millisecond, its text), each swapped whole: a line logged from
        # another thread never pairs one instant with another's text.
        self._second: tuple[int, str] = (-1, "")
        self._millisecond: tuple[int, str] = (-1, "")

    def now(self) -> str:
        """The current time as a line's `timestamp` (the text kept for lines within a millisecond)."""
        millisecond = int(time.time() * 1000)
        cached, text = self._millisecond
        if millisecond != cached:
            second, fraction = divmod(millisecond, 1000)
            cached_second, prefix = self._second
            if second != cached_second:
                prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
                self._second = (second, prefix)
            text = f"{prefix}.{fraction:03d}Z"
            self._millisecond = (millisecond, text)
        return text

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event["timestamp"] = self.now()
        return event
