"""Tornado handlers of the WeChat Pay v3 emulator: api.mch.weixin.qq.com's paths and the
``/_emulator/pay`` controls, served by the same app and port as the WeChat emulator.

Every ``/v3`` request must carry the merchant's WECHATPAY2-SHA256-RSA2048 signature; every
``/v3`` answer (errors too, but not bill downloads) is signed with the platform key in the
``Wechatpay-*`` headers, as WeChat Pay does. Errors are ``{"code", "message", "detail"?}``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tornado.web

from miniapp_stubs import wechatpay_crypto as wpc
from miniapp_stubs.wechatpay_notify import Notifier
from miniapp_stubs.wechatpay_rules import PayError
from miniapp_stubs.wechatpay_state import FailNext, Merchant, PayState

JSONObject = dict[str, Any]
Answer = tuple[int, Any]


@dataclass(frozen=True)
class PayOptions:
    """How the WeChat Pay side of the emulator behaves.

    ``clock``: epoch seconds for signatures, expiries and bills (default: the emulator's).
    ``platform_private_key_pem``: the platform key pair; generated at start when None;
    ``platform_public_key_id``: its ``PUB_KEY_ID_...`` (derived from the key when None).
    ``time_scale``: WeChat Pay's callback retry schedule (15 s, 15 s, 30 s, 3 min ...) is
    multiplied by this into real seconds. ``repeats_after_success``: copies of a notification
    posted after it was acknowledged. ``refund_seconds``: real seconds until a PROCESSING
    refund succeeds by itself (None: only through ``/_emulator/pay/refunds/settle``).
    ``signing``: ``public_key`` or ``certificate`` (platform certificates, served by
    ``/v3/certificates``; ``/_emulator/pay/signing`` switches later).
    ``check_request_time``: refuse requests stamped more than 5 minutes
    away from ``clock`` (only meaningful on the wall clock: the merchant SDK stamps with
    ``time.time()``).
    """

    clock: Callable[[], float] | None = None
    platform_private_key_pem: str | None = None
    platform_public_key_id: str | None = None
    time_scale: float = 1 / 300
    repeats_after_success: int = 1
    refund_seconds: float | None = 0.05
    callback_timeout: float = 5.0
    check_request_time: bool = False
    signing: str = "public_key"


def make_pay_state(
    clock: Callable[[], float] = time.time, options: PayOptions | None = None
) -> PayState:
    options = options or PayOptions()
    pem = options.platform_private_key_pem
    key = wpc.load_private(pem) if pem else wpc.new_key()
    notifier = Notifier(
        options.clock or clock,
        key,
        options.platform_public_key_id or wpc.public_key_id(key),
        time_scale=options.time_scale,
        repeats_after_success=options.repeats_after_success,
        timeout=options.callback_timeout,
    )
    state = PayState(
        options.clock or clock,
        notifier,
        check_request_time=options.check_request_time,
        refund_seconds=options.refund_seconds,
    )
    if options.signing != "public_key":
        state.sign_with(options.signing)
    return state


class PayHandler(tornado.web.RequestHandler):
    """A path of api.mch.weixin.qq.com."""

    pay: PayState

    def initialize(self, pay: PayState) -> None:
        self.pay = pay

    def answer(self, action: Callable[[Merchant], Answer]) -> None:
        try:
            failure = self.pay.take_failure()
            if failure is not None:
                raise failure
            merchant = self.pay.authenticate(
                self.request.method or "GET",
                self.request.uri or "/",
                self.request.headers.get("Authorization"),
                self.request.body,
            )
            status, payload = action(merchant)
        except PayError as exc:
            status, payload = exc.status, exc.as_json()
        self.send_signed(status, payload)

    def send_signed(self, status: int, payload: Any) -> None:
        body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
        for name, value in self.pay.notifier.signed_headers(body).items():
            self.set_header(name, value)
        self.set_header("Request-ID", secrets.token_hex(16))
        self.set_status(status)
        if status == 204:
            self.clear_header("Content-Type")
            self.finish()
            return
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(body)

    def json_body(self) -> JSONObject:
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PayError(400, "PARAM_ERROR", "请求体不是合法的JSON对象")
        return body

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        code = "METHOD_NOT_ALLOWED" if status_code == 405 else "SYSTEM_ERROR"
        self.send_signed(status_code, {"code": code, "message": self._reason})


class JsapiHandler(PayHandler):
    def post(self) -> None:
        """POST /v3/pay/transactions/jsapi: 200 {prepay_id}; 400; 401; 403 OUT_TRADE_NO_USED."""
        self.answer(lambda m: self.pay.create_jsapi(m, self.json_body()))


class OrderHandler(PayHandler):
    def get(self, out_trade_no: str) -> None:
        """GET /v3/pay/transactions/out-trade-no/{no}?mchid=: 200 transaction; 404."""
        mchid = self.get_query_argument("mchid", None)
        self.answer(lambda m: self.pay.query_order(m, out_trade_no, mchid))


class CloseHandler(PayHandler):
    def post(self, out_trade_no: str) -> None:
        """POST /v3/pay/transactions/out-trade-no/{no}/close {mchid}: 204; 400 ORDERPAID; 404."""
        self.answer(lambda m: self.pay.close_order(m, out_trade_no, self.json_body()))


class RefundsHandler(PayHandler):
    def post(self) -> None:
        """POST /v3/refund/domestic/refunds: 200 refund (PROCESSING); 400; 404."""
        self.answer(lambda m: self.pay.create_refund(m, self.json_body()))


class RefundHandler(PayHandler):
    def get(self, out_refund_no: str) -> None:
        """GET /v3/refund/domestic/refunds/{out_refund_no}: 200 refund; 404."""
        self.answer(lambda m: self.pay.query_refund(m, out_refund_no))


class AbnormalRefundHandler(PayHandler):
    def post(self, refund_id: str) -> None:
        """POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund {out_refund_no,
        type, bank_type?, bank_account?, real_name?}: 200 refund (PROCESSING); 400; 404."""
        self.answer(lambda m: self.pay.apply_abnormal_refund(m, refund_id, self.json_body()))


class CertificatesHandler(PayHandler):
    def get(self) -> None:
        """GET /v3/certificates: 200 {data: [{serial_no, effective_time, expire_time,
        encrypt_certificate}]}, each PEM sealed with the merchant's APIv3 key."""
        self.answer(lambda m: (200, self.pay.certificates.download(m.apiv3_key)))


class TradeBillHandler(PayHandler):
    def get(self) -> None:
        """GET /v3/bill/tradebill?bill_date=&bill_type=&tar_type=: 200 {download_url, hash}."""
        names = ("bill_date", "bill_type", "tar_type")
        query = {name: self.get_query_argument(name, None) for name in names}
        base = f"{self.request.protocol}://{self.request.host}"
        self.answer(lambda m: self.pay.trade_bill(m, query, base))


class BillDownloadHandler(PayHandler):
    def get(self) -> None:
        """GET /v3/billdownload/file?token=: 200 the file (unsigned, as WeChat Pay sends it)."""
        token = self.get_query_argument("token", None)
        try:
            merchant = self.pay.authenticate(
                "GET", self.request.uri or "/", self.request.headers.get("Authorization"), b""
            )
            content = self.pay.download_bill(merchant, token)
        except PayError as exc:
            self.send_signed(exc.status, exc.as_json())
            return
        self.set_header("Content-Type", "application/octet-stream")
        self.finish(content)


class PayNotFound(PayHandler):
    def prepare(self) -> None:
        self.send_signed(404, {"code": "NOT_FOUND", "message": "请求的资源不存在"})


class PayControl(tornado.web.RequestHandler):
    """A ``/_emulator/pay`` path: what the payer or a test does; errors use HTTP statuses."""

    pay: PayState

    def initialize(self, pay: PayState) -> None:
        self.pay = pay

    def answer(self, action: Callable[[], Any]) -> None:
        try:
            payload = action()
        except PayError as exc:
            self.set_status(exc.status)
            payload = exc.as_json()
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(payload, ensure_ascii=False))

    def body(self) -> JSONObject:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PayError(400, "PARAM_ERROR", "body must be a JSON object")
        return body

    def text(self, body: JSONObject, name: str) -> str:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise PayError(400, "PARAM_ERROR", f"{name} required")
        return value


