"""Sign-in: WeChat login for litigants and lawyers, password login for staff, logout."""

from __future__ import annotations

from handlers.base import APIHandler, api, authenticated, public
from models.users import StaffLoginIn, TokenOut, WxLoginIn


class WxLoginHandler(APIHandler):
    @public
    @api(body=WxLoginIn, response=TokenOut)
    async def post(self) -> None:
        """POST /api/v1/auth/wx-login: exchange a wx.login code for our session.

        200 token and user (the user is created on first login); 401 invalid or used code;
        422 malformed code; 429 too many attempts; 503 WeChat unreachable.
        """
        data = self.parse_body(WxLoginIn)
        self.write_json(await self.services.auth.wx_login(data.code, self.client_ip))


class StaffLoginHandler(APIHandler):
    @public
    @api(body=StaffLoginIn, response=TokenOut)
    async def post(self) -> None:
        """POST /api/v1/auth/staff-login: 200 token; 401 wrong username or password; 429."""
        data = self.parse_body(StaffLoginIn)
        self.write_json(await self.services.auth.staff_login(data, self.client_ip))


class LogoutHandler(APIHandler):
    @authenticated
    @api(status=204)
    async def post(self) -> None:
        """POST /api/v1/auth/logout: 204, the token stops working; 401 not signed in."""
        token = self.request.headers["Authorization"].partition(" ")[2].strip()
        await self.services.auth.logout(self.caller, token)
        self.set_status(204)
        self.finish()


default_handlers = [
    (r"/api/v1/auth/wx-login", WxLoginHandler),
    (r"/api/v1/auth/staff-login", StaffLoginHandler),
    (r"/api/v1/auth/logout", LogoutHandler),
]
