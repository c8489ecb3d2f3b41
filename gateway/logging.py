"""structlog set-up: JSON lines on stdout (a console renderer on a TTY), request context via contextvars."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

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


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Route structlog (and stdlib logging) to stdout; JSON unless stdout is a terminal."""
    use_json = (not sys.stdout.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stdout, format="%(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the canonical line replaces it
