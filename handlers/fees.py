"""Court fees: the public fee calculator (诉讼费计算) and a case's fees."""

from __future__ import annotations

from handlers.base import OBJECT_ID, APIHandler, api, authenticated, public
from models.fees import FeeEstimateQuery, FeeResult
from models.payments import FeesOut
from server.fees.schedule import court_fee
from server.platform.errors import UnknownCourt


class FeeEstimateHandler(APIHandler):
    @public
    @api(query=FeeEstimateQuery, response=FeeResult)
    async def get(self) -> None:
        """GET /api/v1/fees/estimate: 200 the fee with its breakdown; 422 a bad kind, amount or
        procedure, an amount the kind refuses or needs, ``unknown_court``."""
        q = self.parse_query(FeeEstimateQuery)
        fixed = None
        if q.court_id is not None:
            court = self.services.settings.court(q.court_id)
            if court is None:
                details = [{"loc": ["court_id"], "msg": "法院不存在"}]
                raise UnknownCourt(details=details)
            fixed = court.fixed_fees
        self.write_json(court_fee(q.kind, q.amount_fen, procedure=q.procedure, fixed=fixed))


class CaseFeesHandler(APIHandler):
    @authenticated
    @api(response=FeesOut)
    async def get(self, case_id: str) -> None:
        """GET /api/v1/cases/{id}/fees: the case's fee notices, payments and refunds (a party
        or agent sees the payments they made; staff all of them). 200; 404 not their case."""
        self.write_json(await self.services.fees.case_fees(self.caller, case_id))


default_handlers = [
    (r"/api/v1/fees/estimate", FeeEstimateHandler),
    (rf"/api/v1/cases/(?P<case_id>{OBJECT_ID})/fees", CaseFeesHandler),
]
