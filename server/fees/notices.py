"""Fee notices: issued and served on acceptance, read with the case, swept when overdue.

The acceptance fee is prepaid by the plaintiffs (Art. 20 《诉讼费用交纳办法》) within 7 days from
the day after the notice (Art. 22), unless fee relief (司法救助) was granted. Execution
application fees are paid after execution (Art. 20), so an execution case gets no notice here.
An unpaid notice past its deadline flags the case for 按撤诉处理 and tells the clerk, once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

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
from models.payments import FeesOut, payment_out, refund_out
from models.users import Caller, Role
from server.cases.service import CaseService
from server.fees import schedule as fee_schedule
from server.fees.errors import (
    FeeNoticeNotFound,
    FeeReliefAmount,
    FeeReliefNotRequested,
    FeeReliefUndecided,
)
from server.fees.store import FeeStore
from server.notify.inbox import NotificationService
from server.platform.access import Access
from server.platform.calendar import Calendars
from server.platform.clock import Clock, local_day
from server.platform.config import Settings
from server.platform.db import Database

if TYPE_CHECKING:
    from server.cases.service_of_documents import DocumentService

SWEEP_BATCH = 500
NOT_PREPAID = frozenset({FeeKind.execution})


class NoticeStanding(StrEnum):
    """How a caller stands to a fee notice: one who may pay it (a plaintiff or their agent)."""

    payer = "payer"


@dataclass(frozen=True)
class FeePlan:
    """What acceptance will charge, computed (and checked) before the transaction starts."""

    fee_kind: FeeKind
    estimate: FeeResult
    relief: ReliefDecisionIn | None


class FeeIssue(NamedTuple):
    """One notice of ``issue_many``: who accepts, the plan, the case and its filing."""

    caller: Caller
    plan: FeePlan
    case: CaseDoc
    filing: FilingDoc


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
        self.store = FeeStore(db)
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

    async def issue_many(
        self, issues: Sequence[FeeIssue], session: AsyncClientSession
    ) -> list[FeeNoticeDoc]:
        """Write the notices in the acceptances' transaction (each ``FeeIssue``'s ``caller``:
        the staff member accepting its case), in one insert; each one's 缴费通知书 is made and
        served after the commit (server/filing/acceptance_documents.py, then
        ``attach_document``)."""
        notices = [self._notice(*issue) for issue in issues]
        await self.store.notices.insert_many(notices, session)
        return notices

    async def unserved(self, case_id: str) -> FeeNoticeDoc | None:
        """The case's notice whose 缴费通知书 is still to be served, if any."""
        return next((n for n in await self.of_case(case_id) if n.document_id is None), None)

    @staticmethod
    def code_for(service: DocumentService, notice: FeeNoticeDoc) -> str:
        """The 验证码 printed on the notice's 缴费通知书."""
        return service.code_for(notice.case_id, DocumentKind.fee_notice.name, str(notice.id))

    async def attach_document(
        self, notice: FeeNoticeDoc, document_id: str, session: AsyncClientSession
    ) -> None:
        """Point the notice at its served 缴费通知书 (made by ``court_notices.fee_notice``
        with ``code_for``, served to the plaintiffs), in the transaction that serves it."""
        if not await self.store.notices.attach_document(notice.id, document_id, session):
            raise FeeNoticeNotFound()  # attached meanwhile: the transaction is undone

    def _notice(
        self, caller: Caller, plan: FeePlan, case: CaseDoc, filing: FilingDoc
    ) -> FeeNoticeDoc:
        now = self.clock.now()
        amount = _amount_due(plan)
        estimate, relief = plan.estimate, plan.relief
        return FeeNoticeDoc(
            id=ObjectId(),
            case_id=str(case.id),
            case_no=case.case_no,
            court_id=case.court_id,
            fee_kind=plan.fee_kind.value,
            basis_amount_fen=filing.amount_fen,
            procedure=case.procedure.value,
            full_fee_fen=estimate.fee_fen,
            amount_fen=amount,
            breakdown=[
                FeeLine.model_validate(x.model_dump()) for x in [*estimate.lines, *estimate.steps]
            ],
            relief=_relief(caller, relief, filing, now) if relief else None,
            status=NoticeStatus.waived if amount == 0 else NoticeStatus.pending,
            payer_ids=payers(case),
            issued_at=now,
            due_at=self._due(case, relief, now),
        )

    def _due(self, case: CaseDoc, relief: ReliefDecisionIn | None, now: dt.datetime) -> dt.datetime:
        """The deadline: the court's days for the fee, or later when the fee was deferred."""
        cal = self.calendars.for_court(case.court_id)
        court = self.settings.court(case.court_id)
        assert court is not None
        due = cal.deadline_at(now, court.deadlines.fee_due_days)
        if relief and relief.grant == ReliefGrant.defer and relief.due_date:
            due = max(due, cal.end_of_day(cal.next_working_day(relief.due_date)))
        return due

    # ---- reading

    async def load(self, notice_id: str) -> FeeNoticeDoc | None:
        return await self.store.notices.load(notice_id)

    async def access_notice(
        self, caller: Caller, notice_id: str
    ) -> Access[FeeNoticeDoc, NoticeStanding]:
        """A notice the caller may pay; 404 for anyone else (staff read notices with the case)."""
        notice = await self.store.notices.load(notice_id)
        if notice is None or str(caller.id) not in notice.payer_ids:
            raise FeeNoticeNotFound()
        return Access(notice, NoticeStanding.payer)

    async def credit(
        self, notice_id: str, amount_fen: int, when: dt.datetime, session: AsyncClientSession
    ) -> FeeNoticeDoc:
        """Add a payment to the notice (in the payment's transaction); paid once covered."""
        return await self.store.notices.credit(notice_id, amount_fen, when, session)

    async def of_case(self, case_id: str) -> list[FeeNoticeDoc]:
        return await self.store.notices.of_case(case_id)

    async def case_fees(self, caller: Caller, case_id: str) -> FeesOut:
        """Notices for everyone who may read the case; payments and refunds: staff all, a
        party or agent those they paid."""
        seen = await self.case_service.access_case(caller, case_id)
        case = seen.obj
        payer = None if seen.standing == Viewer.staff else str(caller.id)
        payments = await self.store.payments.of_case(str(case.id), payer)
        refunds = await self.store.refunds.of_case(str(case.id), payer)
        return FeesOut(
            notices=[notice_out(n) for n in await self.of_case(str(case.id))],
            payments=[payment_out(p) for p in payments],
            refunds=[refund_out(r) for r in refunds],
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
        async for notice in self.store.notices.overdue(now, SWEEP_BATCH):
            if await self.store.notices.flag_overdue(notice.id, now):
                flagged += 1
                await self._overdue(notice)
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


def _relief(
    caller: Caller, relief: ReliefDecisionIn, filing: FilingDoc, now: dt.datetime
) -> ReliefDoc:
    return ReliefDoc(
        grant=relief.grant,
        requested=filing.fee_relief.type.value if filing.fee_relief else None,
        reason=relief.reason,
        decided_by=str(caller.id),
        decided_at=now,
    )


def _amount_due(plan: FeePlan) -> int:
    """The full fee, unless relief reduced or waived it."""
    relief = plan.relief
    if relief and relief.grant == ReliefGrant.reduce and relief.amount_fen:
        return relief.amount_fen
    if relief and relief.grant == ReliefGrant.waive:
        return 0
    return plan.estimate.fee_fen


def payers(case: CaseDoc) -> list[str]:
    """Who may pay the acceptance fee: the plaintiffs with an account, and the agent who
    filed for them."""
    own = [p.user_id for p in case.plaintiffs if p.user_id]
    return list(dict.fromkeys([*own, *case.agent_ids]))
