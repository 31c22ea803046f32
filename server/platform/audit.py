"""The audit log: every staff action and every read of another person's data, one row each in
``audit``. Every capability records through ``AuditLog.record`` (most by way of
``UserService.record``); nothing else writes the collection."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from server.platform.clock import Clock
from server.platform.db import Database


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
        await self.audit.insert_one(
            {
                "actor_id": actor,
                "action": action,
                "target": target,
                "details": details,
                "at": self.clock.now(),
            },
            session=session,
        )
