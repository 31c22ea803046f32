"""Electronic service (电子送达): consent, serving, reading, service certificates."""

from __future__ import annotations

from handlers.base import (
    OBJECT_ID,
    APIHandler,
    api,
    authenticated,
    idempotent,
    needs_role,
    public,
)
from models.documents import (
    CertificateOut,
    ConsentIn,
    ConsentOut,
    DocumentList,
    DocumentOut,
    PaperServiceIn,
    ServeIn,
    VerifyOut,
    VerifyQuery,
)
from models.users import PUBLIC_ROLES, STAFF_ROLES

STAFF = tuple(sorted(STAFF_ROLES))
PARTIES = tuple(sorted(PUBLIC_ROLES))
CASE = rf"/api/v1/cases/(?P<case_id>{OBJECT_ID})"


class ConsentHandler(APIHandler):
    @needs_role(*PARTIES)
    @idempotent
    @api(body=ConsentIn, response=ConsentOut)
    async def post(self, case_id: str) -> None:
        """POST /api/v1/cases/{id}/consent {agree, address_confirmed?}: a party consents to
        electronic service (agree=false withdraws it), recorded with time and address.
        200; 403 an agent; 404 not the caller's case; 409 the case changed; 422 bad address."""
        data = self.parse_body(ConsentIn)
        self.write_json(await self.services.service.consent(self.caller, case_id, data))


class DocumentsHandler(APIHandler):
    @authenticated
    @api(response=DocumentList)
    async def get(self, case_id: str) -> None:
        """GET /api/v1/cases/{id}/documents: served documents, with delivery and read times
        (staff: all; a party or agent: those served to them). 200; 404."""
        items = await self.services.service.list_for(self.caller, case_id)
        self.write_json(DocumentList(items=items))

    @needs_role(*STAFF)
    @idempotent
    @api(body=ServeIn, response=DocumentOut, status=201)
    async def post(self, case_id: str) -> None:
        """POST /api/v1/cases/{id}/documents {file_id, kind, title?, recipients?}: serve a
        PDF the caller uploaded; consenting parties electronically, the others listed for
        paper service. 201; 404 another court's case; 422 not the caller's PDF, unknown
        party, bad kind."""
        data = self.parse_body(ServeIn)
        doc = await self.services.service.serve(self.caller, case_id, data)
        self.write_json(doc, status=201)


class DocumentHandler(APIHandler):
    @authenticated
    @api(response=DocumentOut)
    async def get(self, case_id: str, doc_id: str) -> None:
        """GET /api/v1/cases/{id}/documents/{doc_id}: the document and its download link;
        a recipient's first read is recorded (已阅知). 200; 404 not served to the caller."""
        self.write_json(await self.services.service.read(self.caller, case_id, doc_id))


class CertificateHandler(APIHandler):
    @authenticated
    @api(response=CertificateOut)
    async def get(self, case_id: str, doc_id: str) -> None:
        """GET /api/v1/cases/{id}/documents/{doc_id}/certificate: the service certificate
        (送达回证), every line for staff, their own for a recipient. 200; 404."""
        doc = await self.services.service.certificate(self.caller, case_id, doc_id)
        self.write_json(doc)


class PaperServiceHandler(APIHandler):
    @needs_role(*STAFF)
    @idempotent
    @api(body=PaperServiceIn, response=DocumentOut)
    async def post(self, case_id: str, doc_id: str) -> None:
        """POST /api/v1/cases/{id}/documents/{doc_id}/paper-service {party_id, way,
        delivered_at, receipt_file_id?, note?}: record a paper service, with its proof. 200;
        404 another court's; 409 already served; 422 bad time, party or receipt."""
        data = self.parse_body(PaperServiceIn)
        doc = await self.services.service.record_paper(self.caller, case_id, doc_id, data)
        self.write_json(doc)


class VerifyHandler(APIHandler):
    @public
    @api(query=VerifyQuery, response=VerifyOut)
    async def get(self) -> None:
        """GET /api/v1/documents/verify (query: code): a generated document by the 验证码 printed on
        it (no sign-in): court, case number, kind, when served and the file's sha256. 200;
        404 unknown code; 422 no code; 429 too many tries."""
        q = self.parse_query(VerifyQuery)
        self.write_json(await self.services.service.verify(self.client_ip, q.code))


default_handlers = [
    (r"/api/v1/documents/verify", VerifyHandler),
    (rf"{CASE}/consent", ConsentHandler),
    (rf"{CASE}/documents", DocumentsHandler),
    (rf"{CASE}/documents/(?P<doc_id>{OBJECT_ID})", DocumentHandler),
    (rf"{CASE}/documents/(?P<doc_id>{OBJECT_ID})/certificate", CertificateHandler),
    (rf"{CASE}/documents/(?P<doc_id>{OBJECT_ID})/paper-service", PaperServiceHandler),
]
