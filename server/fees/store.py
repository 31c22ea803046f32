"""The one module of fees that reads and writes its collections: fee notices, payments and
refunds. The services ask by intent (``payments.open_for``, ``notices.credit``,
``refunds.succeed``); every state move is a conditional update on the state it leaves, so a
repeated callback, a racing sweep or a second process moves a document at most once."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, NamedTuple

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from models.fee_notices import FeeNoticeDoc, NoticeStatus
from models.payments import PaymentDoc, PaymentStatus, RefundDoc, RefundStatus
from server.platform.db import Database
from server.platform.mongo import change_one

#: how many of a case's payments (or refunds) its fees page lists
CASE_LIST_LIMIT = 100
#: how many fee notices a case's fees carry at most
CASE_NOTICES_LIMIT = 50


def _oid(value: str) -> ObjectId | None:
    return ObjectId(value) if ObjectId.is_valid(value) else None


class NoticeStore:
    """The ``fee_notices`` collection."""

    def __init__(self, db: Database) -> None:
        self.col = db["fee_notices"]

    async def insert_many(
        self, notices: Sequence[FeeNoticeDoc], session: AsyncClientSession
    ) -> None:
        raws = [n.model_dump(by_alias=True) for n in notices]
        await self.col.insert_many(raws, session=session)

    async def attach_document(
        self, notice_id: ObjectId, document_id: str, session: AsyncClientSession
    ) -> bool:
        """Point the notice at its served 缴费通知书, if it has none yet."""
        took = await self.col.update_one(
            {"_id": notice_id, "document_id": None},
            {"$set": {"document_id": document_id}},
            session=session,
        )
        return bool(took.modified_count)

    async def load(self, notice_id: str) -> FeeNoticeDoc | None:
        raw = await self.col.find_one({"_id": ObjectId(notice_id)})
        return FeeNoticeDoc.model_validate(raw) if raw else None

    async def of_case(self, case_id: str) -> list[FeeNoticeDoc]:
        cursor = self.col.find({"case_id": case_id}).sort([("_id", 1)])
        raws = await cursor.limit(CASE_NOTICES_LIMIT).to_list()
        return [FeeNoticeDoc.model_validate(r) for r in raws]

    async def credit(
        self, notice_id: str, amount_fen: int, when: dt.datetime, session: AsyncClientSession
    ) -> FeeNoticeDoc:
        """Add a payment to the notice; paid once covered (in the payment's transaction)."""
        raw = await change_one(
            self.col,
            {"_id": ObjectId(notice_id)},
            {"$inc": {"paid_fen": amount_fen, "version": 1}},
            session=session,
        )
        assert raw is not None
        notice = FeeNoticeDoc.model_validate(raw)
        if notice.paid_fen >= notice.amount_fen and notice.status == NoticeStatus.pending:
            await self.col.update_one(
                {"_id": notice.id, "status": NoticeStatus.pending.value},
                {"$set": {"status": NoticeStatus.paid.value, "paid_at": when}},
                session=session,
            )
            notice.status = NoticeStatus.paid
        return notice

    async def overdue(self, now: dt.datetime, limit: int) -> AsyncIterator[FeeNoticeDoc]:
        """Unpaid notices past their deadline and not yet flagged (``overdue_sweep``)."""
        filt = {"status": NoticeStatus.pending.value, "overdue_at": None, "due_at": {"$lt": now}}
        async for raw in self.col.find(filt).limit(limit):
            yield FeeNoticeDoc.model_validate(raw)

    async def flag_overdue(self, notice_id: ObjectId, now: dt.datetime) -> bool:
        """Flag the notice overdue; False when another sweep (or a payment) came first."""
        took = await self.col.update_one(
            {"_id": notice_id, "status": NoticeStatus.pending.value, "overdue_at": None},
            {"$set": {"overdue_at": now}, "$inc": {"version": 1}},
        )
        return bool(took.modified_count)


class PaymentStore:
    """The ``payments`` collection; ``open_for`` (unique, sparse) is set while an order is
    pending, so a notice has at most one open order."""

    def __init__(self, db: Database) -> None:
        self.col = db["payments"]

    async def open_order(self, doc: PaymentDoc, notice_id: str) -> bool:
        """Insert the notice's open order; False when another request opened one first."""
        try:
            await self.col.insert_one({**doc.model_dump(by_alias=True), "open_for": notice_id})
        except DuplicateKeyError:
            return False
        return True

    async def open_for(self, notice_id: str) -> PaymentDoc | None:
        raw = await self.col.find_one({"open_for": notice_id})
        return PaymentDoc.model_validate(raw) if raw else None

    async def set_prepay(self, payment_id: ObjectId, prepay_id: str) -> None:
        await self.col.update_one({"_id": payment_id}, {"$set": {"prepay_id": prepay_id}})

    async def load(self, payment_id: str) -> PaymentDoc | None:
        oid = _oid(payment_id)
        raw = await self.col.find_one({"_id": oid}) if oid else None
        return PaymentDoc.model_validate(raw) if raw else None

    async def by_trade_no(self, out_trade_no: str) -> PaymentDoc | None:
        raw = await self.col.find_one({"out_trade_no": out_trade_no})
        return PaymentDoc.model_validate(raw) if raw else None

    async def of_case(self, case_id: str, payer_id: str | None) -> list[PaymentDoc]:
        """A case's payments, or only those ``payer_id`` made (``by_case_payer``)."""
        cursor = self.col.find(_case_filter(case_id, payer_id)).sort([("_id", 1)])
        return [PaymentDoc.model_validate(r) for r in await cursor.limit(CASE_LIST_LIMIT).to_list()]

    async def paid_between(
        self, statuses: Iterable[PaymentStatus], start: dt.datetime, end: dt.datetime
    ) -> list[PaymentDoc]:
        """The payments in ``statuses`` paid in [start, end) (``paid_on_day``)."""
        filt = {
            "status": {"$in": [s.value for s in statuses]},
            "paid_at": {"$gte": start, "$lt": end},
        }
        return [PaymentDoc.model_validate(raw) async for raw in self.col.find(filt)]

    async def expired(self, now: dt.datetime, limit: int) -> AsyncIterator[PaymentDoc]:
        """Pending orders past their time limit (``expiry_sweep``)."""
        filt = {"status": PaymentStatus.pending.value, "expires_at": {"$lt": now}}
        async for raw in self.col.find(filt).limit(limit):
            yield PaymentDoc.model_validate(raw)

    async def close(self, payment_id: ObjectId, reason: str, now: dt.datetime) -> None:
        """A pending order closed (expired, refused, or closed at WeChat Pay)."""
        closed = {"status": PaymentStatus.closed.value, "updated_at": now, "close_reason": reason}
        await self.col.update_one(
            {"_id": payment_id, "status": PaymentStatus.pending.value},
            {"$set": closed, "$unset": {"open_for": ""}, "$inc": {"version": 1}},
        )

    async def mark_paid(
        self,
        doc: PaymentDoc,
        transaction_id: str | None,
        paid_at: dt.datetime,
        now: dt.datetime,
        session: AsyncClientSession,
    ) -> bool:
        """Pending (or closed, paid at the last moment) to paid; False when already paid."""
        payable = [PaymentStatus.pending.value, PaymentStatus.closed.value]
        paid = {
            "status": PaymentStatus.paid.value,
            "transaction_id": transaction_id,
            "paid_at": paid_at,
            "refundable_fen": doc.amount_fen,
            "updated_at": now,
        }
        # a plain update in the payment's transaction: only whether it matched is needed, so
        # no read-back (``change_one``'s), one round trip of the callback's fewer
        took = await self.col.update_one(
            {"_id": doc.id, "status": {"$in": payable}},
            {"$set": paid, "$unset": {"open_for": ""}, "$inc": {"version": 1}},
            session=session,
        )
        return took.matched_count == 1

    async def reserve_refund(self, payment_id: ObjectId, amount: int) -> bool:
        """Take ``amount`` from what the payment can still refund; False when less is left."""
        took = await self.col.update_one(
            {"_id": payment_id, "refundable_fen": {"$gte": amount}},
            {"$inc": {"refundable_fen": -amount, "version": 1}},
        )
        return bool(took.modified_count)

    async def take_refund(
        self, payment_id: ObjectId, amount: int, now: dt.datetime, limits: RefundLimits
    ) -> bool:
        """``reserve_refund`` within WeChat Pay's limits on the order: fewer than
        ``limits.most`` refunds so far and none in the last ``limits.interval``."""
        took = await self.col.update_one(
            {
                "_id": payment_id,
                "refundable_fen": {"$gte": amount},
                "$and": [
                    {"refund_count": {"$not": {"$gte": limits.most}}},
                    {
                        "$or": [
                            {"last_refund_at": None},
                            {"last_refund_at": {"$lte": now - limits.interval}},
                        ]
                    },
                ],
            },
            {
                "$inc": {"refundable_fen": -amount, "refund_count": 1, "version": 1},
                "$set": {"last_refund_at": now},
            },
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
        self, payment_id: str, amount: int, now: dt.datetime, session: AsyncClientSession
    ) -> PaymentDoc:
        """A refund that succeeded: counted as refunded, the payment's status following."""
        raw = await change_one(
            self.col,
            {"_id": ObjectId(payment_id)},
            {"$inc": {"refunded_fen": amount, "version": 1}, "$set": {"updated_at": now}},
            session=session,
        )
        assert raw is not None
        payment = PaymentDoc.model_validate(raw)
        whole = payment.refunded_fen >= payment.amount_fen
        status = PaymentStatus.refunded if whole else PaymentStatus.partially_refunded
        await self.col.update_one(
            {"_id": payment.id}, {"$set": {"status": status.value}}, session=session
        )
        return payment


class RefundLimits(NamedTuple):
    most: int
    interval: dt.timedelta


class RefundStore:
    """The ``refunds`` collection."""

    def __init__(self, db: Database) -> None:
        self.col = db["refunds"]

    async def load(self, refund_id: str) -> RefundDoc | None:
        oid = _oid(refund_id)
        raw = await self.col.find_one({"_id": oid}) if oid else None
        return RefundDoc.model_validate(raw) if raw else None

    async def processing_before(self, cutoff: dt.datetime, limit: int) -> list[RefundDoc]:
        """Refunds still processing that were asked before ``cutoff`` (``processing_sweep``)."""
        cursor = self.col.find(
            {"status": RefundStatus.processing.value, "created_at": {"$lte": cutoff}}
        ).sort([("created_at", 1)])
        return [RefundDoc.model_validate(r) for r in await cursor.limit(limit).to_list()]

    async def abnormal(self, refund_id: ObjectId, wechat_refund_id: str | None) -> bool:
        """Processing to abnormal, unless staff already sent it on (a repeated callback)."""
        moved: dict[str, Any] = {"status": RefundStatus.abnormal.value, "error": "ABNORMAL"}
        if wechat_refund_id:
            moved["refund_id"] = wechat_refund_id
        took = await self.col.update_one(
            {"_id": refund_id, "status": RefundStatus.processing.value, "resolution": None},
            {"$set": moved},
        )
        return bool(took.modified_count)

    async def resolve(
        self,
        refund_id: ObjectId,
        to: RefundStatus,
        resolution: dict[str, Any],
        session: AsyncClientSession | None = None,
    ) -> bool:
        """Abnormal to ``to`` (processing again, or succeeded offline), once."""
        done: dict[str, Any] = {"status": to.value, "resolution": resolution}
        if to == RefundStatus.succeeded:
            done["succeeded_at"] = resolution["at"]
        took = await self.col.update_one(
            {"_id": refund_id, "status": RefundStatus.abnormal.value},
            {"$set": done},
            session=session,
        )
        return bool(took.modified_count)

    async def insert(self, refund: RefundDoc) -> None:
        await self.col.insert_one(refund.model_dump(by_alias=True))

    async def by_refund_no(self, out_refund_no: str) -> RefundDoc | None:
        raw = await self.col.find_one({"out_refund_no": out_refund_no})
        return RefundDoc.model_validate(raw) if raw else None

    async def of_case(self, case_id: str, payer_id: str | None) -> list[RefundDoc]:
        """A case's refunds, or only those of ``payer_id``'s payments (``by_case_payer``)."""
        cursor = self.col.find(_case_filter(case_id, payer_id)).sort([("_id", 1)])
        return [RefundDoc.model_validate(r) for r in await cursor.limit(CASE_LIST_LIMIT).to_list()]

    async def set_refund_id(self, refund_id: ObjectId, wechat_refund_id: str) -> None:
        await self.col.update_one({"_id": refund_id}, {"$set": {"refund_id": wechat_refund_id}})

    async def succeed(
        self,
        refund_id: ObjectId,
        wechat_refund_id: str | None,
        when: dt.datetime,
        session: AsyncClientSession,
    ) -> bool:
        """Processing to succeeded; False when its outcome was already recorded."""
        done = {
            "status": RefundStatus.succeeded.value,
            "refund_id": wechat_refund_id,
            "succeeded_at": when,
        }
        took = await self.col.update_one(
            {"_id": refund_id, "status": RefundStatus.processing.value},
            {"$set": done},
            session=session,
        )
        return bool(took.modified_count)

    async def fail(self, refund_id: ObjectId, error: str, session: AsyncClientSession) -> bool:
        """Processing to failed; False when its outcome was already recorded."""
        took = await self.col.update_one(
            {"_id": refund_id, "status": RefundStatus.processing.value},
            {"$set": {"status": RefundStatus.failed.value, "error": error}},
            session=session,
        )
        return bool(took.modified_count)


class FeeStore:
    """The three stores, built once per service from the database."""

    def __init__(self, db: Database) -> None:
        self.notices = NoticeStore(db)
        self.payments = PaymentStore(db)
        self.refunds = RefundStore(db)


def _case_filter(case_id: str, payer_id: str | None) -> dict[str, Any]:
    filt: dict[str, Any] = {"case_id": case_id}
    if payer_id is not None:
        filt["payer_id"] = payer_id
    return filt
