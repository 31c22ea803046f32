"""Work orders (工单): what the message side (messages.py), the staff side (admin.py), the
escalation sweep and the statistics share. The orders are read and written by store.py.

One document in ``workorders`` is both the message thread and its work order, under one id.
Its number (工单号) is ``GD2026京0105-000123``: GD, the year (court time), the court's code
and a count per court and year from 1, taken by an ``$inc`` on a counter inside the
transaction that creates the order, so an aborted creation gives its number back (no gaps)
and two creations never share one (no repeats); the unique index on ``no`` stands behind it.

Who sees an order: its sender; staff of its court who are its assignee or the judge or
clerk of its case (as the case stood when the message was sent); the court's supervisors,
division heads and admins; the system administrator. Everyone else gets a 404.

Every change is a conditional update on the version read, in one transaction with its
notices and audit row; a change that loses to the sweep or to another change is re-read
and decided again (still allowed: applied; not any more: the 409 of the new state).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from models.users import STAFF_ROLES, Caller, Role
from models.workorders import (
    STATUS_NAMES,
    AssigneeOut,
    CallbackOut,
    Channel,
    EscalationOut,
    RatingOut,
    SmsOut,
    ThreadEntryOut,
    WorkOrderDoc,
    WorkOrderOut,
    WorkOrderStatus,
    WorkOrderSummary,
)
from server.files.service import FileService
from server.identity.users import Directory, UserService
from server.notify.inbox import Notice, NotificationService
from server.platform.access import Access
from server.platform.clock import SHANGHAI, Clock
from server.platform.config import CourtSettings, Settings
from server.platform.counters import Counters
from server.platform.db import Database, in_transaction, read_decide_write
from server.platform.errors import NotFound, ValidationFailed
from server.platform.group_commit import GroupCommit, GroupCommits, GroupWork
from server.workorders import rollups
from server.workorders.errors import ThreadFull, WorkOrderBusy, WorkOrderClosed, WorkOrderNotFound
from server.workorders.rules import overdue
from server.workorders.store import WorkOrderStore, workorder_number

ATTEMPTS = 5  # re-reads when a change lost to the sweep or another change


def _number_key(court: CourtSettings, year: int) -> str:
    return f"workorder_no|{court.id}|{year}"


I = TypeVar("I")  # noqa: E741 (an item of a group)
R = TypeVar("R")
TEMPLATE = "workorder_update"
EXCERPT = 60


class Standing(StrEnum):
    """How a user stands to an order."""

    sender = "sender"
    handler = "handler"  # its assignee, or the judge or clerk of its case
    supervisor = "supervisor"  # the court's supervisors, division heads, admins


def ensure_writable(doc: WorkOrderDoc, max_thread: int) -> None:
    """A reply or follow-up may be added: 409 once closed, or when the thread is full."""
    if doc.status == WorkOrderStatus.closed:
        raise WorkOrderClosed()
    if len(doc.thread) >= max_thread:
        raise ThreadFull()


def attachments_problem(error: ValidationFailed) -> ValidationFailed:
    """FileService names the field ``file_ids``; here it is ``attachments``."""
    details = [{**d, "loc": ["attachments", *d["loc"][1:]]} for d in error.details or []]
    return type(error)(error.message, details=details)


class NoticeText(NamedTuple):
    """What a notice about an order says."""

    kind: str
    title: str
    body: str


class Number(NamedTuple):
    """An order's count within its court and year, and its number (工单号)."""

    seq: int
    no: str


class Telling(NamedTuple):
    """Who hears what of which order (``tell_many``)."""

    user_ids: Sequence[str]
    doc: WorkOrderDoc
    notice: NoticeText


def when(at: dt.datetime | None) -> str:
    """``11月24日 10:00`` in Beijing time, for notices."""
    return at.astimezone(SHANGHAI).strftime("%m月%d日 %H:%M") if at else ""


