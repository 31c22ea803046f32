"""The authorization matrix: every route of the routing table × every role.

A route missing from MATRIX fails the test, so each new route must say who may call it.
Roles that may not call a route get 401 (not signed in) or 403 (signed in, wrong role);
objects that exist but are not the caller's are 404 and are tested with each resource.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from miniapp_stubs.client import ApiSession, MiniProgram, StaffConsole
from server.app import routes
from server.platform.openapi import openapi_path, route_methods

PUBLIC = "public"
WECHATPAY = "signed by WeChat Pay"
SIGNED_IN = frozenset({"litigant", "lawyer", "clerk", "judge", "admin"})
PARTIES = frozenset({"litigant", "lawyer"})
ADMIN = frozenset({"admin"})
STAFF = frozenset({"clerk", "judge", "admin"})

MATRIX: dict[tuple[str, str], str | frozenset[str]] = {
    ("/healthz", "get"): PUBLIC,
    ("/readyz", "get"): PUBLIC,
    ("/metrics", "get"): PUBLIC,
    ("/api/v1/openapi.json", "get"): PUBLIC,
    ("/api/v1/courts", "get"): PUBLIC,
    ("/api/v1/auth/wx-login", "post"): PUBLIC,
    ("/api/v1/auth/staff-login", "post"): PUBLIC,
    ("/api/v1/auth/logout", "post"): SIGNED_IN,
    ("/api/v1/me", "get"): SIGNED_IN,
    ("/api/v1/me/identity", "put"): PARTIES,
    ("/api/v1/me/identity/verify", "post"): PARTIES,
    ("/api/v1/me/lawyer", "post"): PARTIES,
    ("/api/v1/admin/staff", "get"): ADMIN,
    ("/api/v1/admin/staff", "post"): ADMIN,
    ("/api/v1/admin/staff/{user_id}", "patch"): ADMIN,
    ("/api/v1/admin/lawyers", "get"): ADMIN,
    ("/api/v1/admin/lawyers/{user_id}/verify", "post"): ADMIN,
    ("/api/v1/admin/reconcile", "post"): ADMIN,  # the system administrator's (no court)
    ("/api/v1/files", "post"): SIGNED_IN,  # the matrix's JSON {} gets 415 multipart_required
    ("/api/v1/files/{file_id}", "get"): SIGNED_IN,
    ("/api/v1/templates", "get"): PUBLIC,
    ("/api/v1/templates/{template_id}", "get"): PUBLIC,
    ("/api/v1/notifications", "get"): SIGNED_IN,
    ("/api/v1/notifications/{notification_id}/read", "post"): SIGNED_IN,
    ("/api/v1/me/subscriptions", "post"): SIGNED_IN,
    ("/api/v1/ws", "get"): SIGNED_IN,  # without an upgrade: 401 anonymous, 400 signed in
    ("/api/v1/filings", "get"): PARTIES,
    ("/api/v1/filings", "post"): PARTIES,
    ("/api/v1/filings/{filing_id}", "get"): SIGNED_IN,  # staff: their court's, once submitted
    ("/api/v1/filings/{filing_id}", "patch"): PARTIES,
    ("/api/v1/filings/{filing_id}/submit", "post"): PARTIES,
    ("/api/v1/filings/{filing_id}/withdraw", "post"): PARTIES,
    ("/api/v1/review/filings", "get"): STAFF,
    ("/api/v1/review/filings/{filing_id}/accept", "post"): STAFF,
    ("/api/v1/review/filings/{filing_id}/request-correction", "post"): STAFF,
    ("/api/v1/review/filings/{filing_id}/reject", "post"): STAFF,
    # cases: a party's, an agent's or the court's only (404 for the rest, per object)
    ("/api/v1/cases", "get"): SIGNED_IN,
    ("/api/v1/cases/lookup", "post"): PARTIES,
    ("/api/v1/cases/{case_id}", "get"): SIGNED_IN,
    ("/api/v1/cases/{case_id}/assign", "post"): STAFF,
    ("/api/v1/cases/{case_id}/events", "post"): STAFF,
    ("/api/v1/cases/{case_id}/hearings", "post"): STAFF,
    ("/api/v1/cases/{case_id}/hearings/{hearing_id}", "patch"): STAFF,
    ("/api/v1/cases/{case_id}/hearings/{hearing_id}/cancel", "post"): STAFF,
    # electronic service (电子送达); whose case and document is checked per object (404)
    ("/api/v1/cases/{case_id}/consent", "post"): PARTIES,
    ("/api/v1/cases/{case_id}/documents", "get"): SIGNED_IN,
    ("/api/v1/cases/{case_id}/fees", "get"): SIGNED_IN,
    ("/api/v1/payments", "post"): PARTIES,
    ("/api/v1/payments/{payment_id}", "get"): SIGNED_IN,
    ("/api/v1/payments/{payment_id}/refunds", "post"): STAFF,
    # issue 13: abnormal refunds are resolved by clerks and court admins, not judges
    ("/api/v1/refunds/{refund_id}/resolve", "post"): frozenset({"clerk", "admin"}),
    # authenticated by WeChat Pay's signature, not a token: unsigned, everyone gets 401 FAIL
    ("/api/v1/payments/wechat/notify", "post"): WECHATPAY,
    ("/api/v1/payments/wechat/refund-notify", "post"): WECHATPAY,
    ("/api/v1/cases/{case_id}/documents", "post"): STAFF,
    ("/api/v1/cases/{case_id}/documents/{doc_id}", "get"): SIGNED_IN,
    ("/api/v1/cases/{case_id}/documents/{doc_id}/certificate", "get"): SIGNED_IN,
    ("/api/v1/cases/{case_id}/documents/{doc_id}/paper-service", "post"): STAFF,
    ("/api/v1/fees/estimate", "get"): PUBLIC,  # the mini-program's fee calculator
    ("/api/v1/documents/verify", "get"): PUBLIC,  # anyone holding a document checks it
    # messages (联系法官): the sender's own; staff answer the orders they may see (404 else)
    ("/api/v1/messages", "get"): PARTIES,
    ("/api/v1/messages", "post"): PARTIES,
    ("/api/v1/messages/{message_id}", "get"): SIGNED_IN,
    ("/api/v1/messages/{message_id}/replies", "post"): SIGNED_IN,
    ("/api/v1/messages/{message_id}/rating", "post"): PARTIES,
    # work orders: a judge's or clerk's own; the court's for supervisors (per object, 404)
    ("/api/v1/workorders", "get"): STAFF,
    ("/api/v1/workorders/stats", "get"): STAFF,
    ("/api/v1/workorders/{order_id}/assign", "post"): STAFF,
    ("/api/v1/workorders/{order_id}/close", "post"): STAFF,
    ("/api/v1/workorders/{order_id}/hold", "post"): STAFF,
    ("/api/v1/colleagues", "get"): STAFF,  # a court's staff; the system admin (no court) 403
    # 1+N: the desk opens orders (staff with service_desk; others 403 not_service_desk),
    # records call-backs; the SMS's link is its own key; Tencent's receipts match our SMS
    ("/api/v1/workorders", "post"): STAFF,
    ("/api/v1/workorders/{order_id}/callbacks", "post"): STAFF,
    ("/api/v1/links/{token}", "get"): PUBLIC,
    ("/api/v1/links/{token}/rating", "post"): PUBLIC,
    ("/api/v1/sms/status-callback", "post"): PUBLIC,
    ("/api/v1/me/phone", "post"): PARTIES,
    # the staff console's page and static assets: public (the data behind them is not)
    ("/console", "get"): PUBLIC,
    ("/console/", "get"): PUBLIC,
    ("/console/assets/{path}", "get"): PUBLIC,
    ("/api/docs", "get"): PUBLIC,  # the API reference page (Swagger UI)
}

SAMPLE_PARAMS = {
    "file_id": "0" * 24,
    "template_id": "private-lending",
    "user_id": "0" * 24,
    "notification_id": "0" * 24,
    "filing_id": "0" * 24,
    "case_id": "0" * 24,
    "doc_id": "0" * 24,
    "hearing_id": "0" * 24,
    "payment_id": "0" * 24,
    "refund_id": "0" * 24,
    "message_id": "0" * 24,
    "order_id": "0" * 24,
    "token": "nolinkhere0",
    "path": "js/main.js",
}


def table() -> list[tuple[str, str]]:
    entries = []
    for pattern, handler in routes():
        path, _ = openapi_path(pattern)
        entries += [(path, method) for method in route_methods(handler)]
    # logout last: it ends the session the other calls use
    return sorted(entries, key=lambda e: e[0].endswith("/logout"))


def test_every_route_is_in_the_matrix() -> None:
    missing = [e for e in table() if e not in MATRIX]
    assert not missing, f"add these routes to the authorization matrix: {missing}"
    stale = [e for e in MATRIX if e not in table()]
    assert not stale, f"routes in the matrix that no longer exist: {stale}"


@pytest.mark.gen_test(timeout=60)
async def test_each_role_is_let_in_or_refused_as_the_matrix_says(
    phone: Callable[[], MiniProgram],
    litigant: Callable[..., Awaitable[MiniProgram]],
    staff: Callable[..., Awaitable[StaffConsole]],
    api_url: str,
) -> None:
    lawyer = await litigant()
    res = await lawyer.register_lawyer("11101201510123456", "某律师事务所")
    sysadmin = await staff("admin", court_id=None)
    assert (await sysadmin.verify_lawyer(res.body["id"])).status == 200
    assert (await lawyer.me()).body["role"] == "lawyer"
    sessions: dict[str, ApiSession] = {
        "anonymous": ApiSession(api_url),
        "litigant": await litigant(),
        "lawyer": lawyer,
        "clerk": await staff("clerk"),
        "judge": await staff("judge"),
        "admin": await staff("admin"),
    }
    for path, method in table():
        allowed = MATRIX[(path, method)]
        url = path.format(**SAMPLE_PARAMS)
        body = {} if method in ("post", "put", "patch") else None
        for role, session in sessions.items():
            res = await session.request(method.upper(), url, body)
            where = f"{method.upper()} {path} as {role}: {res.status} {res.body}"
            if allowed == WECHATPAY:
                assert (res.status, res.body["code"]) == (401, "FAIL"), where
            elif allowed == PUBLIC or role in allowed:
                assert res.status not in (401, 403), where
                assert res.status < 500, where
            elif role == "anonymous":
                assert (res.status, res.error_code) == (401, "unauthorized"), where
            else:
                assert (res.status, res.error_code) == (403, "role_not_allowed"), where
