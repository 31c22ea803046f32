"""Filing review (立案审查) by the court's staff: the queue, the decisions, the deadline sweep."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

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
from models.users import Role, UserDoc
from server.cases import CaseService
from server.clock import Clock
from server.config import Settings
from server.db import Database
from server.errors import Conflict, Forbidden
from server.filings import FilingService, filing_not_found, filing_out, summary
from server.paging import decode_cursor, encode_cursor, object_id

if TYPE_CHECKING:
    from server.calendar import Calendars
    from server.files import FileService
    from server.notifications import NotificationService

SWEEP_BATCH = 500


def not_pending() -> Conflict:
    return Conflict("该立案申请不在待审查状态", code="filing_not_pending")


class ReviewService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        filings: FilingService,
        cases: CaseService,
        calendars: Calendars,
        files: FileService,
        notifications: NotificationService,
    ) -> None:
        self.db = db
        self.filings = filings
        self.cases = cases
        self.settings = settings
        self.clock = clock
        self.calendars = calendars
        self.files = files
        self.notifications = notifications

    @staticmethod
    def court_of(staff: UserDoc) -> str:
        if not staff.court_id:
            raise Forbidden("该账户不属于任何法院", code="no_court")
        return staff.court_id

    async def for_staff(self, staff: UserDoc, filing_id: str) -> FilingDoc:
        doc = await self.filings.load(filing_id)
        if doc.court_id != self.court_of(staff) or doc.status == FilingStatus.draft:
            raise filing_not_found()
        return doc

    # ---- the queue

    async def queue(self, staff: UserDoc, query: PageQuery) -> Page[ReviewItem]:
        """Pending filings: green channel first, then the nearest deadline."""
        court_id = self.court_of(staff)
        filt: dict[str, Any] = {"court_id": court_id, "status": FilingStatus.submitted.value}
        if query.cursor:
            filt.update(_after(decode_cursor(query.cursor)))
        raws = (
            await self.filings.filings.find(filt)
            .sort([("green", -1), ("review_deadline", 1), ("_id", 1)])
            .limit(query.limit + 1)
            .to_list()
        )
        docs = [FilingDoc.model_validate(r) for r in raws[: query.limit]]
        last = docs[-1] if docs else None
        return Page[ReviewItem](
            items=[self._item(d) for d in docs],
            next_cursor=encode_cursor([last.green, last.review_deadline.isoformat(), last.id])
            if len(raws) > query.limit and last and last.review_deadline
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

    async def _decide(
        self,
        doc: FilingDoc,
        staff: UserDoc,
        changes: dict[str, Any],
        decision: dict[str, Any],
        session: AsyncClientSession | None = None,
    ) -> FilingDoc:
        now = self.clock.now()
        raw = await self.filings.filings.find_one_and_update(
            {"_id": doc.id, "status": FilingStatus.submitted.value, "version": doc.version},
            {
                "$set": {**changes, "updated_at": now},
                "$inc": {"version": 1},
                "$push": {"decisions": {**decision, "by": str(staff.id), "at": now}},
            },
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if raw is None:
            raise not_pending()
        await self.filings_audit(staff, decision["action"], doc)
        return FilingDoc.model_validate(raw)

    async def filings_audit(self, staff: UserDoc, action: str, doc: FilingDoc) -> None:
        await self.db["audit"].insert_one(
            {
                "actor_id": str(staff.id),
                "action": f"filing.{action}",
                "target": str(doc.id),
                "details": {"court_id": doc.court_id},
                "at": self.clock.now(),
            }
        )

    async def request_correction(
        self, staff: UserDoc, filing_id: str, data: CorrectionIn
    ) -> FilingDoc:
        doc = await self.for_staff(staff, filing_id)
        if doc.status != FilingStatus.submitted:
            raise not_pending()
        due = self.calendars.for_court(doc.court_id).deadline_at(self.clock.now(), data.due_days)
        correction = {
            "items": data.items,
            "due_at": due,
            "requested_by": str(staff.id),
            "requested_at": self.clock.now(),
        }
        decided = await self._decide(
            doc,
            staff,
            {"status": FilingStatus.correction_requested.value, "correction": correction},
            {"action": "correction_requested", "items": data.items},
        )
        items = "；".join(f"{i + 1}. {t}" for i, t in enumerate(data.items))
        await self._tell_filer(
            decided, "filing_correction", "立案材料需要补正", f"请在{_day(due)}前补正：{items}"
        )
        return decided

    async def reject(self, staff: UserDoc, filing_id: str, data: RejectIn) -> FilingDoc:
        doc = await self.for_staff(staff, filing_id)
        if doc.status != FilingStatus.submitted:
            raise not_pending()
        decided = await self._decide(
            doc,
            staff,
            {"status": FilingStatus.rejected.value},
            {"action": "rejected", "reason": data.reason},
        )
        await self._tell_filer(
            decided, "filing_rejected", "立案申请未通过", f"不予受理理由：{data.reason}"
        )
        return decided

    async def accept(self, staff: UserDoc, filing_id: str, data: AcceptIn) -> AcceptOut:
        """Register the case: filing accepted, case number counted, case created, in one
        transaction."""
        doc = await self.for_staff(staff, filing_id)
        if doc.status != FilingStatus.submitted:
            raise not_pending()
        court = self.settings.court(doc.court_id)
        assert court is not None
        type_code = court.case_types[doc.case_kind]
        year = self.calendars.for_court(doc.court_id).local_date(self.clock.now()).year
        links = await self.cases.linked_users(doc)
        case_id = ObjectId()

        async def register(session: AsyncClientSession) -> tuple[FilingDoc, dict[str, Any]]:
            number = await self.cases.next_number(court, type_code, year, session)
            case = self.cases.case_document(
                doc,
                case_id=case_id,
                number=number,
                year=year,
                type_code=type_code,
                procedure=data.procedure,
                staff_id=str(staff.id),
                links=links,
            )
            decided = await self._decide(
                doc,
                staff,
                {
                    "status": FilingStatus.accepted.value,
                    "case_id": str(case_id),
                    "case_no": number[1],
                },
                {"action": "accepted", "procedure": data.procedure.value},
                session,
            )
            await self.cases.cases.insert_one(case, session=session)
            return decided, case

        async with self.db.client.start_session() as session:
            decided, case = await session.with_transaction(register)
        await self._after_accept(decided, case)
        return AcceptOut(case_id=str(case_id), case_no=case["case_no"], filing=filing_out(decided))

    async def _after_accept(self, doc: FilingDoc, case: dict[str, Any]) -> None:
        files = [*doc.evidence, *([doc.power_of_attorney] if doc.power_of_attorney else [])]
        await self.files.grant(files, reader_ids=case["party_user_ids"])
        await self._tell_filer(
            doc,
            "filing_accepted",
            "立案成功",
            f"案号{case['case_no']}，请留意缴费通知",
            extra=case["party_user_ids"],
        )

    async def _tell_filer(
        self, doc: FilingDoc, kind: str, title: str, body: str, extra: list[str] | None = None
    ) -> None:
        """The filer, and the lawyer's clients (plaintiffs with an account), hear of it."""
        clients = await self.filings.clients(doc)
        recipients = sorted({doc.filer_id, *clients, *(extra or [])})
        await self.notifications.notify(
            recipients,
            kind,
            title,
            body,
            data={"filing_id": str(doc.id), "status": doc.status.value, "case_id": doc.case_id},
            template="filing_decided",
            page=f"pages/filing/detail?id={doc.id}",
            dedupe_key=f"filing:{doc.id}:{kind}:{doc.version}",
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
        filt = {
            "court_id": court_id,
            "status": FilingStatus.submitted.value,
            "review_deadline": window,
            "deadline_flag": {"$in": before},
        }
        found = 0
        async for raw in self.filings.filings.find(filt).limit(SWEEP_BATCH):
            took = await self.filings.filings.update_one(
                {
                    "_id": raw["_id"],
                    "version": raw["version"],
                    "deadline_flag": raw.get("deadline_flag"),
                },
                {"$set": {"deadline_flag": flag}},
            )
            if took.modified_count:
                found += 1
                await self._remind(FilingDoc.model_validate(raw), flag)
        return found

    async def _remind(self, doc: FilingDoc, flag: str) -> None:
        title = "立案审查已超期" if flag == "overdue" else "立案审查即将到期"
        await self.notifications.notify_court_staff(
            doc.court_id,
            [Role.clerk.value],
            "filing_deadline",
            title,
            f"{doc.cause}（{'、'.join(p.name for p in doc.plaintiffs[:2])}）审查期限："
            f"{_day(doc.review_deadline)}",
            data={"filing_id": str(doc.id), "flag": flag},
            template="deadline_reminder",
            dedupe_key=f"filing:{doc.id}:{flag}:{doc.version}",
        )


def _after(cursor: list[Any]) -> dict[str, Any]:
    green, deadline, last = cursor
    when = dt.datetime.fromisoformat(str(deadline))
    oid = object_id(last)
    return {
        "$or": [
            {"green": {"$lt": bool(green)}},
            {"green": bool(green), "review_deadline": {"$gt": when}},
            {"green": bool(green), "review_deadline": when, "_id": {"$gt": oid}},
        ]
    }


def _day(when: dt.datetime | None) -> str:
    from server.clock import SHANGHAI

    return when.astimezone(SHANGHAI).strftime("%Y年%m月%d日") if when else ""
