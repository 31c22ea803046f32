"""Cases (案件查询) for parties, agents and staff, and case administration by the court."""

from __future__ import annotations

from handlers.base import OBJECT_ID, APIHandler, api, idempotent, needs_role
from models.cases import (
    AssignIn,
    CaseOut,
    CaseQuery,
    CaseSummary,
    EventIn,
    HearingCancelIn,
    HearingIn,
    HearingOut,
    HearingUpdate,
    LookupIn,
)
from models.common import Page
from models.users import STAFF_ROLES, Role

CASE = rf"/api/v1/cases/(?P<case_id>{OBJECT_ID})"
STAFF = tuple(sorted(STAFF_ROLES))
PARTIES = (Role.litigant, Role.lawyer)
READERS = (*PARTIES, *STAFF)


class CasesHandler(APIHandler):
    @needs_role(*READERS)
    @api(query=CaseQuery, response=Page[CaseSummary])
    async def get(self) -> None:
        """GET /api/v1/cases: my cases (as a party or as the agent; staff: my court's, by
        status, judge_id, accepted_from/accepted_to), newest activity first, cursor-paged.
        Summaries only, never the query code. 200; 400 bad cursor; 403 staff of no court;
        422 bad filter."""
        query = self.parse_query(CaseQuery)
        self.write_json(await self.services.case_views.list_for(self.caller, query))


class CaseHandler(APIHandler):
    @needs_role(*READERS)
    @api(response=CaseOut)
    async def get(self, case_id: str) -> None:
        """GET /api/v1/cases/{id}: the case as the caller may see it (parties' ID numbers
        masked, other parties' contacts hidden from parties and agents, the query code to
        parties and the agent only); staff reads are audited. 200; 404 not yours."""
        self.write_json(await self.services.case_views.detail(self.caller, case_id))


class LookupHandler(APIHandler):
    @needs_role(*PARTIES)
    @api(body=LookupIn, response=CaseOut)
    async def post(self) -> None:
        """POST /api/v1/cases/lookup {case_no, query_code}: the right pair links a party
        whose verified identity matches and gives the full view. 200; 404 any wrong pair
        (one answer for all); 422 malformed number or code; 429 too many attempts."""
        data = self.parse_body(LookupIn)
        self.write_json(await self.services.case_views.lookup(self.caller, data))


class AssignHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=AssignIn, response=CaseOut)
    async def post(self, case_id: str) -> None:
        """POST /api/v1/cases/{id}/assign {judge_id, clerk_id}: 分案 (or a change of the judge
        and clerk). 200 the case; 404 not this court's; 409 closed; 422 not an active judge
        and clerk of the court."""
        data = self.parse_body(AssignIn)
        self.write_json(await self.services.case_admin.assign(self.caller, case_id, data))


class EventsHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=EventIn, response=CaseOut)
    async def post(self, case_id: str) -> None:
        """POST /api/v1/cases/{id}/events {kind, note}: a milestone (分案 排期 庭审 宣判 结案
        归档) in order. 200 the case; 404; 409 case_status_conflict out of order; 422."""
        data = self.parse_body(EventIn)
        self.write_json(await self.services.case_admin.record_event(self.caller, case_id, data))


class HearingsHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=HearingIn, response=HearingOut, status=201)
    async def post(self, case_id: str) -> None:
        """POST /api/v1/cases/{id}/hearings {at, room, kind, online, duration_minutes}:
        201 the hearing (the parties are pushed); 404; 409 case not assigned or judged, or
        the room is taken then; 422 in the past, not a working day or outside court hours."""
        data = self.parse_body(HearingIn)
        hearing = await self.services.hearings.schedule(self.caller, case_id, data)
        self.write_json(hearing, status=201)


class HearingHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=HearingUpdate, response=HearingOut)
    async def patch(self, case_id: str, hearing_id: str) -> None:
        """PATCH /api/v1/cases/{id}/hearings/{hearing_id} {at, room?, duration_minutes?}:
        reschedule; the parties are pushed at once. 200; 404; 409 cancelled, held or room
        taken; 422 bad time."""
        data = self.parse_body(HearingUpdate)
        hearings = self.services.hearings
        self.write_json(await hearings.reschedule(self.caller, case_id, hearing_id, data))


class HearingCancelHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=HearingCancelIn, response=HearingOut)
    async def post(self, case_id: str, hearing_id: str) -> None:
        """POST /api/v1/cases/{id}/hearings/{hearing_id}/cancel {reason}: 200; 404;
        409 already cancelled or held; 422 no reason."""
        data = self.parse_body(HearingCancelIn)
        hearings = self.services.hearings
        self.write_json(await hearings.cancel(self.caller, case_id, hearing_id, data))


default_handlers = [
    (r"/api/v1/cases", CasesHandler),
    (r"/api/v1/cases/lookup", LookupHandler),
    (CASE, CaseHandler),
    (rf"{CASE}/assign", AssignHandler),
    (rf"{CASE}/events", EventsHandler),
    (rf"{CASE}/hearings", HearingsHandler),
    (rf"{CASE}/hearings/(?P<hearing_id>{OBJECT_ID})", HearingHandler),
    (rf"{CASE}/hearings/(?P<hearing_id>{OBJECT_ID})/cancel", HearingCancelHandler),
]