class ConfirmControl(PayControl):
    def post(self) -> None:
        """POST /_emulator/pay/confirm {prepay_id, openid?} or wx.requestPayment's params
        {appId, timeStamp, nonceStr, package, signType, paySign}: 200 the transaction;
        400 bad paySign; 404 unknown prepay_id; 409 not payable (paid, closed, expired)."""
        self.answer(self._confirm)

    def _confirm(self) -> JSONObject:
        body = self.body()
        openid = body.get("openid") if isinstance(body.get("openid"), str) else None
        if "package" not in body:
            return self.pay.confirm(self.text(body, "prepay_id"), openid)
        package = self.text(body, "package")
        prepay_id = package.removeprefix("prepay_id=")
        key = self.pay.prepay.get(prepay_id)
        merchant = self.pay.merchants[key[0]] if key else None
        if merchant is None or not package.startswith("prepay_id="):
            raise PayError(404, "PREPAY_NOT_EXIST", "prepay_id不存在或已过期")
        appid, stamp, nonce = (self.text(body, n) for n in ("appId", "timeStamp", "nonceStr"))
        message = wpc.pay_sign_message(appid, stamp, nonce, package)
        signed = wpc.verify(merchant.public_key, message, str(body.get("paySign", "")))
        if body.get("signType") != "RSA" or not signed or appid not in merchant.appids:
            raise PayError(400, "SIGN_ERROR", "支付验证签名失败")
        return self.pay.confirm(prepay_id, openid)


