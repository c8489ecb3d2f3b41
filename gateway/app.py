"""create_app: the one place that wires settings, store, HTTP client, service and routes together."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from gateway.api.auth import CallerAuth
from gateway.api.keys import (
    CALLERS,
    LIFECYCLE,
    MAX_BODY_BYTES,
    METRICS,
    PARSED_BODIES,
    REDACTOR,
    SERVICE,
    STORE,
    Lifecycle,
)
from gateway.api.middlewares import request_context
from gateway.api.parsed_bodies import ParsedBodies
from gateway.api.routes import add_routes
from gateway.encryption import parse_encryption_keys
from gateway.logging import secret_values
from gateway.metrics import Metrics
from gateway.providers.registry import bind_providers
from gateway.redaction import Redactor
from gateway.service import AuthService, CacheOptions
from gateway.settings import Settings
from gateway.store import CredentialStore
from gateway.store.factory import open_store
from gateway.store.guarded import GuardedStore
from gateway.store.memory import MemoryStore
from gateway.store.sealed import SealedStore
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
    # aiohttp's own cap sits a little above ours, so that read_body answers the 413 problem.
    app = web.Application(
        middlewares=[request_context], client_max_size=settings.max_body_bytes + 1024
    )
    app[METRICS] = metrics
    app[CALLERS] = CallerAuth(settings.clients)
    app[MAX_BODY_BYTES] = settings.max_body_bytes
    app[REDACTOR] = Redactor(
        secret_values(settings)
    )  # the same secrets the log lines are redacted of
    app[LIFECYCLE] = Lifecycle(
        readiness_requires_store=settings.readiness_requires_store,
        store_down_grace_s=settings.store_down_grace_s,
    )

    async def resources(app: web.Application) -> AsyncIterator[None]:
        active_store = store if store is not None else open_configured_store(settings)
        guarded = GuardedStore(active_store, on_change=lambda up: metrics.store_up.set(up))
        metrics.store_up.set(1)  # the guard starts "up" and reports only changes
        session = http if http is not None else new_client_session()
        service = AuthService(
            providers,
            guarded,
            Upstream(
                session, metrics, guarded, providers, key_prefix=settings.key_prefix, clock=clock
            ),
            metrics,
            options=cache_options(settings, local_cache=not isinstance(active_store, MemoryStore)),
            clock=clock,
        )
        app[STORE] = guarded
        app[SERVICE] = service
        app[PARSED_BODIES] = ParsedBodies(service)
        await service.start()
        yield
        await service.close()
        if http is None:
            await session.close()
        if store is None:
            await active_store.close()

    app.cleanup_ctx.append(resources)
    add_routes(app)
    return app


def open_configured_store(settings: Settings) -> CredentialStore:
    """The backend `redis_url` names, sealed with AES-256-GCM when `encryption_keys` are set."""
    backend = open_store(
        settings.redis_url,
        **{
            name: str(path)
            for name, path in (
                ("ssl_ca_certs", settings.redis_tls_ca_file),
                ("ssl_certfile", settings.redis_tls_cert_file),
                ("ssl_keyfile", settings.redis_tls_key_file),
            )
            if path is not None
        },  # type: ignore[arg-type]
    )
    keys = [k.get_secret_value() for k in settings.encryption_keys]
    return SealedStore(backend, parse_encryption_keys(keys)) if keys else backend


def cache_options(settings: Settings, *, local_cache: bool) -> CacheOptions:
    """The service's cache settings. A memory store is already in-process: no second local tier."""
    return CacheOptions(
        key_prefix=settings.key_prefix,
        cache_key_secret=(
            settings.cache_key_secret.get_secret_value() if settings.cache_key_secret else None
        ),
        failure_cooldown_s=settings.failure_cooldown_s,
        local_max_entries=settings.local_cache_max_entries if local_cache else 0,
        local_max_age_s=settings.local_cache_max_age_s,
    )


def new_client_session() -> aiohttp.ClientSession:
    """The one outbound session: pooled keep-alive connections, no environment proxies or cookies."""
    connector = aiohttp.TCPConnector(limit=256, ttl_dns_cache=300, enable_cleanup_closed=True)
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )
