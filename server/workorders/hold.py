"""Content held for a supervisor before it reaches the judge.

msgSecCheck v2 answers ``suggest`` pass, review or risky. ``risky`` is refused at once
(messages.py); ``review`` means WeChat wants a person to read it, so the message is kept but
held: a new message is not routed to its judge, a follow-up is hidden from the judge, until a
supervisor of the court releases it (on to the judge) or refuses it (the sender is told). The
same hold is used when WeChat cannot judge because the user has not opened the mini-program in
the last two hours (errcode 61010): the text is neither lost nor passed unread.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from models.users import Caller
from models.workorders import HoldDecisionIn, WorkOrderDoc, WorkOrderOut, WorkOrderStatus
from server.workorders.errors import NotSupervisor, WorkOrderClosed, WorkOrderNotHeld
from server.workorders.rules import schedule, to_ms
from server.workorders.service import Change, NoticeText, Standing, WorkOrderService, when

REVIEW = "content_review"
NO_RECENT_VISIT = "no_recent_visit"
REFUSED = "内容未通过审核"


def held_reason(check: dict[str, Any]) -> str | None:
    """Why a checked text is held, or None when it may go on (``check_content``'s answer)."""
    if check.get("reason") == NO_RECENT_VISIT:
        return NO_RECENT_VISIT
    return REVIEW if check.get("suggest") == "review" else None


def hold_fields(reason: str, now: dt.datetime, doc: dict[str, Any]) -> dict[str, Any]:
    """A new order, held: not assigned and unseen by its case's staff until released."""
    held = {
        "reason": reason,
        "since": now,
        "routed": False,
        "route": doc["assignee_id"],
        "case_staff_ids": doc["case_staff_ids"],
    }
    return {"held": held, "assignee_id": None, "assigned_at": None, "case_staff_ids": []}


def held_notice(doc: WorkOrderDoc) -> NoticeText:
    return NoticeText("workorder_held", "留言待内容审核", f"{doc.no}：内容需人工审核后再转承办人")


class ContentHold:
    """A supervisor's release or refusal of held content."""

    def __init__(self, orders: WorkOrderService) -> None:
        self.orders = orders

    async def decide(self, caller: Caller, order_id: str, data: HoldDecisionIn) -> WorkOrderOut:
        """403 not a supervisor; 404; 409 nothing held, or closed."""
        access = await self.orders.access_workorder(caller, order_id)
        if access.standing != Standing.supervisor:
            raise NotSupervisor()
        now = to_ms(self.orders.now())

        def decide(doc: WorkOrderDoc, seen_as: Standing) -> Change:
            if doc.status == WorkOrderStatus.closed:
                raise WorkOrderClosed()
            if doc.held is None:
                raise WorkOrderNotHeld()
            if data.release:
                return self._release(caller, doc, now)
            return self._refuse(caller, doc, data.note or REFUSED, now)

        done = await self.orders.change(caller, order_id, decide)
        return await self.orders.out(done, Standing.supervisor)

    def _release(self, caller: Caller, doc: WorkOrderDoc, now: dt.datetime) -> Change:
        assert doc.held is not None
        thread = [{**e.model_dump(), "held": False} for e in doc.thread]
        sets: dict[str, Any] = {"held": None, "thread": thread}
        route = None if doc.held.routed else doc.held.route
        if route:
            status = WorkOrderStatus.assigned
            sets.update(
                assignee_id=route,
                assigned_at=now,
                case_staff_ids=doc.held.case_staff_ids,
                status=status.value,
                **schedule(doc, status, replied=doc.first_replied_at is not None),
            )
        elif not doc.held.routed:
            sets["case_staff_ids"] = doc.held.case_staff_ids

        async def after(new: WorkOrderDoc, session: AsyncClientSession) -> None:
            await self._audit(caller, "workorder.release", new, session)
            if route:
                due = f"请于{when(new.first_reply_due_at)}前答复"
                text = f"{new.no}（{new.category.value}）：{new.excerpt[:30]}，{due}"
                notice = NoticeText("workorder_new", "新的留言待答复", text)
                await self.orders.tell([route], new, notice, session)

        return Change({"$set": sets}, after=after)

    def _refuse(self, caller: Caller, doc: WorkOrderDoc, note: str, now: dt.datetime) -> Change:
        assert doc.held is not None
        if doc.held.routed:  # a follow-up: the held entries go, the order stays
            thread = [e.model_dump() for e in doc.thread if not e.held]
            sets: dict[str, Any] = {"held": None, "thread": thread}
        else:
            sets = {
                "held": None,
                "status": WorkOrderStatus.closed.value,
                "closed_at": now,
                "closed_by": str(caller.id),
                "close_note": note,
                "overdue_at": None,
                "sweep_at": None,
            }

        async def after(new: WorkOrderDoc, session: AsyncClientSession) -> None:
            await self._audit(caller, "workorder.refuse", new, session, note=note)
            text = f"{new.no}：{note}"
            notice = NoticeText("workorder_refused", "您的留言未通过内容审核", text)
            await self.orders.tell([new.sender_id], new, notice, session, to_sender=True)

        return Change({"$set": sets}, after=after)

    async def _audit(
        self,
        caller: Caller,
        action: str,
        doc: WorkOrderDoc,
        session: AsyncClientSession,
        **details: Any,
    ) -> None:
        await self.orders.users.record(
            str(caller.id), action, str(doc.id), session, court_id=doc.court_id, **details
        )
