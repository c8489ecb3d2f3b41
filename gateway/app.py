"""create_app: the one place that wires settings, store, HTTP client, service and routes together."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from gateway.api.auth import CallerAuth
from gateway.api.keys import CALLERS, MAX_BODY_BYTES, METRICS, SERVICE, STORE
from gateway.api.middlewares import request_context
from gateway.api.routes import add_routes
from gateway.metrics import Metrics
from gateway.providers.registry import bind_providers
from gateway.service import AuthService
from gateway.settings import Settings
from gateway.store import CredentialStore
from gateway.store.factory import open_store
from gateway.upstream import Upstream


def create_app(
    settings: Settings,
    *,
    store: CredentialStore | None = None,
    http: aiohttp.ClientSession | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The gateway application. A `store` or `http` session passed in is used as is and left open."""
    metrics = Metrics()
    providers = bind_providers(settings.providers)
    # aiohttp's own cap sits a little above ours, so that read_json_object answers the 413 problem.
    app = web.Application(
        middlewares=[request_context], client_max_size=settings.max_body_bytes + 1024
    )
    app[METRICS] = metrics
    app[CALLERS] = CallerAuth(settings.clients)
    app[MAX_BODY_BYTES] = settings.max_body_bytes

    async def resources(app: web.Application) -> AsyncIterator[None]:
        active_store = store if store is not None else open_store(settings.redis_url)
        session = http if http is not None else new_client_session()
        app[STORE] = active_store
        app[SERVICE] = AuthService(
            providers,
            active_store,
            Upstream(session, metrics, clock=clock),
            metrics,
            key_prefix=settings.key_prefix,
            cache_key_secret=(
                settings.cache_key_secret.get_secret_value() if settings.cache_key_secret else None
            ),
            clock=clock,
        )
        yield
        if http is None:
            await session.close()
        if store is None:
            await active_store.close()

    app.cleanup_ctx.append(resources)
    add_routes(app)
    return app


def new_client_session() -> aiohttp.ClientSession:
    """The one outbound session: pooled keep-alive connections, no environment proxies or cookies."""
    connector = aiohttp.TCPConnector(limit=256, ttl_dns_cache=300, enable_cleanup_closed=True)
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )
