"""Messages to the court (联系法官), the sender's side: writing, following up, reading my
messages, and rating a closed one (回访). No HTTP in here.

Every text a party writes passes WeChat's content check (msgSecCheck v2, with the writer's
openid) before anything is stored: a flagged text is a 422 ``content_flagged`` and nothing
is written. A message becomes a work order in one transaction: its number, the order, the
court's read access to the attachments and the push to whoever must answer.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, NamedTuple

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.cases import CaseDoc
from models.common import Page
from models.users import Caller
from models.workorders import (
    Channel,
    DeskOrderCreate,
    MessageCreate,
    MessageQuery,
    RatingIn,
    ReplyIn,
    WorkOrderDoc,
    WorkOrderOut,
    WorkOrderStatus,
    WorkOrderSummary,
)
from server.cases.service import CaseService
from server.files.service import FileService, Grant
from server.identity.errors import IdentityPending
from server.identity.users import UserService
from server.platform.ahead import Ahead
from server.platform.calendar import Calendars
from server.platform.config import CourtSettings, Settings
from server.platform.errors import NotFound, UnknownCourt
from server.platform.paging import decode_cursor, encode_cursor, object_id
from server.platform.ratelimit import RateLimiter
from server.wechat.miniprogram import WeChatAdapter, WeChatError
from server.workorders.errors import (
    AlreadyRated,
    ContentCheckUnavailable,
    ContentFlagged,
    ContentTooLong,
    WorkOrderNotClosed,
    WorkOrderNotFound,
)
from server.workorders.hold import NO_RECENT_VISIT, held_notice, held_reason, hold_fields
from server.workorders.rules import deadlines, schedule, to_ms
from server.workorders.service import (
    EXCERPT,
    Change,
    NoticeText,
    Standing,
    Telling,
    WorkOrderService,
    ensure_writable,
    summary_out,
    when,
)
from server.workorders.store import caller_filter, mine_filter

TOO_LONG = 45002  # msgSecCheck: content size out of limit
NOT_RECENT_VISITOR = 61010  # msgSecCheck v2: the openid has not opened the app in 2 hours
log = logging.getLogger("microcourt.workorders")
# set later in an order's life; stored as null until then, so every order has one shape
LATER = (
    *("first_replied_at", "first_reply_seconds", "first_reply_on_time"),
    *("closed_at", "closed_by", "close_note", "closed_on_time", "rating", "rating_score"),
)


def announcement(doc: WorkOrderDoc) -> NoticeText:
    """The notice of a new order: to its assignee, or to assign it."""
    body = f"{doc.no}（{doc.category.value}）：{doc.excerpt[:30]}"
    if doc.assignee_id:
        due = f"{body}，请于{when(doc.first_reply_due_at)}前答复"
        return NoticeText("workorder_new", "新的留言待答复", due)
    return NoticeText(
        "workorder_new", "新的留言待分派", f"{body}，请于{when(doc.assign_due_at)}前分派"
    )


class Addressee(NamedTuple):
    """Where a message goes: the court, and the case if it is about one."""

    court: CourtSettings
    case: CaseDoc | None


class Opening(NamedTuple):
    """What a new order starts with besides the message: its assignee, files and check."""

    assignee: str | None
    attachments: list[str]
    check: dict[str, Any]


class NewOrder(NamedTuple):
    """A new order as its group's transaction writes it (``_open_group``): the document, still
    to be numbered, its court and its files."""

    doc: dict[str, Any]
    court: CourtSettings
    attachments: list[str]


class Origin(NamedTuple):
    """Who an order is for when the desk opens it (1+N): the channel and the caller, who
    has no account: answers go to their phone by SMS, with the order's short link."""

    channel: Channel
    name: str
    phone: str
    opened_by: str
    link_token: str

    def fields(self) -> dict[str, Any]:
        return {
            "channel": self.channel.value,
            "sender_id": f"phone:{self.phone}",  # no account: never a user's id
            "sender_name": self.name,
            "caller_phone": self.phone,
            "opened_by": self.opened_by,
            "link_token": self.link_token,
            "callbacks": [],
            "called_back": False,
            "sms": [],
        }


