"""Cases: the stored document (born at acceptance) and its parts."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from models.common import InputModel, ObjectIdStr, OutputModel, PageQuery
from models.documents import DocumentOut
from models.filings import FeeReliefIn, PartyDoc, PartyOut, Procedure


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
    fee_overdue: bool = False  # set by the fee sweep: unpaid past the deadline (按撤诉处理)
    timeline: list[TimelineEvent] = Field(default_factory=list)
    accepted_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime
    last_activity_at: dt.datetime

    def parties(self) -> list[CasePartyDoc]:
        return [*self.plaintiffs, *self.defendants, *self.third_parties]


# ---- administration: the milestones and the order they come in

STATUS_ORDER: tuple[CaseStatus, ...] = tuple(CaseStatus)
STATUS_NAMES = {
    CaseStatus.accepted: "已立案",
    CaseStatus.assigned: "已分案",
    CaseStatus.scheduled: "已排期",
    CaseStatus.heard: "已开庭",
    CaseStatus.judged: "已宣判",
    CaseStatus.closed: "已结案",
    CaseStatus.archived: "已归档",
}
OPEN_STATUSES = frozenset(STATUS_ORDER[: STATUS_ORDER.index(CaseStatus.closed)])


class EventKind(StrEnum):
    assign = "分案"
    schedule = "排期"
    hear = "庭审"
    judge = "宣判"
    close = "结案"
    archive = "归档"
    withdraw = "撤诉结案"  # closed early: the plaintiff withdrew (准予撤诉)
    mediate = "调解结案"  # closed early: a mediation agreement (调解书)


BEFORE_JUDGMENT = (CaseStatus.accepted, CaseStatus.assigned, CaseStatus.scheduled, CaseStatus.heard)
# Each milestone moves the case on: (the statuses it may come from, the status it leaves).
TRANSITIONS: dict[EventKind, tuple[tuple[CaseStatus, ...], CaseStatus]] = {
    EventKind.assign: ((CaseStatus.accepted,), CaseStatus.assigned),
    EventKind.schedule: ((CaseStatus.assigned,), CaseStatus.scheduled),
    EventKind.hear: ((CaseStatus.scheduled,), CaseStatus.heard),
    EventKind.judge: ((CaseStatus.heard,), CaseStatus.judged),
    EventKind.close: ((CaseStatus.judged,), CaseStatus.closed),
    EventKind.archive: ((CaseStatus.closed,), CaseStatus.archived),
    EventKind.withdraw: (BEFORE_JUDGMENT, CaseStatus.closed),
    EventKind.mediate: (BEFORE_JUDGMENT, CaseStatus.closed),
}
CLOSING = frozenset({EventKind.close, EventKind.withdraw, EventKind.mediate})


class HearingKind(StrEnum):
    trial = "开庭"
    mediation = "调解"
    inquiry = "询问"
    pronouncement = "宣判"


class HearingStatus(StrEnum):
    scheduled = "scheduled"
    cancelled = "cancelled"
    held = "held"


Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


def _room(value: object) -> object:
    """One spelling per room: full-width and half-width alike, no control characters."""
    if isinstance(value, str):
        value = unicodedata.normalize("NFKC", value).strip()
    return value


def _iso_time(value: object) -> object:
    """Parsed here: after a before-validator a strict (JSON body) validation takes no text."""
    if isinstance(value, dt.datetime):
        return value
    try:  # not a bare number of seconds: say the time zone
        if not isinstance(value, str):
            raise TypeError(value)
        return dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError("时间应为带时区的 ISO 8601 格式，如 2026-12-01T09:30:00+08:00") from None


def _plausible(value: dt.datetime) -> dt.datetime:
    if not 2000 <= value.year <= 2100:
        raise ValueError("时间超出合理范围")
    return value.astimezone(dt.UTC)


Room = Annotated[
    str,
    BeforeValidator(_room),
    StringConstraints(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
HearingTime = Annotated[AwareDatetime, BeforeValidator(_iso_time), AfterValidator(_plausible)]
# （2026）京0105民初1234号: full-width parentheses, year, court code, type code, number, 号.
CASE_NO_PATTERN = r"^（(?:19|20)\d{2}）[\u4e00-\u9fff]\d{0,6}[\u4e00-\u9fff]{1,3}[1-9]\d{0,6}号$"
QUERY_CODE_PATTERN = r"^[2-9A-HJ-NP-Z]{8}$"


class AssignIn(InputModel):
    judge_id: ObjectIdStr
    clerk_id: ObjectIdStr
    note: Note | None = None


class EventIn(InputModel):
    kind: EventKind
    note: Note | None = None
    judge_id: ObjectIdStr | None = Field(None, description="分案 only: assign at the same time")
    clerk_id: ObjectIdStr | None = Field(None, description="分案 only: assign at the same time")


class HearingIn(InputModel):
    at: HearingTime
    room: Room
    kind: HearingKind = HearingKind.trial
    online: StrictBool = False
    duration_minutes: int = Field(60, ge=15, le=480)


class HearingUpdate(InputModel):
    at: HearingTime
    room: Room | None = None
    duration_minutes: int | None = Field(None, ge=15, le=480)


class HearingCancelIn(InputModel):
    reason: Note


class LookupIn(InputModel):
    case_no: str = Field(max_length=40, description="（2026）京0105民初1234号")
    query_code: str = Field(max_length=16, description="查询码: 8 characters")

    @field_validator("case_no", mode="before")
    @classmethod
    def _full_width(cls, value: Any) -> Any:
        """Phones often type ASCII parentheses; the number itself is checked strictly."""
        if isinstance(value, str):
            value = "".join(value.split()).replace("(", "（").replace(")", "）")
            if not re.fullmatch(CASE_NO_PATTERN, value):
                raise ValueError("案号格式有误，例如：（2026）京0105民初1234号")
        return value

    @field_validator("query_code", mode="before")
    @classmethod
    def _code(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
            if not re.fullmatch(QUERY_CODE_PATTERN, value):
                raise ValueError("查询码应为8位字母或数字")
        return value


EARLIEST_DAY, LATEST_DAY = dt.date(2000, 1, 1), dt.date(2999, 12, 31)


class CaseQuery(PageQuery):
    status: CaseStatus | None = None
    judge_id: ObjectIdStr | None = Field(None, description="staff only: one judge's cases")
    accepted_from: dt.date | None = Field(
        None, ge=EARLIEST_DAY, le=LATEST_DAY, description="accepted on or after (court date)"
    )
    accepted_to: dt.date | None = Field(
        None, ge=EARLIEST_DAY, le=LATEST_DAY, description="accepted on or before (court date)"
    )


class HearingDoc(BaseModel):
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    id: Any = Field(alias="_id")
    case_id: str
    case_no: str
    court_id: str
    room: str
    kind: HearingKind
    online: bool
    starts_at: dt.datetime
    ends_at: dt.datetime
    duration_minutes: int
    status: HearingStatus
    reminder_pending: bool = False
    cancel_reason: str | None = None
    version: int = 1
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime


# ---- outputs


class HearingOut(OutputModel):
    id: str
    case_id: str
    case_no: str
    kind: HearingKind
    room: str
    online: bool
    starts_at: dt.datetime
    ends_at: dt.datetime
    duration_minutes: int
    status: HearingStatus
    cancel_reason: str | None = None


class TimelineOut(OutputModel):
    at: dt.datetime
    kind: str
    note: str | None = None
    by: str | None = Field(None, description="staff only: who recorded it")


class StaffRef(OutputModel):
    id: str
    name: str | None


class FeeStatusOut(OutputModel):
    """The case's fees in one line: not_issued, pending, overdue, paid or waived."""

    status: str = Field("not_issued", examples=["pending"])
    amount_fen: int = 0
    paid_fen: int = 0
    due_at: dt.datetime | None = None


class CaseSummary(OutputModel):
    """A case in a list: never the query code."""

    id: str
    case_no: str
    court_id: str
    court_name: str
    cause: str | None
    procedure: Procedure
    status: CaseStatus
    status_name: str
    plaintiff_names: list[str]
    defendant_names: list[str]
    judge_id: str | None
    accepted_at: dt.datetime
    last_activity_at: dt.datetime


class CaseOut(CaseSummary):
    viewer: Viewer
    case_kind: str
    amount_fen: int | None
    plaintiffs: list[PartyOut]
    defendants: list[PartyOut]
    third_parties: list[PartyOut]
    judge: StaffRef | None
    clerk: StaffRef | None
    timeline: list[TimelineOut]
    hearings: list[HearingOut]
    fees: FeeStatusOut
    documents: list[DocumentOut] = Field(
        default_factory=list, description="served documents with delivery and read times"
    )
    query_code: str | None = Field(None, description="to the case's parties and agents only")
    team_phone: str | None = Field(
        None, description="the judge's team number (N号码): the parties call the team directly"
    )
