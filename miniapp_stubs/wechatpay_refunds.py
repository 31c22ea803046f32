"""Refunds of the WeChat Pay emulator: PROCESSING, then SUCCESS (or ABNORMAL, or CLOSED).

Partial refunds add up to at most the payment; a CLOSED refund gives its amount back to what
can still be refunded. Repeating an out_refund_no with the same request answers the same
refund; with a different one, 400 INVALID_REQUEST.
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

    def refunded(self, order: Order) -> int:
        """What is refunded or on its way back (everything but CLOSED refunds)."""
        return sum(
            r.refund
            for r in self.refunds.values()
            if r.mchid == order.mchid and r.out_trade_no == order.out_trade_no
            if r.status != "CLOSED"
        )

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
