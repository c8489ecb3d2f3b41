"""Typed application state shared by the handlers (aiohttp `web.AppKey`)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.api.auth import CallerAuth
from gateway.api.parsed_bodies import ParsedBodies
from gateway.metrics import Metrics
from gateway.redaction import Redactor
from gateway.service import AuthService
from gateway.tracing import Tracer


@dataclass
class Lifecycle:
    """What /readyz needs besides the store: draining on SIGTERM, and the readiness policy."""

    readiness_requires_store: bool = False
    store_down_grace_s: float = 30.0
    draining: bool = False


SERVICE = web.AppKey("service", AuthService)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
PARSED_BODIES = web.AppKey("parsed_bodies", ParsedBodies)
CALLERS = web.AppKey("callers", CallerAuth)
METRICS = web.AppKey("metrics", Metrics)
MAX_BODY_BYTES = web.AppKey("max_body_bytes", int)
BODY_TIMEOUT_S = web.AppKey("body_timeout_s", float)
# Built once from the settings' secrets: what problem documents are redacted with.
REDACTOR = web.AppKey("redactor", Redactor)
# Makes each request's server span (gateway.tracing): ids always, export with OpenTelemetry only.
TRACER = web.AppKey("tracer", Tracer)
