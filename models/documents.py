"""Electronic service (电子送达): served documents, their recipients, certificates, consent.

One ``served_documents`` document per service: what was served (kind, title, file and its
sha256), by whom and when, and one recipient line per party (electronic or paper, delivered
when, read when). See server/service_of_documents.py.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, field_validator

from models.common import InputModel, ObjectIdStr, OutputModel

ACCOUNT_ADDRESS = "移动微法院账户"
_PHONE = r"1[3-9]\d{9}"
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"


class DocumentKind(StrEnum):
    acceptance_notice = "受理通知书"
    fee_notice = "缴费通知书"
    summons = "传票"
    evidence_notice = "举证通知书"
    rights_notice = "诉讼权利义务告知书"
    judgment = "判决书"
    ruling = "裁定书"
    mediation = "调解书"
    other = "其他"


class ServiceMethod(StrEnum):
    electronic = "electronic"  # 电子送达: delivered to the party's account
    paper = "paper"  # 直接或邮寄送达: the clerk serves it on paper


class PaperWay(StrEnum):
    """How a paper service was made (民事诉讼法 第88–95条)."""

    direct = "直接送达"
    post = "邮寄送达"
    left = "留置送达"
    entrusted = "委托送达"
    announcement = "公告送达"


def service_address(confirmed: str | None) -> str:
    """The address of electronic service: the account, and the phone/e-mail confirmed."""
    return f"{ACCOUNT_ADDRESS}；{confirmed}" if confirmed else ACCOUNT_ADDRESS


def consent_at_filing(
    filer_id: str, as_agent: bool, consented: bool, plaintiffs: list[dict[str, Any]], now: Any
) -> None:
    """Copy the filing's consent onto the filer's own party (a plaintiff linked to the filer's
    verified identity), in place; a lawyer's filing consents for no one."""
    if not consented or as_agent:
        return
    for party in plaintiffs:
        if party.get("user_id") == filer_id:
            party["e_service"] = {
                "consented_at": now,
                "address": service_address(party.get("phone")),
                "user_id": filer_id,
            }


# ---- inputs


class ConsentIn(InputModel):
    agree: StrictBool  # legal consent: true or false, never 1 or "yes"
    address_confirmed: str | None = Field(
        None,
        max_length=100,
        description="a phone number or e-mail the party confirms, beside the account",
        examples=["13800138000"],
    )

    @field_validator("address_confirmed")
    @classmethod
    def _phone_or_email(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(f"{_PHONE}|{_EMAIL}", value):
            raise ValueError("应为手机号码或电子邮箱")
        return value or None


class ServeIn(InputModel):
    file_id: ObjectIdStr
    kind: DocumentKind
    title: str | None = Field(None, min_length=1, max_length=100)
    recipients: list[str] | None = Field(
        None, min_length=1, max_length=50, description="party ids; all parties when left out"
    )


class PaperServiceIn(InputModel):
    """The clerk records a paper service made outside the system, with its proof."""

    party_id: str = Field(min_length=1, max_length=40)
    way: PaperWay
    delivered_at: AwareDatetime = Field(description="when the party received it (签收)")
    receipt_file_id: ObjectIdStr | None = Field(
        None, description="a scan of the signed 送达回证 or the postal receipt, uploaded first"
    )
    note: str | None = Field(None, max_length=200)


# ---- stored


class RecipientDoc(BaseModel):
    party_id: str
    name: str
    role: str  # 原告 / 被告 / 第三人
    user_id: str | None = None
    method: ServiceMethod
    address: str | None = None
    delivered_at: dt.datetime | None = None
    read_at: dt.datetime | None = None
    read_by: str | None = None
    paper_way: PaperWay | None = None  # set when the clerk records a paper service
    receipt_file_id: str | None = None
    recorded_by: str | None = None


class ServedDocumentDoc(BaseModel):
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    id: Any = Field(alias="_id")
    case_id: str
    court_id: str
    kind: DocumentKind
    title: str
    file_id: str
    filename: str
    size: int
    sha256: str
    served_by: str
    served_by_name: str | None = None
    served_at: dt.datetime
    recipients: list[RecipientDoc]
    reader_ids: list[str] = Field(default_factory=list)
    case_no: str | None = None
    # the 验证码 printed on a document the court generated (none on an uploaded one)
    verify_code: str | None = None


class OwedDocumentsDoc(BaseModel):
    """A case's acceptance documents still to be made and served (collection
    ``documents_owed``, one per case, ``_id`` the case's id): written in the acceptance's
    transaction, removed in the one that serves them."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id")
    court_id: str
    kinds: list[DocumentKind]
    by: str  # the staff member who accepted the case: the documents are served in their name
    since: dt.datetime


# ---- outputs


class RecipientOut(OutputModel):
    party_id: str
    name: str
    role: str = Field(examples=["原告"])
    method: ServiceMethod
    address: str | None = None
    delivered_at: dt.datetime | None = Field(None, description="None: awaiting paper service")
    read_at: dt.datetime | None = Field(None, description="first read (已阅知)")
    paper_way: PaperWay | None = Field(None, description="how it was served on paper")


class DocumentOut(OutputModel):
    id: str
    case_id: str
    kind: DocumentKind
    title: str
    file_id: str | None = Field(None, description="left out of a recipient's listings")
    filename: str
    size: int
    sha256: str
    served_at: dt.datetime
    served_by: str | None = Field(None, description="the clerk's name")
    download_url: str | None = Field(None, examples=["/api/v1/files/6650a1b2c3d4e5f601234567"])
    recipients: list[RecipientOut]


class DocumentList(OutputModel):
    items: list[DocumentOut]


class CertificateDocument(OutputModel):
    kind: DocumentKind
    title: str
    sha256: str
    file_id: str
    filename: str
    served_at: dt.datetime


class CertificateLine(OutputModel):
    party_id: str
    party_name: str
    role: str
    method: ServiceMethod
    address: str | None = None
    delivered_at: dt.datetime | None = None
    read_at: dt.datetime | None = None
    read_by: str | None = Field(None, description="party: the party themself; agent: their lawyer")
    served_by: str | None = None
    paper_way: PaperWay | None = None
    receipt_file_id: str | None = None


class CertificateOut(OutputModel):
    """送达回证: what (by its hash) was served to whom, delivered and read when."""

    case_no: str
    court_id: str
    document: CertificateDocument
    recipients: list[CertificateLine]


class VerifyQuery(InputModel):
    code: str = Field(min_length=4, max_length=40, description="the 验证码 printed on the document")


class VerifyOut(OutputModel):
    """What anyone holding a document may check: it is the court's, as served; nothing
    about the parties."""

    verify_code: str = Field(description="the 验证码, as stored")
    court_id: str
    court_name: str
    case_no: str
    kind: DocumentKind
    title: str
    served_at: dt.datetime = Field(description="when the court served it")
    sha256: str = Field(description="of the file as served: a changed byte no longer matches")


class ConsentOut(OutputModel):
    case_id: str
    party_id: str
    agree: bool
    consented_at: dt.datetime | None = None
    address: str | None = None
