"""Tencent Cloud SMS's status callback: delivery receipts of the SMS sent to callers (1+N)."""

from __future__ import annotations

import json

from pydantic import TypeAdapter, ValidationError

from handlers.base import APIHandler, api, public
from models.notifications import SmsReceiptsOut, SmsReport
from server.platform.errors import MalformedJson

REPORTS = TypeAdapter(list[SmsReport])


class SmsStatusCallbackHandler(APIHandler):
    @public
    @api(body=SmsReport, response=SmsReceiptsOut)
    async def post(self) -> None:
        """POST /api/v1/sms/status-callback: Tencent Cloud SMS posts a JSON list of reports
        {sid, mobile, report_status, user_receive_time, errmsg, description}. Only reports
        naming an SMS we sent (serial number and phone both) count; a repeat is harmless.
        200 {recorded, result: 0} (what Tencent expects); 400 not a list of reports."""
        try:
            reports = REPORTS.validate_python(json.loads(self.request.body or b"null"))
        except (ValueError, ValidationError, UnicodeDecodeError, RecursionError):
            raise MalformedJson("应为短信状态报告的 JSON 列表") from None
        raw = [r.model_dump() for r in reports]
        recorded = await self.services.sms.receipts(raw)
        self.write_json(SmsReceiptsOut(result=0, errmsg="OK", recorded=recorded))


default_handlers = [(r"/api/v1/sms/status-callback", SmsStatusCallbackHandler)]
