"""`taobao.top.auth.token.create`: the TOP OAuth code exchange, as one TOP kind (the whole of it is here).

The caller sends the authorization `code` it received on its redirect (and optionally the `uuid` it
sent there); TOP answers `token_result`, a JSON *string* with the access token, its expiry (`expire_time`
in epoch milliseconds and/or `expires_in` in relative seconds), the refresh token and the user. A code
can be exchanged once, so the cache key is the code: a caller retrying with the same code (a lost
answer, a double click) gets the same token back instead of the vendor's "code already used".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from pydantic import Field

from gateway.providers.base import (
    Credential,
    Printable,
    SendContext,
    absolute_expiry,
    json_in_string,
    require,
    scalar_value,
)
from gateway.providers.kind import Sample
from gateway.providers.top import TopInputs, TopKind, sample_answer
from gateway.providers.top_sandbox import (
    Params,
    TopError,
    TopSimulation,
    check_max_length,
    check_required,
    gson_string,
    new_token,
)

METHOD = "taobao.top.auth.token.create"


class TokenCreateInputs(TopInputs):
    identity_fields = ("code",)  # single-use: the same code is the same exchange

    code: Annotated[str, Field(max_length=128), Printable]
    uuid: Annotated[str, Field(max_length=64), Printable] | None = None

    def business_params(self, ctx: SendContext) -> dict[str, str]:
        params = {"code": self.code}
        if self.uuid is not None:
            params["uuid"] = self.uuid
        return params


def read_token_result(payload: Mapping[str, Any], now: float) -> Credential:
    """`token_result` is JSON in a string; the expiry is `expire_time` (ms) or else `expires_in` (s)."""
    result = json_in_string(payload.get("token_result"), "token_result")
    token = require(result, "access_token", str, "token_result.")
    expiry = result.get("expire_time", result.get("expires_in"))
    data: dict[str, Any] = {
        "taobao_user_id": scalar_value(result.get("taobao_user_id")),
        "taobao_user_nick": scalar_value(result.get("taobao_user_nick")),
        "refresh_token": scalar_value(result.get("refresh_token")),
    }
    refresh_in = result.get("re_expires_in")
    if isinstance(refresh_in, int) and not isinstance(refresh_in, bool) and refresh_in > 0:
        data["refresh_expires_at"] = int(now) + refresh_in
    return Credential(token=token, expires_at=absolute_expiry(expiry, now), data=data)


# --- the sandbox's stand-in for the platform ---------------------------------------------------------


def check_params(params: Params) -> None:
    """`code` is required; `uuid` at most 64 characters."""
    check_required(params, ("code",))
    check_max_length(params, "uuid", 64)


def exchange(vendor: TopSimulation, params: Params) -> dict[str, Any]:
    """A token for a code the sandbox has not seen; a used code is refused, as the platform does."""
    used = vendor.memory.setdefault(METHOD, {})
    if params["code"] in used:
        # The sandbox's model of TOP refusing a second exchange of one code (an isv. error: 422).
        raise TopError(15, "Remote service error", "isv.invalid-parameter", "code already used")
    used[params["code"]] = True
    access_token = new_token(48)
    vendor.issued_tokens.append(access_token)
    ttl = vendor.token_ttl_s
    result = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "expire_time": int((vendor.now() + ttl) * 1000),
        "refresh_token": new_token(48),
        "re_expires_in": 2 * ttl,
        "taobao_user_id": "2200000000001",
        "taobao_user_nick": "sandbox-user",
    }
    return {"token_result": gson_string(result)}


_ISSUED = {
    "w1_expires_in": 86400,
    "refresh_token_valid_time": 1556086400000,
    "taobao_user_nick": "tb-user",
    "re_expires_in": 0,
    "expire_time": 1556086400000,
    "token_type": "Bearer",
    "access_token": "6201a0e1fa7bd3f1b7b9d4f3a8c2e5ZZb8f0c1d2e3f4a5b6c7d8e9f0a1b2c3",
    "taobao_user_id": "2200000000001",
    "refresh_token": "6200b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9",
    "expires_in": 86400,
}

KIND = TopKind(
    method=METHOD,
    input_model=TokenCreateInputs,
    read_result=read_token_result,
    dev_provider="taobao-oauth",
    example_inputs={"code": "dev-authorization-code-1"},
    samples=(
        Sample(
            "`token_result` with `expire_time` (epoch ms) and `expires_in`",
            sample_answer(METHOD, {"token_result": orjson.dumps(_ISSUED).decode()}),
            success=True,
        ),
        Sample(
            "`token_result` with only `expires_in` (relative seconds)",
            sample_answer(
                METHOD,
                {"token_result": orjson.dumps({"access_token": "t", "expires_in": 3600}).decode()},
            ),
            success=True,
        ),
        Sample("`token_result` that is not JSON", sample_answer(METHOD, {"token_result": "{"})),
        Sample("no `token_result`", sample_answer(METHOD, {})),
    ),
    sandbox_check=check_params,
    sandbox_answer=exchange,
)
