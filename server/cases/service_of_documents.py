"""Electronic service (电子送达) of court documents, read receipts and service certificates.

A party who consented (with a linked account) is served when the document reaches their
account: ``delivered_at`` is the time of service, the file is granted to them and they are
pushed a notice. A party without consent is listed for paper service (``delivered_at`` None).
The first read by a recipient (or their agent) sets ``read_at`` (已阅知) by a conditional
update, so concurrent reads record one time. Each document keeps the sha256 of the file, so
the certificate (送达回证) proves what was served to whom and when.

Collection ``served_documents``: see models/documents.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

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
    RecipientOut,
    ServedDocumentDoc,
    ServeIn,
    ServiceMethod,
    service_address,
)
from models.files import FileKind, FileMeta, FilePurpose
from models.filings import PARTY_GROUPS
from models.users import UserDoc
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
from server.cases.service import CaseService
from server.files.service import FileService
from server.identity.users import UserService
from server.notify.inbox import NotificationService
from server.platform.clock import Clock
from server.platform.db import Database, in_transaction

ROLE_NAMES = {"plaintiffs": "原告", "defendants": "被告", "third_parties": "第三人"}
MAX_DOCUMENTS = 500  # per case, in the case detail
T = TypeVar("T")


def represented(case: CaseDoc, user_id: str, viewer: Viewer) -> set[str]:
    """The party ids ``user_id`` stands for: their own parties, or as the filing lawyer the
    plaintiffs."""
    if viewer == Viewer.party:
        return {p.party_id for p in case.parties() if p.user_id == user_id}
    if viewer == Viewer.agent and user_id == case.filer_id:
        return {p.party_id for p in case.plaintiffs}
    return set()


def own_party(case: CaseDoc, user_id: str) -> tuple[str, int, CasePartyDoc] | None:
    """The caller's own party: its group, its index in that group, and the party."""
    for group in PARTY_GROUPS:
        for index, party in enumerate(getattr(case, group)):
            if party.user_id == user_id:
                return group, index, party
    return None


def agents_of(case: CaseDoc, group: str) -> list[str]:
    """The agents who act for a party of ``group`` (the filing lawyer acts for the plaintiffs)."""
    return [case.filer_id] if group == "plaintiffs" and case.filer_id in case.agent_ids else []


def _line(group: str, party: CasePartyDoc, now: Any) -> RecipientDoc:
    electronic = party.e_service is not None and party.user_id is not None
    return RecipientDoc(
        party_id=party.party_id,
        name=party.name,
        role=ROLE_NAMES[group],
        user_id=party.user_id if electronic else None,
        method=ServiceMethod.electronic if electronic else ServiceMethod.paper,
        address=party.e_service.address if electronic and party.e_service else party.address,
        delivered_at=now if electronic else None,
    )


def document_out(
    doc: ServedDocumentDoc, only: set[str] | None = None, *, reveal_file: bool = True
) -> DocumentOut:
    """The document with every recipient line (staff), or only the lines of ``only``.

    A recipient's listing leaves the file out: the bytes are reached only through the
    document itself, whose first reading is the read receipt (已阅知)."""
    lines = [r for r in doc.recipients if only is None or r.party_id in only]
    return DocumentOut(
        id=str(doc.id),
        case_id=doc.case_id,
        kind=doc.kind,
        title=doc.title,
        file_id=doc.file_id if reveal_file else None,
        filename=doc.filename,
        size=doc.size,
        sha256=doc.sha256,
        served_at=doc.served_at,
        served_by=doc.served_by_name,
        download_url=f"/api/v1/files/{doc.file_id}" if reveal_file else None,
        recipients=[RecipientOut.model_validate(r.model_dump()) for r in lines],
    )


