"""Starting and stopping the listeners: the service on host:port, /metrics alone on `metrics_port` when
configured, both behind the defences of gateway/api/server.py."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.api.edge import EdgeLimits, EdgeListener
from gateway.api.keys import METRICS
from gateway.api.routes import metrics_endpoint
from gateway.api.server import EdgeRunner
from gateway.settings import Settings

__all__ = ["EdgeLimits", "Listeners", "start_listeners"]


@dataclass
class Listeners:
    """The running listeners: the service, and /metrics alone on `metrics_port` when configured."""

    service: EdgeRunner
    metrics: EdgeRunner | None = None

    @property
    def port(self) -> int:
        """The service's port (the one bound, when the settings asked for port 0)."""
        return int(self.service.addresses[0][1])

    @property
    def metrics_port(self) -> int | None:
        return int(self.metrics.addresses[0][1]) if self.metrics is not None else None

    async def close(self) -> None:
        """Stop listening, finish in-flight requests within shutdown_timeout_s, run the app's cleanup."""
        try:
            await self.service.cleanup()
        finally:
            if self.metrics is not None:
                await self.metrics.cleanup()


async def start_listeners(
    app: web.Application, settings: Settings, *, limits: EdgeLimits | None = None
) -> Listeners:
    """Start the app on host:port, and /metrics on metrics_port if set, both behind the defences
    (`limits`, from the settings unless given). Under --workers both bind with SO_REUSEPORT."""
    limits = limits or EdgeLimits.from_settings(settings)
    metrics = app[METRICS]
    service = await _serve(app, settings.port, EdgeListener("service", limits, metrics), settings)
    if settings.metrics_port is None:
        return Listeners(service)
    try:
        metrics_app = web.Application()
        metrics_app[METRICS] = metrics
        metrics_app.router.add_get("/metrics", metrics_endpoint)
        edge = EdgeListener("metrics", limits, metrics)
        return Listeners(service, await _serve(metrics_app, settings.metrics_port, edge, settings))
    except BaseException:
        await service.cleanup()
        raise


async def _serve(
    app: web.Application, port: int, edge: EdgeListener, settings: Settings
) -> EdgeRunner:
    runner = EdgeRunner(app, edge, shutdown_timeout=settings.shutdown_timeout_s)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, port, reuse_port=settings.workers > 1).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
