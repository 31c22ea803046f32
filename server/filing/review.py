"""Filing review (立案审查) by the court's staff: the queue, the decisions, the deadline sweep."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from server.cases.service import CaseNumber, CaseService, DocumentDebt
from server.fees.notices import FeeIssue
from server.files.service import Grant
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
from server.notify.inbox import Notice
from server.platform.access import Access
from server.platform.audit import AuditRow
from server.platform.clock import Clock, local_day
from server.platform.config import CourtSettings, Settings
from server.platform.db import Database, LostRace, in_transaction, read_decide_write
from server.platform.group_commit import Excluded
from server.platform.paging import as_bool, as_datetime, decode_cursor, encode_cursor, object_id

if TYPE_CHECKING:
    from server.fees.notices import FeeNoticeService, FeePlan
    from server.files.service import FileService
    from server.filing.acceptance_documents import AcceptanceDocuments
    from server.notify.inbox import NotificationService
    from server.platform.calendar import Calendars

T = TypeVar("T")


def filer_notice(doc: FilingDoc, also: list[str], kind: str, title: str, body: str) -> Notice:
    """The notice of a decision to the filer and ``also`` (the lawyer's clients, the parties
    with an account), once per move of the filing."""
    return Notice(
        sorted({doc.filer_id, *also}),
        kind,
        title,
        body,
        data={"filing_id": str(doc.id), "status": doc.status.value, "case_id": doc.case_id},
        template="filing_decided",
        page=f"pages/filing/detail?id={doc.id}",
        dedupe_key=f"filing:{doc.id}:{kind}:{doc.version}",
    )


@dataclass(frozen=True)
class Acceptance:
    """One acceptance, read and checked before its group's transaction (``_register``)."""

    caller: Caller
    doc: FilingDoc
    data: AcceptIn
    court: CourtSettings
    type_code: str
    year: int
    links: dict[str, str]  # the parties' accounts
    clients: list[str]  # a lawyer's clients
    fee_plan: FeePlan | None
    case_id: ObjectId

    def case(self, cases: CaseService, number: CaseNumber) -> dict[str, Any]:
        return cases.case_document(
            self.doc,
            case_id=self.case_id,
            number=number,
            year=self.year,
            type_code=self.type_code,
            procedure=self.data.procedure,
            staff_id=str(self.caller.id),
            links=self.links,
        )

    def accepted(self, case: dict[str, Any]) -> dict[str, Any]:
        """The filing's changes: accepted, as this case."""
        status = FilingStatus.accepted.value
        return {"status": status, "case_id": str(self.case_id), "case_no": case["case_no"]}

    def decision(self) -> dict[str, Any]:
        return {"action": "accepted", "procedure": self.data.procedure.value}


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
    # grants and the notices commit together or not at all. A court's acceptances waiting for
    # its case-number counter share one (``_register``, a group commit).

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
        """Prepare the acceptance (its reads and its fee, outside the transaction), then
        wait for its group's transaction: queue, not conflict, on the court's counter."""
        court = self.settings.court(doc.court_id)
        assert court is not None
        acceptance = Acceptance(
            caller=caller,
            doc=doc,
            data=data,
            court=court,
            type_code=court.case_types[doc.case_kind],
            year=self.calendars.for_court(doc.court_id).local_date(self.clock.now()).year,
            links=await self.cases.linked_users(doc),
            clients=await self.filings.clients(doc),
            fee_plan=self.fees.plan(doc, data),
            case_id=ObjectId(),
        )
        numbering = self.cases.numbering(
            court, acceptance.type_code, acceptance.year, self._register
        )
        return await numbering.run(acceptance)

    async def _register(
        self, session: AsyncClientSession, group: list[Acceptance]
    ) -> list[AcceptOut]:
        """A group of one court's acceptances (same type and year) in one transaction: their
        consecutive numbers, the filings' moves (a filing decided meanwhile excludes its own
        acceptance: ``LostRace``), the cases, fee notices, debts of documents, grants and
        notices, each kind in one write."""
        first = group[0]
        numbers = await self.cases.next_numbers(
            first.court, first.type_code, first.year, len(group), session
        )
        cases = [a.case(self.cases, n) for a, n in zip(group, numbers, strict=True)]
        decided = await self._move_all(group, cases, session)
        await self.cases.insert_many(cases, session)
        docs = [CaseDoc.model_validate(c) for c in cases]
        await self._owe_documents(group, docs, decided, session)
        await self._tell_parties(group, docs, decided, session)
        return [
            AcceptOut(case_id=str(c.id), case_no=c.case_no, filing=filing_out(d))
            for c, d in zip(docs, decided, strict=True)
        ]

    async def _move_all(
        self, group: list[Acceptance], cases: list[dict[str, Any]], session: AsyncClientSession
    ) -> list[FilingDoc]:
        """Move each filing to accepted, as read, and audit it; ``Excluded`` names those
        decided meanwhile (their acceptances fail alone, and read again)."""
        now = self.clock.now()
        moves = [
            (a.doc, decision_update(a.accepted(c), a.decision(), str(a.caller.id), now))
            for a, c in zip(group, cases, strict=True)
        ]
        moved = await self.store.move_each(moves, session, mine="case_id")
        lost: dict[int, BaseException] = {i: LostRace() for i, d in enumerate(moved) if d is None}
        if lost:
            raise Excluded(lost)
        rows = [
            AuditRow(
                str(a.caller.id), "filing.accepted", str(a.doc.id), {"court_id": a.doc.court_id}
            )
            for a in group
        ]
        await self.users.record_many(rows, session)
        return [d for d in moved if d is not None]

    async def _owe_documents(
        self,
        group: list[Acceptance],
        cases: list[CaseDoc],
        decided: list[FilingDoc],
        session: AsyncClientSession,
    ) -> None:
        """The fee notices (where a fee is prepaid) and the debt of the documents: the
        受理通知书 (with the query code), 诉讼权利义务告知书, 举证通知书 and 缴费通知书 are made
        and served after the commit, away from the court's case-number counter."""
        trio = list(zip(group, cases, decided, strict=True))
        issues = [FeeIssue(a.caller, a.fee_plan, c, d) for a, c, d in trio if a.fee_plan]
        if issues:
            await self.fees.issue_many(issues, session)
        debts = [
            DocumentDebt(
                str(c.id), c.court_id, owed_kinds(a.fee_plan is not None), str(a.caller.id)
            )
            for a, c, _d in trio
        ]
        await self.cases.owe_documents(debts, session)

    async def _tell_parties(
        self,
        group: list[Acceptance],
        cases: list[CaseDoc],
        decided: list[FilingDoc],
        session: AsyncClientSession,
    ) -> None:
        """Every party with an account may now read the materials, and hears the number."""
        trio = list(zip(group, cases, decided, strict=True))
        await self.files.grant_each(
            [Grant(materials(d), c.party_user_ids) for _a, c, d in trio], session
        )
        notices = [
            filer_notice(
                d,
                [*a.clients, *c.party_user_ids],
                "filing_accepted",
                "立案成功",
                f"案号{c.case_no}，请留意缴费通知",
            )
            for a, c, d in trio
        ]
        await self.notifications.notify_many(notices, session=session)

    async def _tell_filer(
        self, doc: FilingDoc, kind: str, title: str, body: str, session: AsyncClientSession
    ) -> None:
        """The filer, and the lawyer's clients (plaintiffs with an account), hear of it."""
        notice = filer_notice(doc, await self.filings.clients(doc), kind, title, body)
        await self.notifications.notify_notice(notice, session=session)

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
