"""The HTTP API: routes, thin handlers, middlewares, the listener. `api_application` makes the aiohttp
application with what the handlers need; `attach_service` hands it the service once it is running."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.api import keys
from gateway.api.auth import CallerAuth
from gateway.api.middlewares import request_context
from gateway.api.parsed_bodies import ParsedBodies
from gateway.api.routes import add_routes
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.metrics import Metrics
from gateway.redaction import Redactor
from gateway.service import AuthService
from gateway.settings import ClientSettings, Settings
from gateway.tracing import Tracer


def api_application(
    settings: Settings,
    metrics: Metrics,
    redactor: Redactor,
    tracer: Tracer,
    clock: Clock = SYSTEM_CLOCK,
) -> web.Application:
    """The routes and their state; the service comes later (attach_service, at start-up). `clock`
    times the callers' rate limits."""
    # aiohttp's own cap sits a little above ours, so that read_body answers the 413 problem.
    app = web.Application(
        middlewares=[request_context], client_max_size=settings.max_body_bytes + 1024
    )
    app[keys.METRICS] = metrics
    app[keys.CALLERS] = CallerAuth(settings.clients, clock)
    app[keys.MAX_BODY_BYTES] = settings.max_body_bytes
    app[keys.BODY_TIMEOUT_S] = settings.body_timeout_s
    app[keys.REDACTOR] = redactor
    app[keys.TRACER] = tracer
    app[keys.LIFECYCLE] = keys.Lifecycle(
        readiness_requires_store=settings.readiness_requires_store,
        store_down_grace_s=settings.store_down_grace_s,
    )
    add_routes(app)
    return app


def use_clients(app: web.Application, clients: Mapping[str, ClientSettings]) -> None:
    """Authenticate callers against these clients from now on (a configuration reload)."""
    app[keys.CALLERS].use(clients)


def attach_service(app: web.Application, service: AuthService) -> None:
    app[keys.SERVICE] = service
    app[keys.PARSED_BODIES] = ParsedBodies(service)
