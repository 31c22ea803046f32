"""Filing review (立案审查) by the court's staff: the queue, the decisions, the deadline sweep."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.cases import CaseDoc
from models.common import Page, PageQuery
from models.filings import (
    AcceptIn,
    AcceptOut,
    CorrectionIn,
    FilingDoc,
    FilingStatus,
    RejectIn,
    ReviewItem,
)
from models.users import Caller, Role
from server.cases.service import CaseService
from server.filing.acceptance_documents import owed_kinds
from server.filing.errors import CorrectionAlreadyRequested, FilingNotFound, FilingNotPending
from server.filing.filings import (
    FilingService,
    FilingStanding,
    filing_out,
    materials,
    summary,
)
from server.filing.store import FilingStore, decision_update
from server.identity.errors import NoCourt
from server.identity.users import UserService
from server.platform.access import Access
from server.platform.clock import Clock, local_day
from server.platform.config import Settings
from server.platform.db import Database, in_transaction, read_decide_write
from server.platform.paging import as_bool, as_datetime, decode_cursor, encode_cursor, object_id

if TYPE_CHECKING:
    from server.fees.notices import FeeNoticeService, FeePlan
    from server.files.service import FileService
    from server.filing.acceptance_documents import AcceptanceDocuments
    from server.notify.inbox import NotificationService
    from server.platform.calendar import Calendars

T = TypeVar("T")


class ReviewService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        users: UserService,
        filings: FilingService,
        cases: CaseService,
        calendars: Calendars,
        files: FileService,
        notifications: NotificationService,
        fees: FeeNoticeService,
        documents: AcceptanceDocuments,
    ) -> None:
        self.store = FilingStore(db)
        self.fees = fees
        self.documents = documents
        self.users = users
        self.filings = filings
        self.cases = cases
        self.settings = settings
        self.clock = clock
        self.calendars = calendars
        self.files = files
        self.notifications = notifications

    @staticmethod
    def court_of(caller: Caller) -> str:
        if not caller.court_id:
            raise NoCourt()
        return caller.court_id

    async def access_filing(
        self, caller: Caller, filing_id: str
    ) -> Access[FilingDoc, FilingStanding]:
        """A filing of the caller's court, once filed; 404 for any other."""
        self.court_of(caller)
        access = await self.filings.access_filing(caller, filing_id)
        if access.standing != FilingStanding.court:
            raise FilingNotFound()
        return access

    # ---- the queue

    async def queue(self, caller: Caller, query: PageQuery) -> Page[ReviewItem]:
        """Pending filings: green channel first, then the nearest deadline."""
        court_id = self.court_of(caller)
        after = None
        if query.cursor:
            green, when, oid = decode_cursor(query.cursor, as_bool, as_datetime, object_id)
            after = (green, when, oid)
        found = await self.store.pending_for_court(
            court_id, after, query.limit + 1, self.clock.now()
        )
        docs = found[: query.limit]
        last = docs[-1] if docs else None
        return Page[ReviewItem](
            items=[self._item(d) for d in docs],
            next_cursor=encode_cursor([last.green, last.review_deadline.isoformat(), last.id])
            if len(found) > query.limit and last and last.review_deadline
            else None,
        )

    def _item(self, doc: FilingDoc) -> ReviewItem:
        now = self.clock.now()
        deadline = doc.review_deadline or now
        cal = self.calendars.for_court(doc.court_id)
        left = cal.working_days_between(cal.local_date(now), cal.local_date(deadline))
        return ReviewItem(
            **summary(doc).model_dump(),
            green_channel=doc.green_channel,
            working_days_left=max(left, 0),
            overdue=now > deadline,
            deadline_flag=doc.deadline_flag,
        )

    # ---- decisions
    #
    # Each decision is one transaction: the conditional move of the filing, the audit row,
    # the case (on acceptance: with its fee notice and the debt of its documents), the file
    # grants and the notices commit together or not at all.

    async def _in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        return await in_transaction(self.store.db, work)

    async def _decide(
        self,
        doc: FilingDoc,
        caller: Caller,
        changes: dict[str, Any],
        decision: dict[str, Any],
        session: AsyncClientSession,
    ) -> FilingDoc:
        """Move the pending filing as read (a lost race to another decision reads again)."""
        by = str(caller.id)
        update = decision_update(changes, decision, by, self.clock.now())
        decided = await self.store.move(doc, update, session)
        action = f"filing.{decision['action']}"
        await self.users.record(by, action, str(doc.id), session, court_id=doc.court_id)
        return decided

    async def _decided(
        self, caller: Caller, filing_id: str, decide_write: Callable[[FilingDoc], Awaitable[T]]
    ) -> T:
        """Read the pending filing, decide and write (``_decide`` in a transaction); read
        again after a lost race (a decided filing is then a 409)."""
        return await read_decide_write(
            lambda: self._pending(caller, filing_id), decide_write, FilingNotPending
        )

    async def _pending(self, caller: Caller, filing_id: str) -> FilingDoc:
        doc = (await self.access_filing(caller, filing_id)).obj
        if doc.status != FilingStatus.submitted:
            raise FilingNotPending()
        return doc

    async def request_correction(
        self, caller: Caller, filing_id: str, data: CorrectionIn
    ) -> FilingDoc:
        """One complete correction notice (一次性补正): a second one is a 409."""
        return await self._decided(
            caller, filing_id, lambda doc: self._request_correction(caller, doc, data)
        )

    async def _request_correction(
        self, caller: Caller, doc: FilingDoc, data: CorrectionIn
    ) -> FilingDoc:
        if doc.correction is not None:
            raise CorrectionAlreadyRequested()
        now = self.clock.now()
        due = self.calendars.for_court(doc.court_id).deadline_at(now, data.due_days)
        correction = {
            "items": data.items,
            "due_at": due,
            "requested_by": str(caller.id),
            "requested_at": now,
        }
        changes = {"status": FilingStatus.correction_requested.value, "correction": correction}
        decision = {"action": "correction_requested", "items": data.items}
        items = "；".join(f"{i + 1}. {t}" for i, t in enumerate(data.items))
        body = f"请在{local_day(due)}前补正：{items}"

        async def correct(session: AsyncClientSession) -> FilingDoc:
            decided = await self._decide(doc, caller, changes, decision, session)
            await self._tell_filer(decided, "filing_correction", "立案材料需要补正", body, session)
            return decided

        return await self._in_transaction(correct)

    async def reject(self, caller: Caller, filing_id: str, data: RejectIn) -> FilingDoc:
        return await self._decided(caller, filing_id, lambda doc: self._reject(caller, doc, data))

    async def _reject(self, caller: Caller, doc: FilingDoc, data: RejectIn) -> FilingDoc:
        changes = {"status": FilingStatus.rejected.value}
        decision = {"action": "rejected", "reason": data.reason}
        body = f"不予受理理由：{data.reason}"

        async def refuse(session: AsyncClientSession) -> FilingDoc:
            decided = await self._decide(doc, caller, changes, decision, session)
            await self._tell_filer(decided, "filing_rejected", "立案申请未通过", body, session)
            return decided

        return await self._in_transaction(refuse)

    async def accept(self, caller: Caller, filing_id: str, data: AcceptIn) -> AcceptOut:
        """Register the case (立案): the filing accepted, its number counted, the case created;
        its documents made and served once that has committed (``AcceptanceDocuments``)."""
        out = await self._decided(caller, filing_id, lambda doc: self._accept(caller, doc, data))
        self.documents.wake(out.case_id)
        return out

    async def _accept(self, caller: Caller, doc: FilingDoc, data: AcceptIn) -> AcceptOut:
        court = self.settings.court(doc.court_id)
        assert court is not None
        type_code = court.case_types[doc.case_kind]
        year = self.calendars.for_court(doc.court_id).local_date(self.clock.now()).year
        links = await self.cases.linked_users(doc)
        fee_plan = self.fees.plan(doc, data)
        case_id = ObjectId()
        decision = {"action": "accepted", "procedure": data.procedure.value}

        async def register(session: AsyncClientSession) -> AcceptOut:
            number = await self.cases.next_number(court, type_code, year, session)
            case = self.cases.case_document(
                doc,
                case_id=case_id,
                number=number,
                year=year,
                type_code=type_code,
                procedure=data.procedure,
                staff_id=str(caller.id),
                links=links,
            )
            accepted = {
                "status": FilingStatus.accepted.value,
                "case_id": str(case_id),
                "case_no": number[1],
            }
            decided = await self._decide(doc, caller, accepted, decision, session)
            await self.cases.insert(case, session)
            await self._owe_documents(
                CaseDoc.model_validate(case), decided, caller, fee_plan, session
            )
            await self._tell_parties(decided, case, session)
            return AcceptOut(
                case_id=str(case_id), case_no=case["case_no"], filing=filing_out(decided)
            )

        # queue, not conflict: one acceptance of the court at a time holds its counter, and
        # takes no other turn meanwhile
        async with self.cases.numbering(court, type_code, year):
            return await in_transaction(self.store.db, register, queued=False)

    async def _owe_documents(
        self,
        case: CaseDoc,
        filing: FilingDoc,
        caller: Caller,
        fee_plan: FeePlan | None,
        session: AsyncClientSession,
    ) -> None:
        """The fee notice (when a fee is prepaid) and the debt of the documents: the
        受理通知书 (with the query code), 诉讼权利义务告知书, 举证通知书 and 缴费通知书 are made
        and served after the commit, away from the court's case-number counter."""
        if fee_plan is not None:
            await self.fees.issue(caller, fee_plan, case, filing, session)
        kinds = owed_kinds(fee_plan is not None)
        await self.cases.owe_documents(str(case.id), case.court_id, kinds, str(caller.id), session)

    async def _tell_parties(
        self, doc: FilingDoc, case: dict[str, Any], session: AsyncClientSession
    ) -> None:
        """Every party with an account may now read the materials, and hears the number."""
        readers = case["party_user_ids"]
        await self.files.grant(materials(doc), reader_ids=readers, session=session)
        body = f"案号{case['case_no']}，请留意缴费通知"
        await self._tell_filer(doc, "filing_accepted", "立案成功", body, session, extra=readers)

    async def _tell_filer(
        self,
        doc: FilingDoc,
        kind: str,
        title: str,
        body: str,
        session: AsyncClientSession,
        extra: list[str] | None = None,
    ) -> None:
        """The filer, and the lawyer's clients (plaintiffs with an account), hear of it."""
        clients = await self.filings.clients(doc)
        await self.notifications.notify(
            sorted({doc.filer_id, *clients, *(extra or [])}),
            kind,
            title,
            body,
            data={"filing_id": str(doc.id), "status": doc.status.value, "case_id": doc.case_id},
            template="filing_decided",
            page=f"pages/filing/detail?id={doc.id}",
            dedupe_key=f"filing:{doc.id}:{kind}:{doc.version}",
            session=session,
        )

    # ---- the deadline sweep

    async def sweep_deadlines(self) -> int:
        """Flag filings near or past their review deadline and remind the court's clerks.

        The flag is set by a conditional update, so any number of processes may sweep at once
        and each filing is flagged (and announced) once per state.
        """
        flagged = 0
        now = self.clock.now()
        for court in self.settings.courts:
            cal = self.calendars.for_court(court.id)
            # due soon: the deadline falls today or on the next working day
            tomorrow = cal.local_date(now) + dt.timedelta(days=1)
            soon = cal.end_of_day(cal.next_working_day(tomorrow))
            flagged += await self._flag(court.id, "overdue", {"$lt": now}, ["due_soon", None])
            flagged += await self._flag(court.id, "due_soon", {"$gte": now, "$lte": soon}, [None])
        return flagged

    async def _flag(
        self, court_id: str, flag: str, window: dict[str, Any], before: list[str | None]
    ) -> int:
        found = 0
        async for doc in self.store.unflagged(court_id, window, before):
            if await self.store.flag(doc, flag):
                found += 1
                await self._remind(doc, flag)
        return found

    async def _remind(self, doc: FilingDoc, flag: str) -> None:
        title = "立案审查已超期" if flag == "overdue" else "立案审查即将到期"
        await self.notifications.notify_court_staff(
            doc.court_id,
            [Role.clerk.value],
            "filing_deadline",
            title,
            f"{doc.cause}（{'、'.join(p.name for p in doc.plaintiffs[:2])}）审查期限："
            f"{local_day(doc.review_deadline)}",
            data={"filing_id": str(doc.id), "flag": flag},
            template="deadline_reminder",
            dedupe_key=f"filing:{doc.id}:{flag}:{doc.version}",
        )
