"""structlog set-up: JSON lines on stdout (a console renderer on a TTY), request context via contextvars."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

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
    """Replace every occurrence of a configured secret inside any logged string (defence in depth
    against a secret that ends up in an exception message or a vendor's echo)."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if self._secrets:
            for key, value in event.items():
                if isinstance(value, str):
                    for secret in self._secrets:
                        if secret in value:
                            value = value.replace(secret, "[redacted]")
                    event[key] = value
        return event


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, for RedactValues."""
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


def configure_logging(
    level: str = "info", *, json: bool | None = None, secrets: list[str] | None = None
) -> None:
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
            RedactValues(secrets or []),  # after format_exc_info: exception text is redacted too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(CurrentStdout()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=level.upper(),
        stream=CurrentStdout(),
        format="%(message)s",
        force=True,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the canonical line replaces it
