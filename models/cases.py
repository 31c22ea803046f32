"""Cases: the stored document (born at acceptance) and its parts."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.filings import FeeReliefIn, PartyDoc, Procedure


class CaseStatus(StrEnum):
    """In the order a case moves through; see server/cases.py for the allowed moves."""

    accepted = "accepted"  # 已立案
    assigned = "assigned"  # 已分案
    scheduled = "scheduled"  # 已排期
    heard = "heard"  # 已开庭
    judged = "judged"  # 已宣判
    closed = "closed"  # 已结案
    archived = "archived"  # 已归档


class Viewer(StrEnum):
    party = "party"
    agent = "agent"
    staff = "staff"


class EServiceConsent(BaseModel):
    """A party's consent to electronic service (电子送达): when, and the address confirmed."""

    consented_at: dt.datetime
    address: str
    user_id: str


class CasePartyDoc(PartyDoc):
    e_service: EServiceConsent | None = None


class TimelineEvent(BaseModel):
    at: dt.datetime
    kind: str
    by: str | None = None
    note: str | None = None


class CaseDoc(BaseModel):
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    id: Any = Field(alias="_id")
    case_no: str
    seq: int
    year: int
    court_id: str
    type_code: str
    case_kind: str
    filing_id: str
    cause: str | None = None
    procedure: Procedure
    status: CaseStatus
    version: int = 1
    amount_fen: int | None = None
    plaintiffs: list[CasePartyDoc] = Field(default_factory=list)
    defendants: list[CasePartyDoc] = Field(default_factory=list)
    third_parties: list[CasePartyDoc] = Field(default_factory=list)
    party_user_ids: list[str] = Field(default_factory=list)
    agent_ids: list[str] = Field(default_factory=list)
    filer_id: str
    query_code_cipher: bytes
    judge_id: str | None = None
    clerk_id: str | None = None
    green_channel: list[str] = Field(default_factory=list)
    fee_relief: FeeReliefIn | None = None
    timeline: list[TimelineEvent] = Field(default_factory=list)
    accepted_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime
    last_activity_at: dt.datetime

    def parties(self) -> list[CasePartyDoc]:
        return [*self.plaintiffs, *self.defendants, *self.third_parties]
