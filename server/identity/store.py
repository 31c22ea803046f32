"""The one module of identity that reads and writes its collections: ``users`` (accounts)
and ``revocations`` (signed-out sessions). Services call these by intent; no query shape
leaves this module."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from server.platform.db import Database
from server.platform.mongo import change_one

Raw = dict[str, Any]


class UserStore:
    """The ``users`` collection: litigants and lawyers (by openid) and staff (by username)."""

    def __init__(self, db: Database) -> None:
        self.users = db["users"]

    # ---- one account

    async def by_id(self, user_id: ObjectId) -> Raw | None:
        return await self.users.find_one({"_id": user_id})

    async def by_username(self, username: str) -> Raw | None:
        return await self.users.find_one({"username": username})

    async def lawyer_of(self, user_id: ObjectId) -> Raw | None:
        """The account's lawyer application only (or None for no such account)."""
        return await self.users.find_one({"_id": user_id}, {"lawyer": 1})

    async def openid_of(self, user_id: str) -> str | None:
        """The WeChat openid of an active user; None for staff, inactive and unknown ones."""
        user = await self.users.find_one({"_id": ObjectId(user_id)}, {"openid": 1, "active": 1})
        openid = user.get("openid") if user and user.get("active", True) else None
        return str(openid) if openid else None

    async def openids_of(
        self, user_ids: list[str], session: AsyncClientSession | None = None
    ) -> dict[str, str]:
        """{user id: openid} of those of ``user_ids`` who are active and have an openid."""
        ids = [ObjectId(u) for u in user_ids if ObjectId.is_valid(u)]
        fields = {"openid": 1, "active": 1}
        if len(ids) == 1:  # the common case (a party's notice): a point read
            one = await self.users.find_one({"_id": ids[0]}, fields, session=session)
            found = [one] if one else []
        else:
            found = await self.users.find({"_id": {"$in": ids}}, fields, session=session).to_list()
        return {
            str(u["_id"]): str(u["openid"])
            for u in found
            if u.get("openid") and u.get("active", True)
        }

    async def admin_exists(self) -> bool:
        return await self.users.find_one({"username": "admin"}, {"_id": 1}) is not None

    # ---- writing

    async def change(
        self,
        user_id: ObjectId,
        query: Raw,
        update: Raw,
        session: AsyncClientSession | None = None,
    ) -> Raw | None:
        """Apply ``update`` if the account still matches ``query``; the account after, or None."""
        return await change_one(self.users, {"_id": user_id, **query}, update, session=session)

    async def upsert_by_openid(self, openid: str, update: Raw) -> Raw:
        raw = await change_one(self.users, {"openid": openid}, update, upsert=True)
        assert raw is not None  # an upsert returning the document after always has one
        return raw

    async def insert(self, doc: Raw) -> ObjectId:
        result = await self.users.insert_one(doc)
        inserted: ObjectId = result.inserted_id
        return inserted

    async def holder_of(
        self, id_hash: str, session: AsyncClientSession | None = None
    ) -> Raw | None:
        """The account whose verified identity has this ID-number hash, if any."""
        return await self.users.find_one({"identity.id_hash": id_hash}, {"_id": 1}, session=session)

    async def release_identity(
        self, user_id: ObjectId, id_hash: str, session: AsyncClientSession
    ) -> Raw | None:
        """Take the verified identity ``id_hash`` off ``user_id`` (it moves to another
        account); the account after, or None when it no longer held it."""
        return await change_one(
            self.users,
            {"_id": user_id, "identity.id_hash": id_hash},
            {"$unset": {"identity": ""}},
            session=session,
        )

    # ---- many accounts

    async def ids_by_identity(self, id_hashes: list[str]) -> dict[str, str]:
        """ID-number hash -> user id, for each hash that a verified account holds."""
        found = self.users.find({"identity.id_hash": {"$in": id_hashes}}, {"identity.id_hash": 1})
        return {u["identity"]["id_hash"]: str(u["_id"]) async for u in found}

    async def staff_ids(
        self,
        court_id: str,
        roles: Iterable[str],
        *,
        limit: int,
        session: AsyncClientSession | None = None,
    ) -> list[str]:
        """Index ``staff_by_court_role``."""
        query = {"court_id": court_id, "role": {"$in": sorted(str(r) for r in roles)}}
        cursor = self.users.find({**query, "active": True}, {"_id": 1}, session=session)
        return [str(doc["_id"]) async for doc in cursor.limit(limit)]

    async def flagged_staff_ids(
        self, court_id: str, flag: str, session: AsyncClientSession | None = None
    ) -> list[str]:
        """Indexes ``supervisors`` and ``division_heads``."""
        query = {"court_id": court_id, flag: True, "active": True}
        return [str(u["_id"]) async for u in self.users.find(query, {"_id": 1}, session=session)]

    async def staff_page(
        self, court_id: str | None, role: str | None, before: ObjectId | None, limit: int
    ) -> list[Raw]:
        """Staff accounts, newest first: of one court, or (``court_id`` None) of every court;
        at most ``limit`` + 1, so that the caller sees whether there are more."""
        filt: Raw = (
            {"court_id": court_id}
            if court_id
            else {"court_id": {"$exists": True, "$type": "string"}}
        )
        return await self._newest_first(filt, role, before, limit)

    async def colleagues_page(
        self, court_id: str, role: str | None, before: ObjectId | None, limit: int
    ) -> list[Raw]:
        """The active staff of one court, newest first, at most ``limit`` + 1."""
        return await self._newest_first({"court_id": court_id, "active": True}, role, before, limit)

    async def _newest_first(
        self, filt: Raw, role: str | None, before: ObjectId | None, limit: int
    ) -> list[Raw]:
        if role:
            filt["role"] = role
        if before is not None:
            filt["_id"] = {"$lt": before}
        return await self.users.find(filt).sort("_id", -1).limit(limit + 1).to_list()

    async def lawyers_page(self, status: str, after: ObjectId | None, limit: int) -> list[Raw]:
        """Lawyer applications in one status, oldest first, at most ``limit`` + 1."""
        filt: Raw = {"lawyer.status": status}
        if after is not None:
            filt["_id"] = {"$gt": after}
        return await self.users.find(filt).sort("_id", 1).limit(limit + 1).to_list()


