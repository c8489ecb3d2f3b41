"""`AppGetTokenByWeiXin`: the Tencent IoT Explorer login of a WeChat user, as one Tencent kind."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from gateway.providers.base import Inputs, Printable
from gateway.providers.kind import Sample, json_answer
from gateway.providers.tencent_iot import TencentKind

ACTION = "AppGetTokenByWeiXin"


class WeChatLoginInputs(Inputs):
    identity_fields = ("wx_open_id",)  # a new nickname or avatar is the same user

    wx_open_id: Annotated[str, Field(max_length=128), Printable]
    # Tencent answers InvalidParameterValue.NickNameLengthInvalid past its limit; 32 is ours.
    nick_name: Annotated[str, Field(max_length=32), Printable]
    avatar: Annotated[str, Field(max_length=1024), Printable]


def request_fields(inputs: WeChatLoginInputs) -> dict[str, str | int]:
    return {"WxOpenID": inputs.wx_open_id, "NickName": inputs.nick_name, "Avatar": inputs.avatar}


_ISSUED = {"ExpireAt": 1556076201, "Token": "d2f3a41c0f5b4e0b9d6b0b8a1c4e8514"}

KIND = TencentKind(
    action=ACTION,
    input_model=WeChatLoginInputs,
    request_fields=request_fields,
    dev_provider="tencent-wechat",
    example_inputs={
        "wx_open_id": "o-dev-user-1",
        "nick_name": "dev",
        "avatar": "https://example.com/a.png",
    },
    samples=(
        Sample(
            "documented envelope `Response.Data`",
            json_answer({"Response": {"Data": _ISSUED, "RequestId": "rest-client"}}),
            success=True,
        ),
        Sample(
            "`Response` without a `Data.Token`",
            json_answer({"Response": {"Data": {}, "RequestId": "r1"}}),
        ),
    ),
)