class ExpireControl(PayControl):
    def post(self) -> None:
        """POST /_emulator/pay/expire {out_trade_no}: 200; 404. The order can no longer be paid."""
        self.answer(lambda: self.pay.expire(self.text(self.body(), "out_trade_no")))


class SettleRefundControl(PayControl):
    def post(self) -> None:
        """POST /_emulator/pay/refunds/settle {out_refund_no, status?}: SUCCESS (default),
        ABNORMAL or CLOSED, and the REFUND.* notification; 200 refund; 404; 409 settled."""
        self.answer(self._settle)

    def _settle(self) -> JSONObject:
        body = self.body()
        status = body.get("status", "SUCCESS")
        return self.pay.settle_refund(self.text(body, "out_refund_no"), str(status))


class SigningControl(PayControl):
    def post(self) -> None:
        """POST /_emulator/pay/signing {mode: "public_key" | "certificate"}: what signs answers
        and callbacks from now on (a merchant switching over sees both)."""
        self.answer(lambda: self.pay.sign_with(str(self.body().get("mode"))))


class RotateControl(PayControl):
    def post(self) -> None:
        """POST /_emulator/pay/certificates/rotate: a new platform certificate (new serial);
        the previous one is still served by /v3/certificates."""
        self.answer(self.pay.rotate_certificate)


class BalanceControl(PayControl):
    def post(self) -> None:
        """POST /_emulator/pay/balance {fen}: the merchant's balance, from which refunds are
        paid (a refund above it: 403 NOT_ENOUGH); {"fen": null} makes it unlimited again."""
        self.answer(self._balance)

    def _balance(self) -> JSONObject:
        fen = self.body().get("fen")
        if fen is not None and (not isinstance(fen, int) or isinstance(fen, bool) or fen < 0):
            raise PayError(400, "PARAM_ERROR", "fen must be a whole number of fen or null")
        self.pay.refunds.balance_fen = fen
        return {"fen": fen}


class OrderControl(PayControl):
    def get(self) -> None:
        """GET /_emulator/pay/orders?out_trade_no=: 200 {transaction, prepay_id, time_expire}."""
        self.answer(self._order)

    def _order(self) -> JSONObject:
        order = self.pay.order_by_no(self.get_query_argument("out_trade_no", ""))
        return {
            "transaction": order.as_json(),
            "prepay_id": order.prepay_id,
            "notify_url": order.request["notify_url"],
            "time_expire": order.time_expire,
        }