class FaceResultStore:
    """The ``face_results`` collection: each face verification's result once used, by its
    SHA-256, so that a result confirms one claim and never a second."""

    def __init__(self, db: Database) -> None:
        self.results = db["face_results"]

    async def used(self, digest: str) -> bool:
        return await self.results.find_one({"_id": digest}, {"_id": 1}) is not None

    async def consume(self, digest: str, user_id: str, at: dt.datetime) -> bool:
        """Mark the result used; False when it already was."""
        try:
            await self.results.insert_one({"_id": digest, "user_id": user_id, "at": at})
        except DuplicateKeyError:
            return False
        return True


class RevocationStore:
    """The ``revocations`` collection: one document per signed-out session, kept until the
    session's token would have expired anyway."""

    def __init__(self, db: Database) -> None:
        self.revocations = db["revocations"]

    async def revoke(self, sid: str, user_id: str, expires: dt.datetime) -> None:
        # revoked_at is the database's clock, not ours: every process compares against one clock
        await self.revocations.update_one(
            {"_id": sid},
            {
                "$setOnInsert": {"user_id": user_id, "expires_at": expires},
                "$currentDate": {"revoked_at": True},
            },
            upsert=True,
        )

    async def revoked(
        self, *, unexpired_at: dt.datetime | None = None, since: dt.datetime | None = None
    ) -> AsyncIterator[Raw]:
        """Revocations made at or after ``since`` or, without it, those whose sessions are
        still unexpired at ``unexpired_at``: each with ``expires_at`` and ``revoked_at``."""
        query: Raw = (
            {"revoked_at": {"$gte": since}}
            if since is not None
            else {"expires_at": {"$gt": unexpired_at}}
        )
        async for doc in self.revocations.find(query, {"expires_at": 1, "revoked_at": 1}):
            yield doc