class DocumentService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        users: UserService,
        cases: CaseService,
        files: FileService,
        notifications: NotificationService,
    ) -> None:
        self.db = db
        self.col = db["served_documents"]
        self.clock = clock
        self.users = users
        self.cases = cases
        self.files = files
        self.notifications = notifications

    async def _in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        return await in_transaction(self.db, work)

    # ---- serving

    async def serve(self, staff: UserDoc, case_id: str, data: ServeIn) -> DocumentOut:
        """Serve a PDF the clerk uploaded: electronically to consenting parties, the others
        listed for paper service; one transaction. 404 not this court's case; 422 not the
        caller's PDF or an unknown party."""
        case, viewer = await self.cases.get_for(staff, case_id)
        if viewer != Viewer.staff:
            raise CaseNotFound()
        (meta,) = await self.files.check_owned(str(staff.id), [data.file_id])
        if meta.content_type != FileKind.pdf:
            raise DocumentNotPdf()
        doc = self._document(case, staff, meta, data.kind, data.title, data.recipients)

        async def write(session: AsyncClientSession) -> None:
            await self._write(case, doc, session)

        await self._in_transaction(write)
        return document_out(doc)

    async def serve_generated(
        self,
        case: CaseDoc,
        staff: UserDoc,
        kind: DocumentKind,
        pdf: bytes,
        recipients: list[str] | None,
        session: AsyncClientSession,
    ) -> ServedDocumentDoc:
        """Serve a notice the court generated (受理通知书, 缴费通知书) inside the caller's
        transaction: the file, the document, the timeline and the pushes commit with it."""
        meta = await self.files.store(
            str(staff.id), pdf, f"{case.case_no}{kind.value}.pdf", FilePurpose.court_document,
            FileKind.pdf, court_ids=[case.court_id], session=session,
        )  # fmt: skip
        doc = self._document(case, staff, meta, kind, None, recipients)
        await self._write(case, doc, session)
        return doc

    def _document(
        self,
        case: CaseDoc,
        staff: UserDoc,
        meta: FileMeta,
        kind: DocumentKind,
        title: str | None,
        recipients: list[str] | None,
    ) -> ServedDocumentDoc:
        now = self.clock.now()
        lines = [_line(g, p, now) for g, p in self._targets(case, recipients)]
        return ServedDocumentDoc(
            id=ObjectId(), case_id=str(case.id), court_id=case.court_id, kind=kind,
            title=title or kind.value, file_id=meta.id, filename=meta.filename,
            size=meta.size, sha256=meta.sha256, served_by=str(staff.id),
            served_by_name=staff.name, served_at=now, recipients=lines,
            reader_ids=self._readers(case, lines),
        )  # fmt: skip

    async def _write(
        self, case: CaseDoc, doc: ServedDocumentDoc, session: AsyncClientSession
    ) -> None:
        await self.col.insert_one(doc.model_dump(by_alias=True), session=session)
        if (
            await self.cases.add_event(case.id, "送达", doc.served_by, _note(doc), session=session)
            is None
        ):
            raise CaseNotFound()
        await self.files.grant(
            [doc.file_id], reader_ids=doc.reader_ids, court_ids=[case.court_id], session=session
        )
        await self._tell(case, doc, session)
        await self.users.record(doc.served_by, "document.serve", str(doc.id), session,
                                case_id=doc.case_id, sha256=doc.sha256)  # fmt: skip

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
    def _readers(case: CaseDoc, lines: list[RecipientDoc]) -> list[str]:
        """Who may open the file: the electronic recipients and the agents acting for them."""
        groups = {p.party_id: g for g in PARTY_GROUPS for p in getattr(case, g)}
        readers: list[str] = []
        for line in lines:
            if line.method == ServiceMethod.electronic and line.user_id:
                readers += [line.user_id, *agents_of(case, groups[line.party_id])]
        return list(dict.fromkeys(readers))

    async def _tell(
        self, case: CaseDoc, doc: ServedDocumentDoc, session: AsyncClientSession
    ) -> None:
        if not doc.reader_ids:
            return
        await self.notifications.notify(
            doc.reader_ids, "document_served", "您有新的法律文书",
            f"{case.case_no}《{doc.title}》已送达，请及时查阅",
            data={"case_id": doc.case_id, "document_id": str(doc.id), "kind": doc.kind.value},
            template="case_update",
            page=f"pages/case/document?case_id={doc.case_id}&id={doc.id}",
            dedupe_key=f"document:{doc.id}", session=session,
        )  # fmt: skip

    # ---- reading

    async def _load(self, case: CaseDoc, doc_id: str) -> ServedDocumentDoc:
        raw = (
            await self.col.find_one({"_id": ObjectId(doc_id), "case_id": str(case.id)})
            if ObjectId.is_valid(doc_id)
            else None
        )
        if raw is None:
            raise DocumentNotFound()
        return ServedDocumentDoc.model_validate(raw)

    async def _visible(
        self, user: UserDoc, case_id: str, doc_id: str
    ) -> tuple[CaseDoc, ServedDocumentDoc, set[str] | None]:
        """The document and the recipient lines the caller may see (None: all, for staff);
        404 unless it was served electronically to a party the caller stands for."""
        case, viewer = await self.cases.get_for(user, case_id)
        doc = await self._load(case, doc_id)
        if viewer == Viewer.staff:
            return case, doc, None
        mine = represented(case, str(user.id), viewer)
        lines = {r.party_id for r in doc.recipients
                 if r.party_id in mine and r.method == ServiceMethod.electronic}  # fmt: skip
        if not lines:
            raise DocumentNotFound()
        return case, doc, lines

    async def read(self, user: UserDoc, case_id: str, doc_id: str) -> DocumentOut:
        """The document for download; a recipient's first read records ``read_at``."""
        _, doc, lines = await self._visible(user, case_id, doc_id)
        if lines is None:
            return document_out(doc)
        if any(r.read_at is None for r in doc.recipients if r.party_id in lines):
            doc = await self._mark_read(doc, lines, str(user.id))
        return document_out(doc, lines)

    async def _mark_read(
        self, doc: ServedDocumentDoc, lines: set[str], reader: str
    ) -> ServedDocumentDoc:
        now = self.clock.now()
        for i, r in enumerate(doc.recipients):
            if r.party_id in lines and r.read_at is None:
                await self.col.update_one(
                    {"_id": doc.id, f"recipients.{i}.party_id": r.party_id,
                     f"recipients.{i}.read_at": None},
                    {"$set": {f"recipients.{i}.read_at": now, f"recipients.{i}.read_by": reader}},
                )  # fmt: skip
        raw = await self.col.find_one({"_id": doc.id})
        assert raw is not None
        return ServedDocumentDoc.model_validate(raw)

    async def certificate(self, user: UserDoc, case_id: str, doc_id: str) -> CertificateOut:
        """送达回证: staff see every line, a recipient (or their agent) their own."""
        case, doc, lines = await self._visible(user, case_id, doc_id)
        return CertificateOut(
            case_no=case.case_no,
            court_id=case.court_id,
            document=CertificateDocument.model_validate(doc.model_dump()),
            recipients=[
                CertificateLine(
                    **r.model_dump(exclude={"read_by"}),
                    party_name=r.name,
                    served_by=doc.served_by_name,
                    read_by=_reader(r),
                )
                for r in doc.recipients
                if lines is None or r.party_id in lines
            ],
        )

    async def documents_for(
        self, case: CaseDoc, user: UserDoc, viewer: Viewer
    ) -> list[DocumentOut]:
        """The case detail's served documents: all of them for staff; for a party or agent
        those served electronically to the parties they stand for, with only those lines."""
        raws = (
            await self.col.find({"case_id": str(case.id)})
            .sort([("_id", 1)])
            .limit(MAX_DOCUMENTS)
            .to_list()
        )
        docs = [ServedDocumentDoc.model_validate(r) for r in raws]
        if viewer == Viewer.staff:
            return [document_out(d) for d in docs]
        mine = represented(case, str(user.id), viewer)
        out = []
        for d in docs:
            lines = {r.party_id for r in d.recipients
                     if r.party_id in mine and r.method == ServiceMethod.electronic}  # fmt: skip
            if lines:
                out.append(document_out(d, lines, reveal_file=False))
        return out

    async def list_for(self, user: UserDoc, case_id: str) -> list[DocumentOut]:
        case, viewer = await self.cases.get_for(user, case_id)
        return await self.documents_for(case, user, viewer)

    # ---- paper service, recorded

    async def record_paper(
        self, staff: UserDoc, case_id: str, doc_id: str, data: PaperServiceIn
    ) -> DocumentOut:
        """Record a paper service (直接/邮寄/留置/委托/公告送达) of a document listed for it,
        once per recipient. 404 another court's case or document; 409 already served (on
        paper or electronically); 422 a time before serving or in the future, a bad receipt."""
        case, viewer = await self.cases.get_for(staff, case_id)
        if viewer != Viewer.staff:
            raise CaseNotFound()
        doc = await self._load(case, doc_id)
        index = self._paper_line(doc, data.party_id)
        when = data.delivered_at.astimezone(dt.UTC)
        if not doc.served_at <= when <= self.clock.now():
            raise BadDeliveryTime(details=[{"loc": ["delivered_at"], "msg": "时间不合理"}])
        if data.receipt_file_id:
            await self.files.check_owned(str(staff.id), [data.receipt_file_id])
        line = doc.recipients[index]

        async def write(session: AsyncClientSession) -> None:
            took = await self.col.update_one(
                {"_id": doc.id, f"recipients.{index}.party_id": line.party_id,
                 f"recipients.{index}.delivered_at": None},
                {"$set": {f"recipients.{index}.delivered_at": when,
                          f"recipients.{index}.paper_way": data.way.value,
                          f"recipients.{index}.receipt_file_id": data.receipt_file_id,
                          f"recipients.{index}.recorded_by": str(staff.id)}},
                session=session,
            )  # fmt: skip
            if not took.modified_count:
                raise AlreadyServed()
            note = f"《{doc.title}》{data.way.value}：{line.name}" + (
                f"（{data.note}）" if data.note else "")  # fmt: skip
            await self.cases.add_event(case.id, "送达", str(staff.id), note, session=session)
            await self.users.record(
                str(staff.id), "document.paper_service", str(doc.id), session,
                party_id=line.party_id, way=data.way.value,
            )  # fmt: skip

        await self._in_transaction(write)
        return document_out(await self._load(case, doc_id))

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

    async def consent(self, user: UserDoc, case_id: str, data: ConsentIn) -> ConsentOut:
        """A party consents to (or withdraws consent to) electronic service. 404 not their
        case; 403 an agent or staff; 409 the case changed meanwhile (retry)."""
        case, viewer = await self.cases.get_for(user, case_id)
        uid = str(user.id)
        found = own_party(case, uid)
        if viewer != Viewer.party or found is None:
            raise NotAParty()
        group, index, party = found
        current = party.e_service
        if (current is None and not data.agree) or (
            current is not None
            and data.agree
            and current.address == service_address(data.address_confirmed)
        ):
            return unchanged(case_id, party)  # a repeat changes nothing and records nothing
        now = self.clock.now()
        consent = (
            {"consented_at": now, "address": service_address(data.address_confirmed),
             "user_id": uid} if data.agree else None
        )  # fmt: skip
        path = f"{group}.{index}"
        kind = "同意电子送达" if data.agree else "撤回电子送达同意"

        async def write(session: AsyncClientSession) -> None:
            done = await self.cases.add_event(
                case.id, kind, uid, f"{ROLE_NAMES[group]}{party.name}{kind}",
                changes={f"{path}.e_service": consent},
                expect={f"{path}.party_id": party.party_id, f"{path}.user_id": uid},
                session=session,
            )  # fmt: skip
            if done is None:
                raise CaseChanged()
            await self.users.record(uid, "case.e_service_consent", case_id, session,
                                    party_id=party.party_id, agree=data.agree)  # fmt: skip

        await self._in_transaction(write)
        return ConsentOut(
            case_id=case_id, party_id=party.party_id, agree=data.agree,
            consented_at=now if data.agree else None,
            address=consent["address"] if consent else None,
        )  # fmt: skip


def _reader(line: RecipientDoc) -> str | None:
    """Who opened it first: the party, or the lawyer acting for them (the certificate says)."""
    if line.read_by is None:
        return None
    return "party" if line.read_by == line.user_id else "agent"


def unchanged(case_id: str, party: CasePartyDoc) -> ConsentOut:
    consent = party.e_service
    return ConsentOut(
        case_id=case_id, party_id=party.party_id, agree=consent is not None,
        consented_at=consent.consented_at if consent else None,
        address=consent.address if consent else None,
    )  # fmt: skip


def _note(doc: ServedDocumentDoc) -> str:
    electronic = "、".join(r.name for r in doc.recipients if r.method == ServiceMethod.electronic)
    paper = "、".join(r.name for r in doc.recipients if r.method == ServiceMethod.paper)
    parts = [f"《{doc.title}》"]
    if electronic:
        parts.append(f"电子送达：{electronic}")
    if paper:
        parts.append(f"待直接或邮寄送达：{paper}")
    return "；".join(parts)
