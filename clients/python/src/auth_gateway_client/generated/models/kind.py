from enum import StrEnum


class Kind(StrEnum):
    TENCENT_IOTAPPGETTOKENBYWEIXIN = "tencent-iot:AppGetTokenByWeiXin"
    TOPALIBABA_AILABS_IOT_DEVICE_INSIDE_CHECKBIND_INVOKE = (
        "top:alibaba.ailabs.iot.device.inside.checkbind.invoke"
    )
    TOPTAOBAO_AILAB_AICLOUD_TOP_AUTH_GET = "top:taobao.ailab.aicloud.top.auth.get"
    TOPTAOBAO_TOP_AUTH_TOKEN_CREATE = "top:taobao.top.auth.token.create"
    TOPYUNOS_AIOT_THIRDMINIAPP_AUTH_GET = "top:yunos.aiot.thirdminiapp.auth.get"
    WECHATJSCODE2SESSION = "wechat:jscode2session"

    def __str__(self) -> str:
        return str(self.value)
