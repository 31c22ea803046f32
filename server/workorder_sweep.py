"""The escalation sweep (督办) of work orders: leased, batched and idempotent.

Each round takes the lease ``workorder-sweep`` in ``leases`` (one process sweeps at a time),
then works through the orders whose next escalation step has come (index ``sweep``, the
earliest first), a batch per transaction. An order is escalated by a conditional update on
the version read: two sweeps that both believe they hold the lease (or a sweep racing a
reply) cannot both escalate one step, as the loser's update matches nothing, and its notices
are written in the same transaction as the escalation, with a dedupe key per order, deadline
and level. Level 1 goes to the court's supervisors, level 2 to its division heads (each
failing that, the next ones up, then its admins); the assignee hears of both.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, PyMongoError

from models.workorders import DEADLINE_NAMES, Escalation, Step, WorkOrderDoc
from server.clock import Clock
from server.config import WorkOrderSettings
from server.db import Database, in_transaction
from server.workorder_rules import due_steps, schedule
from server.workorders import WorkOrderService, when

log = logging.getLogger("microcourt.workorders")

LEASE_ID = "workorder-sweep"
TITLES = {1: "留言工单已超期，请督办", 2: "留言工单超期未办，请庭长督办"}
Recipients = dict[tuple[str, int], list[str]]


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
        self.col = db["workorders"]
        self.leases = db["leases"]
        self.config = config
        self.clock = clock
        self.orders = orders
        self.owner = owner or uuid.uuid4().hex

    # ---- rounds

    async def run_once(self) -> int:
        """One periodic round: with the lease, every order due now; the steps escalated."""
        if not await self._hold_lease():
            return 0
        total = 0
        while True:
            escalated, more = await self.sweep_batch()
            total += escalated
            if not more or not await self._hold_lease():
                return total

    async def sweep(self) -> int:
        """Every order due now, lease or not (conditional updates suffice): tests, tools."""
        total = 0
        while True:
            escalated, more = await self.sweep_batch()
            total += escalated
            if not more:
                return total

    async def sweep_batch(self) -> tuple[int, bool]:
        """One batch in one transaction: (steps escalated, whether to go on)."""
        now = self.clock.now()
        query = {"sweep_at": {"$lte": now}}
        cursor = self.col.find(query).sort("sweep_at", 1).limit(self.config.sweep_batch)
        docs = [WorkOrderDoc.model_validate(raw) for raw in await cursor.to_list()]
        if not docs:
            return 0, False

        async def work(session: AsyncClientSession) -> tuple[int, int]:
            recipients: Recipients = {}
            moved = escalated = 0
            for doc in docs:
                done = await self._escalate(doc, now, session, recipients)
                moved += done is not None
                escalated += done or 0
            return moved, escalated

        moved, escalated = await in_transaction(self.db, work)
        # a full batch may hide more; a batch where nothing moved was lost to others
        return escalated, len(docs) == self.config.sweep_batch and moved > 0

    # ---- one order

    async def _escalate(
        self, doc: WorkOrderDoc, now: dt.datetime, session: AsyncClientSession, cache: Recipients
    ) -> int | None:
        """Escalate the order's steps that have come; None when the order changed since it
        was read (another sweep, a reply), else the number of steps escalated."""
        steps = due_steps(doc, now)
        done = {(e.kind, e.level) for e in doc.escalations} | {(s.kind, s.level) for s in steps}
        records = [
            Escalation(kind=s.kind, level=s.level, due_at=s.at, at=now).model_dump() for s in steps
        ]
        sets: dict[str, Any] = {
            **schedule(doc, doc.status, doc.first_replied_at is not None, done),
            "escalation_level": max([doc.escalation_level, *(s.level for s in steps)]),
        }
        result = await self.col.update_one(
            {"_id": doc.id, "version": doc.version},
            {"$push": {"escalations": {"$each": records}}, "$set": sets, "$inc": {"version": 1}},
            session=session,
        )
        if not result.modified_count:
            return None
        for step in steps:
            await self._announce(doc, step, session, cache)
        return len(steps)

    async def _announce(
        self, doc: WorkOrderDoc, step: Step, session: AsyncClientSession, cache: Recipients
    ) -> None:
        key = (doc.court_id, step.level)
        if key not in cache:
            cache[key] = await self.orders.overseers(doc.court_id, step.level, session=session)
        to = [*cache[key], *([doc.assignee_id] if doc.assignee_id else [])]
        who = await self.orders.staff_name(doc.assignee_id) or "待分派"
        body = (f"{doc.no}（{doc.category.value}）{DEADLINE_NAMES[step.kind]}期限"
                f"{when(step.at)}已过，承办人：{who}")  # fmt: skip
        await self.orders.tell(
            to, doc, ("workorder_escalated", TITLES[step.level], body), session,
            dedupe_key=f"wo:{doc.id}:escalated:{step.kind.value}:{step.level}",
        )  # fmt: skip

    # ---- the lease

    async def _hold_lease(self) -> bool:
        now = self.clock.now()
        until = now + dt.timedelta(seconds=self.config.sweep_lease_seconds)
        try:
            await self.leases.update_one(
                {"_id": LEASE_ID, "$or": [{"expires_at": {"$lt": now}}, {"owner": self.owner}]},
                {"$set": {"owner": self.owner, "expires_at": until}},
                upsert=True,
            )
        except DuplicateKeyError:  # another process holds it
            return False
        return True

    async def release_lease(self) -> None:
        past = self.clock.now() - dt.timedelta(seconds=1)
        with contextlib.suppress(PyMongoError, asyncio.CancelledError):
            await self.leases.update_one(
                {"_id": LEASE_ID, "owner": self.owner}, {"$set": {"expires_at": past}}
            )
