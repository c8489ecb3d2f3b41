"""structlog set-up: JSON lines on stdout (a console renderer on a TTY), request fields from
gateway.log_context; the canonical request line's route (gateway.request_line) chosen to match."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

from gateway.log_context import merge_log_context
from gateway.log_processors import CurrentStdout, IsoTimestamp, RedactValues, redact_secrets
from gateway.redaction import Redactor
from gateway.request_line import REQUEST_LINE, JsonRequestLine, StructlogRequestLine
from gateway.settings import Settings


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, for the Redactor of log lines and problem documents."""
    values = [p.secret() for p in settings.providers.values()]
    values += [k.get_secret_value() for k in settings.encryption_keys]
    if settings.cache_key_secret is not None:
        values.append(settings.cache_key_secret.get_secret_value())
    return values


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
    level_number = logging.getLevelNamesMapping()[level.upper()]
    timestamp = IsoTimestamp()
    structlog.configure(
        processors=[
            merge_log_context,
            structlog.processors.add_log_level,
            timestamp,
            redact_secrets,
            structlog.processors.format_exc_info,
            redact_values,  # after format_exc_info: exception text is redacted too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
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
    # The request line as the chain above would render it; rendered directly when that is JSON.
    REQUEST_LINE.use(
        JsonRequestLine(level_number, redact_values, timestamp)
        if use_json
        else StructlogRequestLine()
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the canonical line replaces it
