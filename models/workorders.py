"""Messages to the court (联系法官) and their work orders (工单): one document, one id.

A message becomes a work order: numbered, routed, given deadlines on the court's working
calendar, followed up and answered in a thread, closed, then rated by its sender (回访).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from models.cases import EARLIEST_DAY, LATEST_DAY, ObjectIdStr
from models.common import InputModel, OutputModel, PageQuery
from models.users import Phone

MAX_CONTENT = 1000  # characters of one message or reply (WeChat's check takes 2,500)
MAX_ATTACHMENTS = 9  # what wx.chooseMedia picks at most


class Category(StrEnum):
    progress = "进度查询"
    hearing = "庭审安排"
    evidence = "证据材料"
    fees = "缴费退费"
    execution = "执行"
    complaint = "投诉"
    other = "其他"


class WorkOrderStatus(StrEnum):
    """pending (no one assigned: the service desk) -> assigned -> replied -> closed. A
    follow-up of the sender after a reply takes a replied order back to assigned."""

    pending = "pending"
    assigned = "assigned"
    replied = "replied"
    closed = "closed"


STATUS_NAMES = {
    WorkOrderStatus.pending: "待分派",
    WorkOrderStatus.assigned: "待答复",
    WorkOrderStatus.replied: "已答复",
    WorkOrderStatus.closed: "已办结",
}
OPEN = (WorkOrderStatus.pending, WorkOrderStatus.assigned, WorkOrderStatus.replied)


class DeadlineKind(StrEnum):
    assign = "assign"  # 分派
    reply = "reply"  # 首次答复
    close = "close"  # 办结


DEADLINE_NAMES = {
    DeadlineKind.assign: "分派",
    DeadlineKind.reply: "答复",
    DeadlineKind.close: "办结",
}


class GroupBy(StrEnum):
    assignee = "assignee"
    category = "category"
    court = "court"
    channel = "channel"


class Channel(StrEnum):
    """Where an order came in (1+N): the mini-program, or one of the desk's channels."""

    miniprogram = "miniprogram"
    hotline_12368 = "hotline_12368"
    service_line = "service_line"
    counter = "counter"
    letter = "letter"


CHANNEL_NAMES = {
    Channel.miniprogram: "移动微法院",
    Channel.hotline_12368: "12368热线",
    Channel.service_line: "诉讼服务热线",
    Channel.counter: "窗口",
    Channel.letter: "来信",
}
DeskChannel = Literal["hotline_12368", "service_line", "counter", "letter"]


class CallbackResult(StrEnum):
    reached = "reached"
    no_answer = "no_answer"
    refused = "refused"


Content = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=MAX_CONTENT,
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$",  # newlines and tabs only
    ),
]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Attachments = Annotated[list[ObjectIdStr], Field(max_length=MAX_ATTACHMENTS)]


# ---- inputs


class MessageCreate(InputModel):
    case_id: ObjectIdStr | None = Field(
        None, description="a case of yours; without one the message goes to the service desk"
    )
    court_id: str | None = Field(
        None, max_length=40, description="without a case: the court to write to"
    )
    category: Category
    content: Content
    attachments: Attachments = Field(default_factory=list, description="ids of your uploads")

    @model_validator(mode="after")
    def _where(self) -> MessageCreate:
        if self.case_id is None and self.court_id is None:
            raise ValueError("没有案件时请选择法院（court_id）")
        return self


class ReplyIn(InputModel):
    content: Content
    attachments: Attachments = Field(default_factory=list)


class RatingIn(InputModel):
    score: StrictInt = Field(ge=1, le=5, description="1 (very dissatisfied) to 5 (very satisfied)")
    comment: Note | None = None


class AssignIn(InputModel):
    assignee_id: ObjectIdStr
    note: Note | None = None


class CloseIn(InputModel):
    note: Note | None = Field(None, description="办结说明")


class HoldDecisionIn(InputModel):
    """A supervisor's decision on content WeChat's check held for a person to read."""

    release: StrictBool = Field(description="true: on to the judge; false: refused")
    note: Note | None = Field(None, description="why refused (told to the sender)")


