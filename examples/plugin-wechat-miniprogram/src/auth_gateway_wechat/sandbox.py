"""The plug-in's stand-in for `api.weixin.qq.com/sns/jscode2session`, as strict as WeChat.

The gateway's sandbox (`python -m gateway sandbox`, and dev mode) serves it because the protocol
object names it; the app ids it accepts and their secrets come from the sandbox (dev mode makes one).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from gateway.plugin import ProtocolInfo, VendorResponse, json_answer

API = "jscode2session"
# WeChat answers JSON labelled text/plain.
CONTENT_TYPE = "text/plain"


def issued(openid: str, session_key: str, unionid: str | None = None) -> dict[str, str]:
    answer = {"session_key": session_key, "openid": openid}
    if unionid is not None:
        answer["unionid"] = unionid
    return answer


def _error(errcode: int, errmsg: str) -> VendorResponse:
    rid = secrets.token_hex(6)
    return json_answer({"errcode": errcode, "errmsg": f"{errmsg}, rid: {rid}"}, 200, CONTENT_TYPE)


class WeChatSandbox:
    """Checks in WeChat's order: appid, secret, grant_type, js_code, then whether it was used."""

    vendor = "wechat"
    http_method = "GET"
    path = "/sns/jscode2session"

    def api_of(self, query: Mapping[str, str], body: bytes) -> str | None:
        return API

    def answer(
        self,
        apps: Mapping[str, str],
        memory: dict[str, Any],
        query: Mapping[str, str],
        body: bytes,
        now: float,
    ) -> VendorResponse:
        appid, secret = query.get("appid"), query.get("secret")
        if not appid:
            return _error(41002, "appid missing")
        if appid not in apps:
            return _error(40013, "invalid appid")
        if not secret:
            return _error(41004, "appsecret missing")
        if not secrets.compare_digest(secret, apps[appid]):
            return _error(40125, "invalid appsecret")
        if query.get("grant_type") != "authorization_code":
            return _error(40002, "invalid grant_type")
        js_code = query.get("js_code")
        if not js_code:
            return _error(41008, "missing code")
        used: set[str] = memory.setdefault("used_codes", set())
        if js_code in used:
            return _error(40163, "code been used")
        used.add(js_code)
        # One user per code here (the real openid is per user and app): stable, so tests can predict it.
        openid = (
            "o"
            + base64.urlsafe_b64encode(hashlib.sha256(f"{appid}:{js_code}".encode()).digest())[
                :27
            ].decode()
        )
        session_key = base64.b64encode(secrets.token_bytes(16)).decode()
        memory.setdefault("session_keys", {})[openid] = session_key
        return json_answer(issued(openid, session_key), 200, CONTENT_TYPE)


WECHAT = ProtocolInfo("wechat", sandbox=WeChatSandbox())
