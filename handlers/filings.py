"""Online filing (网上立案) from the mini-program: drafts, submission, withdrawal."""

from __future__ import annotations

from handlers.base import OBJECT_ID, APIHandler, api, idempotent, needs_role
from models.common import Page
from models.filings import FilingCreate, FilingOut, FilingQuery, FilingSummary, FilingUpdate
from models.users import Role
from server.filing.filings import filing_out

PARTIES = (Role.litigant, Role.lawyer)
READERS = (Role.litigant, Role.lawyer, Role.clerk, Role.judge, Role.admin)


class FilingsHandler(APIHandler):
    @needs_role(*PARTIES)
    @idempotent
    @api(body=FilingCreate, response=FilingOut, status=201)
    async def post(self) -> None:
        """POST /api/v1/filings: create a draft.

        201 the draft; 403 `as_agent` without a verified lawyer; 422 unknown court or kind,
        invalid ID numbers or credit codes, files that are not yours (every problem at once).
        """
        data = self.parse_body(FilingCreate)
        doc = await self.services.filings.create(self.caller, data)
        self.write_json(filing_out(doc), status=201)

    @needs_role(*PARTIES)
    @api(query=FilingQuery, response=Page[FilingSummary])
    async def get(self) -> None:
        """GET /api/v1/filings: my filings, newest first, cursor-paged. 200; 400; 422."""
        query = self.parse_query(FilingQuery)
        self.write_json(await self.services.filings.list_mine(self.caller, query))


class FilingHandler(APIHandler):
    @needs_role(*READERS)
    @api(response=FilingOut)
    async def get(self, filing_id: str) -> None:
        """GET /api/v1/filings/{id}: 200 the filing (ID numbers masked); 404 not yours.

        The filer, a client named as a plaintiff, and (once submitted) the court's staff.
        """
        access = await self.services.filings.access_filing(self.caller, filing_id)
        self.write_json(filing_out(access.obj))

    @needs_role(*PARTIES)
    @api(body=FilingUpdate, response=FilingOut)
    async def patch(self, filing_id: str) -> None:
        """PATCH /api/v1/filings/{id}: change a draft or a filing sent back for correction.

        200; 404 not yours; 409 already submitted or changed meanwhile; 422 invalid fields.
        """
        data = self.parse_body(FilingUpdate)
        doc = await self.services.filings.update(self.caller, filing_id, data)
        self.write_json(filing_out(doc))


class SubmitHandler(APIHandler):
    @needs_role(*PARTIES)
    @idempotent
    @api(response=FilingOut)
    async def post(self, filing_id: str) -> None:
        """POST /api/v1/filings/{id}/submit: file it with the court (Idempotency-Key honoured).

        200 submitted, with its review deadline; 403 no verified identity; 404 not yours;
        409 already submitted; 422 incomplete, every missing item listed in `details`.
        """
        doc = await self.services.filings.submit(self.caller, filing_id)
        self.write_json(filing_out(doc))


class WithdrawHandler(APIHandler):
    @needs_role(*PARTIES)
    @idempotent
    @api(response=FilingOut)
    async def post(self, filing_id: str) -> None:
        """POST /api/v1/filings/{id}/withdraw: 200 withdrawn; 404 not yours; 409 decided."""
        doc = await self.services.filings.withdraw(self.caller, filing_id)
        self.write_json(filing_out(doc))


default_handlers = [
    (r"/api/v1/filings", FilingsHandler),
    (rf"/api/v1/filings/(?P<filing_id>{OBJECT_ID})", FilingHandler),
    (rf"/api/v1/filings/(?P<filing_id>{OBJECT_ID})/submit", SubmitHandler),
    (rf"/api/v1/filings/(?P<filing_id>{OBJECT_ID})/withdraw", WithdrawHandler),
]
