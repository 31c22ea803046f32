"""Who is who, for the other capabilities: the reads of ``users`` that notices and work orders
need (a court's staff by role or by flag, a user's openid), without the rest of
``UserService`` (its cipher, passwords and cache). Cheap to make: ``Directory(db)``."""

from __future__ import annotations

from collections.abc import Iterable

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from server.platform.db import Database


class Directory:
    def __init__(self, db: Database) -> None:
        self.users = db["users"]

    async def staff_ids(
        self,
        court_id: str,
        roles: Iterable[str],
        *,
        limit: int,
        session: AsyncClientSession | None = None,
    ) -> list[str]:
        """Ids of the active staff of a court with those roles, at most ``limit`` (index
        ``staff_by_court_role``)."""
        query = {"court_id": court_id, "role": {"$in": sorted(str(r) for r in roles)}}
        cursor = self.users.find({**query, "active": True}, {"_id": 1}, session=session)
        return [str(doc["_id"]) async for doc in cursor.limit(limit)]

    async def flagged_staff_ids(
        self, court_id: str, flag: str, session: AsyncClientSession | None = None
    ) -> list[str]:
        """Ids of the active staff of a court carrying ``flag`` (``supervisor`` or
        ``division_head``; indexes ``supervisors`` and ``division_heads``)."""
        query = {"court_id": court_id, flag: True, "active": True}
        return [str(u["_id"]) async for u in self.users.find(query, {"_id": 1}, session=session)]

    async def openid_of(self, user_id: str) -> str | None:
        """The WeChat openid of an active user; None for staff (signed in by password), for an
        inactive account and for an unknown one."""
        user = await self.users.find_one({"_id": ObjectId(user_id)}, {"openid": 1, "active": 1})
        openid = user.get("openid") if user and user.get("active", True) else None
        return str(openid) if openid else None
