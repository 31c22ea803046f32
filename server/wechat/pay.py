"""The WeChat Pay adapter: API v3, JSAPI for the mini-program, over wechatpayv3's async client.

In development and tests ``api_base`` is the emulator in ``miniapp_stubs``; in production
``https://api.mch.weixin.qq.com``. wechatpayv3 hard-codes that address (``AsyncCore._gate_way``,
with no parameter to change it), so the adapter sets the attribute after construction: every
request, and the prefix ``download_bill`` strips from a bill's download URL, then use
``api_base``. Nothing else differs between the emulator and WeChat Pay.

Two ways WeChat Pay signs answers and callbacks, told apart by ``Wechatpay-Serial``: the platform
public key (serial ``PUB_KEY_ID_...``, configured) and platform certificates (serial: the
certificate's hexadecimal serial number; downloaded from ``GET /v3/certificates``, decrypted
with the APIv3 key and kept in memory by wechatpayv3, which downloads again when it meets a
serial it does not know: WeChat Pay's rotation). A merchant may have either or, while switching
over from certificates to the public key, both; wechatpayv3 chooses the key by the serial and
so does ``verify_callback`` (through it). The client is httpx (async): nothing blocks the
IOLoop. The timestamp, the decryption and why a callback failed are checked here, which
wechatpayv3 does not do.

Retries: repeating ``create_jsapi_order`` with the same arguments (the same ``time_expire``
too) answers the same prepay_id; repeating ``refund`` with the same out_refund_no and amounts
answers the same refund. Any other argument changed is an error (OUT_TRADE_NO_USED,
INVALID_REQUEST), so callers store what they sent and send it again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import gzip
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ValidationError

# The async client has its own copy of the enum: wechatpayv3.WeChatPayType would not match.
from wechatpayv3.async_ import AsyncWeChatPay, WeChatPayType

from server.platform.clock import Clock
from server.platform.config import Settings
from server.wechat.errors import (
    CallbackMalformed,
    CallbackSignatureInvalid,
    CallbackStale,
    CallbackUndecryptable,
)
from server.wechat.pay_config import PayCredentials
from server.wechat.pay_keys import SIGNATURE_TYPE, PlatformKeys
from server.wechat.pay_models import (
    BEIJING,
    PayNotification,
    Refund,
    TradeBill,
    Transaction,
    WeChatPayBadResponse,
    WeChatPayError,
    WeChatPayUnavailable,
    parse_trade_bill,
)

log = logging.getLogger("microcourt.wechatpay")

CALLBACK_WINDOW = dt.timedelta(minutes=5)
# A subset of what WeChat Pay allows ([0-9A-Za-z_-|*]): '|' and '*' would be percent-encoded
# in the URL path by httpx but signed unencoded by wechatpayv3, and the signature would fail.
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_-]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_-]{1,64}")
_CALLBACK_HEADERS = ("timestamp", "nonce", "signature", "serial")
_LIBRARY_BAD_SIGNATURE = "failed to verify the signature"
_LIBRARY_NO_CERTIFICATE = "No wechatpay platform certificate"

Result = tuple[int, Any]


class WeChatPayAdapter:
    """WeChat Pay for the mini-program. One per process; ``aclose()`` on shutdown."""

    def __init__(
        self,
        credentials: PayCredentials,
        *,
        api_base: str,
        notify_base_url: str,
        clock: Clock,
        timeout: float = 10.0,
        order_expire_minutes: int = 30,
    ) -> None:
        self.mchid = credentials.mchid
        self.appid = credentials.appid
        self.api_base = api_base.rstrip("/")
        self.notify_base_url = notify_base_url.rstrip("/")
        self.order_expire = dt.timedelta(minutes=order_expire_minutes)
        self._clock = clock
        self._apiv3_key = credentials.apiv3_key.encode()
        self._opening = asyncio.Lock()
        self._pay = AsyncWeChatPay(
            wechatpay_type=WeChatPayType.MINIPROG,
            mchid=credentials.mchid,
            private_key=credentials.private_key_pem,
            cert_serial_no=credentials.serial_no,
            appid=credentials.appid,
            apiv3_key=credentials.apiv3_key,
            timeout=(timeout, timeout),
            public_key=credentials.platform_public_key_pem or None,
            public_key_id=credentials.platform_public_key_id or None,
        )
        self._pay._core._gate_way = self.api_base  # see the module docstring
        self._keys = PlatformKeys(
            self._pay._core,
            credentials.platform_public_key_id or None,
            credentials.platform_certificates,
            clock,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        credentials: PayCredentials,
        clock: Clock,
        *,
        api_base: str | None = None,
        notify_base_url: str | None = None,
    ) -> WeChatPayAdapter:
        """The adapter as configured; ``api_base`` and ``notify_base_url`` override settings."""
        pay = settings.wechatpay
        host = settings.server.host if settings.server.host not in ("0.0.0.0", "::") else None
        own = f"http://{host or '127.0.0.1'}:{settings.server.port}"
        return cls(
            credentials,
            api_base=api_base or pay.api_base,
            notify_base_url=notify_base_url or pay.notify_base_url or own,
            clock=clock,
            timeout=pay.timeout_seconds,
            order_expire_minutes=pay.order_expire_minutes,
        )

    def notify_url(self, path: str) -> str:
        """The public URL WeChat Pay posts to, for a path of ours: ``notify_url("/api/v1/...")``."""
        return self.notify_base_url + "/" + path.lstrip("/")

    def now(self) -> dt.datetime:
        """The adapter's clock (the test clock in tests): what "today" is for WeChat Pay."""
        return self._clock.now()

    def default_time_expire(self) -> dt.datetime:
        """Now plus ``wechatpay.order_expire_minutes``: store it and send it on every retry."""
        return self._clock.now() + self.order_expire

    async def aclose(self) -> None:
        core = self._pay._core
        if core._client is not None:
            await core._client.aclose()
            core._client = None

    # -- orders --

    async def create_jsapi_order(
        self,
        *,
        out_trade_no: str,
        description: str,
        amount_fen: int,
        openid: str,
        notify_url: str,
        time_expire: dt.datetime,
        attach: str | None = None,
    ) -> str:
        """JSAPI 下单: the prepay_id (valid two hours) for ``pay_params``."""
        _check(OUT_TRADE_NO, out_trade_no, "out_trade_no")
        if amount_fen < 1:
            raise ValueError("amount_fen must be at least 1")
        _, body = await self._call(
            self._pay.pay,
            description=description,
            out_trade_no=out_trade_no,
            amount={"total": amount_fen, "currency": "CNY"},
            payer={"openid": openid},
            time_expire=_rfc3339(time_expire),
            attach=attach,
            notify_url=notify_url,
            pay_type=WeChatPayType.MINIPROG,
        )
        prepay_id = _json(body).get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise WeChatPayBadResponse("INVALID_RESPONSE", "no prepay_id in the answer", 200)
        return prepay_id

    def pay_params(self, prepay_id: str) -> dict[str, str]:
        """What the mini-program passes to ``wx.requestPayment``, signed with the merchant key
        over ``appId\\ntimeStamp\\nnonceStr\\npackage\\n`` (JSAPI 调起支付)."""
        stamp = str(int(self._clock.now().timestamp()))
        nonce = secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        signature = self._pay.sign([self.appid, stamp, nonce, package])
        return {
            "appId": self.appid,
            "timeStamp": stamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": signature,
        }

    async def query_order(self, out_trade_no: str) -> Transaction:
        """商户订单号查询订单. WeChatPayError ORDER_NOT_EXIST (404) if WeChat Pay has none."""
        _check(OUT_TRADE_NO, out_trade_no, "out_trade_no")
        _, body = await self._call(self._pay.query, out_trade_no=out_trade_no)
        return _model(Transaction, body)

    async def close_order(self, out_trade_no: str) -> None:
        """关闭订单: closed (again) is fine; WeChatPayError ORDERPAID (400) once paid."""
        _check(OUT_TRADE_NO, out_trade_no, "out_trade_no")
        await self._call(self._pay.close, out_trade_no=out_trade_no)

    # -- refunds --

    async def refund(
        self,
        *,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str | None = None,
        notify_url: str | None = None,
    ) -> Refund:
        """申请退款: usually PROCESSING; the result comes by REFUND.* callback or query."""
        _check(OUT_TRADE_NO, out_trade_no, "out_trade_no")
        _check(OUT_REFUND_NO, out_refund_no, "out_refund_no")
        if not 1 <= refund_fen <= total_fen:
            raise ValueError("refund_fen must be between 1 and total_fen")
        _, body = await self._call(
            self._pay.refund,
            out_refund_no=out_refund_no,
            amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
            out_trade_no=out_trade_no,
            reason=reason[:80] if reason else None,
            notify_url=notify_url,
        )
        return _model(Refund, body)

    async def query_refund(self, out_refund_no: str) -> Refund:
        """查询单笔退款. WeChatPayError RESOURCE_NOT_EXISTS (404) if there is none."""
        _check(OUT_REFUND_NO, out_refund_no, "out_refund_no")
        _, body = await self._call(self._pay.query_refund, out_refund_no=out_refund_no)
        return _model(Refund, body)

    async def apply_abnormal_refund(
        self,
        *,
        refund_id: str,
        out_refund_no: str,
        to_user: bool,
        bank_type: str | None = None,
        bank_account: str | None = None,
        real_name: str | None = None,
    ) -> Refund:
        """发起异常退款 (POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund): an
        ABNORMAL refund to the payer's bank card (``to_user``; card and name encrypted by
        wechatpayv3 with the platform key) or to the merchant's own account. PROCESSING again;
        the result comes by REFUND.* callback or query."""
        _check(OUT_REFUND_NO, out_refund_no, "out_refund_no")
        if not re.fullmatch(r"[0-9]{1,32}", refund_id):
            raise ValueError("refund_id must be WeChat Pay's refund id")
        _, body = await self._call(
            self._pay.abnormal_refund,
            refund_id=refund_id,
            out_refund_no=out_refund_no,
            type="USER_BANK_CARD" if to_user else "MERCHANT_BANK_CARD",
            bank_type=bank_type if to_user else None,
            bank_account=bank_account if to_user else None,
            real_name=real_name if to_user else None,
        )
        return _model(Refund, body)

    # -- bills --

    async def trade_bill(self, day: dt.date, bill_type: str = "ALL") -> TradeBill:
        """申请交易账单 and its download, hash checked, parsed. A day without trades gives an
        empty bill; before 10:00 the next day WeChatPayError STATEMENT_CREATING (400)."""
        try:
            _, body = await self._call(
                self._pay.trade_bill, bill_date=day.isoformat(), bill_type=bill_type
            )
        except WeChatPayError as e:
            if e.code == "NO_STATEMENT_EXIST":
                return TradeBill(day=day, bill_type=bill_type, rows=[])
            raise
        info = _json(body)
        url = str(info.get("download_url", ""))
        if not url.startswith(self.api_base + "/"):
            raise WeChatPayBadResponse("INVALID_RESPONSE", "bill download URL elsewhere", 200)
        _, content = await self._call(self._pay.download_bill, url)
        text = _bill_text(content, info)
        try:
            rows, summary = parse_trade_bill(text)
        except ValueError as e:
            raise WeChatPayBadResponse("INVALID_RESPONSE", str(e), 200) from None
        return TradeBill(day=day, bill_type=bill_type, rows=rows, summary=summary)

    # -- callbacks --

    def verify_callback(self, headers: Mapping[str, str], body: bytes | str) -> PayNotification:
        """A WeChat Pay notification, trusted only if its platform signature verifies (with the
        public key or the certificate its ``Wechatpay-Serial`` names), its timestamp is within
        5 minutes of our clock and its resource decrypts with our APIv3 key. Raises a
        ``CallbackRejected`` (its ``status`` and ``answer()`` are the reply)."""
        found = _callback_headers(headers)
        values = [found.get(f"wechatpay-{name}", "") for name in _CALLBACK_HEADERS]
        stamp, nonce, signature, serial = values
        if not all(values):
            raise CallbackSignatureInvalid("缺少微信支付签名头")
        if found.get("wechatpay-signature-type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
            raise CallbackSignatureInvalid("不支持的签名类型")
        if not self.knows_serial(serial):
            raise CallbackSignatureInvalid("未知的微信支付公钥或平台证书")
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        if not self._keys.signed(stamp, nonce, signature, serial, text):
            raise CallbackSignatureInvalid()
        if not stamp.isdigit():
            raise CallbackStale("时间戳格式有误")
        sent = dt.datetime.fromtimestamp(int(stamp), dt.UTC)
        if abs(self._clock.now() - sent) > CALLBACK_WINDOW:
            raise CallbackStale()
        envelope = _envelope(text)
        resource = self._decrypt(envelope["resource"])
        try:
            return PayNotification.model_validate({**envelope, "resource": resource})
        except ValidationError:
            raise CallbackMalformed() from None

    async def verified_callback(
        self, headers: Mapping[str, str], body: bytes | str
    ) -> PayNotification:
        """``verify_callback``, after downloading the platform certificates again if the
        callback names a certificate serial we have not seen (WeChat Pay rotated them)."""
        serial = _callback_headers(headers).get("wechatpay-serial", "")
        if self._keys.certificates and serial and not self.knows_serial(serial):
            await self.refresh_certificates()
        return self.verify_callback(headers, body)

    def knows_serial(self, serial: str) -> bool:
        return self._keys.knows(serial)

    @property
    def certificate_serials(self) -> list[str]:
        return self._keys.serials

    async def refresh_certificates(self) -> None:
        await self._keys.refresh(self._open)

    def _decrypt(self, resource: dict[str, Any]) -> dict[str, Any]:
        try:
            plain = AESGCM(self._apiv3_key).decrypt(
                str(resource["nonce"]).encode(),
                base64.b64decode(str(resource["ciphertext"]), validate=True),
                str(resource.get("associated_data") or "").encode(),
            )
            decoded = json.loads(plain)
        except (KeyError, binascii.Error, ValueError, InvalidTag):
            raise CallbackUndecryptable() from None
        if not isinstance(decoded, dict):
            raise CallbackUndecryptable("解密结果不是JSON对象")
        return decoded

    # -- plumbing --

    async def _open(self) -> None:
        """The httpx client, made once; in certificate mode wechatpayv3 then downloads the
        platform certificates (hence the lock: concurrent first calls open one client)."""
        core = self._pay._core
        if core._client is not None:
            return
        async with self._opening:
            if core._client is None:
                await core.__aenter__()

    async def _call(
        self, method: Callable[..., Awaitable[Result]], *args: Any, **kw: Any
    ) -> Result:
        try:
            await self._open()
            status, body = await method(*args, **kw)
        except httpx.RequestError as e:
            log.warning("wechatpay unreachable: %s", type(e).__name__)
            raise WeChatPayUnavailable("NETWORK_ERROR", "unreachable") from None
        except Exception as e:
            if str(e).startswith(_LIBRARY_NO_CERTIFICATE):
                log.error("wechatpay platform certificates could not be downloaded")
                raise WeChatPayUnavailable("NO_CERTIFICATE", "no platform certificate") from None
            if str(e) != _LIBRARY_BAD_SIGNATURE:
                raise
            log.error("wechatpay answer failed the platform signature")
            raise WeChatPayBadResponse("INVALID_RESPONSE", "signature failed", None) from None
        if 200 <= status < 300:
            return status, body
        raise _error(status, body)


def _callback_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("wechatpay-")}


