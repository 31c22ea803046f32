"""Every channel, one work order (1+N): the service desk opens orders for callers of the
12368 hotline and the service line, visitors at the counter and writers of letters.

A desk order is made by ``MessageService.open_order``, the very path a mini-program message
takes (number, routing, working-time deadlines, escalation, statistics), with its channel
and its caller (name and phone; no account) kept. Given a case number and query code, the
case is found as the case lookup finds it (``CaseViews.lookup``) and the order routed to
its judge; otherwise it waits at the desk for a supervisor to assign it.

Answers reach the caller by SMS (server/notify/sms.py, through the outbox), each with the
order's number and a short link that shows the order and takes its rating (回访). A desk
order is *answered* only when an answer reached the caller: an SMS's delivery receipt, or a
call-back (回拨) that reached them; its first-answer time and on-time flag are taken then,
and it cannot be closed before. A caller who signs in to the mini-program with the same
phone number (verified by WeChat) sees the orders as their own.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.cases import LookupIn
from models.users import Caller
from models.workorders import (
    CallbackIn,
    CallbackResult,
    Channel,
    DeskOrderCreate,
    RatingIn,
    WorkOrderDoc,
    WorkOrderOut,
    WorkOrderStatus,
)
from server.cases.service import CaseService
from server.cases.views import CaseViews
from server.identity.errors import NoCourt
from server.notify.sms import SmsService
from server.platform.errors import UnknownCourt
from server.workorders.errors import (
    AlreadyRated,
    LinkNotFound,
    NoCallerPhone,
    NotServiceDesk,
    WorkOrderNotClosed,
    WorkOrderNotFound,
)
from server.workorders.messages import Addressee, MessageService, Opening, Origin
from server.workorders.rules import schedule, to_ms
from server.workorders.service import Change, Standing, WorkOrderService

LINK_BYTES = 8  # the short link's token: 11 URL-safe characters, 64 random bits
REACHED_NOTE = "电话回拨：已联系来电人"


def first_answer(doc: WorkOrderDoc, at: dt.datetime) -> dict[str, Any]:
    """The first-answer fields, taken when an answer reached the caller."""
    return {
        "first_replied_at": at,
        "first_reply_seconds": max((at - doc.created_at).total_seconds(), 0.0),
        "first_reply_on_time": at <= doc.first_reply_due_at,
    }


def is_desk(doc: WorkOrderDoc) -> bool:
    return doc.channel != Channel.miniprogram and doc.caller_phone is not None


class DeskService:
    def __init__(
        self,
        orders: WorkOrderService,
        messages: MessageService,
        cases: CaseService,
        case_views: CaseViews,
        sms: SmsService,
    ) -> None:
        self.orders = orders
        self.messages = messages
        self.cases = cases
        self.case_views = case_views
        self.sms = sms

    # ---- opening

    async def create(self, caller: Caller, data: DeskOrderCreate) -> WorkOrderOut:
        """A desk order for a caller. 403 not service desk; 404 case number and query code
        do not match (as a lookup); 422 files not the desk's; 429 lookups."""
        if not caller.service_desk:
            raise NotServiceDesk()
        if caller.court_id is None:
            raise NoCourt()
        court = self.orders.settings.court(caller.court_id)
        if court is None:
            raise UnknownCourt()
        case = None
        if data.case_no is not None and data.query_code is not None:
            pair = LookupIn(case_no=data.case_no, query_code=data.query_code)
            found = await self.case_views.lookup(caller, pair)
            case = await self.cases.load(found.id)
        files = await self.orders.owned(caller, data.attachments)
        assignee = await self.messages.route(court, case)
        origin = Origin(
            Channel(data.channel),
            data.caller.name,
            data.caller.phone,
            str(caller.id),
            secrets.token_urlsafe(LINK_BYTES),
        )
        opening = Opening(assignee, files, {})
        doc = await self.messages.open_order(caller, data, Addressee(court, case), opening, origin)
        await self._audit(caller, "workorder.open", doc, channel=data.channel)
        return await self.orders.out(doc, Standing.supervisor)

    async def _audit(self, caller: Caller, action: str, doc: WorkOrderDoc, **details: Any) -> None:
        await self.orders.users.record(
            str(caller.id), action, str(doc.id), court_id=doc.court_id, **details
        )

    # ---- call-backs

    async def callback(self, caller: Caller, order_id: str, data: CallbackIn) -> WorkOrderOut:
        """回拨: one attempt recorded; one that reached the caller answers the order if
        nothing had yet. 403 a sender; 404; 409 no caller's phone on the order."""
        now = to_ms(self.orders.now())
        record = {"result": data.result.value, "note": data.note, "by": str(caller.id), "at": now}

        def decide(doc: WorkOrderDoc, seen_as: Standing) -> Change:
            if seen_as == Standing.sender:
                raise NotServiceDesk()
            if doc.caller_phone is None:
                raise NoCallerPhone()
            sets: dict[str, Any] = {}
            push: dict[str, Any] = {"callbacks": record}
            if data.result == CallbackResult.reached:
                sets["called_back"] = True
                if doc.first_replied_at is None and doc.status != WorkOrderStatus.closed:
                    sets.update(self._answered_by_phone(doc, caller, now))
                    push["thread"] = self._phone_entry(caller, now, data.note)
            return Change({"$set": sets, "$push": push} if sets else {"$push": push})

        done = await self.orders.change(caller, order_id, decide)
        await self._audit(caller, "workorder.callback", done, result=data.result.value)
        return await self.orders.out(done, Standing.supervisor)

    @staticmethod
    def _answered_by_phone(doc: WorkOrderDoc, caller: Caller, now: dt.datetime) -> dict[str, Any]:
        sets: dict[str, Any] = {"status": WorkOrderStatus.replied.value, **first_answer(doc, now)}
        if doc.assignee_id is None:
            sets.update(assignee_id=str(caller.id), assigned_at=now)
        sets.update(schedule(doc, WorkOrderStatus.replied, replied=True))
        return sets

    @staticmethod
    def _phone_entry(caller: Caller, now: dt.datetime, note: str | None) -> dict[str, Any]:
        return {
            "id": str(ObjectId()),
            "by": str(caller.id),
            "side": "court",
            "name": caller.name,
            "content": f"{REACHED_NOTE}。{note}" if note else REACHED_NOTE,
            "attachments": [],
            "at": now,
        }

    # ---- SMS to the caller

    async def queue_sms(
        self, doc: WorkOrderDoc, template: str, sms_id: ObjectId, session: AsyncClientSession
    ) -> None:
        """The SMS (order number and link token) into the outbox, in the order's transaction;
        its record (``sms_record``) is pushed on the order by the same change."""
        assert doc.caller_phone is not None and doc.link_token is not None
        ref = {"workorder_id": str(doc.id), "purpose": template}
        params = [doc.no, doc.link_token]
        await self.sms.queue(doc.caller_phone, template, params, ref, session, item_id=sms_id)

    def sms_record(self, template: str, sms_id: ObjectId) -> dict[str, Any]:
        return {
            "id": str(sms_id),
            "serial_no": None,
            "purpose": template,
            "status": "queued",
            "at": to_ms(self.orders.now()),
            "delivered_at": None,
            "error": None,
        }

    async def sms_outcome(self, ref: dict[str, Any], outcome: dict[str, Any]) -> None:
        """What became of an SMS (sent, delivered, failed): recorded on its order; an answer
        delivered answers the order (its first-answer time: the receipt's)."""
        sms_id, order_id = str(ref.get("sms_id")), str(ref.get("workorder_id"))
        sets: dict[str, Any] = {"status": outcome["status"], "serial_no": outcome.get("serial_no")}
        if outcome["status"] == "delivered":
            sets["delivered_at"] = to_ms(outcome["at"])
        if outcome.get("error"):
            sets["error"] = outcome["error"]
        answers = outcome["status"] == "delivered" and ref.get("purpose") == "workorder_replied"

        def decide(doc: WorkOrderDoc, seen_as: Standing) -> Change | None:
            records = [m.model_dump() for m in doc.sms]
            mine = [m for m in records if m["id"] == sms_id]
            if not mine or mine[0]["status"] in ("delivered", "failed"):
                return None  # not this order's, or its outcome is known already
            mine[0].update(sets)
            changes: dict[str, Any] = {"sms": records}
            if answers and doc.first_replied_at is None and doc.status != WorkOrderStatus.closed:
                at = to_ms(outcome["at"])
                changes.update(first_answer(doc, at), **schedule(doc, doc.status, replied=True))
            return Change({"$set": changes})

        try:
            await self.orders.change_unattended(lambda: self.orders.store.load(order_id), decide)
        except WorkOrderNotFound:
            return

    # ---- the SMS's link

    async def _linked(self, token: str) -> WorkOrderDoc:
        doc = await self.orders.store.by_link(token) if token else None
        if doc is None:
            raise LinkNotFound()
        return doc

    async def by_link(self, token: str) -> WorkOrderOut:
        """The order as its caller sees it; 404 an unknown link."""
        return await self.orders.out(await self._linked(token), Standing.sender)

    async def rate_by_link(self, token: str, data: RatingIn) -> WorkOrderOut:
        """回访 by the SMS's link, once closed. 404; 409 not closed yet or rated already."""
        now = self.orders.now()
        rating = {"score": data.score, "comment": data.comment, "at": now}

        def decide(doc: WorkOrderDoc, seen_as: Standing) -> Change:
            if doc.status != WorkOrderStatus.closed:
                raise WorkOrderNotClosed()
            if doc.rating is not None:
                raise AlreadyRated()
            return Change({"$set": {"rating": rating, "rating_score": data.score}})

        done = await self.orders.change_unattended(
            lambda: self._linked(token), decide, Standing.sender
        )
        return await self.orders.out(done, Standing.sender)
