"""Refunds of paid fees through WeChat Pay, never more than what is left to refund.

The amount is reserved on the payment first, by one conditional update of ``refundable_fen``
(paid minus refunded minus refunds in flight): of two refunds racing for the last yuan, one
gets it and the other is a 409. The law's refunds are computed by the fee schedule; only
``other`` takes an amount from staff. A refund WeChat Pay refuses gives the amount back.
"""

from __future__ import annotations

import datetime as dt
import logging

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.common import Procedure
from models.fees import FeeKind
from models.payments import (
    REASON_NAMES,
    PaymentDoc,
    PaymentStatus,
    RefundCreate,
    RefundDoc,
    RefundOut,
    RefundReason,
    RefundStatus,
    refund_out,
)
from models.users import Caller
from server.cases.notices import yuan
from server.cases.service import CaseService
from server.fees import schedule as fee_schedule
from server.fees.errors import (
    NoAmountInDispute,
    NothingToRefund,
    OrderMismatch,
    PaymentNotFound,
    PaymentNotPaid,
    RefundExceedsPaid,
    RefundRefused,
    UnknownOrder,
)
from server.fees.payments import PaymentService
from server.fees.store import FeeStore
from server.identity.users import UserService
from server.notify.inbox import NotificationService
from server.platform.clock import Clock
from server.platform.config import Settings
from server.platform.db import Database, in_transaction
from server.wechat.errors import WeChatPayOutage
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_models import RefundStatus as WxRefundStatus
from server.wechat.pay_models import WeChatPayError, WeChatPayUnavailable

log = logging.getLogger("microcourt.refunds")


