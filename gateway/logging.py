"""structlog set-up: JSON lines on stdout (a console renderer on a TTY), request fields from
gateway.log_context."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from gateway.log_context import merge_log_context
from gateway.redaction import Redactor
from gateway.settings import Settings

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
        if self.redactor.version != self._version:  # it learnt a secret: memoized lines may hold it
            self._memo.clear()
            self._version = self.redactor.version
        for key, value in event.items():
            if not isinstance(value, str):
                continue
            if key in self.SHAPES_ALLOWED:
                event[key] = self.redactor.redact_secrets(value)
                continue
            redacted = self._memo.get(value)
            if redacted is None:
                redacted = self.redactor.redact(value)
                if len(value) <= self.MEMO_LENGTH:
                    if len(self._memo) >= self.MEMO_ENTRIES:
                        self._memo.clear()  # simpler than LRU; the repeating values come back at once
                    self._memo[value] = redacted
            event[key] = redacted
        return event


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, for the Redactor of log lines and problem documents."""
    values = [p.secret() for p in settings.providers.values()]
    values += [k.get_secret_value() for k in settings.encryption_keys]
    if settings.cache_key_secret is not None:
        values.append(settings.cache_key_secret.get_secret_value())
    return values


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
        self._second = -1
        self._prefix = ""

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1000):03d}Z"
        return event


def _orjson_text(value: Any, **_: Any) -> str:
    # orjson renders the canonical line several times faster than stdlib json (profiled: 5 % of a hit).
    return orjson.dumps(value, default=str).decode()


def configure_logging(
    level: str = "info",
    *,
    json: bool | None = None,
    secrets: list[str] | None = None,
    redactor: Redactor | None = None,
) -> None:
    """Route structlog and stdlib logging (aiohttp, redis, asyncio) to stdout, through the same
    processors and redaction (`redactor`, or one knowing `secrets`): JSON lines unless stdout is a
    terminal."""
    use_json = (not sys.stdout.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if use_json
        else structlog.dev.ConsoleRenderer()
    )
    redact_values = RedactValues(redactor or Redactor(secrets or []))
    structlog.configure(
        processors=[
            merge_log_context,
            structlog.processors.add_log_level,
            IsoTimestamp(),
            redact_secrets,
            structlog.processors.format_exc_info,
            redact_values,  # after format_exc_info: exception text is redacted too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # One write() per line, newline included: print() writes the two apart, and with unbuffered
        # stdout (the image sets PYTHONUNBUFFERED) the workers of `serve --workers` then interleave
        # their lines. One short write to a pipe is atomic.
        logger_factory=structlog.WriteLoggerFactory(CurrentStdout()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    # Stdlib records become the same JSON lines (a traceback is a field, not lines of its own), and
    # StreamHandler writes each with its newline in one write() too.
    handler = logging.StreamHandler(CurrentStdout())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                merge_log_context,
                structlog.processors.add_log_level,
                structlog.stdlib.add_logger_name,
                IsoTimestamp(),
                redact_secrets,
                structlog.processors.format_exc_info,
                redact_values,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the canonical line replaces it