class CallerIn(InputModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    phone: Phone = Field(description="mainland mobile number, 11 digits: answers go there by SMS")


class DeskOrderCreate(InputModel):
    """An order the service desk opens for a caller (12368, service line, counter, letter)."""

    channel: DeskChannel
    caller: CallerIn
    case_no: str | None = Field(None, min_length=1, max_length=40)
    query_code: str | None = Field(None, min_length=1, max_length=40)
    category: Category
    content: Content
    attachments: Attachments = Field(default_factory=list, description="ids of the desk's uploads")

    @model_validator(mode="after")
    def _pair(self) -> DeskOrderCreate:
        if (self.case_no is None) != (self.query_code is None):
            raise ValueError("案号与查询码须同时提供")
        return self


class CallbackIn(InputModel):
    result: CallbackResult
    note: Note | None = None


class MessageQuery(PageQuery):
    status: WorkOrderStatus | None = None


class WorkOrderQuery(PageQuery):
    status: WorkOrderStatus | None = None
    assignee_id: ObjectIdStr | None = None
    category: Category | None = None
    overdue: bool | None = Field(None, description="true: past a deadline now (open orders)")


class StatsQuery(InputModel):
    date_from: dt.date = Field(alias="from", ge=EARLIEST_DAY, le=LATEST_DAY)
    date_to: dt.date = Field(alias="to", ge=EARLIEST_DAY, le=LATEST_DAY)
    group_by: GroupBy = GroupBy.assignee
    format: Literal["json", "csv"] = Field("json", description="csv: a spreadsheet download")
    court_id: str | None = Field(
        None, max_length=40, description="system administrators: one court (default: all)"
    )

    @model_validator(mode="after")
    def _order(self) -> StatsQuery:
        if self.date_to < self.date_from:
            raise ValueError("to 不能早于 from")
        return self


# ---- stored


class ThreadEntry(BaseModel):
    id: str
    by: str  # user id
    side: Literal["sender", "court"]
    name: str | None = None  # staff name, for the sender's view
    content: str
    attachments: list[str] = Field(default_factory=list)
    at: dt.datetime
    held: bool = False  # a follow-up held for content review: staff other than supervisors
    # do not see it until a supervisor releases it


class Held(BaseModel):
    """Content held for a supervisor (msgSecCheck v2 said ``review``, or could not judge)."""

    reason: str  # "content_review" or "no_recent_visit"
    since: dt.datetime
    routed: bool  # False: a new message, kept from its judge (``route``) until released
    route: str | None = None
    case_staff_ids: list[str] = Field(default_factory=list)


class Step(BaseModel):
    """One escalation step: a deadline (level 1, 督办) or twice its time (level 2, 庭长)."""

    kind: DeadlineKind
    level: int
    at: dt.datetime


class Escalation(BaseModel):
    kind: DeadlineKind
    level: int
    due_at: dt.datetime
    at: dt.datetime  # when the sweep escalated it


class Rating(BaseModel):
    score: int
    comment: str | None = None
    at: dt.datetime


class Callback(BaseModel):
    result: CallbackResult
    note: str | None = None
    by: str
    at: dt.datetime


class SmsRecord(BaseModel):
    """One SMS to the caller, and its delivery receipt once it comes."""

    id: str  # its outbox item's
    serial_no: str | None = None
    purpose: str
    status: str  # queued, sent, delivered, failed
    at: dt.datetime
    delivered_at: dt.datetime | None = None
    error: str | None = None


class WorkOrderDoc(BaseModel):
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    id: Any = Field(alias="_id")
    no: str
    seq: int
    year: int
    court_id: str
    sender_id: str
    sender_name: str | None = None
    case_id: str | None = None
    case_no: str | None = None
    case_staff_ids: list[str] = Field(default_factory=list)
    category: Category
    status: WorkOrderStatus
    assignee_id: str | None = None
    assigned_at: dt.datetime | None = None
    thread: list[ThreadEntry]
    excerpt: str
    attachments: list[str] = Field(default_factory=list)
    content_check: dict[str, Any] = Field(default_factory=dict)
    assign_due_at: dt.datetime
    first_reply_due_at: dt.datetime
    close_due_at: dt.datetime
    steps: list[Step]
    escalations: list[Escalation] = Field(default_factory=list)
    escalation_level: int = 0
    overdue_at: dt.datetime | None = None  # when the current stage's deadline passes
    sweep_at: dt.datetime | None = None  # the next escalation step still to take
    first_replied_at: dt.datetime | None = None
    first_reply_seconds: float | None = None
    first_reply_on_time: bool | None = None
    closed_at: dt.datetime | None = None
    closed_by: str | None = None
    close_note: str | None = None
    closed_on_time: bool | None = None
    rating: Rating | None = None
    rating_score: int | None = None
    held: Held | None = None
    channel: Channel = Channel.miniprogram
    caller_phone: str | None = None  # desk orders: where answers go by SMS
    opened_by: str | None = None  # desk orders: the staff member who opened it
    link_token: str | None = None  # desk orders: the SMS's short link
    callbacks: list[Callback] = Field(default_factory=list)
    called_back: bool = False  # a call-back reached the caller
    sms: list[SmsRecord] = Field(default_factory=list)
    version: int = 1
    created_at: dt.datetime
    updated_at: dt.datetime


# ---- outputs


class ThreadEntryOut(OutputModel):
    id: str
    side: Literal["sender", "court"]
    name: str | None = Field(None, description="who answered for the court")
    by: str | None = Field(None, description="staff only: the author's user id")
    content: str
    attachments: list[str]
    at: dt.datetime


class RatingOut(OutputModel):
    score: int
    comment: str | None
    at: dt.datetime


class EscalationOut(OutputModel):
    kind: DeadlineKind
    level: int = Field(description="1: 督办 (supervisors), 2: 庭长 (division heads)")
    due_at: dt.datetime
    at: dt.datetime


class AssigneeOut(OutputModel):
    id: str | None = Field(None, description="staff only")
    name: str | None


class CallbackOut(OutputModel):
    result: CallbackResult
    note: str | None
    by: str
    at: dt.datetime


class SmsOut(OutputModel):
    id: str
    serial_no: str | None
    purpose: str
    status: str = Field(description="queued, sent, delivered or failed")
    at: dt.datetime
    delivered_at: dt.datetime | None
    error: str | None


class WorkOrderSummary(OutputModel):
    id: str = Field(description="the message's id and its work order's")
    no: str = Field(examples=["GD2026京0105-000123"])
    court_id: str
    case_id: str | None
    case_no: str | None
    category: Category
    status: WorkOrderStatus
    status_name: str
    excerpt: str
    assignee: AssigneeOut | None
    first_reply_due_at: dt.datetime
    close_due_at: dt.datetime
    overdue: bool = Field(description="a deadline of its current stage has passed")
    escalation_level: int
    replied: bool
    rated: bool
    channel: Channel = Channel.miniprogram
    created_at: dt.datetime
    updated_at: dt.datetime


class WorkOrderOut(WorkOrderSummary):
    held: str | None = Field(
        None, description="held for a supervisor's content review: why (else null)"
    )
    content: str
    attachments: list[str]
    thread: list[ThreadEntryOut]
    assign_due_at: dt.datetime
    overdue_since: dt.datetime | None = Field(None, description="when it became overdue")
    first_replied_at: dt.datetime | None
    closed_at: dt.datetime | None
    close_note: str | None
    rating: RatingOut | None
    sender_id: str | None = Field(None, description="staff only")
    sender_name: str | None = Field(None, description="staff only")
    escalations: list[EscalationOut] = Field(default_factory=list, description="staff only")
    caller_phone: str | None = Field(None, description="desk orders, staff only")
    callbacks: list[CallbackOut] = Field(default_factory=list, description="回拨, staff only")
    sms: list[SmsOut] = Field(default_factory=list, description="SMS to the caller, staff only")
    answered: bool = Field(
        False, description="the answer reached the sender (desk orders: SMS delivered or reached)"
    )


class StatsRow(OutputModel):
    key: str | None = Field(
        description="the assignee's id, the category, the court's id or the channel"
    )
    name: str | None
    received: int
    replied: int
    closed: int
    reply_rate: float | None = Field(description="replied / received")
    answered: int = Field(description="answers that reached the sender (same as replied)")
    called_back: int = Field(description="orders whose caller a call-back reached")
    callback_rate: float | None = Field(description="called_back / received")
    due: int = Field(description="orders whose first reply is made or overdue")
    on_time: int = Field(description="first replies made by their deadline")
    on_time_rate: float | None = Field(description="on_time / due")
    median_first_reply_seconds: float | None
    p90_first_reply_seconds: float | None
    overdue_now: int
    rated: int
    average_rating: float | None


class StatsOut(OutputModel):
    date_from: dt.date
    date_to: dt.date
    group_by: GroupBy
    court_ids: list[str]
    generated_at: dt.datetime
    total: StatsRow
    rows: list[StatsRow]