def _check(pattern: re.Pattern[str], value: str, name: str) -> None:
    if not pattern.fullmatch(value):
        raise ValueError(f"{name} must match {pattern.pattern}")


def _rfc3339(when: dt.datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("time_expire must be timezone-aware")
    return when.astimezone(BEIJING).replace(microsecond=0).isoformat()


def _json(body: Any) -> dict[str, Any]:
    try:
        data = json.loads(body) if isinstance(body, str | bytes) and body else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise WeChatPayBadResponse("INVALID_RESPONSE", "answer is not a JSON object", 200)
    return data


M = TypeVar("M", bound=BaseModel)


def _model(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(_json(body))
    except ValidationError:
        raise WeChatPayBadResponse("INVALID_RESPONSE", f"not a {model.__name__}", 200) from None


def _error(status: int, body: Any) -> WeChatPayError:
    try:
        data = json.loads(body) if body else {}
    except (ValueError, TypeError):
        data = {}
    data = data if isinstance(data, dict) else {}
    code = str(data.get("code") or f"HTTP_{status}")
    message = str(data.get("message") or "")
    log.info("wechatpay answered %d %s", status, code)
    kind = WeChatPayUnavailable if status >= 500 or status == 429 else WeChatPayError
    return kind(code, message, status, data.get("detail"))


def _envelope(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise CallbackMalformed("通知不是合法的JSON") from None
    if not isinstance(data, dict):
        raise CallbackMalformed("通知不是JSON对象")
    resource = data.get("resource")
    if data.get("resource_type") != "encrypt-resource" or not isinstance(resource, dict):
        raise CallbackMalformed("通知不是加密资源")
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise CallbackMalformed("不支持的加密算法")
    return dict(data)


def _bill_text(content: Any, info: dict[str, Any]) -> str:
    raw = content if isinstance(content, bytes) else str(content).encode()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            raise WeChatPayBadResponse("INVALID_RESPONSE", "bill is not gzip", 200) from None
    if info.get("hash_type") != "SHA1" or hashlib.sha1(raw).hexdigest() != info.get("hash_value"):
        raise WeChatPayBadResponse("INVALID_RESPONSE", "bill hash does not match", 200)
    return raw.decode("utf-8")
