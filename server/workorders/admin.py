"""Work orders, the court's side: the lists, answering, (re)assigning and closing.

The assignee answers and closes; the court's supervisors (督办), division heads and admins
see all of the court's orders and may answer, assign and close any of them. A judge or clerk
sees the orders assigned to them and those on their cases. Each action is audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.common import Page
from models.users import Caller, UserDoc
from models.workorders import (
    AssignIn,
    CloseIn,
    ReplyIn,
    WorkOrderDoc,
    WorkOrderOut,
    WorkOrderQuery,
    WorkOrderStatus,
    WorkOrderSummary,
)
from server.files.service import FileService
from server.identity.errors import InvalidAssignee, NoCourt
from server.identity.users import UserService
from server.platform import mongo
from server.platform.errors import NotFound
from server.platform.paging import decode_cursor, encode_cursor, object_id
from server.workorders.desk import DeskService, is_desk
from server.workorders.errors import (
    NotAssignee,
    NotSupervisor,
    WorkOrderClosed,
    WorkOrderHeld,
    WorkOrderNotAnswered,
    WorkOrderNotReplied,
)
from server.workorders.rules import schedule, to_ms
from server.workorders.service import (
    Change,
    NoticeText,
    Standing,
    WorkOrderService,
    ensure_writable,
    summary_out,
    when,
)

Scope = dict[str, Any]
#: the filters (all equalities) that an index (..., _id) serves as a prefix (``first_page``'s
#: ``indexed_scope``): a court's orders, by status or assignee
INDEXED_SCOPES = (
    *({"court_id"}, {"court_id", "status"}, {"court_id", "assignee_id"}),
    {"opened_by"},  # 1+N: the orders a service desk opened (index by_opener)
)


class WorkOrderAdmin:
    def __init__(
        self, orders: WorkOrderService, users: UserService, files: FileService, max_thread: int
    ) -> None:
        self.orders = orders
        self.users = users
        self.files = files
        self.max_thread = max_thread
        self.desk: DeskService | None = None  # 1+N: answers to callers by SMS (server/app.py)

    # ---- lists

    @staticmethod
    def _scopes(caller: Caller) -> list[Scope]:
        """The court's orders for those who oversee it; otherwise those assigned to the
        caller and those on the caller's cases (two indexed queries, merged)."""
        uid = str(caller.id)
        if caller.oversees:
            if caller.court_id is None:
                return [{}]  # the system administrator: every court
            return [{"court_id": caller.court_id}]
        if not caller.court_id:
            raise NoCourt()
        mine = [{"court_id": caller.court_id, "assignee_id": uid}, {"case_staff_ids": uid}]
        return [*mine, {"opened_by": uid}] if caller.service_desk else mine

    def _filters(self, query: WorkOrderQuery) -> Scope:
        found: Scope = {}
        if query.status:
            found["status"] = query.status.value
        if query.assignee_id:
            found["assignee_id"] = query.assignee_id
        if query.category:
            found["category"] = query.category.value
        now = self.orders.now()
        if query.overdue is True:
            found["overdue_at"] = mongo.due(now)
        elif query.overdue is False:
            found["$or"] = [{"overdue_at": None}, {"overdue_at": {"$gt": now}}]
        return found

    async def list_for(self, caller: Caller, query: WorkOrderQuery) -> Page[WorkOrderSummary]:
        """Newest first, cursor-paged, filtered by status, assignee, category, overdue."""
        raws = await self._rows(caller, query)
        now = self.orders.now()
        items = []
        for raw in raws[: query.limit]:
            item = summary_out(raw, now, staff=True)
            if item.assignee is not None:
                item.assignee.name = await self.orders.staff_name(raw.get("assignee_id"))
            items.append(item)
        more = len(raws) > query.limit
        return Page[WorkOrderSummary](
            items=items, next_cursor=encode_cursor([items[-1].id]) if more else None
        )

    async def _rows(self, caller: Caller, query: WorkOrderQuery) -> list[dict[str, Any]]:
        """Up to one more than a page of rows, newest first, over the caller's scopes."""
        extra = self._filters(query)
        after = None
        if query.cursor:
            (last,) = decode_cursor(query.cursor, object_id)
            after = {"_id": last}
        found: dict[Any, dict[str, Any]] = {}
        for scope in self._scopes(caller):
            wanted = query.assignee_id
            if wanted and scope.get("assignee_id", wanted) != wanted:
                continue  # "assigned to me" cannot hold anyone else's
            filt = {**extra, **scope}
            rows = await self.orders.store.court_page(
                filt,
                query.limit + 1,
                after,
                windowed=set(filt) in INDEXED_SCOPES,
                now=self.orders.now(),
            )
            found.update((raw["_id"], raw) for raw in rows)
        return sorted(found.values(), key=lambda r: r["_id"], reverse=True)

    # ---- answering

    async def reply(self, caller: Caller, order_id: str, data: ReplyIn) -> WorkOrderOut:
        """The court answers: the first answer is timed against its deadline; a supervisor
        answering an unassigned order takes it. 403 neither assignee nor supervisor;
        404; 409 closed or thread full; 422 files not yours."""
        uid = str(caller.id)
        await self.orders.access_workorder(caller, order_id)  # 404 before looking at the files
        files = await self.orders.owned(caller, data.attachments)
        now = to_ms(self.orders.now())
        entry = {
            "id": str(ObjectId()),
            "by": uid,
            "side": "court",
            "name": caller.name,
            "content": data.content,
            "attachments": files,
            "at": now,
        }

        def decide(doc: WorkOrderDoc, seen_as: Standing) -> Change:
            if seen_as != Standing.supervisor and doc.assignee_id != uid:
                raise NotAssignee()
            ensure_writable(doc, self.max_thread)
            sets: dict[str, Any] = {"status": WorkOrderStatus.replied.value}
            if doc.assignee_id is None:
                sets.update(assignee_id=uid, assigned_at=now)
            push: dict[str, Any] = {"thread": entry}
            sms = self._sms_to_caller(doc, "workorder_replied", push)
            # a desk order is answered when the answer reaches the caller (desk.py)
            answered = doc.first_replied_at is not None or sms is None
            if doc.first_replied_at is None and sms is None:
                sets.update(_first_reply(doc, now))
            sets.update(schedule(doc, WorkOrderStatus.replied, replied=answered))
            return Change({"$set": sets, "$push": push}, after=self._replied(caller, files, sms))

        done = await self.orders.change(caller, order_id, decide)
        return await self.orders.out(done, Standing.supervisor)

    def _replied(self, caller: Caller, files: list[str], sms: ObjectId | None) -> Any:
        async def after(doc: WorkOrderDoc, session: AsyncClientSession) -> None:
            await self._audit(caller, "workorder.reply", doc, session)
            if sms is not None and self.desk is not None:
                await self.desk.queue_sms(doc, "workorder_replied", sms, session)
                return
            if files:
                await self.files.grant(files, reader_ids=[doc.sender_id], session=session)
            text = f"{doc.no}：{doc.thread[-1].content[:30]}"
            notice = NoticeText("workorder_replied", "法院已答复您的留言", text)
            await self.orders.tell([doc.sender_id], doc, notice, session, to_sender=True)

        return after

    def _sms_to_caller(self, doc: WorkOrderDoc, template: str, push: dict[str, Any]) -> Any:
        """For a desk order: the id of an SMS to its caller, its record added to ``push``."""
        if self.desk is None or not is_desk(doc):
            return None
        sms_id = ObjectId()
        push["sms"] = self.desk.sms_record(template, sms_id)
        return sms_id

    # ---- assigning and closing

    async def assign(self, caller: Caller, order_id: str, data: AssignIn) -> WorkOrderOut:
        """分派 or 改派, by those who oversee the court. 403 not a supervisor; 404;
        409 closed; 422 not an active member of the order's court."""
        access = await self.orders.access_workorder(caller, order_id)
        if access.standing != Standing.supervisor:
            raise NotSupervisor()
        target = await self._assignee(access.obj.court_id, data.assignee_id)
        now = to_ms(self.orders.now())
        record = {"to": data.assignee_id, "by": str(caller.id), "at": now, "note": data.note}

        def decide(doc: WorkOrderDoc, seen_as: Standing) -> Change | None:
            if doc.status == WorkOrderStatus.closed:
                raise WorkOrderClosed()
            if doc.held is not None and not doc.held.routed:
                raise WorkOrderHeld()  # released (or refused) first: POST .../hold
            if doc.assignee_id == data.assignee_id:
                return None  # already theirs: nothing to write, nobody to tell again
            status = (
                WorkOrderStatus.assigned if doc.status == WorkOrderStatus.pending else doc.status
            )
            replied = doc.first_replied_at is not None
            sets: dict[str, Any] = {
                "assignee_id": data.assignee_id,
                "status": status.value,
                **schedule(doc, status, replied),
            }
            if doc.assigned_at is None:
                sets["assigned_at"] = now
            push = {"assignments": record}
            return Change({"$set": sets, "$push": push}, after=self._assigned(caller, target))

        done = await self.orders.change(caller, order_id, decide)
        return await self.orders.out(done, Standing.supervisor)

    async def _assignee(self, court_id: str, user_id: str) -> UserDoc:
        try:
            user: UserDoc | None = await self.users.get(user_id)
        except NotFound:
            user = None
        if user is None or not (user.active and user.is_staff and user.court_id == court_id):
            raise InvalidAssignee(
                "只能分派给本院在职的工作人员",
                details=[{"loc": ["assignee_id"], "msg": "不是本院在职的工作人员"}],
            )
        return user

    def _assigned(self, caller: Caller, target: UserDoc) -> Any:
        async def after(doc: WorkOrderDoc, session: AsyncClientSession) -> None:
            await self._audit(caller, "workorder.assign", doc, session, to=str(target.id))
            due = doc.first_reply_due_at if doc.first_replied_at is None else doc.close_due_at
            body = f"{doc.no}（{doc.category.value}）：{doc.excerpt[:30]}，请于{when(due)}前办理"
            notice = NoticeText("workorder_assigned", "留言已分派给您", body)
            await self.orders.tell([str(target.id)], doc, notice, session)

        return after

    async def close(self, caller: Caller, order_id: str, data: CloseIn) -> WorkOrderOut:
        """办结, once answered; the sender is asked to rate it. 403 neither assignee nor
        supervisor; 404; 409 closed already or not answered yet."""
        uid = str(caller.id)
        now = to_ms(self.orders.now())

        def decide(doc: WorkOrderDoc, seen_as: Standing) -> Change:
            if seen_as != Standing.supervisor and doc.assignee_id != uid:
                raise NotAssignee()
            if doc.status == WorkOrderStatus.closed:
                raise WorkOrderClosed()
            if doc.status != WorkOrderStatus.replied:
                raise WorkOrderNotReplied()
            if doc.first_replied_at is None:
                raise WorkOrderNotAnswered()  # a desk order's answer has not reached the caller
            push: dict[str, Any] = {}
            sms = self._sms_to_caller(doc, "workorder_closed", push)
            sets = {
                "status": WorkOrderStatus.closed.value,
                "closed_at": now,
                "closed_by": uid,
                "close_note": data.note,
                "closed_on_time": now <= doc.close_due_at,
                "overdue_at": None,
                "sweep_at": None,
            }
            update = {"$set": sets, **({"$push": push} if push else {})}
            return Change(update, after=self._closed(caller, sms))

        done = await self.orders.change(caller, order_id, decide)
        return await self.orders.out(done, Standing.supervisor)

    def _closed(self, caller: Caller, sms: ObjectId | None) -> Any:
        async def after(doc: WorkOrderDoc, session: AsyncClientSession) -> None:
            await self._audit(caller, "workorder.close", doc, session)
            if sms is not None and self.desk is not None:
                await self.desk.queue_sms(doc, "workorder_closed", sms, session)  # asks to rate
                return
            text = f"{doc.no}已办结，请对本次答复进行评价"
            notice = NoticeText("workorder_closed", "您的留言已办结", text)
            await self.orders.tell([doc.sender_id], doc, notice, session, to_sender=True)

        return after

    async def _audit(
        self,
        caller: Caller,
        action: str,
        doc: WorkOrderDoc,
        session: AsyncClientSession,
        **details: Any,
    ) -> None:
        await self.users.record(
            str(caller.id), action, str(doc.id), session, court_id=doc.court_id, **details
        )


def _first_reply(doc: WorkOrderDoc, now: dt.datetime) -> dict[str, Any]:
    return {
        "first_replied_at": now,
        "first_reply_seconds": (now - doc.created_at).total_seconds(),
        "first_reply_on_time": now <= doc.first_reply_due_at,
    }
