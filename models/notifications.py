"""Notifications: the in-app inbox, subscribe-message quotas and the outbox of pushes."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from models.common import InputModel, OutputModel, Page, PageQuery

TemplateId = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]{1,128}$")
]


class OutboxStatus(StrEnum):
    """Where one subscribe-message push stands; the last four are final."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    skipped_no_quota = "skipped_no_quota"  # the user granted no (more) sends of the template
    skipped_no_openid = "skipped_no_openid"  # e.g. staff signed in with a password
    failed = "failed"


# ---- inputs


class NotificationQuery(PageQuery):
    unread: bool = Field(False, description="true: only unread notices")


class SubscriptionsIn(InputModel):
    """What ``wx.requestSubscribeMessage`` accepted: WeChat template ids (not logical names)."""

    template_ids: list[TemplateId] = Field(min_length=1, max_length=20)


# ---- outputs


class NotificationOut(OutputModel):
    id: str
    kind: str = Field(examples=["filing_submitted"])
    title: str
    body: str
    data: dict[str, Any] = Field(default_factory=dict)
    page: str | None = Field(None, description="mini-program page to open")
    read: bool
    read_at: dt.datetime | None = None
    created_at: dt.datetime


class NotificationPage(Page[NotificationOut]):
    unread: int = Field(description="unread notices of the caller, in all")


class QuotaOut(OutputModel):
    template: str = Field(examples=["filing_decided"])
    template_id: str
    remaining: int


class SubscriptionsOut(OutputModel):
    quotas: list[QuotaOut]


def notification_out(doc: dict[str, Any]) -> NotificationOut:
    return NotificationOut(
        id=str(doc["_id"]),
        kind=doc["kind"],
        title=doc["title"],
        body=doc["body"],
        data=doc.get("data") or {},
        page=doc.get("page"),
        read=bool(doc.get("read")),
        read_at=doc.get("read_at"),
        created_at=doc["created_at"],
    )


# ---- SMS (1+N): Tencent Cloud SMS's status callback


class SmsReport(BaseModel):
    """One delivery report of Tencent Cloud SMS's status callback (a JSON list of these)."""

    sid: str = Field(max_length=64, description="the SerialNo SendSms answered")
    mobile: str = Field(max_length=20)
    report_status: str = Field(max_length=16, description="SUCCESS or FAIL")
    user_receive_time: str = Field("", max_length=32, description="Beijing time")
    nationcode: str = Field("86", max_length=8)
    errmsg: str = Field("", max_length=64)
    description: str = Field("", max_length=200)


class SmsReceiptsOut(OutputModel):
    result: int = Field(0, description="0: accepted (Tencent's own answer shape)")
    errmsg: str = "OK"
    recorded: int = Field(description="reports that named an SMS of ours, first seen")
