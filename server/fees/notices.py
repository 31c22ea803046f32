"""Fee notices: issued and served on acceptance, read with the case, swept when overdue.

The acceptance fee is prepaid by the plaintiffs (Art. 20 《诉讼费用交纳办法》) within 7 days from
the day after the notice (Art. 22), unless fee relief (司法救助) was granted. Execution
application fees are paid after execution (Art. 20), so an execution case gets no notice here.
An unpaid notice past its deadline flags the case for 按撤诉处理 and tells the clerk, once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.cases import CaseDoc, FeeStatusOut, Viewer
from models.documents import DocumentKind
from models.fee_notices import (
    FeeLine,
    FeeNoticeDoc,
    NoticeStatus,
    ReliefDecisionIn,
    ReliefDoc,
    ReliefGrant,
    notice_out,
)
from models.fees import FeeKind, FeeResult
from models.filings import AcceptIn, FilingDoc
from models.payments import FeesOut, PaymentDoc, RefundDoc, payment_out, refund_out
from models.users import Role, UserDoc
from server.cases import notices as court_notices
from server.cases.service import CaseService
from server.fees import schedule as fee_schedule
from server.fees.errors import FeeReliefAmount, FeeReliefNotRequested, FeeReliefUndecided
from server.notify.inbox import NotificationService
from server.platform.calendar import Calendars
from server.platform.clock import Clock, local_day
from server.platform.config import Settings
from server.platform.db import Database
from server.platform.mongo import change_one

if TYPE_CHECKING:
    from server.cases.service_of_documents import DocumentService

SWEEP_BATCH = 500
NOT_PREPAID = frozenset({FeeKind.execution})


@dataclass(frozen=True)
class FeePlan:
    """What acceptance will charge, computed (and checked) before the transaction starts."""

    fee_kind: FeeKind
    estimate: FeeResult
    relief: ReliefDecisionIn | None


class FeeNoticeService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        calendars: Calendars,
        cases: CaseService,
        notifications: NotificationService,
    ) -> None:
        self.col = db["fee_notices"]
        self.payments = db["payments"]
        self.refunds = db["refunds"]
        self.case_service = cases
        self.settings = settings
        self.clock = clock
        self.calendars = calendars
        self.notifications = notifications

    # ---- on acceptance

    def plan(self, filing: FilingDoc, data: AcceptIn) -> FeePlan | None:
        """The fee the case will owe, or None when nothing is prepaid; 422 for a relief
        decision that does not fit (none asked for, none taken, or reducing to more)."""
        kind = data.fee_kind or fee_schedule.fee_kind_for(
            filing.case_kind, filing.cause, filing.amount_fen
        )
        if kind is None or kind in NOT_PREPAID:
            return None
        court = self.settings.court(filing.court_id)
        assert court is not None
        estimate = fee_schedule.court_fee(
            kind, filing.amount_fen, procedure=data.procedure, fixed=court.fixed_fees
        )
        relief = data.fee_relief
        if filing.fee_relief is None and relief is not None:
            raise FeeReliefNotRequested.at(["fee_relief"])
        if filing.fee_relief is not None and relief is None:
            raise FeeReliefUndecided.at(["fee_relief"])
        reduce_to = relief.amount_fen if relief and relief.grant == ReliefGrant.reduce else None
        if reduce_to is not None and reduce_to >= estimate.fee_fen:
            raise FeeReliefAmount.at(["fee_relief"])
        return FeePlan(kind, estimate, relief)

    async def issue(
        self,
        plan: FeePlan,
        case: CaseDoc,
        filing: FilingDoc,
        staff: UserDoc,
        service: DocumentService,
        session: AsyncClientSession,
    ) -> FeeNoticeDoc:
        """Write the notice and serve its 缴费通知书 to the plaintiffs, in the acceptance's
        transaction."""
        now = self.clock.now()
        cal = self.calendars.for_court(case.court_id)
        court = self.settings.court(case.court_id)
        assert court is not None
        due = cal.deadline_at(now, court.deadlines.fee_due_days)
        relief = plan.relief
        if relief and relief.grant == ReliefGrant.defer and relief.due_date:
            due = max(due, cal.end_of_day(cal.next_working_day(relief.due_date)))
        amount = plan.estimate.fee_fen
        if relief and relief.grant == ReliefGrant.reduce and relief.amount_fen:
            amount = relief.amount_fen
        if relief and relief.grant == ReliefGrant.waive:
            amount = 0
        notice = FeeNoticeDoc(
            id=ObjectId(), case_id=str(case.id), case_no=case.case_no, court_id=case.court_id,
            fee_kind=plan.fee_kind.value, basis_amount_fen=filing.amount_fen,
            procedure=case.procedure.value, full_fee_fen=plan.estimate.fee_fen,
            amount_fen=amount,
            breakdown=[FeeLine.model_validate(x.model_dump())
                       for x in [*plan.estimate.lines, *plan.estimate.steps]],
            relief=ReliefDoc(
                grant=relief.grant, requested=filing.fee_relief.type.value
                if filing.fee_relief else None, reason=relief.reason,
                decided_by=str(staff.id), decided_at=now,
            ) if relief else None,
            status=NoticeStatus.waived if amount == 0 else NoticeStatus.pending,
            payer_ids=payers(case), issued_at=now, due_at=due,
        )  # fmt: skip
        pdf = court_notices.fee_notice(case, court, notice)
        plaintiffs = [p.party_id for p in case.plaintiffs]
        served = await service.serve_generated(
            staff, case, DocumentKind.fee_notice, pdf, plaintiffs, session
        )
        notice.document_id = str(served.id)
        await self.col.insert_one(notice.model_dump(by_alias=True), session=session)
        return notice

    # ---- reading

    async def load(self, notice_id: str) -> FeeNoticeDoc | None:
        raw = await self.col.find_one({"_id": ObjectId(notice_id)})
        return FeeNoticeDoc.model_validate(raw) if raw else None

    async def credit(
        self, notice_id: str, amount_fen: int, when: dt.datetime, session: AsyncClientSession
    ) -> FeeNoticeDoc:
        """Add a payment to the notice (in the payment's transaction); paid once covered."""
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

    async def of_case(self, case_id: str) -> list[FeeNoticeDoc]:
        raws = await self.col.find({"case_id": case_id}).sort([("_id", 1)]).limit(50).to_list()
        return [FeeNoticeDoc.model_validate(r) for r in raws]

    async def case_fees(self, user: UserDoc, case_id: str) -> FeesOut:
        """Notices for everyone who may read the case; payments and refunds: staff all, a
        party or agent those they paid."""
        seen = await self.case_service.access_case(user, case_id)
        case = seen.obj
        filt: dict[str, Any] = {"case_id": str(case.id)}
        if seen.standing != Viewer.staff:
            filt["payer_id"] = str(user.id)
        payments = await self.payments.find(filt).sort([("_id", 1)]).limit(100).to_list()
        refunds = await self.refunds.find(filt).sort([("_id", 1)]).limit(100).to_list()
        return FeesOut(
            notices=[notice_out(n) for n in await self.of_case(str(case.id))],
            payments=[payment_out(PaymentDoc.model_validate(p)) for p in payments],
            refunds=[refund_out(RefundDoc.model_validate(r)) for r in refunds],
        )

    async def status(self, case: CaseDoc) -> FeeStatusOut:
        """The case's fee in one line, for the case detail."""
        notices = await self.of_case(str(case.id))
        if not notices:
            return FeeStatusOut()
        owed = sum(n.amount_fen for n in notices if n.status != NoticeStatus.cancelled)
        paid = sum(n.paid_fen for n in notices)
        open_ = [n for n in notices if n.status == NoticeStatus.pending]
        if open_:
            status = "overdue" if any(n.overdue_at for n in open_) else "pending"
        elif all(n.status == NoticeStatus.waived for n in notices):
            status = "waived"
        else:
            status = "paid"
        due = min((n.due_at for n in open_), default=None)
        return FeeStatusOut(status=status, amount_fen=owed, paid_fen=paid, due_at=due)

    # ---- the overdue sweep

    async def sweep_overdue(self) -> int:
        """Flag each unpaid notice past its deadline once (a conditional update, so any number
        of processes may sweep), mark its case for 按撤诉处理 and tell the clerk."""
        now = self.clock.now()
        flagged = 0
        filt = {"status": NoticeStatus.pending.value, "overdue_at": None, "due_at": {"$lt": now}}
        async for raw in self.col.find(filt).limit(SWEEP_BATCH):
            took = await self.col.update_one(
                {"_id": raw["_id"], "status": NoticeStatus.pending.value, "overdue_at": None},
                {"$set": {"overdue_at": now}, "$inc": {"version": 1}},
            )
            if took.modified_count:
                flagged += 1
                await self._overdue(FeeNoticeDoc.model_validate(raw))
        return flagged

    async def _overdue(self, notice: FeeNoticeDoc) -> None:
        note = f"案件受理费逾期未交（截止{local_day(notice.due_at)}），请按撤诉处理"
        case = await self.case_service.add_event(
            ObjectId(notice.case_id), "缴费逾期", None, note, changes={"fee_overdue": True}
        )
        common: dict[str, Any] = {
            "data": {"case_id": notice.case_id, "fee_notice_id": str(notice.id)},
            "template": "deadline_reminder",
            "dedupe_key": f"fee_notice:{notice.id}:overdue",
        }
        title = f"{notice.case_no}逾期未交费"
        if case and case.clerk_id:
            await self.notifications.notify([case.clerk_id], "fee_overdue", title, note, **common)
        else:
            await self.notifications.notify_court_staff(
                notice.court_id, [Role.clerk.value], "fee_overdue", title, note, **common
            )


def payers(case: CaseDoc) -> list[str]:
    """Who may pay the acceptance fee: the plaintiffs with an account, and the agent who
    filed for them."""
    own = [p.user_id for p in case.plaintiffs if p.user_id]
    return list(dict.fromkeys([*own, *case.agent_ids]))
