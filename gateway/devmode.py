"""`serve --dev`: the vendor sandbox in-process, one provider per installed kind, memory store, a dev key.

Each kind names its dev provider and brings its example inputs (gateway/providers/kind.py), so a
plug-in's kind shows up here as soon as it is installed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from gateway.providers.registry import installed_kinds
from gateway.sandbox.app import add_app, endpoint_path, start_sandbox
from gateway.sandbox.state import SandboxState
from gateway.settings import Settings


@dataclass(frozen=True)
class DevEnvironment:
    settings: Settings
    sandbox: web.AppRunner
    sandbox_url: str
    client_key: str

    def banner(self) -> str:
        base = f"http://{self.settings.host}:{self.settings.port}"
        name, example = first_example()
        return "\n".join(
            [
                "auth gateway — development mode (in-process vendor sandbox, in-memory store)",
                f"  gateway:   {base}",
                f"  sandbox:   {self.sandbox_url}",
                f"  providers: {', '.join(self.settings.providers)}",
                f"  dev key:   {self.client_key}",
                "",
                "Try it:",
                f"  curl -s -X POST {base}/auth/{name} \\",
                f"    -H 'Authorization: Bearer {self.client_key}' \\",
                "    -H 'Content-Type: application/json' \\",
                f"    -d '{example}'",
                "",
            ]
        )


def first_example() -> tuple[str, str]:
    """The banner's curl: the Tencent WeChat login when installed (no polling, no single-use code),
    else the first installed kind."""
    kinds = [installed.kind for installed in installed_kinds().values()]
    kind = next((k for k in kinds if k.dev_provider == "tencent-wechat"), kinds[0])
    return kind.dev_provider, orjson.dumps(dict(kind.example_inputs)).decode()


def dev_providers(sandbox_url: str, state: SandboxState) -> dict[str, Any]:
    """One provider per installed kind, pointing at the sandbox; one app key per protocol."""
    providers: dict[str, Any] = {}
    apps: dict[str, tuple[str, str]] = {}
    for installed in installed_kinds().values():
        kind = installed.kind
        if kind.protocol.name not in apps:
            apps[kind.protocol.name] = (f"dev-{kind.protocol.name}-app", secrets.token_hex(16))
            add_app(state, kind.protocol, *apps[kind.protocol.name])
        key, secret = apps[kind.protocol.name]
        providers[kind.dev_provider] = {
            "kind": kind.kind,
            "endpoint": sandbox_url + endpoint_path(kind.protocol),
            "app_key": key,
            "app_secret": secret,
        }
    return providers


def dev_settings(
    sandbox_url: str,
    state: SandboxState,
    client_key: str,
    host: str = "127.0.0.1",
    port: int = 8080,
) -> Settings:
    """The settings of `serve --dev` for a sandbox at `sandbox_url` (its apps are added to `state`)."""
    return Settings(
        redis_url="memory://",
        host=host,
        port=port,
        providers=dev_providers(sandbox_url, state),
        clients={
            "dev": {
                "api_key_sha256": hashlib.sha256(client_key.encode()).hexdigest(),
                "providers": ["*"],
            }
        },
    )


async def start_dev_environment(host: str, port: int) -> DevEnvironment:
    """Start the sandbox on a free loopback port and build settings that point every provider at it."""
    state = SandboxState()
    runner, sandbox_url = await start_sandbox(state, host="127.0.0.1", port=0)
    client_key = "dev-" + secrets.token_urlsafe(24)
    settings = dev_settings(sandbox_url, state, client_key, host, port)
    return DevEnvironment(settings, runner, sandbox_url, client_key)
