"""In-memory state of the WeChat Pay v3 emulator: merchants, orders, refunds, bills.

Every API method returns ``(status, body)`` as WeChat Pay would answer or raises
``PayError``. Time comes from the injected ``clock`` (epoch seconds), so orders expire,
prepay ids age and signatures are stamped on the test's clock.

Choices where WeChat Pay's documents are silent, kept on purpose:
- an order past its ``time_expire`` cannot be paid but stays NOTPAY until it is closed
  (the documents say time_expire is "not the time the order is closed");
- closing a closed order answers 204 again; closing a paid one 400 ORDERPAID;
- a refund above what is left of the payment answers 400 INVALID_REQUEST.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from miniapp_stubs import wechatpay_crypto as wpc
from miniapp_stubs import wechatpay_rules as rules
from miniapp_stubs.wechatpay_bill import BillLine, render
from miniapp_stubs.wechatpay_certs import PlatformCertificates
from miniapp_stubs.wechatpay_notify import Notifier
from miniapp_stubs.wechatpay_refunds import RefundBook
from miniapp_stubs.wechatpay_rules import BEIJING, PayError, beijing

PREPAY_TTL = 7200.0  # a prepay_id is good for two hours
MIN_EXPIRE = 60.0  # time_expire earlier than a minute from now is moved to a minute from now
REQUEST_TIME_WINDOW = 300.0
BILL_READY_HOUR = 10  # a day's bill can be fetched from 10:00 the next day (Beijing)
BILL_TOKEN_TTL = 30.0
STATE_DESC = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "CLOSED": "订单已关闭",
    "REFUND": "订单发生过退款",
}


def _digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


@dataclass
class Merchant:
    mchid: str
    appids: set[str]
    public_key: rsa.RSAPublicKey
    serial_no: str
    apiv3_key: str


def transaction_id(now: float) -> str:
    """A WeChat Pay transaction id: 4200, six digits, the Beijing date, ten digits."""
    stamp = dt.datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d")
    return f"4200{_digits(6)}{stamp}{_digits(10)}"


@dataclass
class Order:
    mchid: str
    request: dict[str, Any]  # the checked JSAPI body: a repeat must match it
    time_expire: float
    created_at: float
    prepay_id: str
    prepay_at: float
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: float | None = None

    @property
    def out_trade_no(self) -> str:
        return str(self.request["out_trade_no"])

    @property
    def total(self) -> int:
        return int(self.request["amount"]["total"])

    def as_json(self) -> dict[str, Any]:
        """The transaction as queried and as carried by TRANSACTION.SUCCESS."""
        req = self.request
        body: dict[str, Any] = {
            "appid": req["appid"],
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_state": self.trade_state,
            "trade_state_desc": STATE_DESC[self.trade_state],
            "attach": req["attach"] or "",
            "amount": {"total": self.total, "currency": "CNY", "payer_currency": "CNY"},
            "payer": {},
            "promotion_detail": [],
        }
        if self.transaction_id is not None and self.success_time is not None:
            body["amount"]["payer_total"] = self.total
            body.update(
                transaction_id=self.transaction_id,
                trade_type="JSAPI",
                bank_type="OTHERS",
                success_time=beijing(self.success_time),
                payer={"openid": req["openid"]},
            )
        return body


@dataclass
class BillFile:
    mchid: str
    content: bytes
    issued_at: float


@dataclass
class FailNext:
    status: int
    code: str
    message: str


class PayState:
    """All WeChat Pay state of one emulator; nothing is shared between instances."""

    def __init__(
        self,
        clock: Callable[[], float],
        notifier: Notifier,
        *,
        check_request_time: bool = False,
        refund_seconds: float | None = 0.05,
    ) -> None:
        self.clock = clock
        self.notifier = notifier
        # The merchant SDK stamps requests with the wall clock: check them only on it.
        self.check_request_time = check_request_time
        # PROCESSING refunds succeed after this many real seconds (None: only by hand).
        self.refund_seconds = refund_seconds
        self.merchants: dict[str, Merchant] = {}
        self.orders: dict[tuple[str, str], Order] = {}
        self.prepay: dict[str, tuple[str, str]] = {}  # prepay_id -> order key
        self.refunds = RefundBook(clock)
        self.bills: dict[str, BillFile] = {}
        self.failures: list[FailNext] = []
        self.certificates = PlatformCertificates()
        self.bill_bom = False  # bills start with a UTF-8 byte-order mark (as some do)

    def sign_with(self, mode: str) -> dict[str, Any]:
        """Sign answers and callbacks with the platform public key (``public_key``, serial
        ``PUB_KEY_ID_...``) or the newest platform certificate (``certificate``)."""
        if mode not in ("public_key", "certificate"):
            raise PayError(400, "PARAM_ERROR", "mode只能是public_key或certificate")
        current = self.certificates.current if mode == "certificate" else None
        self.notifier.signer = (current.key, current.serial_no) if current else None
        return {"mode": mode, "serial": current.serial_no if current else None}

    def rotate_certificate(self) -> dict[str, Any]:
        """A new platform certificate; it signs from now on if certificates sign."""
        fresh = self.certificates.rotate()
        if self.notifier.signer is not None:
            self.notifier.signer = (fresh.key, fresh.serial_no)
        return {
            "serial": fresh.serial_no,
            "serials": [c.serial_no for c in self.certificates.issued],
        }

    def add_merchant(
        self, mchid: str, appid: str, public_key_pem: str, serial_no: str, apiv3_key: str
    ) -> Merchant:
        """Register a merchant: its API certificate's public key and serial, its APIv3 key."""
        if len(apiv3_key.encode()) != 32:
            raise ValueError("the APIv3 key must be 32 bytes")
        merchant = self.merchants.get(mchid)
        if merchant is None:
            key = wpc.load_public(public_key_pem)
            merchant = Merchant(mchid, {appid}, key, serial_no, apiv3_key)
            self.merchants[mchid] = merchant
        merchant.appids.add(appid)
        return merchant

    def reset(self) -> None:
        """Forget orders, refunds, bills, notifications and injected failures."""
        self.orders.clear()
        self.prepay.clear()
        self.refunds = RefundBook(self.clock)
        self.bills.clear()
        self.failures.clear()
        self.notifier.deliveries.clear()
        self.notifier.dropped.clear()

    # -- every request --

    def take_failure(self) -> PayError | None:
        if not self.failures:
            return None
        fail = self.failures.pop(0)
        return PayError(fail.status, fail.code, fail.message)

    def authenticate(
        self, method: str, uri: str, authorization: str | None, body: bytes
    ) -> Merchant:
        """Check the merchant's request signature; 401 SIGN_ERROR on any mismatch."""
        fields = wpc.parse_authorization(authorization)
        if fields is None:
            raise rules.sign_error("Authorization header missing or malformed")
        merchant = self.merchants.get(fields["mchid"])
        if merchant is None:
            raise PayError(400, "MCH_NOT_EXISTS", "商户号不存在")
        if fields["serial_no"] != merchant.serial_no:
            raise rules.sign_error("serial_no does not match the merchant's certificate")
        if not fields["timestamp"].isdigit():
            raise rules.sign_error("timestamp is not a number")
        late = abs(self.clock() - int(fields["timestamp"]))
        if self.check_request_time and late > REQUEST_TIME_WINDOW:
            raise rules.sign_error("timestamp is more than 5 minutes away")
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise rules.sign_error("body is not UTF-8") from None
        message = wpc.request_message(method, uri, fields["timestamp"], fields["nonce_str"], text)
        if not wpc.verify(merchant.public_key, message, fields["signature"]):
            raise rules.sign_error("sign not match")
        return merchant

    # -- orders --

    def create_jsapi(self, merchant: Merchant, body: dict[str, Any]) -> tuple[int, Any]:
        """POST /v3/pay/transactions/jsapi: 200 {prepay_id}; the same order again, the same."""
        request = rules.jsapi_order(body)
        if request["mchid"] != merchant.mchid:
            raise rules.invalid_request("mchid与请求头中的商户号不一致")
        if request["appid"] not in merchant.appids:
            raise PayError(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
        order = self.orders.get((merchant.mchid, request["out_trade_no"]))
        if order is None:
            return 200, {"prepay_id": self._new_order(merchant, request).prepay_id}
        self._check_repeat(order, request)
        now = self.clock()
        if now - order.prepay_at > PREPAY_TTL:
            self.prepay.pop(order.prepay_id, None)
            order.prepay_id, order.prepay_at = self._new_prepay_id(order), now
        return 200, {"prepay_id": order.prepay_id}

    def _new_order(self, merchant: Merchant, request: dict[str, Any]) -> Order:
        now = self.clock()
        wanted = request["time_expire"]
        expire = max(wanted, now + MIN_EXPIRE) if wanted is not None else now + PREPAY_TTL
        key = (merchant.mchid, request["out_trade_no"])
        order = Order(merchant.mchid, request, expire, now, "", now)
        order.prepay_id = self._new_prepay_id(order)
        self.orders[key] = order
        return order

    def _new_prepay_id(self, order: Order) -> str:
        stamp = dt.datetime.fromtimestamp(self.clock(), BEIJING).strftime("%Y%m%d%H%M%S")
        prepay_id = f"wx{stamp}{secrets.token_hex(10)}"
        self.prepay[prepay_id] = (order.mchid, order.out_trade_no)
        return prepay_id

    def _check_repeat(self, order: Order, request: dict[str, Any]) -> None:
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise PayError(400, "ORDERPAID", "该订单已支付")
        if order.trade_state == "CLOSED":
            raise PayError(400, "ORDER_CLOSED", "订单已关闭")
        if request != order.request:
            raise PayError(403, "OUT_TRADE_NO_USED", "商户订单号重复")
        if self.clock() >= order.time_expire:
            raise rules.invalid_request("订单已超过支付结束时间，请使用新的商户订单号下单")

    def order(self, merchant: Merchant, out_trade_no: str) -> Order:
        order = self.orders.get((merchant.mchid, out_trade_no))
        if order is None:
            raise PayError(404, "ORDER_NOT_EXIST", "订单不存在")
        return order

    def query_order(
        self, merchant: Merchant, out_trade_no: str, mchid: str | None
    ) -> tuple[int, Any]:
        """GET /v3/pay/transactions/out-trade-no/{no}?mchid=: 200 transaction; 404."""
        if not mchid:
            raise rules.param_error("/mchid", "必填性规定不匹配", location="query")
        if mchid != merchant.mchid:
            raise rules.invalid_request("mchid与请求头中的商户号不一致")
        return 200, self.order(merchant, out_trade_no).as_json()

    def close_order(
        self, merchant: Merchant, out_trade_no: str, body: dict[str, Any]
    ) -> tuple[int, Any]:
        """POST /v3/pay/transactions/out-trade-no/{no}/close {mchid}: 204; 400 ORDERPAID."""
        if body.get("mchid") != merchant.mchid:
            raise rules.param_error("/mchid", "必填性规定不匹配")
        order = self.order(merchant, out_trade_no)
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise PayError(400, "ORDERPAID", "订单已支付")
        order.trade_state = "CLOSED"
        return 204, None

    # -- what the user does (control paths) --

    def confirm(self, prepay_id: str, openid: str | None = None) -> dict[str, Any]:
        """The user pays: SUCCESS, then TRANSACTION.SUCCESS to the order's notify_url."""
        key = self.prepay.get(prepay_id)
        order = self.orders.get(key) if key else None
        now = self.clock()
        if order is None or order.prepay_id != prepay_id or now - order.prepay_at > PREPAY_TTL:
            raise PayError(404, "PREPAY_NOT_EXIST", "prepay_id不存在或已过期")
        if openid is not None and openid != order.request["openid"]:
            raise PayError(403, "PAYER_MISMATCH", "支付用户与下单用户不一致")
        if order.trade_state != "NOTPAY":
            raise PayError(409, order.trade_state, f"订单状态为{order.trade_state}，不能支付")
        if now >= order.time_expire:
            raise PayError(409, "ORDER_EXPIRED", "订单已超过支付结束时间")
        order.trade_state, order.success_time = "SUCCESS", now
        order.transaction_id = transaction_id(now)
        merchant = self.merchants[order.mchid]
        resource = order.as_json()
        self.notifier.send(
            merchant.apiv3_key,
            order.request["notify_url"],
            "TRANSACTION.SUCCESS",
            resource,
            order.out_trade_no,
        )
        return resource

    def order_by_no(self, out_trade_no: str) -> Order:
        for (_, number), order in self.orders.items():
            if number == out_trade_no:
                return order
        raise PayError(404, "ORDER_NOT_EXIST", "订单不存在")

    def expire(self, out_trade_no: str) -> dict[str, Any]:
        """Move the order's time_expire to now: it can no longer be paid."""
        order = self.order_by_no(out_trade_no)
        order.time_expire = self.clock()
        return {"out_trade_no": out_trade_no, "time_expire": beijing(order.time_expire)}

    # -- refunds --

    def create_refund(self, merchant: Merchant, body: dict[str, Any]) -> tuple[int, Any]:
        """POST /v3/refund/domestic/refunds: 200 refund (PROCESSING); 400; 404."""
        request = rules.refund_request(body)
        order = self._refund_order(merchant, request)
        refund, fresh = self.refunds.create(merchant.mchid, order, request)
        if fresh and self.refund_seconds is not None:
            number = refund.out_refund_no
            self.notifier.later(self.refund_seconds, lambda: self._settle_quietly(number))
        return 200, refund.as_json()

    def _refund_order(self, merchant: Merchant, request: dict[str, Any]) -> Order:
        found = self.orders.get((merchant.mchid, request["out_trade_no"] or ""))
        if found is None and request["transaction_id"]:
            mine = (o for o in self.orders.values() if o.mchid == merchant.mchid)
            found = next((o for o in mine if o.transaction_id == request["transaction_id"]), None)
        if found is None:
            raise PayError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        return found

    def query_refund(self, merchant: Merchant, out_refund_no: str) -> tuple[int, Any]:
        """GET /v3/refund/domestic/refunds/{out_refund_no}: 200 refund; 404."""
        return 200, self.refunds.get(merchant.mchid, out_refund_no).as_json()

    def apply_abnormal_refund(
        self, merchant: Merchant, refund_id: str, body: dict[str, Any]
    ) -> tuple[int, Any]:
        """POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund: 200 refund,
        PROCESSING again; 400 not ABNORMAL; 404."""
        keys = [self.notifier.platform_key, *(c.key for c in self.certificates.issued)]
        decrypt = lambda text: wpc.decrypt_field(keys, text)  # noqa: E731
        refund = self.refunds.apply_abnormal(merchant.mchid, refund_id, body, decrypt)
        if self.refund_seconds is not None:
            number = refund.out_refund_no
            self.notifier.later(self.refund_seconds, lambda: self._settle_quietly(number))
        return 200, refund.as_json()

    def settle_refund(self, out_refund_no: str, status: str = "SUCCESS") -> dict[str, Any]:
        """PROCESSING -> SUCCESS / ABNORMAL / CLOSED, then REFUND.* to the refund's notify_url."""
        refund = self.refunds.settle(out_refund_no, status)
        order = self.orders[(refund.mchid, refund.out_trade_no)]
        if status == "SUCCESS":
            order.trade_state = "REFUND"
        if refund.notify_url:
            merchant = self.merchants[refund.mchid]
            self.notifier.send(
                merchant.apiv3_key,
                refund.notify_url,
                f"REFUND.{status}",
                refund.notice_json(),
                refund.out_trade_no,
                refund.out_refund_no,
            )
        return refund.as_json()

    def _settle_quietly(self, out_refund_no: str) -> None:
        with contextlib.suppress(PayError):  # settled by hand in the meantime
            self.settle_refund(out_refund_no)

    # -- bills --

    def trade_bill(
        self, merchant: Merchant, query: dict[str, str | None], base_url: str
    ) -> tuple[int, Any]:
        """GET /v3/bill/tradebill?bill_date=&bill_type=&tar_type=: 200 {download_url, hash}."""
        day = rules.bill_date(query.get("bill_date"))
        bill_type = query.get("bill_type") or "ALL"
        tar_type = query.get("tar_type")
        if bill_type not in ("ALL", "SUCCESS", "REFUND"):
            raise rules.param_error("/bill_type", "取值不在ALL、SUCCESS、REFUND中", "query")
        if tar_type not in (None, "GZIP"):
            raise rules.param_error("/tar_type", "只能是GZIP", "query")
        if day < rules.months_before(_day(self.clock()), 3):
            # "此接口仅可下载三个月内的账单" (申请交易账单)
            raise rules.invalid_request("仅支持三个月内的账单下载申请")
        ready = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(BILL_READY_HOUR), BEIJING)
        if self.clock() < ready.timestamp():
            raise PayError(400, "STATEMENT_CREATING", "账单生成中，请稍后再试")
        lines = self._bill_lines(merchant.mchid, day, bill_type)
        if not lines:
            raise PayError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        text = (("\ufeff" if self.bill_bom else "") + render(lines, bill_type)).encode()
        token = secrets.token_urlsafe(24)
        content = _gzip(text) if tar_type == "GZIP" else text
        self.bills[token] = BillFile(merchant.mchid, content, self.clock())
        return 200, {
            "hash_type": "SHA1",
            "hash_value": _sha1(text),
            "download_url": f"{base_url}/v3/billdownload/file?token={token}",
        }

    def download_bill(self, merchant: Merchant, token: str | None) -> bytes:
        """GET /v3/billdownload/file?token=: the bill file, for 30 seconds after it was asked."""
        bill = self.bills.get(token or "")
        if bill is None or bill.mchid != merchant.mchid:
            raise rules.invalid_request("token无效或已过期")
        if self.clock() - bill.issued_at > BILL_TOKEN_TTL:
            raise rules.invalid_request("token无效或已过期")
        return bill.content

    def _bill_lines(self, mchid: str, day: dt.date, bill_type: str) -> list[BillLine]:
        lines: list[BillLine] = []
        for order in self.orders.values():
            paid = order.success_time
            if order.mchid != mchid or paid is None:
                continue
            if bill_type != "REFUND" and _day(paid) == day:
                lines.append(_line(order, paid))
            if bill_type != "SUCCESS":
                lines += self.refunds.bill_lines(order, day, _line(order, paid))
        return lines


def _day(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, BEIJING).date()


def _line(order: Order, paid: float) -> BillLine:
    req = order.request
    return BillLine(
        when=dt.datetime.fromtimestamp(paid, BEIJING),
        appid=req["appid"],
        mchid=order.mchid,
        transaction_id=order.transaction_id or "",
        out_trade_no=order.out_trade_no,
        openid=req["openid"],
        description=req["description"],
        attach=req["attach"] or "",
        total=order.total,
    )


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
