"""Refunds of the WeChat Pay emulator: PROCESSING, then SUCCESS (or ABNORMAL, or CLOSED).

Partial refunds add up to at most the payment; a CLOSED refund gives its amount back to what
can still be refunded; an ABNORMAL one does not: its money waits in an intermediate account
until the merchant applies for an abnormal refund (to a bank card: PROCESSING again, then
SUCCESS). Repeating an out_refund_no with the same request answers the same refund; with a
different one, 400 INVALID_REQUEST.

The limits of 申请退款 (pay.weixin.qq.com/doc/v3/merchant/4012556457), each refused as
documented: "交易时间超过一年的订单无法提交退款（按支付成功时间+365天计算）" and "每个支付订单的
部分退款次数不能超过50次" (400 INVALID_REQUEST), "同一笔订单多次退款的请求需相隔1分钟"
(429 FREQUENCY_LIMITED, "该笔退款未受理"), and a merchant balance below the refund
(403 NOT_ENOUGH), set with ``balance_fen`` (None: unlimited).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from miniapp_stubs.wechatpay_bill import BillLine
from miniapp_stubs.wechatpay_rules import BEIJING, PayError, beijing, invalid_request

if TYPE_CHECKING:
    from miniapp_stubs.wechatpay_state import Order

SETTLED = frozenset({"SUCCESS", "ABNORMAL", "CLOSED"})
RECEIVED_ACCOUNT = "支付用户零钱"
REFUND_WINDOW = 365 * 86400.0  # from the payment's success time
MAX_REFUNDS = 50  # refunds of one order
REFUND_INTERVAL = 60.0  # between two refunds of one order
ABNORMAL_TYPES = frozenset({"USER_BANK_CARD", "MERCHANT_BANK_CARD"})


@dataclass
class Refund:
    mchid: str
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    request: dict[str, Any]
    created_at: float
    status: str = "PROCESSING"
    success_time: float | None = None
    abnormal_type: str | None = None  # where an ABNORMAL refund was sent again

    @property
    def refund(self) -> int:
        return int(self.request["amount"]["refund"])

    @property
    def total(self) -> int:
        return int(self.request["amount"]["total"])

    @property
    def notify_url(self) -> str | None:
        return self.request.get("notify_url")

    def as_json(self) -> dict[str, Any]:
        """The refund as POST /refunds and GET /refunds/{no} answer it."""
        body: dict[str, Any] = {
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "transaction_id": self.transaction_id,
            "out_trade_no": self.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": RECEIVED_ACCOUNT,
            "create_time": beijing(self.created_at),
            "status": self.status,
            "funds_account": self.request.get("funds_account") or "AVAILABLE",
            "amount": {
                "total": self.total,
                "refund": self.refund,
                "from": [],
                "payer_total": self.total,
                "payer_refund": self.refund,
                "settlement_refund": self.refund,
                "settlement_total": self.total,
                "discount_refund": 0,
                "currency": "CNY",
                "refund_fee": 0,
            },
            "promotion_detail": [],
        }
        if self.success_time is not None:
            body["success_time"] = beijing(self.success_time)
        return body

    def notice_json(self) -> dict[str, Any]:
        """The resource of a REFUND.* notification."""
        body: dict[str, Any] = {
            "mchid": self.mchid,
            "transaction_id": self.transaction_id,
            "out_trade_no": self.out_trade_no,
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "refund_status": self.status,
            "user_received_account": RECEIVED_ACCOUNT,
            "amount": {
                "total": self.total,
                "refund": self.refund,
                "payer_total": self.total,
                "payer_refund": self.refund,
            },
        }
        if self.success_time is not None:
            body["success_time"] = beijing(self.success_time)
        return body


class RefundBook:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.refunds: dict[tuple[str, str], Refund] = {}
        self.balance_fen: int | None = None  # the merchant's balance; None: unlimited

    def of_order(self, order: Order) -> list[Refund]:
        return [
            r
            for r in self.refunds.values()
            if r.mchid == order.mchid and r.out_trade_no == order.out_trade_no
        ]

    def refunded(self, order: Order) -> int:
        """What is refunded or on its way back (everything but CLOSED refunds)."""
        return sum(r.refund for r in self.of_order(order) if r.status != "CLOSED")

    def create(self, mchid: str, order: Order, request: dict[str, Any]) -> tuple[Refund, bool]:
        """The refund and whether it is new; a repeat with the same request is no error."""
        known = self.refunds.get((mchid, request["out_refund_no"]))
        if known is not None:
            same = {**request, "transaction_id": None, "out_trade_no": None}
            before = {**known.request, "transaction_id": None, "out_trade_no": None}
            if same != before or known.out_trade_no != order.out_trade_no:
                raise invalid_request("订单金额或退款金额与之前请求不一致，请核实后再试")
            return known, False
        self._check(order, request)
        now = self.clock()
        refund = Refund(
            mchid=mchid,
            out_refund_no=request["out_refund_no"],
            refund_id=f"5030{secrets.randbelow(10**25):025d}",
            out_trade_no=order.out_trade_no,
            transaction_id=order.transaction_id or "",
            request=request,
            created_at=now,
        )
        self.refunds[(mchid, refund.out_refund_no)] = refund
        return refund, True

    def _check(self, order: Order, request: dict[str, Any]) -> None:
        if order.trade_state not in ("SUCCESS", "REFUND"):
            raise invalid_request("订单未支付，不能退款")
        if request["amount"]["total"] != order.total:
            raise invalid_request("退款请求中的原订单金额与订单金额不一致")
        left = order.total - self.refunded(order)
        if left <= 0:
            raise invalid_request("订单已全额退款")
        if request["amount"]["refund"] > left:
            raise invalid_request("申请退款金额超过订单可退金额")
        self._limits(order, request["amount"]["refund"])

    def _limits(self, order: Order, amount: int) -> None:
        now, earlier = self.clock(), self.of_order(order)
        if order.success_time is not None and now - order.success_time > REFUND_WINDOW:
            raise invalid_request("交易时间超过一年的订单无法提交退款")
        if len(earlier) >= MAX_REFUNDS:
            raise invalid_request("每个支付订单的部分退款次数不能超过50次")
        if any(now - r.created_at < REFUND_INTERVAL for r in earlier):
            raise PayError(
                429, "FREQUENCY_LIMITED", "同一笔订单多次退款的请求需相隔1分钟，该笔退款未受理"
            )
        if self.balance_fen is not None:
            if amount > self.balance_fen:
                raise PayError(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")
            self.balance_fen -= amount

    def get(self, mchid: str, out_refund_no: str) -> Refund:
        refund = self.refunds.get((mchid, out_refund_no))
        if refund is None:
            raise PayError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return refund

    def settle(self, out_refund_no: str, status: str) -> Refund:
        if status not in SETTLED:
            raise PayError(400, "PARAM_ERROR", "status只能是SUCCESS、ABNORMAL或CLOSED")
        refund = next((r for r in self.refunds.values() if r.out_refund_no == out_refund_no), None)
        if refund is None:
            raise PayError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        if refund.status != "PROCESSING":
            raise PayError(409, refund.status, f"退款单状态为{refund.status}")
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = self.clock()
        return refund

    def apply_abnormal(
        self,
        mchid: str,
        refund_id: str,
        body: dict[str, Any],
        decrypt: Callable[[str], str | None],
    ) -> Refund:
        """POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund: an ABNORMAL
        refund goes to a bank card (the user's or the merchant's), PROCESSING again."""
        refund = next(
            (r for r in self.refunds.values() if r.mchid == mchid and r.refund_id == refund_id),
            None,
        )
        if refund is None or body.get("out_refund_no") != refund.out_refund_no:
            raise PayError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        kind = body.get("type")
        if kind not in ABNORMAL_TYPES:
            raise PayError(400, "PARAM_ERROR", "type只能是USER_BANK_CARD或MERCHANT_BANK_CARD")
        if kind == "USER_BANK_CARD":
            for name in ("bank_type", "bank_account", "real_name"):
                if not isinstance(body.get(name), str) or not body[name]:
                    raise PayError(400, "PARAM_ERROR", f"退款至用户银行卡时{name}必填")
            # 该字段需要使用微信支付公钥加密 (or a platform certificate's): plain text is refused
            if decrypt(body["bank_account"]) is None or decrypt(body["real_name"]) is None:
                raise PayError(400, "PARAM_ERROR", "敏感字段未使用微信支付公钥或平台证书加密")
        if refund.status != "ABNORMAL":
            raise invalid_request("退款单状态不是退款异常，不能发起异常退款")
        refund.status = "PROCESSING"
        refund.abnormal_type = str(kind)
        return refund

    def bill_lines(self, order: Order, day: dt.date, payment: BillLine) -> list[BillLine]:
        """The order's refunds that succeeded on ``day`` (Beijing), as bill lines."""
        lines = []
        for r in self.refunds.values():
            if r.mchid != order.mchid or r.out_trade_no != order.out_trade_no:
                continue
            if r.success_time is None:
                continue
            when = dt.datetime.fromtimestamp(r.success_time, BEIJING)
            if when.date() != day:
                continue
            created = dt.datetime.fromtimestamp(r.created_at, BEIJING)
            lines.append(
                replace(
                    payment,
                    when=when,
                    refund_id=r.refund_id,
                    out_refund_no=r.out_refund_no,
                    refund=r.refund,
                    refund_created=created,
                    refund_status="SUCCESS",
                )
            )
        return lines
