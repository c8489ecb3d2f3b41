"""A live gateway in dev mode for the client's tests: the in-process vendor sandbox, the memory store,
one provider per installed kind (`gateway.devmode`), served over loopback HTTP from an event loop in a
thread of its own (the client under test blocks)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from aiohttp import web

from gateway.api.keys import LIFECYCLE
from gateway.app import create_app
from gateway.devmode import dev_providers
from gateway.sandbox.app import start_sandbox
from gateway.sandbox.state import SandboxState
from gateway.settings import Settings
from tests.helpers import ShiftedClock

T = TypeVar("T")
# Dev-mode provider names (each kind's `dev_provider`).
WECHAT, MINI_APP, ALIGENIE, BIND = (
    "tencent-wechat",
    "zebra-miniapp",
    "aligenie-login",
    "tmallgenie-bind",
)
# Vendor-side tuning so that the failure paths are quick: no retries of a failing vendor for the
# mini-app (its breaker opens after 2 calls), a short deadline for the bind check.
TUNING: dict[str, dict[str, Any]] = {
    MINI_APP: {
        "retry": {"max_attempts": 1},
        "breaker": {"min_calls": 2, "failure_ratio": 0.5, "open_s": 30, "window_s": 30},
    },
    BIND: {"timeout_s": 0.2, "deadline_s": 0.5},
}


@dataclass
class LiveGateway:
    url: str
    key: str  # may use every provider
    wechat_key: str  # may use tencent-wechat only
    slow_key: str  # one request per second
    state: SandboxState
    app: web.Application
    clock: ShiftedClock  # the gateway's: a test lets time pass by advancing it, not by sleeping

    def calls(self) -> int:
        return len(self.state.requests)

    @contextmanager
    def draining(self) -> Iterator[None]:
        """Draining, as after SIGTERM (gateway/__main__.py sets the same flag), then not again."""
        self.app[LIFECYCLE].draining = True
        try:
            yield
        finally:
            self.app[LIFECYCLE].draining = False


def _client(key: str, providers: list[str], **more: Any) -> dict[str, Any]:
    return {
        "api_key_sha256": hashlib.sha256(key.encode()).hexdigest(),
        "providers": providers,
        **more,
    }


@pytest.fixture(scope="module")
def live() -> Iterator[LiveGateway]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dev-gateway", daemon=True)
    thread.start()

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    state = SandboxState()
    sandbox, sandbox_url = run(start_sandbox(state))
    providers = dev_providers(sandbox_url, state)
    for name, tuning in TUNING.items():
        providers[name].update(tuning)
    key, wechat_key, slow_key = (secrets.token_urlsafe(24) for _ in range(3))
    settings = Settings(
        redis_url="memory://",
        providers=providers,
        clients={
            "app": _client(key, ["*"]),
            "wechat-app": _client(wechat_key, [WECHAT]),
            "slow-app": _client(slow_key, ["*"], rate_limit_per_s=1, rate_limit_burst=1),
        },
    )
    clock = ShiftedClock()
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app, access_log=None)
    run(runner.setup())
    run(web.TCPSite(runner, "127.0.0.1", 0).start())
    port = runner.addresses[0][1]
    try:
        yield LiveGateway(f"http://127.0.0.1:{port}", key, wechat_key, slow_key, state, app, clock)
    finally:
        run(runner.cleanup())
        run(sandbox.cleanup())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture(autouse=True)
def no_faults_left(live: LiveGateway) -> Iterator[None]:
    yield
    live.state.clear_faults()
