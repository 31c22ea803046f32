"""Administration: staff accounts and lawyer verification."""

from __future__ import annotations

from handlers.base import OBJECT_ID, APIHandler, api, idempotent, needs_role
from models.common import Page
from models.users import (
    LawyerDecisionIn,
    LawyerQuery,
    Role,
    StaffCreate,
    StaffQuery,
    StaffUpdate,
    UserOut,
)
from server.fees.reconcile import ReconcileIn, ReconcileReport
from server.identity.users import user_out


class StaffHandler(APIHandler):
    @needs_role(Role.admin)
    @idempotent
    @api(body=StaffCreate, response=UserOut, status=201)
    async def post(self) -> None:
        """POST /api/v1/admin/staff: create a clerk, judge or admin of one court.

        201 created; 403 not an admin, or another court's admin; 409 username taken; 422.
        """
        data = self.parse_body(StaffCreate)
        doc = await self.services.users.create_staff(self.caller, data)
        self.write_json(user_out(doc), status=201)

    @needs_role(Role.admin)
    @api(query=StaffQuery, response=Page[UserOut])
    async def get(self) -> None:
        """GET /api/v1/admin/staff: the staff of the admin's court, newest first, cursor-paged.

        200; 400 bad cursor; 403 not an admin, or another court; 422 bad query.
        """
        query = self.parse_query(StaffQuery)
        self.write_json(await self.services.users.list_staff(self.caller, query))


class StaffMemberHandler(APIHandler):
    @needs_role(Role.admin)
    @idempotent
    @api(body=StaffUpdate, response=UserOut)
    async def patch(self, user_id: str) -> None:
        """PATCH /api/v1/admin/staff/{user_id}: change a staff account (name, 停用/启用, flags,
        team number, a new password). 停用 or a new password ends the account's sessions.

        200 the account after; 403 not an admin; 404 not a staff account of the admin's
        court; 409 disabling oneself; 422 nothing to change or a bad field.
        """
        data = self.parse_body(StaffUpdate)
        doc = await self.services.users.update_staff(self.caller, user_id, data)
        self.write_json(user_out(doc))


class LawyersHandler(APIHandler):
    @needs_role(Role.admin)
    @api(query=LawyerQuery, response=Page[UserOut])
    async def get(self) -> None:
        """GET /api/v1/admin/lawyers?status=pending: lawyer applications, oldest first.

        200; 400 bad cursor; 403 not an admin; 422 bad query.
        """
        query = self.parse_query(LawyerQuery)
        self.write_json(await self.services.users.list_lawyers(self.caller, query))


class LawyerVerifyHandler(APIHandler):
    @needs_role(Role.admin)
    @api(body=LawyerDecisionIn, response=UserOut)
    async def post(self, user_id: str) -> None:
        """POST /api/v1/admin/lawyers/{user_id}/verify: approve or reject a lawyer.

        200 decided (approved users become lawyers); 404 no such application;
        409 already decided; 422 rejection without a reason; 403 not an admin.
        """
        data = self.parse_body(LawyerDecisionIn)
        doc = await self.services.users.decide_lawyer(self.caller, user_id, data)
        self.write_json(user_out(doc))


class ReconcileHandler(APIHandler):
    @needs_role(Role.admin)
    @api(body=ReconcileIn, response=ReconcileReport)
    async def post(self) -> None:
        """POST /api/v1/admin/reconcile {date, mend?}: WeChat Pay's bill for the day against
        our payments and refunds (对账), mending what WeChat Pay says we missed. 200 the
        report; 403 not the system administrator (the bill spans every court); 422 a day
        not yet billed or a bad date; 503 WeChat Pay down."""
        data = self.parse_body(ReconcileIn)
        self.write_json(await self.services.reconciler.run_for(self.caller, data))


default_handlers = [
    (r"/api/v1/admin/staff", StaffHandler),
    (rf"/api/v1/admin/staff/(?P<user_id>{OBJECT_ID})", StaffMemberHandler),
    (r"/api/v1/admin/lawyers", LawyersHandler),
    (rf"/api/v1/admin/lawyers/(?P<user_id>{OBJECT_ID})/verify", LawyerVerifyHandler),
    (r"/api/v1/admin/reconcile", ReconcileHandler),
]
