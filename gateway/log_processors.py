"""The pieces every log line goes through — key and value redaction, the timestamp, the stream — shared
by the structlog chain (gateway.logging) and the directly rendered request line (gateway.request_line)."""

from __future__ import annotations

import asyncio
import atexit
import sys
import time
from collections.abc import Iterator, MutableMapping
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
    was later replaced or closed (test capture, a reopened stdout).

    `write()` keeps a line until the end of the event loop's turn; `flush()` writes everything kept.
    structlog's WriteLogger and the stdlib handler flush after every line, so those lines — warnings,
    errors — go out at once and in order behind the lines kept before them; the request line only
    writes (gateway.request_line), so the lines of one turn's requests leave in one write() instead of
    one each (profiled: a tenth of a cache hit's CPU). A line is kept no longer than the turn: the
    flush is the next callback the loop runs, before it can block, and at exit. Outside a running loop
    (another thread, start-up, shutdown) a line is written at once.
    """

    # One write() holds at most this much (whole lines): a pipe write up to PIPE_BUF is atomic, so the
    # workers of `serve --workers`, which share stdout, never splice each other's lines.
    MAX_WRITE = 4096

    def __init__(self) -> None:
        self._kept: list[str] = []
        # The loop whose next turn flushes: a loop that closed with the flush pending (a test's, at its
        # end) must not stop the next loop's lines from being flushed.
        self._flush_on: asyncio.AbstractEventLoop | None = None
        atexit.register(self.flush)

    def write(self, text: str) -> int:
        self._kept.append(text)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return len(text)
        if self._flush_on is not loop:
            loop.call_soon(self.flush)
            self._flush_on = loop
        return len(text)

    def flush(self) -> None:
        self._flush_on = None
        if not self._kept:
            return
        kept, self._kept = self._kept, []
        stdout = sys.stdout
        for chunk in _whole_lines_up_to(kept, self.MAX_WRITE):
            stdout.write(chunk)
            stdout.flush()  # each chunk its own write(), whatever stdout's buffering


def _whole_lines_up_to(lines: list[str], limit: int) -> Iterator[str]:
    """The lines joined into chunks of at most `limit` bytes (as UTF-8); a longer line is a chunk alone."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        length = len(line) if line.isascii() else len(line.encode())
        if chunk and size + length > limit:
            yield "".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += length
    if chunk:
        yield "".join(chunk)


STDOUT = CurrentStdout()  # one for every writer of lines: one order, one buffer


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
