"""Reconciliation (对账) of a day: WeChat Pay's trade bill against our payments and refunds.

Two lists: what WeChat Pay says was paid (or refunded) that day and we do not, and what we
say was paid that day and WeChat Pay does not. The first is mended where it can be, through
the same conditional moves a callback makes (so mending twice, or racing a late callback,
credits once). The second is never "mended" by us: money we think arrived and did not is for
a person to look at, so it is reported with what WeChat Pay answers for the order now.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pydantic import BaseModel, Field

from models.common import InputModel
from models.payments import PaymentDoc, PaymentStatus, RefundStatus
from models.users import Caller
from server.fees.errors import BillTooOld, BillUnavailable, SystemAdminOnly
from server.fees.payments import PaymentService
from server.fees.refunds import RefundService
from server.platform.clock import SHANGHAI
from server.platform.config import Settings
from server.wechat.errors import WeChatPayOutage
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_models import BillRow, WeChatPayError, WeChatPayUnavailable

log = logging.getLogger("microcourt.reconcile")

PAID = [PaymentStatus.paid, PaymentStatus.partially_refunded, PaymentStatus.refunded]
# 申请交易账单: "此接口仅可下载三个月内的账单" -- older days are not asked for at all
BILL_MONTHS = 3


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier (the month's last day if shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = (dt.date(year + month // 11, month % 11 + 2, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month + 1, min(day.day, last))


class ReconcileIn(InputModel):
    date: dt.date = Field(description="the Beijing day whose bill to compare")
    mend: bool = True


class Finding(BaseModel):
    out_trade_no: str
    out_refund_no: str | None = None
    amount_fen: int | None = None
    ours: str | None = Field(None, description="our status; none: we have no such record")
    theirs: str | None = Field(None, description="WeChat Pay's state")
    action: str = Field(examples=["mended", "report"])
    note: str = ""


class ReconcileReport(BaseModel):
    day: dt.date
    wechat_paid: int = Field(description="payments in WeChat Pay's bill for the day")
    ours_paid: int = Field(description="our payments credited that day")
    only_wechat: list[Finding] = Field(description="paid (or refunded) there, not here")
    only_ours: list[Finding] = Field(description="paid here, not there")

    @property
    def clean(self) -> bool:
        return not self.only_wechat and not self.only_ours


class Reconciler:
    def __init__(
        self, pay: WeChatPayAdapter, payments: PaymentService, refunds: RefundService
    ) -> None:
        self.pay = pay
        self.payments = payments
        self.refunds = refunds

    async def run_for(self, caller: Caller, data: ReconcileIn) -> ReconcileReport:
        """For the system administrator only: the bill is the merchant's, every court's."""
        if caller.court_id is not None:
            raise SystemAdminOnly()
        today = self.pay.now().astimezone(SHANGHAI).date()
        if data.date < months_before(today, BILL_MONTHS):
            raise BillTooOld(details={"oldest": months_before(today, BILL_MONTHS).isoformat()})
        try:
            return await self.run(data.date, mend=data.mend)
        except WeChatPayUnavailable:
            raise WeChatPayOutage("微信支付暂时不可用") from None
        except WeChatPayError as exc:  # e.g. STATEMENT_CREATING: the bill is not ready yet
            details = {"wechatpay_code": exc.code}
            raise BillUnavailable(f"微信支付：{exc.message}", details=details) from None

    async def run(self, day: dt.date, *, mend: bool = True) -> ReconcileReport:
        """Compare ``day`` (Beijing) both ways; with ``mend``, credit what we missed."""
        bill = await self.pay.trade_bill(day)
        paid_rows = {r.out_trade_no: r for r in bill.rows if r.trade_state == "SUCCESS"}
        refund_rows = [r for r in bill.rows if r.out_refund_no and r.refund_status == "SUCCESS"]
        start, end = self._bounds(day)
        ours = {doc.out_trade_no: doc for doc in await self.payments.paid_between(PAID, start, end)}
        only_wechat = [
            await self._missed_payment(r, mend)
            for r in paid_rows.values()
            if r.out_trade_no not in ours
        ]
        only_wechat += [f for r in refund_rows if (f := await self._missed_refund(r, mend))]
        only_ours = [
            await self._unconfirmed(doc) for no, doc in ours.items() if no not in paid_rows
        ]
        report = ReconcileReport(
            day=day,
            wechat_paid=len(paid_rows),
            ours_paid=len(ours),
            only_wechat=[f for f in only_wechat if f is not None],
            only_ours=[f for f in only_ours if f is not None],
        )
        log.info(
            "reconciled %s: %d paid there, %d here, %d+%d findings",
            day,
            report.wechat_paid,
            report.ours_paid,
            len(report.only_wechat),
            len(report.only_ours),
        )
        return report

    def _bounds(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        start = dt.datetime.combine(day, dt.time(0), tzinfo=SHANGHAI).astimezone(dt.UTC)
        return start, start + dt.timedelta(days=1)

    async def _missed_payment(self, row: BillRow, mend: bool) -> Finding | None:
        doc = await self.payments.by_trade_no(row.out_trade_no)
        base: dict[str, Any] = {
            "out_trade_no": row.out_trade_no,
            "amount_fen": row.total_fen,
            "theirs": row.trade_state,
        }
        if doc is None:
            return Finding(**base, action="report", note="本系统无此订单")
        if doc.status in PAID:
            return None  # credited, on another day (a callback after midnight)
        if not mend:
            return Finding(**base, ours=doc.status.value, action="report", note="未入账")
        txn = await self.pay.query_order(doc.out_trade_no)
        credited = txn.paid and await self.payments.mark_paid(doc, txn)
        return Finding(
            **base,
            ours=doc.status.value,
            action="mended" if credited else "report",
            note="已按微信支付记录入账" if credited else "查询结果未支付",
        )

    async def _missed_refund(self, row: BillRow, mend: bool) -> Finding | None:
        assert row.out_refund_no is not None  # refund rows only (see ``run``)
        refund = await self.refunds.by_refund_no(row.out_refund_no)
        base: dict[str, Any] = {
            "out_trade_no": row.out_trade_no,
            "out_refund_no": row.out_refund_no,
            "amount_fen": row.refund_fen,
            "theirs": "REFUND.SUCCESS",
        }
        if refund is None:
            return Finding(**base, action="report", note="本系统无此退款单")
        if refund.status == RefundStatus.succeeded:
            return None
        if not mend or refund.status != RefundStatus.processing:
            return Finding(**base, ours=refund.status.value, action="report", note="退款状态不符")
        done = await self.refunds.mark_succeeded(refund, row.refund_id, None)
        return Finding(
            **base,
            ours=refund.status.value,
            action="mended" if done else "report",
            note="已按微信支付记录确认退款",
        )

    async def _unconfirmed(self, doc: PaymentDoc) -> Finding | None:
        try:
            txn = await self.pay.query_order(doc.out_trade_no)
            theirs = txn.trade_state.value
            if txn.paid:
                return None  # paid there too, billed on another day
        except WeChatPayError as exc:
            theirs = exc.code
        return Finding(
            out_trade_no=doc.out_trade_no,
            amount_fen=doc.amount_fen,
            ours=doc.status.value,
            theirs=theirs,
            action="report",
            note="本系统已入账，微信支付无此笔交易，请人工核对",
        )


async def reconcile_once(settings: Settings, day: dt.date, *, mend: bool) -> ReconcileReport:
    """The ``microcourt reconcile`` command: one run against the configured database and
    merchant, with the services the server itself uses."""
    from server.app import build_services
    from server.platform.clock import SystemClock
    from server.platform.mongo import connect
    from server.wechat.pay_config import resolve_pay_credentials

    clock = SystemClock()
    credentials = resolve_pay_credentials(settings).credentials
    pay = WeChatPayAdapter.from_settings(settings, credentials, clock)
    client = connect(settings.mongodb.uri)
    db = client[settings.mongodb.database]
    try:
        services = build_services(settings, db, clock=clock, wechatpay=pay)
        return await services.reconciler.run(day, mend=mend)
    finally:
        await pay.aclose()
        await client.close()