class NotificationsControl(PayControl):
    def get(self) -> None:
        """GET /_emulator/pay/notifications?out_trade_no=&event_type=: 200 {notifications},
        oldest first, each with every delivery attempt and the merchant's answers."""
        number = self.get_query_argument("out_trade_no", None)
        event = self.get_query_argument("event_type", None)
        found = [
            d.as_json()
            for d in self.pay.notifier.deliveries
            if (number is None or d.out_trade_no == number)
            and (event is None or d.event_type == event)
        ]
        self.answer(lambda: {"notifications": found})


class DropControl(PayControl):
    def post(self) -> None:
        """POST /_emulator/pay/notifications/drop {out_trade_no, drop?}: from now on the
        order's notifications (payment and refunds) are lost on the way (or no longer)."""
        self.answer(self._drop)

    def _drop(self) -> JSONObject:
        body = self.body()
        number = self.text(body, "out_trade_no")
        if body.get("drop", True) is False:
            self.pay.notifier.dropped.discard(number)
        else:
            self.pay.notifier.dropped.add(number)
        return {"out_trade_no": number, "drop": number in self.pay.notifier.dropped}


class FailNextControl(PayControl):
    def post(self) -> None:
        """POST /_emulator/pay/fail-next {count?, status?, code?, message?}: the next ``count``
        /v3 calls answer this error (default 1 x 500 SYSTEM_ERROR) before anything else."""
        self.answer(self._fail)

    def _fail(self) -> JSONObject:
        body = self.body()
        count, status = body.get("count", 1), body.get("status", 500)
        if not isinstance(count, int) or not isinstance(status, int) or not 400 <= status < 600:
            raise PayError(400, "PARAM_ERROR", "count and status (4xx/5xx) must be integers")
        code = str(body.get("code", "SYSTEM_ERROR"))
        message = str(body.get("message", "系统异常，请稍后重试"))
        self.pay.failures.extend(FailNext(status, code, message) for _ in range(count))
        return {"pending": len(self.pay.failures)}


class PayResetControl(PayControl):
    def post(self) -> None:
        """POST /_emulator/pay/reset: forgets orders, refunds, notifications; keeps merchants."""
        self.answer(self._reset)

    def _reset(self) -> JSONObject:
        self.pay.reset()
        return {"ok": True}


def wechatpay_handlers(
    pay: PayState,
) -> list[tuple[str, type[tornado.web.RequestHandler], JSONObject]]:
    """The WeChat Pay routes, ending with a signed 404 for unknown /v3 paths."""
    kwargs: JSONObject = {"pay": pay}
    no = r"([^/]+)"
    routes: list[tuple[str, type[tornado.web.RequestHandler]]] = [
        (r"/v3/pay/transactions/jsapi", JsapiHandler),
        (rf"/v3/pay/transactions/out-trade-no/{no}", OrderHandler),
        (rf"/v3/pay/transactions/out-trade-no/{no}/close", CloseHandler),
        (r"/v3/refund/domestic/refunds", RefundsHandler),
        (rf"/v3/refund/domestic/refunds/{no}", RefundHandler),
        (rf"/v3/refund/domestic/refunds/{no}/apply-abnormal-refund", AbnormalRefundHandler),
        (r"/v3/certificates", CertificatesHandler),
        (r"/v3/bill/tradebill", TradeBillHandler),
        (r"/v3/billdownload/file", BillDownloadHandler),
        (r"/v3/.*", PayNotFound),
        (r"/_emulator/pay/confirm", ConfirmControl),
        (r"/_emulator/pay/expire", ExpireControl),
        (r"/_emulator/pay/refunds/settle", SettleRefundControl),
        (r"/_emulator/pay/balance", BalanceControl),
        (r"/_emulator/pay/signing", SigningControl),
        (r"/_emulator/pay/certificates/rotate", RotateControl),
        (r"/_emulator/pay/orders", OrderControl),
        (r"/_emulator/pay/notifications", NotificationsControl),
        (r"/_emulator/pay/notifications/drop", DropControl),
        (r"/_emulator/pay/fail-next", FailNextControl),
        (r"/_emulator/pay/reset", PayResetControl),
    ]
    return [(pattern, handler, kwargs) for pattern, handler in routes]
