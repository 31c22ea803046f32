"""Work orders (工单) for the court's staff: lists, assignment, closing, statistics."""

from __future__ import annotations

from handlers.base import OBJECT_ID, APIHandler, api, idempotent, needs_role
from models.common import Page
from models.users import STAFF_ROLES
from models.workorders import (
    AssignIn,
    CloseIn,
    HoldDecisionIn,
    StatsOut,
    StatsQuery,
    WorkOrderOut,
    WorkOrderQuery,
    WorkOrderSummary,
)

STAFF = tuple(sorted(STAFF_ROLES))
ORDER = rf"/api/v1/workorders/(?P<order_id>{OBJECT_ID})"


class WorkOrdersHandler(APIHandler):
    @needs_role(*STAFF)
    @api(query=WorkOrderQuery, response=Page[WorkOrderSummary])
    async def get(self) -> None:
        """GET /api/v1/workorders: mine (assigned to me, or on my cases); the court's for
        its supervisors; by status, assignee_id, category, overdue; newest first,
        cursor-paged. 200; 400 bad cursor; 403 staff of no court; 422 bad filter."""
        query = self.parse_query(WorkOrderQuery)
        self.write_json(await self.services.workorder_admin.list_for(self.caller, query))


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


class StatsHandler(APIHandler):
    @needs_role(*STAFF)
    @api(query=StatsQuery, response=StatsOut)
    async def get(self) -> None:
        """GET /api/v1/workorders/stats?from=&to=&group_by=assignee|category|court: received,
        replied, reply rate, on-time rate, median and p90 time to first reply, overdue now,
        average rating of the orders created in those court dates: the court's for its
        supervisors, a judge's or clerk's own otherwise. 200; 403 another court; 422."""
        query = self.parse_query(StatsQuery)
        self.write_json(await self.services.workorder_stats.stats(self.caller, query))


default_handlers = [
    (r"/api/v1/workorders", WorkOrdersHandler),
    (r"/api/v1/workorders/stats", StatsHandler),
    (rf"{ORDER}/assign", WorkOrderAssignHandler),
    (rf"{ORDER}/close", WorkOrderCloseHandler),
    (rf"{ORDER}/hold", WorkOrderHoldHandler),
]
