"""`serve --dev`: the vendor sandbox in-process, four providers pointing at it, memory store, a dev key."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.sandbox.app import start_sandbox
from gateway.sandbox.state import SandboxState
from gateway.settings import Settings

DEV_PROVIDERS = {
    "zebra-miniapp": ("top:yunos.aiot.thirdminiapp.auth.get", "/router/rest"),
    "aligenie-login": ("top:taobao.ailab.aicloud.top.auth.get", "/router/rest"),
    "tmallgenie-bind": ("top:alibaba.ailabs.iot.device.inside.checkbind.invoke", "/router/rest"),
    "tencent-wechat": ("tencent-iot:AppGetTokenByWeiXin", "/api/exploreropen/appapi"),
}
EXAMPLE_INPUT = (
    '{"wx_open_id": "o-dev-user-1", "nick_name": "dev", "avatar": "https://example.com/a.png"}'
)


@dataclass(frozen=True)
class DevEnvironment:
    settings: Settings
    sandbox: web.AppRunner
    sandbox_url: str
    client_key: str

    def banner(self) -> str:
        base = f"http://{self.settings.host}:{self.settings.port}"
        return "\n".join(
            [
                "auth gateway — development mode (in-process vendor sandbox, in-memory store)",
                f"  gateway:   {base}",
                f"  sandbox:   {self.sandbox_url}",
                f"  providers: {', '.join(DEV_PROVIDERS)}",
                f"  dev key:   {self.client_key}",
                "",
                "Try it:",
                f"  curl -s -X POST {base}/auth/tencent-wechat \\",
                f"    -H 'Authorization: Bearer {self.client_key}' \\",
                "    -H 'Content-Type: application/json' \\",
                f"    -d '{EXAMPLE_INPUT}'",
                "",
            ]
        )


async def start_dev_environment(host: str, port: int) -> DevEnvironment:
    """Start the sandbox on a free loopback port and build settings that point every provider at it."""
    top_key, tencent_key = "dev-top-app", "dev-tencent-app"
    top_secret, tencent_secret = secrets.token_hex(16), secrets.token_hex(16)
    state = SandboxState(top_apps={top_key: top_secret}, tencent_apps={tencent_key: tencent_secret})
    runner, sandbox_url = await start_sandbox(state, host="127.0.0.1", port=0)
    providers: dict[str, Any] = {}
    for name, (kind, path) in DEV_PROVIDERS.items():
        is_top = kind.startswith("top:")
        providers[name] = {
            "kind": kind,
            "endpoint": sandbox_url + path,
            "app_key": top_key if is_top else tencent_key,
            "app_secret": top_secret if is_top else tencent_secret,
        }
    client_key = "dev-" + secrets.token_urlsafe(24)
    settings = Settings(
        redis_url="memory://",
        host=host,
        port=port,
        providers=providers,
        clients={
            "dev": {
                "api_key_sha256": hashlib.sha256(client_key.encode()).hexdigest(),
                "providers": ["*"],
            }
        },
    )
    return DevEnvironment(settings, runner, sandbox_url, client_key)
