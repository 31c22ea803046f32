"""The signed-in user: profile, real-name identity, lawyer registration."""

from __future__ import annotations

from handlers.base import APIHandler, api, authenticated, idempotent, needs_role
from models.users import (
    FaceStartOut,
    FaceVerifyIn,
    IdentityClaimOut,
    IdentityIn,
    IdentityStatus,
    LawyerIn,
    PhoneCodeIn,
    Role,
    UserOut,
)
from server.identity.users import identity_out, user_out


class MeHandler(APIHandler):
    @authenticated
    @api(response=UserOut)
    async def get(self) -> None:
        """GET /api/v1/me: 200 the caller, ID number masked; 401 not signed in."""
        self.write_json(user_out(self.caller))


class IdentityHandler(APIHandler):
    @needs_role(Role.litigant, Role.lawyer)
    @api(body=IdentityIn, response=IdentityClaimOut, status=202)
    async def put(self) -> None:
        """PUT /api/v1/me/identity: claim a real-name identity (name + 18-digit ID number).

        202 pending, with what the page passes to wx.startFacialRecognitionVerify (the claim
        grants nothing until POST /me/identity/verify); 200 the same identity, already
        verified (a phone given is updated); 422 invalid number, name or phone code;
        409 a different identity is already verified; 403 staff.
        """
        data = self.parse_body(IdentityIn)
        doc = await self.services.realname.claim(self.caller, data)
        out = identity_out(doc)
        assert out is not None
        if doc.identity is not None:
            self.write_json(IdentityClaimOut(status=IdentityStatus.verified, identity=out))
            return
        start = FaceStartOut(name=out.name)
        self.write_json(IdentityClaimOut(identity=out, face_verify=start), status=202)


class IdentityVerifyHandler(APIHandler):
    @needs_role(Role.litigant, Role.lawyer)
    @idempotent  # a result is single-use: a retry must replay the answer, not get "reused"
    @api(body=FaceVerifyIn, response=UserOut)
    async def post(self) -> None:
        """POST /api/v1/me/identity/verify: confirm the pending claim with the verify_result
        of WeChat's face verification.

        200 verified (an ID number verified on another account moves here, both told);
        422 failed, expired, forged, reused, or for another name or number; 409 nothing
        pending; 403 staff; 503 WeChat unreachable.
        """
        data = self.parse_body(FaceVerifyIn)
        self.write_json(user_out(await self.services.realname.verify(self.caller, data)))


class LawyerHandler(APIHandler):
    @needs_role(Role.litigant, Role.lawyer)
    @idempotent
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
    (r"/api/v1/me/identity/verify", IdentityVerifyHandler),
    (r"/api/v1/me/lawyer", LawyerHandler),
    (r"/api/v1/me/phone", PhoneHandler),
]
