"""Fee notices (缴费通知书): what a case owes the court, by when, and what was paid.

A notice is issued when a filing is accepted (the acceptance fee, 案件受理费), computed by
``server/fee_schedule.py`` from the case's fee kind, amount and procedure; a fee-relief decision
(司法救助) taken at acceptance waives, reduces or defers it. Money is in fen.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.common import InputModel, OutputModel


class NoticeStatus(StrEnum):
    pending = "pending"  # to be paid
    paid = "paid"
    waived = "waived"  # 免交: nothing to pay
    cancelled = "cancelled"


class ReliefGrant(StrEnum):
    defer = "defer"  # 缓交: a later due date
    reduce = "reduce"  # 减交: a smaller amount
    waive = "waive"  # 免交
    deny = "deny"  # 不予准许: the full fee, on the usual deadline


class ReliefDecisionIn(InputModel):
    """The court's decision on the filer's fee-relief request, taken at acceptance."""

    grant: ReliefGrant
    amount_fen: int | None = Field(
        None, gt=0, le=10**13, description="reduce: what is still to be paid, in fen"
    )
    due_date: dt.date | None = Field(None, description="defer: the new last day to pay")
    reason: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _fits_grant(self) -> ReliefDecisionIn:
        if (self.grant == ReliefGrant.reduce) != (self.amount_fen is not None):
            raise ValueError("amount_fen is given with grant=reduce, and only then")
        if (self.grant == ReliefGrant.defer) != (self.due_date is not None):
            raise ValueError("due_date is given with grant=defer, and only then")
        return self


# ---- stored


class FeeLine(BaseModel):
    """One line of the computation, as the fee schedule explains it."""

    model_config = ConfigDict(extra="allow")

    label: str


class ReliefDoc(BaseModel):
    grant: ReliefGrant
    requested: str | None = None  # what the filer asked for (defer/reduce/waive)
    reason: str | None = None
    decided_by: str
    decided_at: dt.datetime


class FeeNoticeDoc(BaseModel):
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    id: Any = Field(alias="_id")
    case_id: str
    case_no: str
    court_id: str
    kind: str = "acceptance"  # 案件受理费; other fees may follow
    fee_kind: str
    basis_amount_fen: int | None
    procedure: str
    full_fee_fen: int  # by the schedule, after any halving for the procedure
    amount_fen: int  # to pay, after fee relief
    paid_fen: int = 0
    breakdown: list[FeeLine]
    relief: ReliefDoc | None = None
    status: NoticeStatus
    payer_ids: list[str]  # who may pay it: the plaintiffs with an account and their agent
    issued_at: dt.datetime
    due_at: dt.datetime
    overdue_at: dt.datetime | None = None  # set once by the sweep: 按撤诉处理 flagged
    paid_at: dt.datetime | None = None
    document_id: str | None = None
    version: int = 1


# ---- outputs


class FeeNoticeOut(OutputModel):
    id: str
    case_id: str
    case_no: str
    kind: str = Field(examples=["acceptance"])
    fee_kind: str = Field(examples=["property"])
    basis_amount_fen: int | None
    procedure: str
    full_fee_fen: int
    amount_fen: int
    paid_fen: int
    status: NoticeStatus
    relief: ReliefGrant | None
    issued_at: dt.datetime
    due_at: dt.datetime
    overdue: bool
    document_id: str | None
    breakdown: list[dict[str, Any]]


def notice_out(doc: FeeNoticeDoc) -> FeeNoticeOut:
    return FeeNoticeOut(
        id=str(doc.id),
        case_id=doc.case_id,
        case_no=doc.case_no,
        kind=doc.kind,
        fee_kind=doc.fee_kind,
        basis_amount_fen=doc.basis_amount_fen,
        procedure=doc.procedure,
        full_fee_fen=doc.full_fee_fen,
        amount_fen=doc.amount_fen,
        paid_fen=doc.paid_fen,
        status=doc.status,
        relief=doc.relief.grant if doc.relief else None,
        issued_at=doc.issued_at,
        due_at=doc.due_at,
        overdue=doc.overdue_at is not None,
        document_id=doc.document_id,
        breakdown=[line.model_dump() for line in doc.breakdown],
    )