def standing_of(caller: Caller, order: WorkOrderDoc) -> Standing | None:
    """How ``caller`` stands to ``order``; None: they may not see it."""
    uid = str(caller.id)
    if caller.role not in STAFF_ROLES:
        by_phone = order.caller_phone is not None and caller.verified_phone == order.caller_phone
        return Standing.sender if order.sender_id == uid or by_phone else None
    if caller.role == Role.admin and caller.court_id is None:
        return Standing.supervisor  # the system administrator
    if caller.court_id != order.court_id:
        return None
    if caller.oversees:
        return Standing.supervisor
    if uid in (order.assignee_id, *order.case_staff_ids):
        return Standing.handler
    if caller.service_desk and order.channel != Channel.miniprogram:
        return Standing.handler  # the desk follows the callers' orders up (回拨)
    return None


@dataclass
class Change:
    """What a decided change writes, and what it does after in the same transaction."""

    update: dict[str, Any]
    after: Callable[[WorkOrderDoc, AsyncClientSession], Awaitable[None]] | None = None


Decide = Callable[[WorkOrderDoc, Standing], Change | None]
WorkOrderAccess = Access[WorkOrderDoc, Standing]


class WorkOrderService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        users: UserService,
        files: FileService,
        notifications: NotificationService,
    ) -> None:
        self.db = db
        self.store = WorkOrderStore(db, rollups.zones(settings))
        self.files = files
        self.counters = Counters(db)
        self.groups = GroupCommits(db)
        self.directory = Directory(db)
        self.settings = settings
        self.clock = clock
        self.users = users
        self.notifications = notifications

    def now(self) -> dt.datetime:
        return self.clock.now()

    async def in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[Any]]) -> Any:
        """``work`` in one transaction, retried as ``server.platform.db`` retries it."""
        return await in_transaction(self.db, work)

    # ---- numbers

    async def next_numbers(
        self, court: CourtSettings, year: int, count: int, session: AsyncClientSession
    ) -> list[Number]:
        """The next ``count`` numbers of the court and year, consecutive."""
        first = await self.counters.take(_number_key(court, year), session, count)
        seqs = range(first, first + count)
        return [Number(seq, workorder_number(year, court.code, seq)) for seq in seqs]

    def numbering(
        self, court: CourtSettings, year: int, work: GroupWork[I, R]
    ) -> GroupCommit[I, R]:
        """The queue of the transactions that take ``next_numbers`` of a court and year: they
        commit in groups, ``work`` writing each (``server.platform.group_commit``)."""
        return self.groups.group(_number_key(court, year), work)

    # ---- access

    async def access_workorder(self, caller: Caller, order_id: str) -> WorkOrderAccess:
        """The order and how ``caller`` stands to it; 404 for anyone who may not see it."""
        doc = await self.store.load(order_id)
        seen_as = standing_of(caller, doc)
        if seen_as is None:
            raise WorkOrderNotFound()
        return Access(doc, seen_as)

    # ---- changing

    async def change(self, caller: Caller, order_id: str, decide: Decide) -> WorkOrderDoc:
        """Read, decide (raising the 403/409 of the state read), write on the version read;
        on a lost race read again. ``decide`` returning None means nothing to write."""

        async def decide_write(read: WorkOrderAccess) -> WorkOrderDoc:
            decided = decide(read.obj, read.standing)
            return read.obj if decided is None else await self._apply(read.obj, decided)

        return await read_decide_write(
            lambda: self.access_workorder(caller, order_id), decide_write, WorkOrderBusy, ATTEMPTS
        )

    async def change_unattended(
        self,
        load: Callable[[], Awaitable[WorkOrderDoc]],
        decide: Decide,
        standing: Standing = Standing.supervisor,
    ) -> WorkOrderDoc:
        """``change`` for what no signed-in caller does: an SMS receipt, a rating by the
        SMS's link; ``load`` gives the order (or its 404)."""

        async def read() -> WorkOrderAccess:
            return Access(await load(), standing)

        async def decide_write(read: WorkOrderAccess) -> WorkOrderDoc:
            decided = decide(read.obj, read.standing)
            return read.obj if decided is None else await self._apply(read.obj, decided)

        return await read_decide_write(read, decide_write, WorkOrderBusy, ATTEMPTS)

    async def _apply(self, doc: WorkOrderDoc, decided: Change) -> WorkOrderDoc:
        update = {k: dict(v) for k, v in decided.update.items()}
        update.setdefault("$set", {})["updated_at"] = self.clock.now()
        update.setdefault("$inc", {})["version"] = 1

        async def work(session: AsyncClientSession) -> WorkOrderDoc:
            new = await self.store.change_on_version(doc, update, session)
            if decided.after is not None:
                await decided.after(new, session)
            return new

        return await in_transaction(self.db, work)

    # ---- attachments and people

    async def owned(self, caller: Caller, file_ids: Sequence[str]) -> list[str]:
        """The ids, if every file is the caller's upload; 422 naming each that is not."""
        if not file_ids:
            return []
        try:
            return [f.id for f in await self.files.check_owned(str(caller.id), file_ids)]
        except ValidationFailed as e:
            raise attachments_problem(e) from None

    async def overseers(
        self, court_id: str, level: int = 1, session: AsyncClientSession | None = None
    ) -> list[str]:
        """Who hears of a court's unassigned and overdue orders: its supervisors (level 1)
        or its division heads (level 2); failing those, the next ones up, then its admins."""
        flags = ["supervisor", "division_head"] if level == 1 else ["division_head", "supervisor"]
        for flag in flags:
            found = await self.directory.flagged_staff_ids(court_id, flag, session)
            if found:
                return found
        return await self.notifications.court_staff(court_id, [Role.admin.value], session=session)

    async def staff_name(self, user_id: str | None) -> str | None:
        if not user_id:
            return None
        try:
            return (await self.users.get_cached(user_id)).name
        except NotFound:
            return None

    async def reachable(self, user_ids: Sequence[str]) -> set[str]:
        """Those of ``user_ids`` a subscribe message can reach: accounts with a WeChat
        openid. Staff sign in with a password: they get the inbox and the live feed."""
        found = set()
        for uid in dict.fromkeys(user_ids):
            try:
                if (await self.users.get_cached(uid)).openid:
                    found.add(uid)
            except NotFound:
                continue
        return found

    @staticmethod
    def notices(
        user_ids: Sequence[str],
        doc: WorkOrderDoc,
        notice: NoticeText,
        reachable: set[str],
        *,
        to_sender: bool = False,
        dedupe_key: str | None = None,
    ) -> list[Notice]:
        """A notice (kind, title, body) about ``doc`` for each recipient: a subscribe message
        too for those in ``reachable``; by default once per version of the order."""
        kind, title, body = notice
        page = "pages/message/detail" if to_sender else "pages/workorder/detail"
        common: dict[str, Any] = {
            "kind": kind,
            "title": title,
            "body": body,
            "data": {"workorder_id": str(doc.id), "no": doc.no, "status": doc.status.value},
            "page": f"{page}?id={doc.id}",
            "dedupe_key": dedupe_key or f"wo:{doc.id}:{kind}:{doc.version}",
        }
        pushed = [u for u in user_ids if u in reachable]
        quiet = [u for u in user_ids if u not in reachable]
        found = [Notice(user_ids=pushed, template=TEMPLATE, **common)] if pushed else []
        return found + ([Notice(user_ids=quiet, **common)] if quiet else [])

    async def tell(
        self,
        user_ids: Sequence[str],
        doc: WorkOrderDoc,
        notice: NoticeText,
        session: AsyncClientSession,
        *,
        to_sender: bool = False,
    ) -> None:
        """Notices about ``doc``: inbox, live feed and, where it can reach, a subscribe
        message; once per change of the order (the dedupe key holds its version)."""
        reach = await self.reachable(user_ids)
        found = self.notices(user_ids, doc, notice, reach, to_sender=to_sender)
        for n in found:
            await self.notifications.notify_notice(n, session=session)

    async def tell_many(self, tellings: Sequence[Telling], session: AsyncClientSession) -> None:
        """``tell`` of each new order's notice, in one write of them all (``notify_many``:
        a new order's notices are new, its dedupe keys hold its id)."""
        reach = await self.reachable([u for t in tellings for u in t.user_ids])
        found = [n for t in tellings for n in self.notices(t.user_ids, t.doc, t.notice, reach)]
        await self.notifications.notify_many(found, session=session)

    # ---- output

    async def out(self, doc: WorkOrderDoc, seen_as: Standing) -> WorkOrderOut:
        staff = seen_as != Standing.sender
        now = self.clock.now()
        base = summary_out(doc.model_dump(by_alias=True), now, staff)
        if base.assignee is not None:
            base.assignee.name = await self.staff_name(doc.assignee_id)
        hidden = seen_as == Standing.handler  # held content waits for a supervisor
        thread = [
            ThreadEntryOut(**e.model_dump(exclude={"by", "held"}), by=e.by if staff else None)
            for e in doc.thread
            if not (e.held and hidden)
        ]
        rating = RatingOut(**doc.rating.model_dump()) if doc.rating else None
        return WorkOrderOut(
            **base.model_dump(),
            content=doc.thread[0].content,
            attachments=doc.attachments,
            thread=thread,
            assign_due_at=doc.assign_due_at,
            overdue_since=doc.overdue_at if overdue(doc, now) else None,
            first_replied_at=doc.first_replied_at,
            closed_at=doc.closed_at,
            close_note=doc.close_note,
            rating=rating,
            sender_id=doc.sender_id if staff else None,
            sender_name=doc.sender_name if staff else None,
            escalations=[EscalationOut(**e.model_dump()) for e in doc.escalations] if staff else [],
            held=doc.held.reason if doc.held else None,
            **_desk_out(doc, staff),
        )


