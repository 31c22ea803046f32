"""Fees of a case, payments through WeChat Pay, refunds, and WeChat Pay's callbacks."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from handlers.base import OBJECT_ID, APIHandler, api, authenticated, idempotent, needs_role, public
from models.payments import PaymentCreate, PaymentOut, RefundCreate, RefundOut, RefundResolve
from models.users import PUBLIC_ROLES, STAFF_ROLES, Role
from server.platform.errors import APIError
from server.wechat.errors import CallbackRejected

log = logging.getLogger("microcourt.payments")

STAFF = tuple(sorted(STAFF_ROLES))
PARTIES = tuple(sorted(PUBLIC_ROLES))
PAYMENT = rf"/api/v1/payments/(?P<payment_id>{OBJECT_ID})"


class PaymentsHandler(APIHandler):
    @needs_role(*PARTIES)
    @idempotent
    @api(body=PaymentCreate, response=PaymentOut, status=201, also={200: PaymentOut})
    async def post(self) -> None:
        """POST /api/v1/payments {fee_notice_id}: a WeChat Pay JSAPI order for the notice,
        with the parameters for wx.requestPayment. 201 a new order; 200 the notice's open
        order; 404 not the caller's notice; 409 paid, waived, or another payer's order open;
        503 WeChat Pay unavailable."""
        data = self.parse_body(PaymentCreate)
        order = await self.services.payments.create(self.caller, data)
        self.write_json(order.payment, status=201 if order.created else 200)


class PaymentHandler(APIHandler):
    @authenticated
    @api(response=PaymentOut)
    async def get(self, payment_id: str) -> None:
        """GET /api/v1/payments/{id}: the payment, WeChat Pay asked first while it is pending.
        200; 404 not the payer's (or, for staff, not their court's)."""
        self.write_json(await self.services.payments.get(self.caller, payment_id))


class RefundsHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=RefundCreate, response=RefundOut, status=201)
    async def post(self, payment_id: str) -> None:
        """POST /api/v1/payments/{id}/refunds {reason, amount_fen? | new_amount_fen?}: refund
        (the law's reasons computed by the fee schedule). 201; 404 another court's payment;
        409 not paid, or more than is left to refund; 422 bad amounts; 503 WeChat Pay down."""
        data = self.parse_body(RefundCreate)
        refund = await self.services.refunds.create(self.caller, payment_id, data)
        self.write_json(refund, status=201)


class RefundResolveHandler(APIHandler):
    @needs_role(Role.admin, Role.clerk)
    @idempotent
    @api(body=RefundResolve, response=RefundOut)
    async def post(self, refund_id: str) -> None:
        """POST /api/v1/refunds/{id}/resolve {method, bank_type?, bank_account?, real_name?,
        note?}: an abnormal refund (WeChat Pay could not pay it back; the money waits) sent to
        the payer's bank card or the court's account through WeChat Pay (processing again), or
        recorded as paid back offline. 200; 404 another court's refund; 409 not abnormal;
        422 bad input; 503 WeChat Pay down. Clerks and court admins only."""
        data = self.parse_body(RefundResolve)
        self.write_json(await self.services.refunds.resolve(self.caller, refund_id, data))


class CallbackHandler(APIHandler):
    """WeChat Pay's notifications: trusted by their signature, not by a token. Success is an
    empty 204; anything refused is 4xx/5xx with ``{"code": "FAIL", "message": ...}``, which
    makes WeChat Pay deliver it again later."""

    refuses = CallbackRejected  # its subclasses are the refusals the document lists

    def headers_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.request.headers.get_all()}

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.message if isinstance(exc, APIError) else "失败"
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"code": "FAIL", "message": message}, ensure_ascii=False))

    async def answer(self, handle: Callable[[dict[str, str], bytes], Awaitable[None]]) -> None:
        try:
            await handle(self.headers_dict(), self.request.body)
        except CallbackRejected as e:
            log.warning("wechatpay callback refused: %s %s", e.status, e.message)
            self.set_status(e.status)
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps(e.answer(), ensure_ascii=False))
            return
        self.set_status(204)
        self.finish()


class NotifyHandler(CallbackHandler):
    @public
    async def post(self) -> None:
        """POST /api/v1/payments/wechat/notify: a payment callback. 204 accepted (also when
        already credited); 401 bad signature or stale; 400 undecryptable or not matching the
        order; 404 unknown order."""
        await self.answer(self.services.payments.on_notify)


class RefundNotifyHandler(CallbackHandler):
    @public
    async def post(self) -> None:
        """POST /api/v1/payments/wechat/refund-notify: a refund callback, verified the same
        way. 204; 401; 400; 404."""
        await self.answer(self.services.refunds.on_notify)


default_handlers = [
    (r"/api/v1/payments", PaymentsHandler),
    (r"/api/v1/payments/wechat/notify", NotifyHandler),
    (r"/api/v1/payments/wechat/refund-notify", RefundNotifyHandler),
    (PAYMENT, PaymentHandler),
    (rf"{PAYMENT}/refunds", RefundsHandler),
    (rf"/api/v1/refunds/(?P<refund_id>{OBJECT_ID})/resolve", RefundResolveHandler),
]
