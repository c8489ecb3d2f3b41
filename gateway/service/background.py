"""The service's own background tasks, kept so that closing the service cancels them; no caller waits
for them, so a failure of one is logged (`logged_failure`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import structlog

from gateway.errors import GatewayError

log = structlog.get_logger("gateway.service")


class BackgroundTasks:
    """The service's own tasks (invalidation, refreshes ahead, lease releases), cancelled at close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def logged_failure(call: Coroutine[Any, Any, Any], event: str, provider: str) -> None:
    """Await `call`; a GatewayError it raises is logged as `event` (e.g. refresh_ahead_failed)."""
    try:
        await call
    except GatewayError as error:
        log.warning(event, provider=provider, error=error.code)
