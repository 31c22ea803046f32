"""Work orders (工单) for the court's staff: lists, assignment, closing, statistics."""

from __future__ import annotations

from handlers.base import OBJECT_ID, APIHandler, api, idempotent, needs_role, public
from models.common import Page
from models.users import STAFF_ROLES
from models.workorders import (
    AssignIn,
    CallbackIn,
    CloseIn,
    DeskOrderCreate,
    HoldDecisionIn,
    RatingIn,
    StatsOut,
    StatsQuery,
    WorkOrderOut,
    WorkOrderQuery,
    WorkOrderSummary,
)
from server.workorders.stats import to_csv

STAFF = tuple(sorted(STAFF_ROLES))
ORDER = rf"/api/v1/workorders/(?P<order_id>{OBJECT_ID})"
LINK = r"/api/v1/links/(?P<token>[A-Za-z0-9_-]{1,64})"


class WorkOrdersHandler(APIHandler):
    @needs_role(*STAFF)
    @api(query=WorkOrderQuery, response=Page[WorkOrderSummary])
    async def get(self) -> None:
        """GET /api/v1/workorders: mine (assigned to me, or on my cases); the court's for
        its supervisors; by status, assignee_id, category, overdue; newest first,
        cursor-paged. 200; 400 bad cursor; 403 staff of no court; 422 bad filter."""
        query = self.parse_query(WorkOrderQuery)
        self.write_json(await self.services.workorder_admin.list_for(self.caller, query))

    @needs_role(*STAFF)
    @idempotent
    @api(body=DeskOrderCreate, response=WorkOrderOut, status=201)
    async def post(self) -> None:
        """POST /api/v1/workorders {channel, caller: {name, phone}, case_no?, query_code?,
        category, content, attachments?}: the service desk opens a work order for a caller
        of the 12368 hotline or the service line, a visitor or a letter (1+N): the same
        order as a mini-program message, routed to the case's judge when the case number
        and query code match, to the desk otherwise; answers go to the caller by SMS.

        201 the order; 403 not service desk; 404 case number and query code do not match;
        422 bad phone, unknown channel or category, one of case_no/query_code alone; 429.
        """
        data = self.parse_body(DeskOrderCreate)
        order = await self.services.workorder_desk.create(self.caller, data)
        self.write_json(order, status=201)


class WorkOrderAssignHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=AssignIn, response=WorkOrderOut)
    async def post(self, order_id: str) -> None:
        """POST /api/v1/workorders/{id}/assign {assignee_id, note?}: 分派 or 改派; the new
        assignee is pushed. 200; 403 not a supervisor; 404; 409 closed; 422 not an active
        member of the order's court."""
        data = self.parse_body(AssignIn)
        admin = self.services.workorder_admin
        self.write_json(await admin.assign(self.caller, order_id, data))


class WorkOrderCloseHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=CloseIn, response=WorkOrderOut)
    async def post(self, order_id: str) -> None:
        """POST /api/v1/workorders/{id}/close {note?}: 办结, only once answered; the sender
        is asked to rate it. 200; 403 neither assignee nor supervisor; 404; 409 closed or
        not answered yet."""
        data = self.parse_body(CloseIn)
        admin = self.services.workorder_admin
        self.write_json(await admin.close(self.caller, order_id, data))


class WorkOrderHoldHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=HoldDecisionIn, response=WorkOrderOut)
    async def post(self, order_id: str) -> None:
        """POST /api/v1/workorders/{id}/hold {release, note?}: a supervisor's decision on
        content WeChat's check held for review: release it to the judge, or refuse it (the
        sender is told). 200; 403 not a supervisor; 404; 409 nothing held, or closed; 422."""
        data = self.parse_body(HoldDecisionIn)
        self.write_json(await self.services.workorder_hold.decide(self.caller, order_id, data))


class WorkOrderCallbacksHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=CallbackIn, response=WorkOrderOut, status=201)
    async def post(self, order_id: str) -> None:
        """POST /api/v1/workorders/{id}/callbacks {result: reached|no_answer|refused, note?}:
        回拨, one attempt recorded; one that reached the caller answers a desk order not yet
        answered. 201 the order; 404 not yours; 409 no caller's phone; 422 bad result."""
        data = self.parse_body(CallbackIn)
        desk = self.services.workorder_desk
        self.write_json(await desk.callback(self.caller, order_id, data), status=201)


class LinkHandler(APIHandler):
    @public
    @api(response=WorkOrderOut)
    async def get(self, token: str) -> None:
        """GET /api/v1/links/{token}: the order the SMS's short link names, as its caller
        sees it (no sign-in: the link is the key). 200; 404 unknown link."""
        self.write_json(await self.services.workorder_desk.by_link(token))


class LinkRatingHandler(APIHandler):
    @public
    @api(body=RatingIn, response=WorkOrderOut)
    async def post(self, token: str) -> None:
        """POST /api/v1/links/{token}/rating {score 1-5, comment?}: 回访 by the SMS's link,
        once closed. 200; 404 unknown link; 409 not closed yet or rated already; 422."""
        data = self.parse_body(RatingIn)
        self.write_json(await self.services.workorder_desk.rate_by_link(token, data))


class StatsHandler(APIHandler):
    @needs_role(*STAFF)
    @api(query=StatsQuery, response=StatsOut)
    async def get(self) -> None:
        """GET /api/v1/workorders/stats?from=&to=&group_by=assignee|category|court|channel
        &format=json|csv: received, answered, reply rate, call-back rate, on-time rate,
        median and p90 time to first answer, overdue now, average rating of the orders
        created in those court dates: the court's for its supervisors, a judge's or clerk's
        own otherwise; csv: the same rows as a download. 200; 403 another court; 422."""
        query = self.parse_query(StatsQuery)
        report = await self.services.workorder_stats.stats(self.caller, query)
        if query.format == "csv":
            name = f"workorders-{query.group_by.value}-{query.date_from}-{query.date_to}.csv"
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            self.finish(to_csv(report))
            return
        self.write_json(report)


default_handlers = [
    (r"/api/v1/workorders", WorkOrdersHandler),
    (r"/api/v1/workorders/stats", StatsHandler),
    (rf"{ORDER}/assign", WorkOrderAssignHandler),
    (rf"{ORDER}/close", WorkOrderCloseHandler),
    (rf"{ORDER}/hold", WorkOrderHoldHandler),
    (rf"{ORDER}/callbacks", WorkOrderCallbacksHandler),
    (LINK, LinkHandler),
    (rf"{LINK}/rating", LinkRatingHandler),
]
