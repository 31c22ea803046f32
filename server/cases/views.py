"""Reading cases (案件查询): my cases, a case's detail, and lookup by number and query code.

Who sees what: a party (linked by identity) sees the case with their own contact details in
full and the other parties' masked; the lawyer who filed it (an agent) sees it as the
plaintiffs' side does; the court's staff see everything except the query code, and each
staff read is audited. The query code (查询码) is shown to the parties and the filing agent
only (it is printed on the 受理通知书 they receive), never in a list and never logged.
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any, Protocol

from models.cases import (
    STATUS_NAMES,
    CaseDoc,
    CaseOut,
    CaseQuery,
    CaseStatus,
    CaseSummary,
    HearingDoc,
    HearingOut,
    LookupIn,
    StaffRef,
    TimelineOut,
    Viewer,
)
from models.common import Page
from models.documents import DocumentOut
from models.users import STAFF_ROLES, Caller
from server.cases.errors import CaseLookupFailed
from server.cases.service import CaseService, case_standing
from server.cases.store import CaseStore, HearingStore, Scope, party_scopes
from server.fees.notices import FeeNoticeService
from server.files.service import FileService
from server.filing.filings import FilingService
from server.filing.parties import party_out
from server.identity.errors import IdentityPending, NoCourt
from server.identity.users import UserService
from server.platform.access import Access
from server.platform.calendar import Calendars
from server.platform.config import Settings
from server.platform.db import Database
from server.platform.errors import NotFound
from server.platform.paging import as_datetime, decode_cursor, encode_cursor, object_id
from server.platform.ratelimit import RateLimiter

_DUMMY_CODE = "00000000"


class ServedDocuments(Protocol):
    """The served documents of a case as ``viewer`` may see them (server/service_of_documents)."""

    async def documents_for(
        self, caller: Caller, case: CaseDoc, viewer: Viewer
    ) -> list[DocumentOut]: ...


def lookup_failed() -> NotFound:
    """One answer for an unknown number, a wrong code and a caller who is not a party."""
    return CaseLookupFailed()


def hearing_out(doc: HearingDoc) -> HearingOut:
    return HearingOut(id=str(doc.id), **doc.model_dump(exclude={"id"}))


def summary_of(raw: dict[str, Any], court_name: str) -> CaseSummary:
    status = CaseStatus(raw["status"])
    return CaseSummary(
        id=str(raw["_id"]),
        case_no=raw["case_no"],
        court_id=raw["court_id"],
        court_name=court_name,
        cause=raw.get("cause"),
        procedure=raw["procedure"],
        status=status,
        status_name=STATUS_NAMES[status],
        plaintiff_names=[p["name"] for p in raw.get("plaintiffs", [])],
        defendant_names=[p["name"] for p in raw.get("defendants", [])],
        judge_id=raw.get("judge_id"),
        accepted_at=raw["accepted_at"],
        last_activity_at=raw["last_activity_at"],
    )


def full_contacts(case: CaseDoc, user_id: str, viewer: Viewer) -> set[str]:
    """The parties whose phone and address the caller sees: all for staff; their own for a
    party; the plaintiffs (the side they act for) for the filing lawyer."""
    if viewer == Viewer.staff:
        return {p.party_id for p in case.parties()}
    if viewer == Viewer.party:
        return {p.party_id for p in case.parties() if p.user_id == user_id}
    return {p.party_id for p in case.plaintiffs} if user_id == case.filer_id else set()


class CaseViews:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        cases: CaseService,
        users: UserService,
        calendars: Calendars,
        documents: ServedDocuments,
        fees: FeeNoticeService,
        files: FileService,
        filings: FilingService,
    ) -> None:
        self.store = CaseStore(db)
        self.hearings = HearingStore(db)
        self.settings = settings
        self.cases = cases
        self.users = users
        self.calendars = calendars
        self.documents = documents
        self.fees = fees
        self.files = files
        self.filings = filings
        limits = settings.cases
        self.per_user = RateLimiter.shared(
            db, "lookup-user", limits.lookups_per_user_per_minute, 60, cases.clock
        )
        self.per_case = RateLimiter.shared(
            db, "lookup-case", limits.lookups_per_case_per_hour, 3600, cases.clock
        )

    def court_name(self, court_id: str) -> str:
        court = self.settings.court(court_id)
        return court.name if court else court_id

    # ---- my cases

    async def list_for(self, caller: Caller, query: CaseQuery) -> Page[CaseSummary]:
        """Newest activity first, cursor-paged. A party's and an agent's cases come from two
        indexed queries merged here (no $or planning needed); staff see their court's, read
        a page at a time (``first_page``)."""
        after = None
        if query.cursor:
            when, last = decode_cursor(query.cursor, as_datetime, object_id)
            after = {"last_activity_at": when, "_id": last}
        found: dict[Any, dict[str, Any]] = {}
        now = self.cases.clock.now()
        for scope in self._scopes(caller, query):
            rows = await self.store.summaries(scope, query.limit + 1, now, after)
            found.update((raw["_id"], raw) for raw in rows)
        raws = sorted(found.values(), key=lambda r: (r["last_activity_at"], r["_id"]))[::-1]
        page = raws[: query.limit]
        more = len(raws) > query.limit
        return Page[CaseSummary](
            items=[summary_of(r, self.court_name(r["court_id"])) for r in page],
            next_cursor=encode_cursor([page[-1]["last_activity_at"].isoformat(), page[-1]["_id"]])
            if more
            else None,
        )

    def _scopes(self, caller: Caller, query: CaseQuery) -> list[Scope]:
        """(index, filter, indexed scope) of each query. A party's or agent's cases are few
        and found by the planner. A court's filter is equalities that the court's indexes
        serve as a prefix of the activity time; an accepted-date range makes a second range,
        which the planner matches to no index, so that query names its index."""
        uid = str(caller.id)
        extra: dict[str, Any] = {"status": query.status.value} if query.status else {}
        if caller.role not in STAFF_ROLES:
            return party_scopes(uid, extra)
        court_id = caller.court_id
        if not court_id:
            raise NoCourt()
        if query.judge_id:
            extra["judge_id"] = query.judge_id
        accepted = self._accepted_range(court_id, query.accepted_from, query.accepted_to)
        if not accepted:
            return [(None, {"court_id": court_id, **extra}, True)]
        index = (
            "court_judge_activity"
            if query.judge_id
            else "court_status_activity"
            if query.status
            else "court_activity"
        )
        return [(index, {"court_id": court_id, **extra, **accepted}, False)]

    def _accepted_range(
        self, court_id: str, first: dt.date | None, last: dt.date | None
    ) -> dict[str, Any]:
        cal = self.calendars.for_court(court_id)
        bounds: dict[str, Any] = {}
        if first:
            bounds["$gt"] = cal.end_of_day(first - dt.timedelta(days=1))
        if last:
            bounds["$lte"] = cal.end_of_day(last)
        return {"accepted_at": bounds} if bounds else {}

    # ---- one case

    async def detail(self, caller: Caller, case_id: str) -> CaseOut:
        """The case as the caller may see it; 404 for anyone who may not. Staff reads are
        audited (another person's data)."""
        seen = await self.cases.access_case(caller, case_id)
        if seen.standing == Viewer.staff:
            await self._audit_read(caller, seen.obj)
        return await self.view(caller, seen)

    async def _audit_read(self, caller: Caller, case: CaseDoc) -> None:
        await self.users.record(str(caller.id), "case.read", str(case.id), court_id=case.court_id)

    async def view(self, caller: Caller, seen: Access[CaseDoc, Viewer]) -> CaseOut:
        case, viewer = seen.obj, seen.standing
        full = full_contacts(case, str(caller.id), viewer)
        staff = viewer == Viewer.staff

        def parties(group: str) -> list[Any]:
            return [party_out(p, full=p.party_id in full) for p in getattr(case, group)]

        raw = {**case.model_dump(by_alias=True), "_id": case.id}
        summary = summary_of(raw, self.court_name(case.court_id))
        timeline = [
            TimelineOut(at=e.at, kind=e.kind, note=e.note, by=e.by if staff else None)
            for e in case.timeline
        ]
        return CaseOut(
            **summary.model_dump(),
            viewer=viewer,
            case_kind=case.case_kind,
            amount_fen=case.amount_fen,
            plaintiffs=parties("plaintiffs"),
            defendants=parties("defendants"),
            third_parties=parties("third_parties"),
            judge=await self._staff_ref(case.judge_id),
            clerk=await self._staff_ref(case.clerk_id),
            timeline=timeline,
            hearings=await self.hearings_of(case),
            fees=await self.fees.status(case),
            documents=await self.documents.documents_for(caller, case, viewer),
            query_code=None if staff else self.cases.query_code(case),
            team_phone=await self.team_phone(case),
        )

    async def hearings_of(self, case: CaseDoc) -> list[HearingOut]:
        return [hearing_out(h) for h in await self.hearings.of_case(str(case.id))]

    async def team_phone(self, case: CaseDoc) -> str | None:
        """1+N: the judge's team number (N号码), as the admin set it on the judge or, failing
        that, as the court's config lists it by the judge's username."""
        if not case.judge_id:
            return None
        try:
            judge = await self.users.get_cached(case.judge_id)
        except NotFound:
            return None
        court = self.settings.court(case.court_id)
        listed = court.team_numbers.get(judge.username or "") if court else None
        return judge.team_phone or listed

    async def _staff_ref(self, user_id: str | None) -> StaffRef | None:
        if not user_id:
            return None
        try:
            doc = await self.users.get_cached(user_id)
        except NotFound:
            return StaffRef(id=user_id, name=None)
        return StaffRef(id=user_id, name=doc.name)

    # ---- lookup by number and query code

    async def lookup(self, caller: Caller, data: LookupIn) -> CaseOut:
        """The right pair gives the case to anyone who may already see it, and links a party
        whose verified identity matches one of the case's parties; any other pair is the same
        404. Attempts are limited per user and per case number (429)."""
        await self.per_user.hit(str(caller.id))
        # per caller and number: strangers guessing cannot lock the real party out
        await self.per_case.hit(f"{caller.id}|{data.case_no}")
        found = await self.cases.with_number(data.case_no)
        code = self.cases.query_code(found) if found else _DUMMY_CODE
        if not hmac.compare_digest(code.encode(), data.query_code.encode()) or found is None:
            raise lookup_failed()
        case, viewer = found, case_standing(caller, found)
        if viewer is None and caller.identity is None and caller.identity_claim is not None:
            raise IdentityPending()  # the right pair, but only a verified identity links
        if viewer is None:
            case = await self.cases.link_party(caller, case) or _refuse()
            viewer = Viewer.party
            await self._grant_materials(case, str(caller.id))
        if viewer == Viewer.staff:
            await self._audit_read(caller, case)
        return await self.view(caller, Access(case, viewer))

    async def _grant_materials(self, case: CaseDoc, user_id: str) -> None:
        """A party linked by lookup reads the filing's materials, as the parties linked at
        acceptance do."""
        files = await self.filings.materials_of(case.filing_id)
        if files is not None:
            await self.files.grant(files, reader_ids=[user_id])


def _refuse() -> CaseDoc:
    raise lookup_failed()
