"""create_app: the one place that wires settings, store, HTTP client, service and routes together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import aiohttp
from aiohttp import web

from gateway.api import api_application, attach_service, use_clients
from gateway.burst_log import BurstLog
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.encryption import parse_encryption_keys
from gateway.logging import secret_values
from gateway.metrics import Metrics
from gateway.providers.registry import bind_providers
from gateway.redaction import Redactor
from gateway.reload import ConfigSource, Reloader
from gateway.service import AuthService, CacheOptions
from gateway.settings import Settings
from gateway.store import CredentialStore
from gateway.store.factory import OpenedStore, StoreHealth, open_store
from gateway.store.guarded import GuardedStore, Guarding
from gateway.store.memory import MemoryStore
from gateway.store.sealed import SealedStore
from gateway.tracing import Tracer, configured_tracer
from gateway.upstream import Upstream

RELOADER = web.AppKey("reloader", Reloader)  # present when the app reloads its configuration


def create_app(
    settings: Settings,
    *,
    store: CredentialStore | None = None,
    http: aiohttp.ClientSession | None = None,
    clock: Clock = SYSTEM_CLOCK,
    tracer: Tracer | None = None,
    redactor: Redactor | None = None,
    source: ConfigSource | None = None,
) -> web.Application:
    """The gateway application. A `store` or `http` session passed in is used as is and left open;
    without a `tracer`, spans are exported only when the OTEL_* variables ask for it. `redactor` is
    the one the log lines go through too (else one is made from the settings' secrets). With a
    `source`, the configuration is reloaded when its files change (gateway.reload)."""
    metrics = Metrics()
    metrics.initialise(settings.providers)  # panels and alerts read 0, not "No data", from start
    providers = bind_providers(settings.providers)
    tracer = tracer or configured_tracer()
    redactor = redactor or Redactor(secret_values(settings))
    app = api_application(settings, metrics, redactor, tracer, clock)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        reporter = StoreReporter(metrics)
        opened = (
            open_configured_store(settings, reporter, clock)
            if store is None
            else OpenedStore.guarded(store, reporter.guarding(clock))
        )
        reporter.watch(opened.health)
        session = http if http is not None else new_client_session()
        service = AuthService(
            providers,
            opened.store,
            Upstream(session, metrics, providers, clock=clock, tracer=tracer),
            metrics,
            options=cache_options(settings, local_cache=not isinstance(opened.store, MemoryStore)),
            clock=clock,
            store_health=opened.health,
        )
        attach_service(app, service)
        await service.start()
        watching = None
        if source is not None:

            def apply(new: Settings) -> None:
                redactor.learn(secret_values(new))  # the old secrets stay known: still echoed
                service.use_secrets({name: p.secret() for name, p in new.providers.items()})
                use_clients(app, new.clients)

            app[RELOADER] = reloader = Reloader(settings, source, apply, metrics.note_reload)
            watching = asyncio.get_running_loop().create_task(reloader.watch())
        metrics.config_last_reload_success.set(1)
        yield
        if watching is not None:
            watching.cancel()
        await service.close()
        if http is None:
            await session.close()
        if store is None:
            await opened.store.close()

    app.cleanup_ctx.append(resources)
    return app


def open_configured_store(
    settings: Settings, reporter: StoreReporter, clock: Clock = SYSTEM_CLOCK
) -> OpenedStore:
    """The backend `redis_url` names behind its health guards, sealed with AES-256-GCM when
    `encryption_keys` are set."""
    opened = open_store(
        settings.redis_url,
        guarding=reporter.guarding(clock),
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
    if not keys:
        return opened
    return replace(opened, store=SealedStore(opened.store, parse_encryption_keys(keys)))


class StoreReporter:
    """What the store's guards report, made visible: each failed or skipped call counted and logged
    once per burst (a write that was dropped included), and the store's health in the gauges."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._lines = BurstLog("gateway.store")
        self._health: Callable[[], StoreHealth] | None = None

    def watch(self, health: Callable[[], StoreHealth]) -> None:
        self._health = health
        self.changed()

    def changed(self, _guard: GuardedStore | None = None) -> None:
        if self._health is not None:
            health = self._health()
            down = sum(not up for up in health.shards.values())
            self._metrics.note_store_health(up=health.state != "down", nodes_down=down)

    def failed(self, operation: str, reason: str) -> None:
        self._metrics.store_errors.labels(operation, reason).inc()
        burst = {"operation": operation, "reason": reason}
        self._lines.note("store_call_failed", burst, level="warning")

    def guarding(self, clock: Clock) -> Guarding:
        """The guards report here and keep time in state on the app's clock (the readiness grace)."""
        return Guarding(on_change=self.changed, on_failure=self.failed, clock=clock.monotonic)


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
