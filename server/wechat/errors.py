"""The errors of the WeChat adapters: outages, and the WeChat Pay callbacks we refuse.

A ``CallbackRejected`` answers WeChat Pay's own shape, ``{"code": "FAIL", "message"}``, with
its ``status`` (WeChat Pay then delivers the notification again); its ``code`` is ours, for
the log and the OpenAPI document."""

from __future__ import annotations

from server.platform.errors import APIError, ServiceUnavailable


class WeChatOutage(ServiceUnavailable):
    code = "wechat_unavailable"
    message = "微信服务暂时不可用，请稍后再试"


class WeChatPayOutage(ServiceUnavailable):
    code = "wechatpay_unavailable"
    message = "微信支付暂时不可用，请稍后重试"


class CallbackRejected(APIError):
    """A callback we do not trust; answer ``status`` with ``answer()`` (WeChat Pay retries)."""

    status = 400
    code = "callback_rejected"
    message = "失败"

    def answer(self) -> dict[str, str]:
        """The body WeChat Pay expects on a refused notification."""
        return {"code": "FAIL", "message": self.message}


class CallbackSignatureInvalid(CallbackRejected):
    """Wechatpay-* headers missing, an unknown Wechatpay-Serial, or a signature that fails."""

    status = 401
    code = "callback_signature_invalid"
    message = "签名验证失败"


class CallbackStale(CallbackRejected):
    """Wechatpay-Timestamp more than 5 minutes away from our clock (either direction)."""

    status = 401
    code = "callback_stale"
    message = "时间戳超出5分钟"


class CallbackMalformed(CallbackRejected):
    """Not a WeChat Pay notification: bad JSON, or not an AEAD_AES_256_GCM encrypt-resource."""

    code = "callback_malformed"
    message = "通知格式有误"


class CallbackUndecryptable(CallbackRejected):
    """The resource does not decrypt with our APIv3 key (or its plaintext is not JSON)."""

    code = "callback_undecryptable"
    message = "解密失败"
