"""Paying fee notices through WeChat Pay (JSAPI): orders, callbacks, queries, expiry.

Nothing paid twice, nothing lost:
- one open order per fee notice (a unique sparse index on ``open_for``): a second request
  for the same notice, whatever its Idempotency-Key, gets the open order back;
- the move to ``paid`` is one conditional update inside the transaction that also credits the
  notice, writes the case's timeline and queues the pushes, so the many deliveries of one
  callback (WeChat Pay repeats them, sometimes at once) credit it exactly once;
- a callback is believed only after the adapter verified its signature, its timestamp and its
  decryption, and only if mchid, appid, order number and amount are the order's;
- an order still pending is asked of WeChat Pay when read, and closed there once expired.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.fee_notices import FeeNoticeDoc, NoticeStatus
from models.payments import (
    PaymentCreate,
    PaymentDoc,
    PaymentOut,
    PaymentStatus,
    PayParams,
    payment_out,
)
from models.users import Caller, Role
from server.cases.notices import yuan
from server.cases.service import CaseService
from server.fees.errors import (
    FeeNoticeClosed,
    FeeNoticePaid,
    OrderMismatch,
    PaymentInProgress,
    PaymentNotFound,
    UnknownOrder,
)
from server.fees.notices import FeeNoticeService
from server.fees.store import FeeStore
from server.identity.users import UserService
from server.notify.inbox import Notice, NotificationService
from server.platform.access import Access
from server.platform.clock import Clock
from server.platform.config import Settings
from server.platform.db import Database, LostRace, in_transaction, read_decide_write
from server.wechat.errors import WeChatPayOutage
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_models import TradeState, Transaction, WeChatPayError

log = logging.getLogger("microcourt.payments")

SWEEP_BATCH = 200
CLOSED_STATES = frozenset({TradeState.CLOSED, TradeState.REVOKED, TradeState.PAYERROR})
PREPAY_WAIT_SECONDS = 3.0  # a concurrent request waits this long for the open order's prepay id


class PaymentStanding(StrEnum):
    """How a caller stands to a payment: the one who paid, or staff of its court."""

    payer = "payer"
    staff = "staff"


@dataclass(frozen=True, slots=True)
class Order:
    """The answer to an order request: the payment, and whether this request opened it."""

    payment: PaymentOut
    created: bool


class PaymentService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        pay: WeChatPayAdapter,
        users: UserService,
        cases: CaseService,
        fees: FeeNoticeService,
        notifications: NotificationService,
    ) -> None:
        self.db = db
        self.store = FeeStore(db).payments
        self.settings = settings
        self.clock = clock
        self.pay = pay
        self.users = users
        self.cases = cases
        self.fees = fees
        self.notifications = notifications

    # ---- ordering

    async def create(self, caller: Caller, data: PaymentCreate) -> Order:
        """The notice's open order (not created), or a new one. 404 not the caller's notice;
        409 paid, waived or cancelled, or another payer's order is open; 503 WeChat Pay down."""
        notice = await self._payable(caller, data.fee_notice_id)

        async def decide_write(open_: PaymentDoc | None) -> Order:
            if open_ is not None:
                return Order(await self._resume(caller, open_), created=False)
            doc = self._new_order(caller, notice)
            if not await self.store.open_order(doc, str(notice.id)):
                raise LostRace  # a concurrent request opened it first: take theirs
            return Order(await self._prepay(doc), created=True)

        return await read_decide_write(
            lambda: self._open_order(notice), decide_write, PaymentInProgress, attempts=2
        )

    async def _payable(self, caller: Caller, notice_id: str) -> FeeNoticeDoc:
        notice = (await self.fees.access_notice(caller, notice_id)).obj
        if notice.status == NoticeStatus.paid:
            raise FeeNoticePaid()
        if notice.status != NoticeStatus.pending or notice.amount_fen <= notice.paid_fen:
            raise FeeNoticeClosed()
        return notice

    async def _open_order(self, notice: FeeNoticeDoc) -> PaymentDoc | None:
        """The notice's open order, unless it has expired (then it is closed first)."""
        doc = await self.store.open_for(str(notice.id))
        if doc is None:
            return None
        if doc.expires_at <= self.clock.now():
            await self.settle(doc)
            return await self._open_order(notice) if doc.status == PaymentStatus.pending else None
        return doc

    def _new_order(self, caller: Caller, notice: FeeNoticeDoc) -> PaymentDoc:
        now = self.clock.now()
        oid = ObjectId()
        court = self.settings.court(notice.court_id)
        return PaymentDoc(
            id=oid,
            out_trade_no=f"MC{oid}",
            fee_notice_id=str(notice.id),
            case_id=notice.case_id,
            case_no=notice.case_no,
            court_id=notice.court_id,
            payer_id=str(caller.id),
            payer_openid=caller.openid or "",
            amount_fen=notice.amount_fen - notice.paid_fen,
            description=f"{court.name if court else ''}诉讼费-{notice.case_no}"[:120],
            status=PaymentStatus.pending,
            expires_at=self.pay.default_time_expire(),
            created_at=now,
            updated_at=now,
        )

    async def _prepay(self, doc: PaymentDoc) -> PaymentOut:
        try:
            prepay_id = await self.pay.create_jsapi_order(
                out_trade_no=doc.out_trade_no,
                description=doc.description,
                amount_fen=doc.amount_fen,
                openid=doc.payer_openid,
                notify_url=self.notify_url("notify"),
                time_expire=doc.expires_at,
            )
        except WeChatPayError as exc:
            log.warning("jsapi order %s failed: %s", doc.out_trade_no, exc)
            await self._close(doc, reason=str(exc))
            raise WeChatPayOutage() from None
        await self.store.set_prepay(doc.id, prepay_id)
        doc.prepay_id = prepay_id
        return self.out(doc, with_params=True)

    async def _resume(self, caller: Caller, doc: PaymentDoc) -> PaymentOut:
        if doc.payer_id != str(caller.id):
            raise PaymentInProgress("其他缴费人正在支付该笔费用")
        waited = 0.0
        while doc.prepay_id is None and waited < PREPAY_WAIT_SECONDS:
            await asyncio.sleep(0.1)
            waited += 0.1
            doc = await self._reload(doc)
        if doc.status != PaymentStatus.pending or doc.prepay_id is None:
            raise PaymentInProgress()
        return self.out(doc, with_params=True)

    def out(self, doc: PaymentDoc, *, with_params: bool = False) -> PaymentOut:
        params = None
        if with_params and doc.status == PaymentStatus.pending and doc.prepay_id:
            params = PayParams.model_validate(self.pay.pay_params(doc.prepay_id))
        return payment_out(doc, params)

    def notify_url(self, which: str) -> str:
        return self.pay.notify_url(f"/api/v1/payments/wechat/{which}")

    # ---- reading

    async def load(self, payment_id: str) -> PaymentDoc:
        doc = await self.store.load(payment_id)
        if doc is None:
            raise PaymentNotFound()
        return doc

    async def by_trade_no(self, out_trade_no: str) -> PaymentDoc | None:
        return await self.store.by_trade_no(out_trade_no)

    async def paid_between(
        self, statuses: Iterable[PaymentStatus], start: dt.datetime, end: dt.datetime
    ) -> list[PaymentDoc]:
        """The payments in ``statuses`` paid in [start, end) (a day's reconciliation)."""
        return await self.store.paid_between(statuses, start, end)

    async def _reload(self, doc: PaymentDoc) -> PaymentDoc:
        return await self.load(str(doc.id))

    async def access_payment(
        self, caller: Caller, payment_id: str
    ) -> Access[PaymentDoc, PaymentStanding]:
        """The payer's own payment, or any of their court's for staff; 404 otherwise."""
        doc = await self.load(payment_id)
        if doc.payer_id == str(caller.id):
            return Access(doc, PaymentStanding.payer)
        if caller.is_staff and caller.court_id == doc.court_id:
            return Access(doc, PaymentStanding.staff)
        raise PaymentNotFound()

    async def get(self, caller: Caller, payment_id: str) -> PaymentOut:
        """The payment; while pending, WeChat Pay is asked first (and an expired order closed)."""
        access = await self.access_payment(caller, payment_id)
        doc = access.obj
        if doc.status == PaymentStatus.pending:
            doc = await self.settle(doc)
        return self.out(doc, with_params=access.standing is PaymentStanding.payer)

    # ---- the state WeChat Pay knows

    async def settle(self, doc: PaymentDoc) -> PaymentDoc:
        """Bring a pending order up to WeChat Pay's state: paid, closed, or (unexpired) as is."""
        try:
            txn: Transaction | None = await self.pay.query_order(doc.out_trade_no)
        except WeChatPayError as exc:
            if exc.code != "ORDER_NOT_EXIST":
                log.warning("query %s failed: %s", doc.out_trade_no, exc)
                return doc
            txn = None
        if txn is not None and txn.paid:
            await self.mark_paid(doc, txn)
        elif txn is not None and txn.trade_state in CLOSED_STATES:
            await self._close(doc, reason=txn.trade_state)
        elif doc.expires_at <= self.clock.now():
            await self._expire(doc)
        return await self._reload(doc)

    async def _expire(self, doc: PaymentDoc) -> None:
        try:
            await self.pay.close_order(doc.out_trade_no)
        except WeChatPayError as exc:
            if exc.code == "ORDERPAID":  # paid at the last moment: believe WeChat Pay
                txn = await self.pay.query_order(doc.out_trade_no)
                await self.mark_paid(doc, txn)
                return
            if exc.code != "ORDER_NOT_EXIST":
                log.warning("close %s failed: %s", doc.out_trade_no, exc)
                return
        await self._close(doc, reason="expired")

    async def _close(self, doc: PaymentDoc, *, reason: str) -> None:
        await self.store.close(doc.id, reason, self.clock.now())

    async def sweep_expired(self) -> int:
        """Close the orders unpaid after their time limit (asking WeChat Pay first); any
        number of processes may sweep, each order is settled by conditional updates."""
        done = 0
        async for doc in self.store.expired(self.clock.now(), SWEEP_BATCH):
            settled = await self.settle(doc)
            done += settled.status != PaymentStatus.pending
        return done

    # ---- what a refund takes from the payment and gives back (server/fees/refunds.py)

    async def reserve_refund(self, payment: PaymentDoc, amount: int) -> bool:
        """Take ``amount`` from what the payment can still refund; False when less is left."""
        return await self.store.reserve_refund(payment.id, amount)

    async def release_refund(
        self, payment_id: str, amount: int, session: AsyncClientSession
    ) -> None:
        """A refund that failed: its amount becomes refundable again."""
        await self.store.release_refund(payment_id, amount, session)

    async def credit_refund(
        self, payment_id: str, amount: int, session: AsyncClientSession
    ) -> PaymentDoc:
        """A refund that succeeded: counted as refunded, the payment's status following."""
        return await self.store.credit_refund(payment_id, amount, self.clock.now(), session)

    # ---- paid, exactly once

    async def mark_paid(self, doc: PaymentDoc, txn: Transaction) -> bool:
        """Credit the payment once; False when it already was (a repeated callback)."""
        self._check_matches(doc, txn)
        now = self.clock.now()

        async def credit(session: AsyncClientSession) -> bool:
            paid_at = txn.success_time or now
            if not await self.store.mark_paid(doc, txn.transaction_id, paid_at, now, session):
                return False
            notice = await self.fees.credit(doc.fee_notice_id, doc.amount_fen, now, session)
            await self._announce_paid(doc, notice, session)
            return True

        return await in_transaction(self.db, credit)

    def _check_matches(self, doc: PaymentDoc, txn: Transaction) -> None:
        """Believe WeChat Pay's word only for this order, this merchant and this app."""
        if txn.amount.total != doc.amount_fen or txn.out_trade_no != doc.out_trade_no:
            log.error(
                "payment %s: WeChat Pay reports %s fen, ordered %s",
                doc.out_trade_no,
                txn.amount.total,
                doc.amount_fen,
            )
            raise OrderMismatch("订单金额不符")
        if txn.mchid != self.pay.mchid or txn.appid not in (None, self.pay.appid):
            log.error("payment %s: another merchant or app", doc.out_trade_no)
            raise OrderMismatch("商户号或应用不符")

    async def _announce_paid(
        self, doc: PaymentDoc, notice: FeeNoticeDoc, session: AsyncClientSession
    ) -> None:
        note = self.paid_note(doc)
        changes: dict[str, Any] = (
            {"fee_overdue": False} if notice.status == NoticeStatus.paid else {}
        )
        case = await self.cases.add_event(
            ObjectId(doc.case_id), "缴费", doc.payer_id, note, changes=changes, session=session
        )
        # Both notices in one write each to the inbox and the outbox, with no look for ones
        # already sent: the payment's conditional update above makes this the first time
        # (a callback's transaction was ~12 round trips, six of them these notices').
        if case and case.clerk_id:
            clerks = [case.clerk_id]
        else:  # the court's clerks, when the case has none yet
            clerks = await self.notifications.court_staff(
                doc.court_id, [Role.clerk.value], session=session
            )
        await self.notifications.notify_many(self.paid_notices(doc, clerks, note), session=session)
        await self.users.record(
            doc.payer_id,
            "payment.paid",
            str(doc.id),
            session,
            case_id=doc.case_id,
            amount_fen=doc.amount_fen,
        )

    @staticmethod
    def paid_note(doc: PaymentDoc) -> str:
        """The case event's note of a payment credited (also the notices' text)."""
        return f"已通过微信支付缴纳诉讼费{yuan(doc.amount_fen)}元"

    @staticmethod
    def paid_notices(doc: PaymentDoc, clerks: list[str], note: str) -> list[Notice]:
        """The payer's notice, and the clerks'."""
        data = {"case_id": doc.case_id, "payment_id": str(doc.id)}
        page, key = f"pages/case/fees?case_id={doc.case_id}", f"payment:{doc.id}:paid"
        payer = f"{doc.case_no}：{note}"
        title, body = f"{doc.case_no}已缴费", f"当事人{note}"
        return [
            Notice(
                [doc.payer_id], "payment_paid", "缴费成功", payer, data, "case_update", page, key
            ),
            Notice(clerks, "payment_paid", title, body, data, "case_update", page, key),
        ]

    # ---- the callback

    async def on_notify(self, headers: dict[str, str], body: bytes) -> None:
        """A payment callback: verified, matched to its order, then credited once.
        CallbackRejected for anything we cannot accept (WeChat Pay delivers it again)."""
        event = await self.pay.verified_callback(headers, body)
        txn = event.transaction()
        doc = await self.store.by_trade_no(txn.out_trade_no)
        if doc is None:
            log.error("callback for an unknown order %s", txn.out_trade_no)
            raise UnknownOrder()
        if txn.trade_state != TradeState.SUCCESS:
            return  # nothing to do, but acknowledged so that it stops
        await self.mark_paid(doc, txn)