class MessageService:
    def __init__(
        self,
        settings: Settings,
        orders: WorkOrderService,
        cases: CaseService,
        users: UserService,
        files: FileService,
        calendars: Calendars,
        wechat: WeChatAdapter,
    ) -> None:
        self.settings = settings
        self.orders = orders
        self.cases = cases
        self.users = users
        self.files = files
        self.calendars = calendars
        self.wechat = wechat
        self.limiter = RateLimiter.shared(
            orders.db, "messages", settings.workorders.messages_per_minute, 60, orders.clock
        )

    # ---- checks made before anything is written

    async def check_content(self, caller: Caller, text: str) -> dict[str, Any]:
        """WeChat's verdict on a party's text: 422 flagged, 503 the check is unavailable."""
        if not caller.openid:
            raise ContentCheckUnavailable()
        try:
            verdict = await self.wechat.check_text(caller.openid, text)
        except WeChatError as e:
            if e.errcode == TOO_LONG:
                raise ContentTooLong() from None
            if e.errcode == NOT_RECENT_VISITOR:
                # WeChat judges only the text of a user seen in the last 2 hours: a person will
                log.info("content check refused (61010, no recent visit): held for review")
                return {"suggest": "review", "label": 0, "trace_id": "", "reason": NO_RECENT_VISIT}
            raise ContentCheckUnavailable() from None
        if verdict.risky:
            raise ContentFlagged(details={"label": verdict.label})
        return {"suggest": verdict.suggest, "label": verdict.label, "trace_id": verdict.trace_id}

    async def _where(self, caller: Caller, data: MessageCreate) -> Addressee:
        """The court written to, and the case (404 unless the caller is its party or agent)."""
        case = None
        if data.case_id is not None and caller.identity is None and caller.identity_claim:
            raise IdentityPending()  # a claim not yet face-verified speaks for no case
        if data.case_id is not None:
            case = (await self.cases.access_case(caller, data.case_id)).obj
        court_id = case.court_id if case else data.court_id
        court = self.settings.court(court_id or "")
        if court is None or (case and data.court_id not in (None, case.court_id)):
            raise UnknownCourt(
                "法院不存在或与案件不符",
                details=[{"loc": ["court_id"], "msg": "unknown court or not the case's court"}],
            )
        return Addressee(court, case)

    async def route(self, court: CourtSettings, case: CaseDoc | None) -> str | None:
        """The case's judge (or clerk, per the court's ``route_to``), the other one failing
        that, the service desk (None) without a case or when neither is an active member."""
        if case is None:
            return None
        first, second = (case.judge_id, case.clerk_id)
        if court.deadlines.workorder.route_to == "clerk":
            first, second = second, first
        for user_id in (first, second):
            if user_id and await self._active_staff(user_id, court.id):
                return user_id
        return None

    async def _active_staff(self, user_id: str, court_id: str) -> bool:
        try:
            user = await self.users.get_cached(user_id)  # a deactivation shows within 30 s
        except NotFound:
            return False
        return user.active and user.is_staff and user.court_id == court_id

    # ---- writing

    async def create(self, caller: Caller, data: MessageCreate) -> WorkOrderOut:
        """A new message and its work order. 429 too many messages; 404 a case not yours;
        422 bad court, files not yours, content flagged; 503 content check unavailable: the
        checks run at once (``Ahead``), their errors in that order."""
        self.limiter.refuse_known(str(caller.id))  # a flood is refused before any of it
        async with Ahead() as ahead:  # at once, their errors in this order
            where = ahead.start(self._where(caller, data))
            owned = ahead.start(self.orders.owned(caller, data.attachments))
            verdict = ahead.start(self.check_content(caller, data.content))
            await self.limiter.hit(str(caller.id))
            to, files, check = await where, await owned, await verdict
        assignee = await self.route(to.court, to.case)
        doc = await self.open_order(caller, data, to, Opening(assignee, files, check))
        return await self.orders.out(doc, Standing.sender)

    async def open_order(
        self,
        caller: Caller,
        data: MessageCreate | DeskOrderCreate,
        to: Addressee,
        opening: Opening,
        origin: Origin | None = None,
    ) -> WorkOrderDoc:
        """The one way a work order is made, whatever its channel: numbered, stored, its
        files granted to the court and its handlers told, in one transaction (its court's
        orders waiting for their counter share one: ``_open_group``)."""
        doc = self._document(caller, data, to, opening, origin)
        reason = held_reason(opening.check)
        if reason:  # kept, but for a supervisor to read before the judge sees it
            doc.update(hold_fields(reason, doc["created_at"], doc))
            doc["status"] = WorkOrderStatus.pending.value
            doc.update(schedule(WorkOrderDoc.model_validate(doc), WorkOrderStatus.pending, False))
        numbering = self.orders.numbering(to.court, doc["year"], self._open_group)
        return await numbering.run(NewOrder(doc, to.court, opening.attachments))

    async def _open_group(
        self, session: AsyncClientSession, group: list[NewOrder]
    ) -> list[WorkOrderDoc]:
        """A group of one court's new orders (same year) in one transaction: their
        consecutive numbers, the orders with their rollups, the grants and the notices."""
        first = group[0]
        numbers = await self.orders.next_numbers(
            first.court, first.doc["year"], len(group), session
        )
        docs = [{**o.doc, **n._asdict()} for o, n in zip(group, numbers, strict=True)]
        await self.orders.store.insert_many(docs, session)
        grants = [Grant(o.attachments, court_ids=[o.court.id]) for o in group if o.attachments]
        await self.files.grant_each(grants, session)
        orders = [WorkOrderDoc.model_validate(d) for d in docs]
        await self._announce(orders, session)
        return orders

    def _document(
        self,
        caller: Caller,
        data: MessageCreate | DeskOrderCreate,
        to: Addressee,
        opening: Opening,
        origin: Origin | None = None,
    ) -> dict[str, Any]:
        now = to_ms(self.orders.now())
        cal = self.calendars.for_court(to.court.id)
        status = WorkOrderStatus.assigned if opening.assignee else WorkOrderStatus.pending
        case = to.case
        doc: dict[str, Any] = {
            "_id": ObjectId(),
            "no": "",
            "seq": 0,
            "year": cal.local_date(now).year,
            "court_id": to.court.id,
            "sender_id": str(caller.id),
            "sender_name": caller.identity.name if caller.identity else caller.name,
            "case_id": str(case.id) if case else None,
            "case_no": case.case_no if case else None,
            "case_staff_ids": [s for s in (case.judge_id, case.clerk_id) if s] if case else [],
            "category": data.category.value,
            "status": status.value,
            "assignee_id": opening.assignee,
            "assigned_at": now if opening.assignee else None,
            "thread": [_entry(caller, "sender", data.content, opening.attachments, now)],
            "excerpt": data.content[:EXCERPT],
            "attachments": opening.attachments,
            "content_check": opening.check,
            **deadlines(cal, to.court.deadlines.workorder, now),
            **{"escalations": [], "escalation_level": 0, "assignments": []},
            **dict.fromkeys(LATER),
            **{"version": 1, "created_at": now, "updated_at": now},
            **(origin.fields() if origin else {"channel": Channel.miniprogram.value}),
        }
        draft = WorkOrderDoc.model_validate(doc)
        doc.update(schedule(draft, status, replied=False, done=set()))
        return doc

    async def _announce(self, docs: list[WorkOrderDoc], session: AsyncClientSession) -> None:
        """Each new order to its assignee; a held one, or one for the service desk, to the
        court's overseers."""
        overseers: list[str] | None = None
        tellings: list[Telling] = []
        for doc in docs:
            if doc.held is None and doc.assignee_id:
                tellings.append(Telling([doc.assignee_id], doc, announcement(doc)))
                continue
            if overseers is None:
                overseers = await self.orders.overseers(doc.court_id, session=session)
            notice = held_notice(doc) if doc.held is not None else announcement(doc)
            tellings.append(Telling(overseers, doc, notice))
        await self.orders.tell_many(tellings, session)

    async def follow_up(self, caller: Caller, order_id: str, data: ReplyIn) -> WorkOrderOut:
        """The sender writes again: content-checked; an answered order waits for an answer
        again. 404 not yours; 409 closed or thread full; 422 flagged; 429."""
        await self.limiter.hit(str(caller.id))
        access = await self.orders.access_workorder(caller, order_id)
        ensure_writable(access.obj, self.settings.workorders.max_thread)
        files = await self.orders.owned(caller, data.attachments)
        reason = held_reason(await self.check_content(caller, data.content))
        now = to_ms(self.orders.now())
        entry = {**_entry(caller, "sender", data.content, files, now), "held": bool(reason)}

        def decide(doc: WorkOrderDoc, seen_as: Standing) -> Change:
            ensure_writable(doc, self.settings.workorders.max_thread)
            back = doc.status == WorkOrderStatus.replied
            status = WorkOrderStatus.assigned if back else doc.status
            replied = doc.first_replied_at is not None
            sets = {"status": status.value, **schedule(doc, status, replied=replied)}
            if reason and doc.held is None:  # the judge sees it once a supervisor releases it
                sets["held"] = {"reason": reason, "since": now, "routed": True}
            after = self._followed(files, held=bool(reason))
            return Change({"$set": sets, "$push": {"thread": entry}}, after=after)

        done = await self.orders.change(caller, order_id, decide)
        return await self.orders.out(done, Standing.sender)

    def _followed(self, files: list[str], held: bool = False) -> Any:
        async def after(doc: WorkOrderDoc, session: AsyncClientSession) -> None:
            if files:
                await self.files.grant(files, court_ids=[doc.court_id], session=session)
            if held:
                overseers = await self.orders.overseers(doc.court_id, session=session)
                await self.orders.tell(overseers, doc, held_notice(doc), session)
                return
            notice = NoticeText(
                "workorder_followup",
                "当事人追加留言",
                f"{doc.no}：{doc.thread[-1].content[:30]}",
            )
            to = (
                [doc.assignee_id]
                if doc.assignee_id
                else await self.orders.overseers(doc.court_id, session=session)
            )
            await self.orders.tell(to, doc, notice, session)

        return after

    async def rate(self, caller: Caller, order_id: str, data: RatingIn) -> WorkOrderOut:
        """回访: once, after closing. 404 not yours; 409 not closed yet or rated already."""
        now = self.orders.now()
        rating = {"score": data.score, "comment": data.comment, "at": now}

        def decide(doc: WorkOrderDoc, seen_as: Standing) -> Change:
            if seen_as != Standing.sender:
                raise WorkOrderNotFound()
            if doc.status != WorkOrderStatus.closed:
                raise WorkOrderNotClosed()
            if doc.rating is not None:
                raise AlreadyRated()
            return Change({"$set": {"rating": rating, "rating_score": data.score}})

        done = await self.orders.change(caller, order_id, decide)
        return await self.orders.out(done, Standing.sender)

    # ---- reading

    async def list_mine(self, caller: Caller, query: MessageQuery) -> Page[WorkOrderSummary]:
        """My messages, newest first (index ``by_sender``), cursor-paged."""
        status = query.status.value if query.status else None
        filters = [mine_filter(str(caller.id), status)]
        if caller.verified_phone:  # 1+N: what the desk opened for my verified number
            filters.append(caller_filter(caller.verified_phone, status))
        after = decode_cursor(query.cursor, object_id)[0] if query.cursor else None
        raws = await self.orders.store.senders_pages(filters, after, query.limit + 1)
        now = self.orders.now()
        items = [summary_out(r, now, staff=False) for r in raws[: query.limit]]
        for item, raw in zip(items, raws, strict=False):
            if item.assignee is not None:
                item.assignee.name = await self.orders.staff_name(raw.get("assignee_id"))
        more = len(raws) > query.limit
        return Page[WorkOrderSummary](
            items=items, next_cursor=encode_cursor([items[-1].id]) if more else None
        )

    async def detail(self, caller: Caller, order_id: str) -> WorkOrderOut:
        """The thread, as the caller may see it; staff reads are audited."""
        access = await self.orders.access_workorder(caller, order_id)
        doc = access.obj
        if access.standing != Standing.sender:
            await self.users.record(
                str(caller.id), "workorder.read", str(doc.id), court_id=doc.court_id
            )
        return await self.orders.out(doc, access.standing)


def _entry(
    caller: Caller, side: str, content: str, files: list[str], now: dt.datetime
) -> dict[str, Any]:
    """One entry of a thread: the sender's (no name shown) or the court's."""
    return {
        "id": str(ObjectId()),
        "by": str(caller.id),
        "side": side,
        "name": caller.name if side == "court" else None,
        "content": content,
        "attachments": files,
        "at": now,
    }
