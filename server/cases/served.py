"""What electronic service shows and records, with no database: who a caller stands for, the
recipient lines of a new document, the document and consent as the API gives them, and the
timeline note of a service (server/cases/service_of_documents.py uses them)."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from models.cases import CaseDoc, CasePartyDoc, Viewer
from models.documents import (
    ConsentOut,
    DocumentOut,
    RecipientDoc,
    RecipientOut,
    ServedDocumentDoc,
    ServiceMethod,
)
from models.filings import PARTY_GROUPS

ROLE_NAMES = {"plaintiffs": "原告", "defendants": "被告", "third_parties": "第三人"}


class OwnParty(NamedTuple):
    """The caller's own party: its group, its position in that group, and the party."""

    group: str
    position: int
    party: CasePartyDoc


def represented(case: CaseDoc, user_id: str, viewer: Viewer) -> set[str]:
    """The party ids ``user_id`` stands for: their own parties, or as the filing lawyer the
    plaintiffs."""
    if viewer == Viewer.party:
        return {p.party_id for p in case.parties() if p.user_id == user_id}
    if viewer == Viewer.agent and user_id == case.filer_id:
        return {p.party_id for p in case.plaintiffs}
    return set()


def electronic_lines(doc: ServedDocumentDoc, mine: set[str]) -> set[str]:
    """The lines of ``doc`` served electronically to a party of ``mine``."""
    return {
        r.party_id
        for r in doc.recipients
        if r.party_id in mine and r.method == ServiceMethod.electronic
    }


def own_party(case: CaseDoc, user_id: str) -> OwnParty | None:
    for group in PARTY_GROUPS:
        for index, party in enumerate(getattr(case, group)):
            if party.user_id == user_id:
                return OwnParty(group, index, party)
    return None


def agents_of(case: CaseDoc, group: str) -> list[str]:
    """The agents who act for a party of ``group`` (the filing lawyer acts for the plaintiffs)."""
    return [case.filer_id] if group == "plaintiffs" and case.filer_id in case.agent_ids else []


def recipient_line(group: str, party: CasePartyDoc, now: dt.datetime) -> RecipientDoc:
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


def readers(case: CaseDoc, lines: list[RecipientDoc]) -> list[str]:
    """Who may open the file: the electronic recipients and the agents acting for them."""
    groups = {p.party_id: g for g in PARTY_GROUPS for p in getattr(case, g)}
    found: list[str] = []
    for line in lines:
        if line.method == ServiceMethod.electronic and line.user_id:
            found += [line.user_id, *agents_of(case, groups[line.party_id])]
    return list(dict.fromkeys(found))


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


def first_reader(line: RecipientDoc) -> str | None:
    """Who opened it first: the party, or the lawyer acting for them (the certificate says)."""
    if line.read_by is None:
        return None
    return "party" if line.read_by == line.user_id else "agent"


def repeats_consent(party: CasePartyDoc, agree: bool, address: str) -> bool:
    """Whether the answer is the party's standing one: no consent withdrawn, or consent
    given again to the same address."""
    current = party.e_service
    if current is None:
        return not agree
    return agree and current.address == address


def unchanged(case_id: str, party: CasePartyDoc) -> ConsentOut:
    consent = party.e_service
    return ConsentOut(
        case_id=case_id,
        party_id=party.party_id,
        agree=consent is not None,
        consented_at=consent.consented_at if consent else None,
        address=consent.address if consent else None,
    )


def service_note(doc: ServedDocumentDoc) -> str:
    electronic = "、".join(r.name for r in doc.recipients if r.method == ServiceMethod.electronic)
    paper = "、".join(r.name for r in doc.recipients if r.method == ServiceMethod.paper)
    parts = [f"《{doc.title}》"]
    if electronic:
        parts.append(f"电子送达：{electronic}")
    if paper:
        parts.append(f"待直接或邮寄送达：{paper}")
    return "；".join(parts)