def _desk_out(doc: WorkOrderDoc, staff: bool) -> dict[str, Any]:
    """What a desk order adds (1+N): the caller's number, call-backs and SMS, for staff."""
    return {
        "answered": doc.first_replied_at is not None,
        "caller_phone": doc.caller_phone if staff else None,
        "callbacks": [CallbackOut(**c.model_dump()) for c in doc.callbacks] if staff else [],
        "sms": [SmsOut(**m.model_dump()) for m in doc.sms] if staff else [],
    }


def summary_out(raw: dict[str, Any], now: dt.datetime, staff: bool) -> WorkOrderSummary:
    """A list item, from a document read without its thread."""
    status = WorkOrderStatus(raw["status"])
    assignee = raw.get("assignee_id")
    due = raw.get("overdue_at")
    return WorkOrderSummary(
        id=str(raw["_id"]),
        no=raw["no"],
        court_id=raw["court_id"],
        case_id=raw.get("case_id"),
        case_no=raw.get("case_no"),
        category=raw["category"],
        status=status,
        status_name=STATUS_NAMES[status],
        excerpt=raw["excerpt"],
        assignee=AssigneeOut(id=assignee if staff else None, name=None) if assignee else None,
        first_reply_due_at=raw["first_reply_due_at"],
        close_due_at=raw["close_due_at"],
        overdue=due is not None and due <= now,
        escalation_level=raw.get("escalation_level", 0),
        replied=raw.get("first_replied_at") is not None,
        rated=raw.get("rating") is not None,
        channel=raw.get("channel") or Channel.miniprogram,
        created_at=raw["created_at"],
        updated_at=raw["updated_at"],
    )
