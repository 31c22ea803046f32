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
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from models.fee_notices import FeeNoticeDoc, NoticeStatus
from models.payments import (
    PaymentCreate,
    PaymentDoc,
    PaymentOut,
    PaymentStatus,
    PayParams,
    payment_out,
)
from models.users import Role, UserDoc
from server.cases.notices import yuan
from server.cases.service import CaseService
from server.fees.errors import (
    FeeNoticeClosed,
    FeeNoticeNotFound,
    FeeNoticePaid,
    OrderMismatch,
    PaymentInProgress,
    PaymentNotFound,
    UnknownOrder,
)
from server.fees.notices import FeeNoticeService
from server.identity.users import UserService
from server.notify.inbox import NotificationService
from server.platform.clock import Clock
from server.platform.config import Settings
from server.platform.db import Database, LostRace, in_transaction, read_decide_write
from server.platform.mongo import change_one
from server.wechat.errors import WeChatPayOutage
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_models import TradeState, Transaction, WeChatPayError

log = logging.getLogger("microcourt.payments")

SWEEP_BATCH = 200
CLOSED_STATES = frozenset({TradeState.CLOSED, TradeState.REVOKED, TradeState.PAYERROR})
PREPAY_WAIT_SECONDS = 3.0  # a concurrent request waits this long for the open order's prepay id


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
        self.col = db["payments"]
        self.settings = settings
        self.clock = clock
        self.pay = pay
        self.users = users
        self.cases = cases
        self.fees = fees
        self.notifications = notifications

    # ---- ordering

    async def create(self, user: UserDoc, data: PaymentCreate) -> tuple[PaymentOut, bool]:
        """The notice's open order (False), or a new one (True). 404 not the caller's notice;
        409 paid, waived or cancelled, or another payer's order is open; 503 WeChat Pay down."""
        notice = await self._payable(user, data.fee_notice_id)

        async def decide_write(open_: PaymentDoc | None) -> tuple[PaymentOut, bool]:
            if open_ is not None:
                return await self._resume(user, open_), False
            doc = self._new_order(user, notice)
            try:
                await self.col.insert_one({**doc.model_dump(by_alias=True),
                                           "open_for": str(notice.id)})  # fmt: skip
            except DuplicateKeyError:
                raise LostRace from None  # a concurrent request opened it first: take theirs
            return await self._prepay(doc), True

        return await read_decide_write(
            lambda: self._open_order(notice), decide_write, PaymentInProgress, attempts=2
        )

    async def _payable(self, user: UserDoc, notice_id: str) -> FeeNoticeDoc:
        notice = await self.fees.load(notice_id)
        if notice is None or str(user.id) not in notice.payer_ids:
            raise FeeNoticeNotFound()
        if notice.status == NoticeStatus.paid:
            raise FeeNoticePaid()
        if notice.status != NoticeStatus.pending or notice.amount_fen <= notice.paid_fen:
            raise FeeNoticeClosed()
        return notice

    async def _open_order(self, notice: FeeNoticeDoc) -> PaymentDoc | None:
        """The notice's open order, unless it has expired (then it is closed first)."""
        raw = await self.col.find_one({"open_for": str(notice.id)})
        if raw is None:
            return None
        doc = PaymentDoc.model_validate(raw)
        if doc.expires_at <= self.clock.now():
            await self.settle(doc)
            return await self._open_order(notice) if doc.status == PaymentStatus.pending else None
        return doc

    def _new_order(self, user: UserDoc, notice: FeeNoticeDoc) -> PaymentDoc:
        now = self.clock.now()
        oid = ObjectId()
        court = self.settings.court(notice.court_id)
        return PaymentDoc(
            id=oid, out_trade_no=f"MC{oid}", fee_notice_id=str(notice.id),
            case_id=notice.case_id, case_no=notice.case_no, court_id=notice.court_id,
            payer_id=str(user.id), payer_openid=user.openid or "",
            amount_fen=notice.amount_fen - notice.paid_fen,
            description=f"{court.name if court else ''}诉讼费-{notice.case_no}"[:120],
            status=PaymentStatus.pending, expires_at=self.pay.default_time_expire(),
            created_at=now, updated_at=now,
        )  # fmt: skip

    async def _prepay(self, doc: PaymentDoc) -> PaymentOut:
        try:
            prepay_id = await self.pay.create_jsapi_order(
                out_trade_no=doc.out_trade_no, description=doc.description,
                amount_fen=doc.amount_fen, openid=doc.payer_openid,
                notify_url=self.notify_url("notify"), time_expire=doc.expires_at,
            )  # fmt: skip
        except WeChatPayError as exc:
            log.warning("jsapi order %s failed: %s", doc.out_trade_no, exc)
            await self._close(doc, reason=str(exc))
            raise WeChatPayOutage() from None
        await self.col.update_one({"_id": doc.id}, {"$set": {"prepay_id": prepay_id}})
        doc.prepay_id = prepay_id
        return self.out(doc, with_params=True)

    async def _resume(self, user: UserDoc, doc: PaymentDoc) -> PaymentOut:
        if doc.payer_id != str(user.id):
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
        raw = (
            await self.col.find_one({"_id": ObjectId(payment_id)})
            if ObjectId.is_valid(payment_id)
            else None
        )
        if raw is None:
            raise PaymentNotFound()
        return PaymentDoc.model_validate(raw)

    async def by_trade_no(self, out_trade_no: str) -> PaymentDoc | None:
        raw = await self.col.find_one({"out_trade_no": out_trade_no})
        return PaymentDoc.model_validate(raw) if raw else None

    async def paid_between(
        self, statuses: Iterable[PaymentStatus], start: dt.datetime, end: dt.datetime
    ) -> list[PaymentDoc]:
        """The payments in ``statuses`` paid in [start, end) (a day's reconciliation)."""
        filt = {
            "status": {"$in": [s.value for s in statuses]},
            "paid_at": {"$gte": start, "$lt": end},
        }
        return [PaymentDoc.model_validate(raw) async for raw in self.col.find(filt)]

    async def _reload(self, doc: PaymentDoc) -> PaymentDoc:
        return await self.load(str(doc.id))

    async def visible(self, user: UserDoc, payment_id: str) -> PaymentDoc:
        """The payer's own payment, or any of their court's for staff; 404 otherwise."""
        doc = await self.load(payment_id)
        mine = doc.payer_id == str(user.id)
        court = user.is_staff and user.court_id == doc.court_id
        if not (mine or court):
            raise PaymentNotFound()
        return doc

    async def get(self, user: UserDoc, payment_id: str) -> PaymentOut:
        """The payment; while pending, WeChat Pay is asked first (and an expired order closed)."""
        doc = await self.visible(user, payment_id)
        if doc.status == PaymentStatus.pending:
            doc = await self.settle(doc)
        return self.out(doc, with_params=doc.payer_id == str(user.id))

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
        now = self.clock.now()
        await self.col.update_one(
            {"_id": doc.id, "status": PaymentStatus.pending.value},
            {"$set": {"status": PaymentStatus.closed.value, "updated_at": now,
                      "close_reason": reason}, "$unset": {"open_for": ""},
             "$inc": {"version": 1}},
        )  # fmt: skip

    async def sweep_expired(self) -> int:
        """Close the orders unpaid after their time limit (asking WeChat Pay first); any
        number of processes may sweep, each order is settled by conditional updates."""
        now = self.clock.now()
        filt = {"status": PaymentStatus.pending.value, "expires_at": {"$lt": now}}
        done = 0
        async for raw in self.col.find(filt).limit(SWEEP_BATCH):
            settled = await self.settle(PaymentDoc.model_validate(raw))
            done += settled.status != PaymentStatus.pending
        return done

    # ---- what a refund takes from the payment and gives back (server/fees/refunds.py)

    async def reserve_refund(self, payment: PaymentDoc, amount: int) -> bool:
        """Take ``amount`` from what the payment can still refund; False when less is left."""
        took = await self.col.update_one(
            {"_id": payment.id, "refundable_fen": {"$gte": amount}},
            {"$inc": {"refundable_fen": -amount, "version": 1}},
        )
        return bool(took.modified_count)

    async def release_refund(
        self, payment_id: str, amount: int, session: AsyncClientSession
    ) -> None:
        """A refund that failed: its amount becomes refundable again."""
        await self.col.update_one(
            {"_id": ObjectId(payment_id)},
            {"$inc": {"refundable_fen": amount, "version": 1}},
            session=session,
        )

    async def credit_refund(
        self, payment_id: str, amount: int, session: AsyncClientSession
    ) -> PaymentDoc:
        """A refund that succeeded: counted as refunded, the payment's status following."""
        raw = await change_one(
            self.col,
            {"_id": ObjectId(payment_id)},
            {"$inc": {"refunded_fen": amount, "version": 1},
             "$set": {"updated_at": self.clock.now()}},
            session=session,
        )  # fmt: skip
        assert raw is not None
        payment = PaymentDoc.model_validate(raw)
        status = (PaymentStatus.refunded if payment.refunded_fen >= payment.amount_fen
                  else PaymentStatus.partially_refunded)  # fmt: skip
        await self.col.update_one(
            {"_id": payment.id}, {"$set": {"status": status.value}}, session=session
        )
        return payment

    # ---- paid, exactly once

    async def mark_paid(self, doc: PaymentDoc, txn: Transaction) -> bool:
        """Credit the payment once; False when it already was (a repeated callback)."""
        if txn.amount.total != doc.amount_fen or txn.out_trade_no != doc.out_trade_no:
            log.error("payment %s: WeChat Pay reports %s fen, ordered %s", doc.out_trade_no,
                      txn.amount.total, doc.amount_fen)  # fmt: skip
            raise OrderMismatch("订单金额不符")
        if txn.mchid != self.pay.mchid or txn.appid != self.pay.appid:
            log.error("payment %s: another merchant or app", doc.out_trade_no)
            raise OrderMismatch("商户号或应用不符")
        now = self.clock.now()

        async def credit(session: AsyncClientSession) -> bool:
            raw = await change_one(
                self.col,
                {"_id": doc.id, "status": {"$in": [PaymentStatus.pending.value,
                                                   PaymentStatus.closed.value]}},
                {"$set": {"status": PaymentStatus.paid.value, "transaction_id": txn.transaction_id,
                          "paid_at": txn.success_time or now, "refundable_fen": doc.amount_fen,
                          "updated_at": now}, "$unset": {"open_for": ""},
                 "$inc": {"version": 1}},
                session=session,
            )  # fmt: skip
            if raw is None:
                return False
            notice = await self.fees.credit(doc.fee_notice_id, doc.amount_fen, now, session)
            await self._announce_paid(doc, notice, session)
            return True

        return await in_transaction(self.db, credit)

    async def _announce_paid(
        self, doc: PaymentDoc, notice: FeeNoticeDoc, session: AsyncClientSession
    ) -> None:
        note = f"已通过微信支付缴纳诉讼费{yuan(doc.amount_fen)}元"
        changes: dict[str, Any] = (
            {"fee_overdue": False} if notice.status == NoticeStatus.paid else {}
        )
        case = await self.cases.add_event(
            ObjectId(doc.case_id), "缴费", doc.payer_id, note, changes=changes, session=session
        )
        common: dict[str, Any] = {
            "data": {"case_id": doc.case_id, "payment_id": str(doc.id)},
            "template": "case_update",
            "page": f"pages/case/fees?case_id={doc.case_id}",
            "dedupe_key": f"payment:{doc.id}:paid",
            "session": session,
        }
        await self.notifications.notify([doc.payer_id], "payment_paid", "缴费成功",
                                        f"{doc.case_no}：{note}", **common)  # fmt: skip
        title, body = f"{doc.case_no}已缴费", f"当事人{note}"
        if case and case.clerk_id:
            await self.notifications.notify([case.clerk_id], "payment_paid", title, body, **common)
        else:
            await self.notifications.notify_court_staff(
                doc.court_id, [Role.clerk.value], "payment_paid", title, body, **common
            )
        await self.users.record(doc.payer_id, "payment.paid", str(doc.id), session,
                                case_id=doc.case_id, amount_fen=doc.amount_fen)  # fmt: skip

    # ---- the callback

    async def on_notify(self, headers: dict[str, str], body: bytes) -> None:
        """A payment callback: verified, matched to its order, then credited once.
        CallbackRejected for anything we cannot accept (WeChat Pay delivers it again)."""
        event = self.pay.verify_callback(headers, body)
        txn = event.transaction()
        raw = await self.col.find_one({"out_trade_no": txn.out_trade_no})
        if raw is None:
            log.error("callback for an unknown order %s", txn.out_trade_no)
            raise UnknownOrder()
        if txn.trade_state != TradeState.SUCCESS:
            return  # nothing to do, but acknowledged so that it stops
        await self.mark_paid(PaymentDoc.model_validate(raw), txn)
