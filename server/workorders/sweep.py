"""The escalation sweep (督办) of work orders: leased, batched and idempotent.

Each round takes the lease ``workorder-sweep`` in ``leases`` (one process sweeps at a time)
and passes once over the orders whose next escalation step has come (index ``sweep``, the
earliest first), a batch per transaction. A batch escalates its orders by one bulk write of
updates conditional on the version each was read at, each marking its order with the
batch's token; the orders read back with the token are the batch's own. Two sweeps that both
believe they hold the lease (or a sweep racing a reply) cannot both escalate one step: the
loser's update matches nothing, and only the winner writes the notices, in the same
transaction, with a dedupe key per order, deadline and level. Level 1 goes to the court's
supervisors, level 2 to its division heads (each failing that, the next ones up, then its
admins); the assignee hears of both.
"""

from __future__ import annotations

import datetime as dt
import uuid
from contextlib import aclosing
from typing import Any, NamedTuple

from pymongo.asynchronous.client_session import AsyncClientSession

from models.workorders import DEADLINE_NAMES, Escalation, Step, WorkOrderDoc
from server.notify.inbox import Notice
from server.platform.clock import Clock
from server.platform.config import WorkOrderSettings
from server.platform.db import Database, in_transaction
from server.platform.lease import Lease
from server.workorders.rules import due_steps, schedule
from server.workorders.service import NoticeText, WorkOrderService, when

LEASE_ID = "workorder-sweep"
TITLES = {1: "留言工单已超期，请督办", 2: "留言工单超期未办，请庭长督办"}


class Escalated(NamedTuple):
    """What one batch escalated: the orders it moved, and their steps."""

    orders: int
    steps: int


def _escalation(
    doc: WorkOrderDoc, steps: list[Step], now: dt.datetime, token: str
) -> dict[str, Any]:
    """The update that escalates ``steps`` of ``doc`` at ``now`` (and moves its next sweep
    on), marked with the batch's ``token``."""
    done = {(e.kind, e.level) for e in doc.escalations} | {(s.kind, s.level) for s in steps}
    records = [
        Escalation(kind=s.kind, level=s.level, due_at=s.at, at=now).model_dump() for s in steps
    ]
    sets: dict[str, Any] = {
        **schedule(doc, doc.status, doc.first_replied_at is not None, done),
        "escalation_level": max([doc.escalation_level, *(s.level for s in steps)]),
        "sweep_token": token,
    }
    return {"$push": {"escalations": {"$each": records}}, "$set": sets, "$inc": {"version": 1}}


class EscalationSweep:
    def __init__(
        self,
        db: Database,
        config: WorkOrderSettings,
        clock: Clock,
        orders: WorkOrderService,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.store = orders.store
        self.config = config
        self.clock = clock
        self.orders = orders
        self.lease = Lease(db, LEASE_ID, config.sweep_lease_seconds, clock, owner)
        self.owner = self.lease.owner
        self._recipients: dict[tuple[str, int], list[str]] = {}

    # ---- rounds

    async def run_once(self) -> int:
        """One periodic round, holding the lease: every order due now; the steps escalated."""
        if not await self.lease.hold():
            return 0
        return await self._round(leased=True)

    async def sweep(self) -> int:
        """Every order due now, lease or not (conditional updates suffice): tests, tools."""
        return await self._round(leased=False)

    async def _round(self, leased: bool) -> int:
        """One pass over the orders due now, in the index's order (the earliest first), a
        batch per transaction, through one cursor (``WorkOrderStore.due_batches``).
        An order a batch lost (to a reply, another sweep) waits for the next round."""
        now = self.clock.now()
        total = 0
        async with aclosing(self.store.due_batches(now, self.config.sweep_batch)) as batches:
            async for batch in batches:
                total += (await self.escalate(batch, now)).steps
                full = len(batch) == self.config.sweep_batch
                if leased and full and not await self.lease.keep():
                    return total  # another process has the lease now: it goes on
        return total

    async def due(self, now: dt.datetime) -> list[WorkOrderDoc]:
        """The first batch of the orders due at ``now`` (the earliest first)."""
        return await self.store.due_first(now, self.config.sweep_batch)

    async def escalate(self, docs: list[WorkOrderDoc], now: dt.datetime) -> Escalated:
        """Escalate what has come of ``docs`` as read: the orders moved, the steps escalated.

        One bulk write of updates conditional on the version each order was read at, each
        marking it with this batch's token; the orders read back with the token are this
        batch's (another sweep's or a reply's write makes the update miss), and only their
        notices are written, in one insert, all in one transaction."""
        plans = [(doc, due_steps(doc, now)) for doc in docs]
        token, at = uuid.uuid4().hex, self.clock.now()

        async def work(session: AsyncClientSession) -> Escalated:
            updates = [(d, _escalation(d, s, at, token)) for d, s in plans]
            won = await self.store.escalate_batch(updates, token, session)
            mine = [(d, s) for d, s in plans if d.id in won]
            notices: list[Notice] = []
            for d, steps in mine:
                for step in steps:
                    notices += await self._notices(d, step, session)
            await self.orders.notifications.notify_many(notices, session=session)
            return Escalated(len(mine), sum(len(s) for _, s in mine))

        self._recipients = {}
        return await in_transaction(self.db, work)

    async def _notices(
        self, doc: WorkOrderDoc, step: Step, session: AsyncClientSession
    ) -> list[Notice]:
        """The escalation's notices: the court's overseers of its level, and the assignee."""
        key = (doc.court_id, step.level)
        if key not in self._recipients:
            found = await self.orders.overseers(doc.court_id, step.level, session=session)
            self._recipients[key] = found
        to = [*self._recipients[key], *([doc.assignee_id] if doc.assignee_id else [])]
        who = await self.orders.staff_name(doc.assignee_id) or "待分派"
        deadline = f"{DEADLINE_NAMES[step.kind]}期限{when(step.at)}已过"
        body = f"{doc.no}（{doc.category.value}）{deadline}，承办人：{who}"
        return self.orders.notices(
            to,
            doc,
            NoticeText("workorder_escalated", TITLES[step.level], body),
            await self.orders.reachable(to),
            dedupe_key=f"wo:{doc.id}:escalated:{step.kind.value}:{step.level}",
        )