class RefundService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        pay: WeChatPayAdapter,
        users: UserService,
        cases: CaseService,
        payments: PaymentService,
        notifications: NotificationService,
    ) -> None:
        self.db = db
        self.store = FeeStore(db).refunds
        self.settings = settings
        self.clock = clock
        self.pay = pay
        self.users = users
        self.cases = cases
        self.payments = payments
        self.notifications = notifications

    async def create(self, caller: Caller, payment_id: str, data: RefundCreate) -> RefundOut:
        """Reserve, record, then ask WeChat Pay. 404 another court's payment; 409 not paid or
        more than is left; 422 an amount the law does not give; 503 WeChat Pay down."""
        payment = await self.payments.load(payment_id)
        if not caller.court_id or caller.court_id != payment.court_id:
            raise PaymentNotFound()
        if payment.status not in {PaymentStatus.paid, PaymentStatus.partially_refunded}:
            raise PaymentNotPaid()
        amount = await self._amount(payment, data)
        if amount <= 0:
            raise NothingToRefund()
        await self._reserve(payment, amount)
        refund = self._record(caller, payment, data, amount)
        await self.store.insert(refund)
        await self.users.record(
            str(caller.id),
            "refund.create",
            str(refund.id),
            payment_id=payment_id,
            amount_fen=amount,
            reason=data.reason.value,
        )
        return refund_out(await self._submit(payment, refund))

    async def _amount(self, payment: PaymentDoc, data: RefundCreate) -> int:
        notice = await self.payments.fees.load(payment.fee_notice_id)
        assert notice is not None
        court = self.settings.court(payment.court_id)
        # the fee the court still holds: paid, less refunds made or on their way
        held = payment.refundable_fen
        if data.reason == RefundReason.dismissed:
            return fee_schedule.refund_all(held)
        if data.reason in {RefundReason.withdrawal, RefundReason.mediation}:
            return fee_schedule.refund_halving(held)
        if data.reason == RefundReason.reduced_claim:
            if notice.basis_amount_fen is None or data.new_amount_fen is None:
                raise NoAmountInDispute()
            return fee_schedule.refund_reduced_claim(
                FeeKind(notice.fee_kind),
                notice.basis_amount_fen,
                data.new_amount_fen,
                procedure=Procedure(notice.procedure),
                fixed=court.fixed_fees if court else None,
            )
        assert data.amount_fen is not None
        return data.amount_fen

    async def _reserve(self, payment: PaymentDoc, amount: int) -> None:
        if not await self.payments.reserve_refund(payment, amount):
            left = (await self.payments.load(str(payment.id))).refundable_fen
            raise RefundExceedsPaid(
                f"退款金额超过可退金额（可退{yuan(left)}元）",
                details={"refundable_fen": left, "amount_fen": amount},
            )

    def _record(
        self, caller: Caller, payment: PaymentDoc, data: RefundCreate, amount: int
    ) -> RefundDoc:
        oid = ObjectId()
        return RefundDoc(
            id=oid,
            out_refund_no=f"RF{oid}",
            payment_id=str(payment.id),
            out_trade_no=payment.out_trade_no,
            case_id=payment.case_id,
            court_id=payment.court_id,
            payer_id=payment.payer_id,
            amount_fen=amount,
            reason=data.reason,
            note=data.note,
            status=RefundStatus.processing,
            requested_by=str(caller.id),
            created_at=self.clock.now(),
        )

    async def _submit(self, payment: PaymentDoc, refund: RefundDoc) -> RefundDoc:
        try:
            result = await self.pay.refund(
                out_trade_no=payment.out_trade_no,
                out_refund_no=refund.out_refund_no,
                refund_fen=refund.amount_fen,
                total_fen=payment.amount_fen,
                reason=REASON_NAMES[refund.reason],
                notify_url=self.payments.notify_url("refund-notify"),
            )
        except WeChatPayError as exc:
            if not isinstance(exc, WeChatPayUnavailable):
                await self.mark_failed(refund, f"{exc.code}: {exc.message}")
                raise RefundRefused(f"微信支付拒绝退款：{exc.message}") from None
            # unknown outcome: the refund stays processing; its callback or a query settles it
            log.warning("refund %s outcome unknown: %s", refund.out_refund_no, exc)
            raise WeChatPayOutage("微信支付暂时不可用，退款处理中") from None
        if result.status == WxRefundStatus.SUCCESS:
            await self.mark_succeeded(refund, result.refund_id, result.success_time)
        elif result.refund_id:
            await self.store.set_refund_id(refund.id, result.refund_id)
        return await self.by_refund_no(refund.out_refund_no) or refund

    async def by_refund_no(self, out_refund_no: str) -> RefundDoc | None:
        return await self.store.by_refund_no(out_refund_no)

    # ---- outcomes, each once

    async def mark_succeeded(
        self, refund: RefundDoc, refund_id: str | None, when: dt.datetime | None
    ) -> bool:
        now = self.clock.now()

        async def done(session: AsyncClientSession) -> bool:
            if not await self.store.succeed(refund.id, refund_id, when or now, session):
                return False
            await self._apply(refund, session)
            return True

        return await in_transaction(self.db, done)

    async def _apply(self, refund: RefundDoc, session: AsyncClientSession) -> None:
        payment = await self.payments.credit_refund(refund.payment_id, refund.amount_fen, session)
        note = f"退还诉讼费{yuan(refund.amount_fen)}元（{REASON_NAMES[refund.reason]}）"
        await self.cases.add_event(
            ObjectId(refund.case_id), "退费", refund.requested_by, note, session=session
        )
        await self.notifications.notify(
            [refund.payer_id],
            "refund_succeeded",
            "退费已到账",
            f"{payment.case_no}：{note}",
            data={"case_id": refund.case_id, "refund_id": str(refund.id)},
            template="case_update",
            dedupe_key=f"refund:{refund.id}:succeeded",
            session=session,
        )

    async def mark_failed(self, refund: RefundDoc, error: str) -> bool:
        """The refund did not happen: the amount becomes refundable again (once)."""

        async def failed(session: AsyncClientSession) -> bool:
            if not await self.store.fail(refund.id, error, session):
                return False
            await self.payments.release_refund(refund.payment_id, refund.amount_fen, session)
            return True

        return await in_transaction(self.db, failed)

    # ---- the callback

    async def on_notify(self, headers: dict[str, str], body: bytes) -> None:
        """A refund callback, verified like a payment's; each outcome applied once."""
        notice = self.pay.verify_callback(headers, body).refund()
        refund = await self.by_refund_no(notice.out_refund_no)
        if refund is None:
            log.error("refund callback for an unknown refund %s", notice.out_refund_no)
            raise UnknownOrder("退款单不存在")
        if (
            notice.mchid != self.pay.mchid
            or notice.out_trade_no != refund.out_trade_no
            or notice.amount.refund != refund.amount_fen
        ):
            log.error("refund callback %s does not match the refund", refund.out_refund_no)
            raise OrderMismatch("退款信息不符")
        if notice.refund_status == WxRefundStatus.SUCCESS:
            await self.mark_succeeded(refund, notice.refund_id, notice.success_time)
        elif notice.refund_status in {WxRefundStatus.ABNORMAL, WxRefundStatus.CLOSED}:
            await self.mark_failed(refund, notice.refund_status.value)
