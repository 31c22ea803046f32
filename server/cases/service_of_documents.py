"""Electronic service (电子送达) of court documents, read receipts and service certificates.

A party who consented (with a linked account) is served when the document reaches their
account: ``delivered_at`` is the time of service, the file is granted to them and they are
pushed a notice. A party without consent is listed for paper service (``delivered_at`` None).
The first read by a recipient (or their agent) sets ``read_at`` (已阅知) by a conditional
update, so concurrent reads record one time. Each document keeps the sha256 of the file, so
the certificate (送达回证) proves what was served to whom and when.

Collection ``served_documents``: see models/documents.py; shapes without the database in
server/cases/served.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.cases import CaseDoc, CasePartyDoc, Viewer
from models.documents import (
    CertificateDocument,
    CertificateLine,
    CertificateOut,
    ConsentIn,
    ConsentOut,
    DocumentKind,
    DocumentOut,
    PaperServiceIn,
    RecipientDoc,
    ServedDocumentDoc,
    ServeIn,
    ServiceMethod,
    VerifyOut,
    service_address,
)
from models.files import FileKind, FileMeta, FilePurpose
from models.filings import PARTY_GROUPS
from models.users import Caller
from server.cases.errors import (
    AlreadyServed,
    BadDeliveryTime,
    CaseChanged,
    CaseNotFound,
    DocumentNotFound,
    DocumentNotPdf,
    NotAParty,
    UnknownParty,
)
from server.cases.notices import normal_code, verification_code
from server.cases.served import (
    ROLE_NAMES,
    document_out,
    electronic_lines,
    first_reader,
    own_party,
    readers,
    recipient_line,
    repeats_consent,
    represented,
    service_note,
    unchanged,
)
from server.cases.service import CaseService
from server.cases.store import DocumentStore
from server.files.service import FileService
from server.identity.users import UserService
from server.notify.inbox import Notice, NotificationService
from server.platform.access import Access
from server.platform.audit import AuditRow
from server.platform.clock import Clock
from server.platform.config import Settings
from server.platform.db import Database, in_transaction
from server.platform.ratelimit import RateLimiter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Generated:
    """A document the court generated, to serve: its kind and bytes, to whom (None: every
    party) and the 验证码 printed on it (``code_for``)."""

    kind: DocumentKind
    pdf: bytes
    recipients: list[str] | None
    verify_code: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """How a caller stands to a served document: its case, and the recipient lines they may
    see (None: every line, for the court's staff)."""

    case: CaseDoc
    lines: set[str] | None


class DocumentService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        users: UserService,
        cases: CaseService,
        files: FileService,
        notifications: NotificationService,
        settings: Settings,
    ) -> None:
        self.db = db
        self.store = DocumentStore(db)
        self.settings = settings
        self.per_client = RateLimiter.shared(
            db, "document-verify", settings.cases.verifications_per_client_per_minute, 60, clock
        )
        self.clock = clock
        self.users = users
        self.cases = cases
        self.files = files
        self.notifications = notifications

    async def _in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        return await in_transaction(self.db, work)

    # ---- serving

    async def serve(self, caller: Caller, case_id: str, data: ServeIn) -> DocumentOut:
        """Serve a PDF the clerk uploaded: electronically to consenting parties, the others
        listed for paper service; one transaction. 404 not this court's case; 422 not the
        caller's PDF or an unknown party."""
        case = (await self.cases.access_court_case(caller, case_id)).obj
        (meta,) = await self.files.check_owned(str(caller.id), [data.file_id])
        if meta.content_type != FileKind.pdf:
            raise DocumentNotPdf()
        doc = self._document(caller, case, meta, data.kind, data.title, data.recipients)

        async def write(session: AsyncClientSession) -> None:
            await self._write(case, [doc], session)

        await self._in_transaction(write)
        return document_out(doc)

    async def serve_generated(
        self,
        caller: Caller,
        case: CaseDoc,
        kind: DocumentKind,
        pdf: bytes,
        recipients: list[str] | None,
        session: AsyncClientSession,
        verify_code: str | None = None,
    ) -> ServedDocumentDoc:
        """Serve a document the court generated (a 传票 …) inside the caller's transaction
        (``serve_all``)."""
        made = Generated(kind, pdf, recipients, verify_code)
        return (await self.serve_all(caller, case, [made], session))[0]

    async def serve_all(
        self, caller: Caller, case: CaseDoc, made: list[Generated], session: AsyncClientSession
    ) -> list[ServedDocumentDoc]:
        """Serve documents the court generated (受理通知书, 缴费通知书 …) together inside the
        caller's transaction: the files, then the documents, the timeline, the grants and the
        pushes each written once for all of them, so that they commit with it."""
        docs = []
        for g in made:
            name = f"{case.case_no}{g.kind.value}.pdf"
            purpose, court = FilePurpose.court_document, [case.court_id]
            meta = await self.files.store(
                str(caller.id), g.pdf, name, purpose, FileKind.pdf, court_ids=court, session=session
            )
            doc = self._document(caller, case, meta, g.kind, None, g.recipients)
            doc.verify_code = g.verify_code
            docs.append(doc)
        await self._write(case, docs, session)
        return docs

    def code_for(self, *identity: str) -> str:
        """The 验证码 of a generated document, from what makes it that document (its case,
        kind, hearing, party …) keyed with the server's secret: unguessable, and the same
        again for the same document, so that the same inputs give the same bytes."""
        digest = self.cases.cipher.keyed_hash("document-code|" + "|".join(identity))
        return verification_code(digest)

    # ---- verification

    async def verify(self, client: str, code: str) -> VerifyOut:
        """A generated document by its 验证码: court, case number, kind, when served, the
        file's sha256 and nothing personal. 404 unknown; 429 too many tries from a client."""
        await self.per_client.hit(client)
        doc = await self.store.with_code(normal_code(code))
        if doc is None or doc.verify_code is None:
            raise DocumentNotFound("验证码不存在，文书无法核验")
        court = self.settings.court(doc.court_id)
        return VerifyOut(
            verify_code=doc.verify_code,
            court_id=doc.court_id,
            court_name=court.name if court else doc.court_id,
            case_no=doc.case_no or "",
            kind=doc.kind,
            title=doc.title,
            served_at=doc.served_at,
            sha256=doc.sha256,
        )

    def _document(
        self,
        caller: Caller,
        case: CaseDoc,
        meta: FileMeta,
        kind: DocumentKind,
        title: str | None,
        recipients: list[str] | None,
    ) -> ServedDocumentDoc:
        now = self.clock.now()
        lines = [recipient_line(g, p, now) for g, p in self._targets(case, recipients)]
        return ServedDocumentDoc(
            id=ObjectId(),
            case_id=str(case.id),
            court_id=case.court_id,
            kind=kind,
            title=title or kind.value,
            file_id=meta.id,
            filename=meta.filename,
            size=meta.size,
            sha256=meta.sha256,
            served_by=str(caller.id),
            served_by_name=caller.name,
            served_at=now,
            recipients=lines,
            reader_ids=readers(case, lines),
            case_no=case.case_no,
        )

    async def _write(
        self, case: CaseDoc, docs: list[ServedDocumentDoc], session: AsyncClientSession
    ) -> None:
        """The documents, their 送达 events, grants, pushes and audit rows, in ``session``."""
        await self.store.insert(docs, session)
        notes: list[str | None] = [service_note(d) for d in docs]
        if (
            await self.cases.add_events(case.id, "送达", docs[0].served_by, notes, session=session)
            is None
        ):
            raise CaseNotFound()
        readers: dict[tuple[str, ...], list[str]] = {}
        for d in docs:  # one grant per set of readers
            readers.setdefault(tuple(d.reader_ids), []).append(d.file_id)
        for ids, files in readers.items():
            await self.files.grant(
                files, reader_ids=list(ids), court_ids=[case.court_id], session=session
            )
        # each push's dedupe key names a new document: nothing to look for first
        told = [self._notice(case, d) for d in docs if d.reader_ids]
        await self.notifications.notify_many(told, session=session)
        served = [
            AuditRow(
                d.served_by, "document.serve", str(d.id), {"case_id": d.case_id, "sha256": d.sha256}
            )
            for d in docs
        ]
        await self.users.record_many(served, session)

    @staticmethod
    def _targets(case: CaseDoc, wanted: list[str] | None) -> list[tuple[str, CasePartyDoc]]:
        every = [(g, p) for g in PARTY_GROUPS for p in getattr(case, g)]
        if wanted is None:
            return every
        known = {p.party_id for _, p in every}
        unknown = [(i, pid) for i, pid in enumerate(wanted) if pid not in known]
        if unknown:
            problems = [
                {"loc": ["recipients", i], "msg": "不是本案当事人", "party_id": pid}
                for i, pid in unknown
            ]
            raise UnknownParty(details=problems)
        chosen = set(wanted)
        return [(g, p) for g, p in every if p.party_id in chosen]

    @staticmethod
    def _notice(case: CaseDoc, doc: ServedDocumentDoc) -> Notice:
        return Notice(
            doc.reader_ids,
            "document_served",
            "您有新的法律文书",
            f"{case.case_no}《{doc.title}》已送达，请及时查阅",
            data={"case_id": doc.case_id, "document_id": str(doc.id), "kind": doc.kind.value},
            template="case_update",
            page=f"pages/case/document?case_id={doc.case_id}&id={doc.id}",
            dedupe_key=f"document:{doc.id}",
        )

    # ---- reading

    async def _load(self, case: CaseDoc, doc_id: str) -> ServedDocumentDoc:
        doc = await self.store.in_case(str(case.id), doc_id)
        if doc is None:
            raise DocumentNotFound()
        return doc

    async def access_document(
        self, caller: Caller, case_id: str, doc_id: str
    ) -> Access[ServedDocumentDoc, Reading]:
        """The document and the recipient lines the caller may see (all, for staff); 404
        unless it was served electronically to a party the caller stands for."""
        seen = await self.cases.access_case(caller, case_id)
        case = seen.obj
        doc = await self._load(case, doc_id)
        if seen.standing == Viewer.staff:
            return Access(doc, Reading(case, None))
        lines = electronic_lines(doc, represented(case, str(caller.id), seen.standing))
        if not lines:
            raise DocumentNotFound()
        return Access(doc, Reading(case, lines))

    async def read(self, caller: Caller, case_id: str, doc_id: str) -> DocumentOut:
        """The document for download; a recipient's first read records ``read_at``."""
        seen = await self.access_document(caller, case_id, doc_id)
        doc, lines = seen.obj, seen.standing.lines
        if lines is None:
            return document_out(doc)
        if any(r.read_at is None for r in doc.recipients if r.party_id in lines):
            doc = await self.store.mark_read(doc, lines, str(caller.id), self.clock.now())
        return document_out(doc, lines)

    async def certificate(self, caller: Caller, case_id: str, doc_id: str) -> CertificateOut:
        """送达回证: staff see every line, a recipient (or their agent) their own."""
        seen = await self.access_document(caller, case_id, doc_id)
        doc, case, lines = seen.obj, seen.standing.case, seen.standing.lines
        return CertificateOut(
            case_no=case.case_no,
            court_id=case.court_id,
            document=CertificateDocument.model_validate(doc.model_dump()),
            recipients=[
                CertificateLine(
                    **r.model_dump(exclude={"read_by"}),
                    party_name=r.name,
                    served_by=doc.served_by_name,
                    read_by=first_reader(r),
                )
                for r in doc.recipients
                if lines is None or r.party_id in lines
            ],
        )

    async def documents_for(
        self, caller: Caller, case: CaseDoc, viewer: Viewer
    ) -> list[DocumentOut]:
        """The case detail's served documents: all of them for staff; for a party or agent
        those served electronically to the parties they stand for, with only those lines."""
        docs = await self.store.of_case(str(case.id))
        if viewer == Viewer.staff:
            return [document_out(d) for d in docs]
        mine = represented(case, str(caller.id), viewer)
        out = []
        for d in docs:
            lines = electronic_lines(d, mine)
            if lines:
                out.append(document_out(d, lines, reveal_file=False))
        return out

    async def list_for(self, caller: Caller, case_id: str) -> list[DocumentOut]:
        seen = await self.cases.access_case(caller, case_id)
        return await self.documents_for(caller, seen.obj, seen.standing)

    # ---- paper service, recorded

    async def record_paper(
        self, caller: Caller, case_id: str, doc_id: str, data: PaperServiceIn
    ) -> DocumentOut:
        """Record a paper service (直接/邮寄/留置/委托/公告送达) of a document listed for it,
        once per recipient. 404 another court's case or document; 409 already served (on
        paper or electronically); 422 a time before serving or in the future, a bad receipt."""
        case = (await self.cases.access_court_case(caller, case_id)).obj
        doc = await self._load(case, doc_id)
        index = self._paper_line(doc, data.party_id)
        when = data.delivered_at.astimezone(dt.UTC)
        if not doc.served_at <= when <= self.clock.now():
            raise BadDeliveryTime(details=[{"loc": ["delivered_at"], "msg": "时间不合理"}])
        if data.receipt_file_id:
            await self.files.check_owned(str(caller.id), [data.receipt_file_id])
        line = doc.recipients[index]

        async def write(session: AsyncClientSession) -> None:
            await self._record_paper(caller, case, doc, index, line, data, when, session)

        await self._in_transaction(write)
        return document_out(await self._load(case, doc_id))

    async def _record_paper(
        self,
        caller: Caller,
        case: CaseDoc,
        doc: ServedDocumentDoc,
        index: int,
        line: RecipientDoc,
        data: PaperServiceIn,
        when: dt.datetime,
        session: AsyncClientSession,
    ) -> None:
        fields = {
            "delivered_at": when,
            "paper_way": data.way.value,
            "receipt_file_id": data.receipt_file_id,
            "recorded_by": str(caller.id),
        }
        if not await self.store.record_paper(doc.id, index, line.party_id, fields, session):
            raise AlreadyServed()
        note = f"《{doc.title}》{data.way.value}：{line.name}"
        note += f"（{data.note}）" if data.note else ""
        await self.cases.add_event(case.id, "送达", str(caller.id), note, session=session)
        await self.users.record(
            str(caller.id),
            "document.paper_service",
            str(doc.id),
            session,
            party_id=line.party_id,
            way=data.way.value,
        )

    @staticmethod
    def _paper_line(doc: ServedDocumentDoc, party_id: str) -> int:
        for index, line in enumerate(doc.recipients):
            if line.party_id != party_id:
                continue
            if line.method != ServiceMethod.paper or line.delivered_at is not None:
                raise AlreadyServed()
            return index
        problem = [{"loc": ["party_id"], "msg": "不在送达名单中"}]
        raise UnknownParty("受送达人不在本文书的送达名单中", details=problem)

    # ---- consent

    async def consent(self, caller: Caller, case_id: str, data: ConsentIn) -> ConsentOut:
        """A party consents to (or withdraws consent to) electronic service. 404 not their
        case; 403 an agent or staff; 409 the case changed meanwhile (retry)."""
        seen = await self.cases.access_case(caller, case_id)
        case, uid = seen.obj, str(caller.id)
        found = own_party(case, uid)
        if seen.standing != Viewer.party or found is None:
            raise NotAParty()
        group, index, party = found
        address = service_address(data.address_confirmed)
        if repeats_consent(party, data.agree, address):
            return unchanged(case_id, party)  # a repeat changes nothing and records nothing
        now = self.clock.now()
        consent = {"consented_at": now, "address": address, "user_id": uid} if data.agree else None
        path = f"{group}.{index}"
        kind = "同意电子送达" if data.agree else "撤回电子送达同意"

        async def write(session: AsyncClientSession) -> None:
            done = await self.cases.add_event(
                case.id,
                kind,
                uid,
                f"{ROLE_NAMES[group]}{party.name}{kind}",
                changes={f"{path}.e_service": consent},
                expect={f"{path}.party_id": party.party_id, f"{path}.user_id": uid},
                session=session,
            )
            if done is None:
                raise CaseChanged()
            await self._audit_consent(uid, case_id, party, data.agree, session)

        await self._in_transaction(write)
        return ConsentOut(
            case_id=case_id,
            party_id=party.party_id,
            agree=data.agree,
            consented_at=now if data.agree else None,
            address=address if data.agree else None,
        )

    async def _audit_consent(
        self, uid: str, case_id: str, party: CasePartyDoc, agree: bool, session: AsyncClientSession
    ) -> None:
        await self.users.record(
            uid, "case.e_service_consent", case_id, session, party_id=party.party_id, agree=agree
        )
