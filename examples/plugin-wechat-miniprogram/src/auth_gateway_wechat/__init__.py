"""The WeChat mini-program login as an auth-gateway kind: `wechat:jscode2session`."""
