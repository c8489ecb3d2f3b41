"""Providers built from throwaway settings (tests generate their own secrets)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from gateway.providers.base import SendContext, VendorResponse
from gateway.providers.registry import Provider, bind_providers
from gateway.settings import load_settings

FIXTURES = Path(__file__).parent.parent / "fixtures"
PINNED = SendContext(
    now=1451620800, nonce=71087795, request_id="476c990a-f5b7-4575-987c-4ef70e474932"
)


def fixture_response(name: str, status: int = 200) -> VendorResponse:
    return VendorResponse(status=status, headers={}, body=(FIXTURES / name).read_bytes())


@pytest.fixture
def secret() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def providers(secret: str) -> dict[str, Provider]:
    top = {
        "endpoint": "https://eco.taobao.com/router/rest",
        "app_key": "12345678",
        "app_secret": secret,
    }
    settings = load_settings(
        None,
        providers={
            "zebra": {"kind": "top:yunos.aiot.thirdminiapp.auth.get", **top},
            "zebra-md5": {
                "kind": "top:yunos.aiot.thirdminiapp.auth.get",
                **top,
                "sign_method": "md5",
            },
            "aligenie": {
                "kind": "top:taobao.ailab.aicloud.top.auth.get",
                **top,
                "sign_method": "hmac",
            },
            "bind": {"kind": "top:alibaba.ailabs.iot.device.inside.checkbind.invoke", **top},
            "bind-simple": {
                "kind": "top:alibaba.ailabs.iot.device.inside.checkbind.invoke",
                **top,
                "simplify": True,
            },
            "wechat": {
                "kind": "tencent-iot:AppGetTokenByWeiXin",
                "endpoint": "https://iot.cloud.tencent.com/api/exploreropen/appapi",
                "app_key": "ahPxdKTGrejd",
                "app_secret": secret,
            },
        },
    )
    return bind_providers(settings.providers)
