"""Refunds of paid fees through WeChat Pay, never more than what is left to refund.

The amount is reserved on the payment first, by one conditional update of ``refundable_fen``
(paid minus refunded minus refunds in flight): of two refunds racing for the last yuan, one
gets it and the other is a 409. The law's refunds are computed by the fee schedule; only
``other`` takes an amount from staff. A refund WeChat Pay refuses gives the amount back.

WeChat Pay's own rules, checked here first so that staff get a clear answer (申请退款,
pay.weixin.qq.com/doc/v3/merchant/4012556457): no refund more than 365 days after payment, at
most 50 refunds of one order, one a minute; NOT_ENOUGH (the merchant's balance) is its answer.
Outcomes: SUCCESS credits the refund; CLOSED gives the amount back once; ABNORMAL does not (the
money waits in an intermediate account: a second refund would pay twice) and waits for staff to
resolve it (``resolve``: apply-abnormal-refund to a bank card, or settled offline, recorded).
Refunds still processing are queried by ``sweep_processing`` (a leased periodic job).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.common import Procedure
from models.fees import FeeKind
from models.payments import (
    REASON_NAMES,
    AbnormalResolution,
    PaymentDoc,
    PaymentStatus,
    RefundCreate,
    RefundDoc,
    RefundOut,
    RefundReason,
    RefundResolve,
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
    RefundBalanceInsufficient,
    RefundCountExceeded,
    RefundExceedsPaid,
    RefundNotAbnormal,
    RefundNotFound,
    RefundRefused,
    RefundTooFrequent,
    RefundWindowClosed,
    UnknownOrder,
)
from server.fees.payments import PaymentService
from server.fees.store import FeeStore, RefundLimits
from server.identity.users import UserService
from server.notify.inbox import NotificationService
from server.platform.clock import Clock
from server.platform.config import Settings
from server.platform.db import Database, in_transaction
from server.platform.errors import APIError
from server.wechat.errors import WeChatPayOutage
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_models import RefundStatus as WxRefundStatus
from server.wechat.pay_models import WeChatPayError, WeChatPayUnavailable

log = logging.getLogger("microcourt.refunds")

REFUND_WINDOW = dt.timedelta(days=365)  # from the payment's success time
LIMITS = RefundLimits(most=50, interval=dt.timedelta(minutes=1))
QUERY_AFTER = dt.timedelta(minutes=1)  # "建议查询退款状态在提交退款申请后1分钟发起"
SWEEP_BATCH = 100


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
        self.payment_store = FeeStore(db).payments
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
        if payment.paid_at and self.clock.now() - payment.paid_at > REFUND_WINDOW:
            raise RefundWindowClosed()
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
        now = self.clock.now()
        if await self.payment_store.take_refund(payment.id, amount, now, LIMITS):
            return
        left = await self.payments.load(str(payment.id))
        if left.refundable_fen < amount:
            raise RefundExceedsPaid(
                f"退款金额超过可退金额（可退{yuan(left.refundable_fen)}元）",
                details={"refundable_fen": left.refundable_fen, "amount_fen": amount},
            )
        if left.refund_count >= LIMITS.most:
            raise RefundCountExceeded()
        last = left.last_refund_at or now
        wait = max(1, math.ceil((last + LIMITS.interval - now).total_seconds()))
        raise RefundTooFrequent(
            f"同一笔支付的退款申请须间隔1分钟，请{wait}秒后再试", details={"retry_after": wait}
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
            # FREQUENCY_LIMITED is a 429 but documented as "该笔退款未受理": not accepted
            if exc.code == "FREQUENCY_LIMITED" or not isinstance(exc, WeChatPayUnavailable):
                await self.mark_failed(refund, f"{exc.code}: {exc.message}")
                raise _refusal(exc) from None
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
        notice = (await self.pay.verified_callback(headers, body)).refund()
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
        await self._settle(refund, notice.refund_status, notice.refund_id, notice.success_time)

    async def _settle(
        self,
        refund: RefundDoc,
        status: WxRefundStatus,
        refund_id: str | None,
        when: dt.datetime | None,
    ) -> None:
        """WeChat Pay's outcome (callback or query), applied once; PROCESSING changes nothing."""
        if status == WxRefundStatus.SUCCESS:
            await self.mark_succeeded(refund, refund_id, when)
        elif status == WxRefundStatus.CLOSED:
            await self.mark_failed(refund, status.value)
        elif status == WxRefundStatus.ABNORMAL and await self.store.abnormal(refund.id, refund_id):
            log.warning("refund %s is abnormal: staff must resolve it", refund.out_refund_no)

    # ---- abnormal refunds, resolved by staff

    async def resolve(self, caller: Caller, refund_id: str, data: RefundResolve) -> RefundOut:
        """An abnormal refund sent to a bank card through WeChat Pay (processing again until its
        callback) or recorded as paid back offline. 404 another court's; 409 not abnormal."""
        refund = await self.store.load(refund_id)
        if refund is None or caller.court_id != refund.court_id:
            raise RefundNotFound()
        if refund.status != RefundStatus.abnormal:
            raise RefundNotAbnormal()
        resolution: dict[str, Any] = {
            "method": data.method.value,
            "by": str(caller.id),
            "at": self.clock.now(),
        }
        if data.note:
            resolution["note"] = data.note
        if data.method == AbnormalResolution.offline:
            done = await self._settle_offline(refund, resolution)
        else:
            done = await self._to_bank(refund, data, resolution)
        if not done:
            raise RefundNotAbnormal()
        await self.users.record(str(caller.id), "refund.resolve", refund_id, **resolution)
        fresh = await self.store.load(refund_id)
        assert fresh is not None
        return refund_out(fresh)

    async def _settle_offline(self, refund: RefundDoc, resolution: dict[str, Any]) -> bool:
        async def settle(session: AsyncClientSession) -> bool:
            if not await self.store.resolve(refund.id, RefundStatus.succeeded, resolution, session):
                return False
            await self._apply(refund, session)
            return True

        return await in_transaction(self.db, settle)

    async def _to_bank(
        self, refund: RefundDoc, data: RefundResolve, resolution: dict[str, Any]
    ) -> bool:
        if data.bank_account:
            resolution.update(bank_type=data.bank_type, account_tail=data.bank_account[-4:])
        try:
            await self.pay.apply_abnormal_refund(
                refund_id=refund.refund_id or "",
                out_refund_no=refund.out_refund_no,
                to_user=data.method == AbnormalResolution.user_bank_card,
                bank_type=data.bank_type,
                bank_account=data.bank_account,
                real_name=data.real_name,
            )
        except WeChatPayUnavailable:
            raise WeChatPayOutage("微信支付暂时不可用，请稍后再处理") from None
        except WeChatPayError as exc:
            raise RefundRefused(f"微信支付拒绝异常退款：{exc.message}") from None
        return await self.store.resolve(refund.id, RefundStatus.processing, resolution)

    # ---- the sweep

    async def sweep_processing(self) -> int:
        """Ask WeChat Pay about refunds still processing a minute after they were asked (a lost
        callback, an outage while asking); one never received is asked again, same number."""
        cutoff = self.clock.now() - QUERY_AFTER
        settled = 0
        for refund in await self.store.processing_before(cutoff, SWEEP_BATCH):
            try:
                settled += await self._query(refund)
            except WeChatPayUnavailable:
                log.warning("refund sweep: WeChat Pay unavailable")
                break
        return settled

    async def _query(self, refund: RefundDoc) -> int:
        try:
            found = await self.pay.query_refund(refund.out_refund_no)
        except WeChatPayUnavailable:
            raise
        except WeChatPayError as exc:
            if exc.code != "RESOURCE_NOT_EXISTS":
                raise
            payment = await self.payments.load(refund.payment_id)
            try:
                await self._submit(payment, refund)
            except APIError as err:
                log.warning("refund %s asked again: %s", refund.out_refund_no, err.code)
            return 0
        if found.status == WxRefundStatus.PROCESSING:
            return 0
        await self._settle(refund, found.status, found.refund_id, found.success_time)
        return 1


def _refusal(exc: WeChatPayError) -> APIError:
    """What staff are told when WeChat Pay refuses a refund."""
    if exc.code == "NOT_ENOUGH":
        return RefundBalanceInsufficient()
    if exc.code == "FREQUENCY_LIMITED":
        return RefundTooFrequent()
    return RefundRefused(f"微信支付拒绝退款：{exc.message}")
