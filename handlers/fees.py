"""Court fees: the public fee calculator (诉讼费计算)."""

from __future__ import annotations

from handlers.base import APIHandler, api, public
from models.fees import FeeEstimateQuery, FeeResult
from server.errors import ValidationFailed
from server.fee_schedule import court_fee


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
                raise ValidationFailed("法院不存在", code="unknown_court", details=details)
            fixed = court.fixed_fees
        self.write_json(court_fee(q.kind, q.amount_fen, procedure=q.procedure, fixed=fixed))


default_handlers = [(r"/api/v1/fees/estimate", FeeEstimateHandler)]
