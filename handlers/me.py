"""The signed-in user: profile, real-name identity, lawyer registration."""

from __future__ import annotations

from handlers.base import APIHandler, api, authenticated, needs_role
from models.users import IdentityIn, LawyerIn, PhoneCodeIn, Role, UserOut
from server.identity.users import user_out


class MeHandler(APIHandler):
    @authenticated
    @api(response=UserOut)
    async def get(self) -> None:
        """GET /api/v1/me: 200 the caller, ID number masked; 401 not signed in."""
        self.write_json(user_out(self.caller))


class IdentityHandler(APIHandler):
    @needs_role(Role.litigant, Role.lawyer)
    @api(body=IdentityIn, response=UserOut)
    async def put(self) -> None:
        """PUT /api/v1/me/identity: real-name identity (name + 18-digit ID number).

        200 verified (repeating the same identity is harmless); 422 invalid number or name;
        409 a different identity is already verified, or the number is bound to another account;
        403 staff.
        """
        data = self.parse_body(IdentityIn)
        self.write_json(user_out(await self.services.users.set_identity(self.caller, data)))


class LawyerHandler(APIHandler):
    @needs_role(Role.litigant, Role.lawyer)
    @api(body=LawyerIn, response=UserOut)
    async def post(self) -> None:
        """POST /api/v1/me/lawyer: register a licence and firm for an admin to verify.

        200 pending; 403 no verified identity yet, or staff; 409 already verified; 422.
        """
        data = self.parse_body(LawyerIn)
        self.write_json(user_out(await self.services.users.apply_lawyer(self.caller, data)))


class PhoneHandler(APIHandler):
    @needs_role(Role.litigant, Role.lawyer)
    @api(body=PhoneCodeIn, response=UserOut)
    async def post(self) -> None:
        """POST /api/v1/me/phone {code}: the number from the getPhoneNumber button, verified
        by WeChat; work orders the service desk opened for it then show in my messages.
        200; 403 staff; 422 bad or used code; 503 WeChat unavailable."""
        data = self.parse_body(PhoneCodeIn)
        self.write_json(user_out(await self.services.auth.verify_phone(self.caller, data.code)))


default_handlers = [
    (r"/api/v1/me", MeHandler),
    (r"/api/v1/me/identity", IdentityHandler),
    (r"/api/v1/me/lawyer", LawyerHandler),
    (r"/api/v1/me/phone", PhoneHandler),
]
