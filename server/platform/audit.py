"""The audit log: every staff action and every read of another person's data, one row each in
``audit``. Every capability records through ``AuditLog.record`` (most by way of
``UserService.record``); nothing else writes the collection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from pymongo.asynchronous.client_session import AsyncClientSession

from server.platform.clock import Clock
from server.platform.db import Database


class AuditRow(NamedTuple):
    """One row of ``record_many``: ``record``'s arguments."""

    actor: str
    action: str
    target: str
    details: dict[str, Any]


class AuditLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.audit = db["audit"]
        self.clock = clock

    async def record(
        self,
        actor: str,
        action: str,
        target: str,
        session: AsyncClientSession | None = None,
        **details: Any,
    ) -> None:
        """One row: who did what to which object, and when; in ``session`` when given, so
        that it commits with the change it records."""
        await self.record_many([AuditRow(actor, action, target, details)], session)

    async def record_many(
        self, rows: Sequence[AuditRow], session: AsyncClientSession | None
    ) -> None:
        """``record`` of each row, in one insert (a group of acceptances)."""
        if rows:
            await self.audit.insert_many([self._row(r) for r in rows], session=session)

    def _row(self, row: AuditRow) -> dict[str, Any]:
        return {
            "actor_id": row.actor,
            "action": row.action,
            "target": row.target,
            "details": row.details,
            "at": self.clock.now(),
        }
