"""Filing review (立案审查) by the staff of the filing's court."""

from __future__ import annotations

from handlers.base import OBJECT_ID, APIHandler, api, idempotent, needs_role
from models.common import Page, PageQuery
from models.filings import AcceptIn, AcceptOut, CorrectionIn, FilingOut, RejectIn, ReviewItem
from models.users import STAFF_ROLES
from server.filing.filings import filing_out

STAFF = tuple(sorted(STAFF_ROLES))


class ReviewQueueHandler(APIHandler):
    @needs_role(*STAFF)
    @api(query=PageQuery, response=Page[ReviewItem])
    async def get(self) -> None:
        """GET /api/v1/review/filings: my court's pending filings, green channel first, then
        by review deadline; each with its deadline and working days left. 200; 400; 403."""
        query = self.parse_query(PageQuery)
        self.write_json(await self.services.review.queue(self.caller, query))


class AcceptHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=AcceptIn, response=AcceptOut)
    async def post(self, filing_id: str) -> None:
        """POST /api/v1/review/filings/{id}/accept: register the case (立案).

        200 {case_id, case_no, filing}; 404 not this court's; 409 not pending (e.g. accepted
        already, withdrawn); 422 bad procedure.
        """
        data = self.parse_body(AcceptIn)
        self.write_json(await self.services.review.accept(self.caller, filing_id, data))


class CorrectionHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=CorrectionIn, response=FilingOut)
    async def post(self, filing_id: str) -> None:
        """POST /api/v1/review/filings/{id}/request-correction: one complete list of what to
        correct, and the days allowed. 200; 404; 409 not pending; 422 no items."""
        data = self.parse_body(CorrectionIn)
        doc = await self.services.review.request_correction(self.caller, filing_id, data)
        self.write_json(filing_out(doc))


class RejectHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=RejectIn, response=FilingOut)
    async def post(self, filing_id: str) -> None:
        """POST /api/v1/review/filings/{id}/reject: refuse, with the reason (required).
        200; 404; 409 not pending; 422 no reason."""
        data = self.parse_body(RejectIn)
        doc = await self.services.review.reject(self.caller, filing_id, data)
        self.write_json(filing_out(doc))


default_handlers = [
    (r"/api/v1/review/filings", ReviewQueueHandler),
    (rf"/api/v1/review/filings/(?P<filing_id>{OBJECT_ID})/accept", AcceptHandler),
    (rf"/api/v1/review/filings/(?P<filing_id>{OBJECT_ID})/request-correction", CorrectionHandler),
    (rf"/api/v1/review/filings/(?P<filing_id>{OBJECT_ID})/reject", RejectHandler),
]
