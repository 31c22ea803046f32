"""A scripted mini-program: what its pages call, in order, against the API and the emulator.

The end-to-end tests and the benchmark drive the backend through this, as a phone would:
``wx.login`` (the emulator hands out the code), then our API with the session token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httputil import HTTPHeaders


@dataclass
class Response:
    status: int
    body: Any
    headers: HTTPHeaders = field(default_factory=HTTPHeaders)

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code"))
        return None


class ApiSession:
    """Plain HTTP against the API with an optional bearer token; never raises on 4xx/5xx."""

    def __init__(self, api_url: str, http: AsyncHTTPClient | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.http = http or AsyncHTTPClient()
        self.token: str | None = None
        self.user: dict[str, Any] | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        token: str | None = None,
    ) -> Response:
        url = path if path.startswith("http") else f"{self.api_url}{path}"
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        bearer = token if token is not None else self.token
        if bearer:
            hdrs["Authorization"] = f"Bearer {bearer}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = b""
        req = HTTPRequest(url, method=method, headers=hdrs, body=data, request_timeout=30)
        res = await self.http.fetch(req, raise_error=False)
        if res.code == 599:
            raise ConnectionError(f"{method} {url}: {res.error}")
        return Response(res.code, _decode(res.body), res.headers)

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("PUT", path, body, **kw)

    def _signed_in(self, res: Response) -> Response:
        if res.status == 200:
            self.token = res.body["token"]
            self.user = res.body["user"]
        return res

    async def me(self) -> Response:
        return await self.get("/api/v1/me")

    async def logout(self) -> Response:
        return await self.post("/api/v1/auth/logout")


class MiniProgram(ApiSession):
    """A litigant's or lawyer's phone."""

    def __init__(self, api_url: str, emulator_url: str, http: AsyncHTTPClient | None = None):
        super().__init__(api_url, http)
        self.emulator_url = emulator_url.rstrip("/")
        self.openid: str | None = None

    async def wx_login_code(self, openid: str | None = None) -> str:
        """What ``wx.login()`` gives the page: a one-time code (the emulator issues it)."""
        res = await self.post(
            f"{self.emulator_url}/_emulator/wx/login",
            {"openid": openid} if openid else {},
            token="",
        )
        if res.status != 200:
            raise RuntimeError(f"emulator login failed: {res.status} {res.body}")
        self.openid = res.body["openid"]
        return str(res.body["code"])

    async def login(self, openid: str | None = None) -> Response:
        """The launch page: wx.login, then our wx-login; keeps the token."""
        code = await self.wx_login_code(openid or self.openid)
        return self._signed_in(await self.post("/api/v1/auth/wx-login", {"code": code}, token=""))

    async def verify_identity(
        self, name: str, id_number: str, phone: str | None = None
    ) -> Response:
        body: dict[str, Any] = {"name": name, "id_number": id_number}
        if phone:
            body["phone"] = phone
        return await self.put("/api/v1/me/identity", body)

    async def register_lawyer(self, license_no: str, firm: str) -> Response:
        return await self.post("/api/v1/me/lawyer", {"license_no": license_no, "firm": firm})

    async def courts(self) -> Response:
        return await self.get("/api/v1/courts", token="")


class StaffConsole(ApiSession):
    """A clerk's, judge's or admin's console."""

    async def login(self, username: str, password: str) -> Response:
        return self._signed_in(
            await self.post(
                "/api/v1/auth/staff-login", {"username": username, "password": password}, token=""
            )
        )

    async def create_staff(self, **fields: Any) -> Response:
        return await self.post("/api/v1/admin/staff", fields)

    async def verify_lawyer(
        self, user_id: str, approved: bool = True, reason: str | None = None
    ) -> Response:
        return await self.post(
            f"/api/v1/admin/lawyers/{user_id}/verify", {"approved": approved, "reason": reason}
        )


def _decode(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")
