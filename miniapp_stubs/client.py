"""A scripted mini-program: what its pages call, in order, against the API and the emulator.

The end-to-end tests and the benchmark drive the backend through this, as a phone would:
``wx.login`` (the emulator hands out the code), then our API with the session token.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from miniapp_stubs.wire import Feed, Response, decode_body, multipart, query_string

__all__ = ["ApiSession", "Feed", "MiniProgram", "Response", "StaffConsole", "multipart"]


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
        return Response(res.code, decode_body(res.body), res.headers, res.body or b"")

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

    async def filing(self, filing_id: str) -> Response:
        """A filing: its filer, a lawyer's client, or (once filed) the court's staff."""
        return await self.get(f"/api/v1/filings/{filing_id}")

    async def me(self) -> Response:
        return await self.get("/api/v1/me")

    async def logout(self) -> Response:
        return await self.post("/api/v1/auth/logout")

    async def notifications(self, **params: Any) -> Response:
        """The in-app inbox; params: ``unread=true``, ``limit``, ``cursor``."""
        query = "&".join(f"{k}={quote(str(v))}" for k, v in params.items())
        return await self.get(f"/api/v1/notifications{'?' + query if query else ''}")

    async def read_notification(self, notification_id: str) -> Response:
        return await self.post(f"/api/v1/notifications/{notification_id}/read")

    async def connect_feed(self, *, via_query: bool = False, token: str | None = None) -> Feed:
        """Open the live feed as ``wx.connectSocket`` does, the token in the Authorization
        header (or in ``?token=``); raises ``tornado.httpclient.HTTPClientError`` if refused."""
        bearer = token if token is not None else self.token
        url = "ws" + self.api_url[len("http") :] + "/api/v1/ws"
        headers: dict[str, str] = {}
        if bearer and via_query:
            url += f"?token={quote(bearer)}"
        elif bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        conn = await websocket_connect(HTTPRequest(url, headers=headers, request_timeout=10))
        return Feed(conn)

    async def upload(
        self,
        data: bytes,
        filename: str,
        purpose: str = "evidence",
        *,
        part_type: str = "application/octet-stream",
    ) -> Response:
        """What ``wx.uploadFile`` sends: multipart/form-data, the file in part ``file``."""
        body, content_type = multipart({"purpose": purpose}, "file", filename, data, part_type)
        return await self.post("/api/v1/files", raw=body, headers={"Content-Type": content_type})

    async def download(self, file_id: str) -> Response:
        """The bytes are in ``Response.content``."""
        return await self.get(f"/api/v1/files/{file_id}")

    # ---- cases (案件查询): parties, agents and staff alike

    async def cases(self, **params: Any) -> Response:
        """My cases, newest activity first; params: ``limit``, ``cursor``, ``status`` (staff
        also ``judge_id``, ``accepted_from``, ``accepted_to``)."""
        return await self.get("/api/v1/cases" + query_string(params))

    async def case(self, case_id: str) -> Response:
        return await self.get(f"/api/v1/cases/{case_id}")

    # ---- electronic service (电子送达): parties, agents and staff alike

    async def documents(self, case_id: str) -> Response:
        return await self.get(f"/api/v1/cases/{case_id}/documents")

    async def read_document(self, case_id: str, doc_id: str) -> Response:
        """A served document and its download link; a recipient's first read is recorded."""
        return await self.get(f"/api/v1/cases/{case_id}/documents/{doc_id}")

    async def certificate(self, case_id: str, doc_id: str) -> Response:
        """The service certificate (送达回证)."""
        return await self.get(f"/api/v1/cases/{case_id}/documents/{doc_id}/certificate")

    async def fees(self, case_id: str) -> Response:
        """The case's fee notices, payments and refunds."""
        return await self.get(f"/api/v1/cases/{case_id}/fees")

    async def payment(self, payment_id: str) -> Response:
        return await self.get(f"/api/v1/payments/{payment_id}")

    # ---- messages (联系法官): the thread is read and answered by both sides

    async def message(self, message_id: str) -> Response:
        """A message's thread, deadlines and state (its sender, or staff who may see it)."""
        return await self.get(f"/api/v1/messages/{message_id}")

    async def reply_message(
        self,
        message_id: str,
        content: str,
        attachments: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Response:
        """The sender's follow-up, or the court's answer."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = {"content": content, "attachments": attachments or []}
        return await self.post(f"/api/v1/messages/{message_id}/replies", body, headers=headers)


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
        self, name: str, id_number: str, phone: str | None = None, outcome: str = "pass"
    ) -> Response:
        """The real-name page: claim (PUT /me/identity, with the getPhoneNumber button's code
        when a phone is given), then wx.startFacialRecognitionVerify (the emulator plays the
        face: ``outcome``), then hand its verifyResult in. The first answer that is not
        202 pending is returned as it came (200 already verified, 4xx)."""
        body: dict[str, Any] = {"name": name, "id_number": id_number}
        if phone:
            body["phone_code"] = await self.phone_code(phone)
        claimed = await self.put("/api/v1/me/identity", body)
        if claimed.status != 202:
            return claimed
        # the page hands WeChat the number as the ID card has it: half-width, upper-case X
        card_number = unicodedata.normalize("NFKC", id_number).strip().upper()
        verify_result = await self.face_verify(name, card_number, outcome)
        return await self.confirm_identity(verify_result)

    async def phone_code(self, phone: str) -> str:
        """What the getPhoneNumber button gives the page: a code for that number."""
        res = await self.post(
            f"{self.emulator_url}/_emulator/wx/phone-code",
            {"openid": self.openid, "phone": phone},
            token="",
        )
        if res.status != 200:
            raise RuntimeError(f"emulator phone code failed: {res.status} {res.body}")
        return str(res.body["code"])

    async def face_verify(self, name: str, id_number: str, outcome: str = "pass") -> str:
        """wx.startFacialRecognitionVerify({name, idCardNumber}): its res.verifyResult."""
        res = await self.post(
            f"{self.emulator_url}/_emulator/face/verify",
            {"openid": self.openid, "name": name, "id_number": id_number, "outcome": outcome},
            token="",
        )
        if res.status != 200:
            raise RuntimeError(f"emulator face verify failed: {res.status} {res.body}")
        return str(res.body["verify_result"])

    async def confirm_identity(self, verify_result: str) -> Response:
        return await self.post("/api/v1/me/identity/verify", {"verify_result": verify_result})

    async def register_lawyer(self, license_no: str, firm: str) -> Response:
        return await self.post("/api/v1/me/lawyer", {"license_no": license_no, "firm": firm})

    async def courts(self) -> Response:
        return await self.get("/api/v1/courts", token="")

    async def accept_subscriptions(self, template_ids: list[str]) -> Response:
        """``wx.requestSubscribeMessage`` accepted: WeChat counts the grant, then the page
        tells our API which templates were accepted."""
        res = await self.post(
            f"{self.emulator_url}/_emulator/subscribe/accept",
            {"openid": self.openid, "template_ids": template_ids},
            token="",
        )
        if res.status != 200:
            raise RuntimeError(f"emulator subscribe failed: {res.status} {res.body}")
        return await self.post("/api/v1/me/subscriptions", {"template_ids": template_ids})

    async def pay_notice(self, fee_notice_id: str, idempotency_key: str | None = None) -> Response:
        """The fee page's 缴费 button: our order for the notice, with pay_params."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.post(
            "/api/v1/payments", {"fee_notice_id": fee_notice_id}, headers=headers
        )

    async def request_payment(self, pay_params: dict[str, Any]) -> Response:
        """``wx.requestPayment(pay_params)`` and the user pays: WeChat checks paySign, the
        order becomes SUCCESS and WeChat Pay notifies our server. 200 the transaction;
        400 bad paySign; 404 unknown prepay_id; 409 not payable (paid, closed, expired)."""
        body = {**pay_params, "openid": self.openid}
        return await self.post(f"{self.emulator_url}/_emulator/pay/confirm", body, token="")

    # ---- the filing pages (网上立案)

    async def templates(self) -> Response:
        return await self.get("/api/v1/templates", token="")

    async def fee_estimate(self, **params: Any) -> Response:
        """The fee calculator page: kind, amount_fen, procedure, court_id; no sign-in."""
        return await self.get(f"/api/v1/fees/estimate{query_string(params)}", token="")

    async def create_filing(self, body: dict[str, Any]) -> Response:
        return await self.post("/api/v1/filings", body)

    async def update_filing(self, filing_id: str, changes: dict[str, Any]) -> Response:
        return await self.request("PATCH", f"/api/v1/filings/{filing_id}", changes)

    async def submit_filing(self, filing_id: str, idempotency_key: str | None = None) -> Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.post(f"/api/v1/filings/{filing_id}/submit", headers=headers)

    async def withdraw_filing(self, filing_id: str) -> Response:
        return await self.post(f"/api/v1/filings/{filing_id}/withdraw")

    async def my_filings(self, **params: Any) -> Response:
        return await self.get("/api/v1/filings" + query_string(params))

    async def subscribe_messages(self) -> list[dict[str, Any]]:
        """The subscribe messages WeChat delivered to this phone, oldest first."""
        url = f"{self.emulator_url}/_emulator/subscribe-messages?openid={quote(self.openid or '')}"
        res = await self.get(url, token="")
        return list(res.body["messages"])

    async def lookup_case(self, case_no: str, query_code: str) -> Response:
        """案件查询 by number and query code: links a matching party to the case."""
        return await self.post(
            "/api/v1/cases/lookup", {"case_no": case_no, "query_code": query_code}
        )

    async def consent(
        self, case_id: str, agree: bool = True, address_confirmed: str | None = None
    ) -> Response:
        """Consent to electronic service in a case (agree=False withdraws it)."""
        body: dict[str, Any] = {"agree": agree}
        if address_confirmed:
            body["address_confirmed"] = address_confirmed
        return await self.post(f"/api/v1/cases/{case_id}/consent", body)

    # ---- messages to the court (联系法官)

    async def send_message(
        self,
        content: str,
        category: str = "进度查询",
        *,
        case_id: str | None = None,
        court_id: str | None = None,
        attachments: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Response:
        """Write to the judge of one of my cases, or (without a case) to a court."""
        body: dict[str, Any] = {"category": category, "content": content}
        if case_id is not None:
            body["case_id"] = case_id
        if court_id is not None:
            body["court_id"] = court_id
        if attachments is not None:
            body["attachments"] = attachments
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.post("/api/v1/messages", body, headers=headers)

    async def my_messages(self, **params: Any) -> Response:
        """My messages, newest first; params: ``status``, ``limit``, ``cursor``."""
        return await self.get("/api/v1/messages" + query_string(params))

    async def rate_message(
        self, message_id: str, score: int, comment: str | None = None
    ) -> Response:
        """回访: rate a closed message once."""
        body: dict[str, Any] = {"score": score, **({"comment": comment} if comment else {})}
        return await self.post(f"/api/v1/messages/{message_id}/rating", body)


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

    async def update_staff(self, user_id: str, **fields: Any) -> Response:
        return await self.request("PATCH", f"/api/v1/admin/staff/{user_id}", fields)

    # ---- the review console (立案审查)

    async def review_queue(self, **params: Any) -> Response:
        return await self.get("/api/v1/review/filings" + query_string(params))

    async def accept_filing(
        self, filing_id: str, procedure: str = "ordinary", **extra: Any
    ) -> Response:
        """Accept (立案); ``extra``: fee_kind, fee_relief (the decision on a relief request)."""
        return await self.post(
            f"/api/v1/review/filings/{filing_id}/accept", {"procedure": procedure, **extra}
        )

    async def request_correction(
        self, filing_id: str, items: list[str], due_days: int = 15
    ) -> Response:
        return await self.post(
            f"/api/v1/review/filings/{filing_id}/request-correction",
            {"items": items, "due_days": due_days},
        )

    async def reject_filing(self, filing_id: str, reason: str) -> Response:
        return await self.post(f"/api/v1/review/filings/{filing_id}/reject", {"reason": reason})

    async def verify_lawyer(
        self, user_id: str, approved: bool = True, reason: str | None = None
    ) -> Response:
        return await self.post(
            f"/api/v1/admin/lawyers/{user_id}/verify", {"approved": approved, "reason": reason}
        )

    # ---- case administration

    async def assign_case(self, case_id: str, judge_id: str, clerk_id: str) -> Response:
        return await self.post(
            f"/api/v1/cases/{case_id}/assign", {"judge_id": judge_id, "clerk_id": clerk_id}
        )

    async def case_event(self, case_id: str, kind: str, note: str | None = None) -> Response:
        """A milestone: 分案 排期 庭审 宣判 结案 归档."""
        body = {"kind": kind, **({"note": note} if note else {})}
        return await self.post(f"/api/v1/cases/{case_id}/events", body)

    async def schedule_hearing(
        self, case_id: str, at: str, room: str, kind: str = "开庭", **extra: Any
    ) -> Response:
        """``at`` is ISO 8601 with its offset; extra: ``online``, ``duration_minutes``."""
        body = {"at": at, "room": room, "kind": kind, **extra}
        return await self.post(f"/api/v1/cases/{case_id}/hearings", body)

    async def reschedule_hearing(
        self, case_id: str, hearing_id: str, at: str, **extra: Any
    ) -> Response:
        """extra: ``room``, ``duration_minutes``."""
        path = f"/api/v1/cases/{case_id}/hearings/{hearing_id}"
        return await self.request("PATCH", path, {"at": at, **extra})

    async def cancel_hearing(self, case_id: str, hearing_id: str, reason: str) -> Response:
        path = f"/api/v1/cases/{case_id}/hearings/{hearing_id}/cancel"
        return await self.post(path, {"reason": reason})

    async def serve_document(
        self,
        case_id: str,
        file_id: str,
        kind: str,
        *,
        title: str | None = None,
        recipients: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Response:
        """Serve an uploaded PDF to the case's parties (all unless ``recipients``)."""
        body: dict[str, Any] = {"file_id": file_id, "kind": kind}
        if title is not None:
            body["title"] = title
        if recipients is not None:
            body["recipients"] = recipients
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.post(f"/api/v1/cases/{case_id}/documents", body, headers=headers)

    async def record_paper_service(
        self, case_id: str, doc_id: str, body: dict[str, Any]
    ) -> Response:
        """{party_id, way, delivered_at, receipt_file_id?, note?}: a paper service made."""
        path = f"/api/v1/cases/{case_id}/documents/{doc_id}/paper-service"
        return await self.post(path, body)

    async def refund(
        self, payment_id: str, body: dict[str, Any], idempotency_key: str | None = None
    ) -> Response:
        """A refund: {reason, amount_fen (reason other) | new_amount_fen (reduced_claim)}."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.post(f"/api/v1/payments/{payment_id}/refunds", body, headers=headers)

    async def resolve_refund(self, refund_id: str, body: dict[str, Any]) -> Response:
        """An abnormal refund resolved: {method: user_bank_card | merchant_bank_card | offline,
        bank_type?, bank_account?, real_name?, note?}."""
        return await self.post(f"/api/v1/refunds/{refund_id}/resolve", body)

    # ---- work orders (工单)

    async def workorders(self, **params: Any) -> Response:
        """Mine, or the court's for supervisors; params: ``status``, ``assignee_id``,
        ``category``, ``overdue`` (true/false), ``limit``, ``cursor``."""
        return await self.get("/api/v1/workorders" + query_string(params))

    async def assign_workorder(
        self, order_id: str, assignee_id: str, note: str | None = None
    ) -> Response:
        body = {"assignee_id": assignee_id, **({"note": note} if note else {})}
        return await self.post(f"/api/v1/workorders/{order_id}/assign", body)

    async def decide_hold(self, order_id: str, release: bool, note: str | None = None) -> Response:
        """A supervisor releases held content to the judge, or refuses it."""
        body: dict[str, Any] = {"release": release, **({"note": note} if note else {})}
        return await self.post(f"/api/v1/workorders/{order_id}/hold", body)

    async def close_workorder(self, order_id: str, note: str | None = None) -> Response:
        return await self.post(
            f"/api/v1/workorders/{order_id}/close", {"note": note} if note else {}
        )

    async def workorder_stats(self, date_from: str, date_to: str, **params: Any) -> Response:
        """Statistics of the orders created from ``date_from`` to ``date_to`` (YYYY-MM-DD);
        params: ``group_by`` (assignee, category, court), ``court_id``."""
        query = {"from": date_from, "to": date_to, **params}
        return await self.get("/api/v1/workorders/stats" + query_string(query))
