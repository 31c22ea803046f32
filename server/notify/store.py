"""The one reader and writer of notify's collections: ``inbox`` (one document per recipient
and notice), ``outbox`` (one per subscribe-message push) and ``subscriptions`` (``_id`` =
``user_id:template_id``, ``quota`` = sends the user granted). A small class per collection;
the services (inbox.py, outbox.py, feed.py) call them by intent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from models.notifications import OutboxStatus
from server.platform.config import PushTemplate
from server.platform.db import Database

DUPLICATE_KEY = 11000
FEW_RECIPIENTS = 10  # up to this many, notices already sent are looked up one by one
INSERTS = [{"$match": {"operationType": "insert"}}]

Doc = dict[str, Any]


def subscription_id(user_id: str, template_id: str) -> str:
    return f"{user_id}:{template_id}"


def inbox_doc(
    user_id: str,
    kind: str,
    title: str,
    body: str,
    data: dict[str, Any],
    page: str | None,
    template: str | None,
    dedupe_key: str | None,
    now: dt.datetime,
) -> Doc:
    doc: Doc = {
        "_id": ObjectId(),
        "user_id": user_id,
        "kind": kind,
        "title": title,
        "body": body,
        "data": data,
        "page": page,
        "template": template,
        "read": False,
        "read_at": None,
        "created_at": now,
    }
    # the unique (user_id, dedupe_key) index needs a key on every notice: its own id if none
    doc["dedupe_key"] = dedupe_key or f"id:{doc['_id']}"
    return doc


def outbox_doc(
    notice: Doc,
    openid: str,
    tmpl: PushTemplate,
    rendered: dict[str, dict[str, str]],
    page: str | None,
    now: dt.datetime,
) -> Doc:
    return {
        "notification_id": notice["_id"],
        "user_id": notice["user_id"],
        "openid": openid,  # looked up once, when queued: only those who have one are queued
        "template": notice["template"],
        "template_id": tmpl.template_id,
        "data": rendered,
        "page": page,
        "status": OutboxStatus.pending.value,
        "attempts": 0,
        "quota_taken": False,
        "next_attempt_at": now,
        "created_at": now,
    }


async def _insert_new(
    collection: AsyncCollection[Doc], docs: list[Doc], session: AsyncClientSession | None
) -> list[Doc]:
    """Insert all; the documents a unique index refused as duplicates are left out."""
    if not docs:
        return []
    try:
        await collection.insert_many(docs, ordered=False, session=session)
    except BulkWriteError as e:
        errors = e.details.get("writeErrors", [])
        if any(err.get("code") != DUPLICATE_KEY for err in errors) or not errors:
            raise
        refused = {err["index"] for err in errors}
        return [d for i, d in enumerate(docs) if i not in refused]
    return docs


class InboxStore:
    """``inbox``: the in-app notices, and what the live feed follows."""

    def __init__(self, db: Database) -> None:
        self.col = db["inbox"]

    async def insert_new(self, docs: list[Doc], session: AsyncClientSession | None) -> list[Doc]:
        """The notices inserted; those a recipient already had (same dedupe key) left out."""
        return await _insert_new(self.col, docs, session)

    async def already_sent(
        self, user_ids: list[str], dedupe_key: str, session: AsyncClientSession
    ) -> set[str]:
        """Those of ``user_ids`` who have the notice ``dedupe_key`` already."""
        if len(user_ids) > FEW_RECIPIENTS:
            query = {"user_id": {"$in": user_ids}, "dedupe_key": dedupe_key}
            seen = self.col.find(query, {"user_id": 1}, session=session)
            return {d["user_id"] async for d in seen}
        # one point read each: an index serves equalities only (server.platform.mongo), an
        # $in on its first field may scan the whole inbox
        known: set[str] = set()
        for uid in user_ids:
            mine = {"user_id": uid, "dedupe_key": dedupe_key}
            if await self.col.find_one(mine, {"_id": 1}, session=session):
                known.add(uid)
        return known

    async def page(
        self, user_id: str, *, unread: bool, before: ObjectId | None, limit: int
    ) -> list[Doc]:
        """Up to ``limit`` of the user's notices, newest first, older than ``before``."""
        filt: Doc = {"user_id": user_id}
        if unread:
            filt["read"] = False
        if before is not None:
            filt["_id"] = {"$lt": before}
        return await self.col.find(filt).sort("_id", DESCENDING).to_list(limit)

    async def unread_count(self, user_id: str) -> int:
        return await self.col.count_documents({"user_id": user_id, "read": False})

    async def mark_read(self, user_id: str, notice_id: ObjectId, now: dt.datetime) -> Doc | None:
        """The user's notice, marked read (by whichever request came first); None if the
        user has no such notice."""
        mine = {"_id": notice_id, "user_id": user_id}
        # update_one then find_one, not findAndModify (server.platform.mongo)
        await self.col.update_one({**mine, "read": False}, {"$set": {"read": True, "read_at": now}})
        return await self.col.find_one(mine)

    # ---- what the live feed follows

    async def watch_inserts(self, resume_after: Any) -> AsyncChangeStream[Doc]:
        return await self.col.watch(INSERTS, resume_after=resume_after)

    async def newest_id(self) -> ObjectId | None:
        newest = await self.col.find_one({}, {"_id": 1}, sort=[("_id", DESCENDING)])
        return newest["_id"] if newest else None

    async def inserted_after(self, after: ObjectId | None, limit: int) -> AsyncIterator[Doc]:
        """Up to ``limit`` notices with ``_id > after``, oldest first."""
        query = {"_id": {"$gt": after}} if after is not None else {}
        async for doc in self.col.find(query).sort("_id", ASCENDING).limit(limit):
            yield doc


class OutboxStore:
    """``outbox``: the pushes to send. Every claim and state change is a conditional
    ``update_one`` rather than a findAndModify: same guarantee, and findAndModify is slow on
    the embedded database (``server.platform.mongo``)."""

    def __init__(self, db: Database) -> None:
        self.col = db["outbox"]

    async def insert_new(self, items: list[Doc], session: AsyncClientSession | None) -> None:
        await _insert_new(self.col, items, session)

    async def due(self, status: OutboxStatus, now: dt.datetime, limit: int) -> list[Doc]:
        """Items of ``status`` due at ``now``, oldest first (index ``due``)."""
        query = {"status": status.value, "next_attempt_at": {"$lte": now}}
        return await self.col.find(query).sort("next_attempt_at", ASCENDING).to_list(limit)

    async def claim(
        self,
        ids: list[Any],
        status: OutboxStatus,
        now: dt.datetime,
        sets: Doc,
        session: AsyncClientSession | None = None,
    ) -> int:
        """Set ``sets`` (a claim) on those of the items ``ids`` still of ``status`` and due
        at ``now`` (another worker's claim ends both), in one ``update_many``: one commit for
        the batch (on the embedded database 50 single updates took ~0.35 s, one update_many
        of 50 ~0.06 s); how many were claimed."""
        if not ids:
            return 0
        result = await self.col.update_many(
            {"_id": {"$in": ids}, "status": status.value, "next_attempt_at": {"$lte": now}},
            {"$set": sets, "$inc": {"attempts": 1}},
            session=session,
        )
        return result.modified_count

    async def claimed(self, ids: list[Any], token: Any) -> set[Any]:
        """Those of ``ids`` that carry the claim ``token`` (some were lost to another worker)."""
        won = self.col.find({"_id": {"$in": ids}, "claim": token}, {"_id": 1})
        return {d["_id"] async for d in won}

    async def quota_taken(
        self, item_ids: list[Any], owner: str, session: AsyncClientSession | None = None
    ) -> None:
        if item_ids:
            await self.col.update_many(
                {"_id": {"$in": item_ids}, "claimed_by": owner},
                {"$set": {"quota_taken": True}},
                session=session,
            )

    async def release_many(
        self, owner: str, releases: Sequence[tuple[Any, Doc, Iterable[str]]]
    ) -> None:
        """For each (id, sets, unset): apply ``sets`` and drop the claim (and the ``unset``
        fields), if the item is still ``sending`` under ``owner``'s claim: a worker that lost
        its claim (it took too long and the item was taken up again) must not overwrite the
        newer outcome. One transaction for the round, so one commit (~0.07 s for 50 on the
        embedded database, against ~0.35 s for 50 commits)."""
        ops = [
            UpdateOne(
                {"_id": item_id, "claimed_by": owner, "status": OutboxStatus.sending.value},
                {"$set": sets, "$unset": dict.fromkeys((*unset, "claim"), "")},
            )
            for item_id, sets, unset in releases
        ]
        if not ops:
            return
        async with self.col.database.client.start_session() as session:

            async def write(session: AsyncClientSession) -> None:
                await self.col.bulk_write(ops, ordered=False, session=session)

            await session.with_transaction(write)

    # ---- SMS items (server/notify/sms.py): found again by the provider's serial number

    async def sms_by_serial(self, serial_no: str, phone: str) -> Doc | None:
        """The SMS item the provider numbered ``serial_no``, sent to ``phone``."""
        return await self.col.find_one({"serial_no": serial_no, "phone": phone, "kind": "sms"})

    async def park_sms_receipt(self, serial_no: str, phone: str, report: Doc) -> bool:
        """Keep a report that came before its SMS's serial number was stored, if an SMS to
        ``phone`` is in flight (strangers' reports park nothing); whether it was kept."""
        # index sms_by_phone: the phone's SMS items and parked receipts, a caller's handful
        flying = {"kind": "sms", "phone": phone, "status": {"$in": ["pending", "sending"]}}
        if await self.col.find_one(flying, {"_id": 1}) is None:
            return False
        parked = {"kind": "sms_receipt", "serial_no": serial_no, "phone": phone}
        await self.col.update_one(parked, {"$setOnInsert": {"report": report}}, upsert=True)
        return True

    async def parked_sms_receipt(self, serial_no: str, phone: str) -> Doc | None:
        """The report parked for ``serial_no``, if one came early."""
        query = {"kind": "sms_receipt", "serial_no": serial_no, "phone": phone}
        found = await self.col.find_one(query)
        return dict(found["report"]) if found else None

    async def sms_receipt(self, item_id: Any, receipt: Doc) -> bool:
        """Record the delivery receipt once; whether this was the first."""
        result = await self.col.update_one(
            {"_id": item_id, "receipt": None}, {"$set": {"receipt": receipt}}
        )
        return bool(result.modified_count)


class SubscriptionStore:
    """``subscriptions``: the sends of each template each user granted."""

    def __init__(self, db: Database) -> None:
        self.col = db["subscriptions"]

    async def grant(self, user_id: str, template_ids: Iterable[str], now: dt.datetime) -> None:
        """One more send of each template."""
        ops = [
            UpdateOne(
                {"_id": subscription_id(user_id, tid)},
                {
                    "$inc": {"quota": 1},
                    "$set": {"updated_at": now},
                    "$setOnInsert": {"user_id": user_id, "template_id": tid},
                },
                upsert=True,
            )
            for tid in template_ids
        ]
        try:
            await self.col.bulk_write(ops, ordered=False)
        except BulkWriteError:  # two first grants raced on the upsert: once more updates
            await self.col.bulk_write(ops, ordered=False)

    async def quotas(self, user_id: str) -> dict[str, int]:
        """{template id: sends left}."""
        found = self.col.find({"user_id": user_id})
        return {d["template_id"]: int(d.get("quota", 0)) async for d in found}

    async def left(
        self, keys: list[str], session: AsyncClientSession | None = None
    ) -> dict[str, int]:
        """{subscription id: sends left} of those of ``keys`` that exist."""
        found = self.col.find({"_id": {"$in": keys}}, {"quota": 1}, session=session)
        return {d["_id"]: int(d.get("quota", 0)) async for d in found}

    async def take_many(self, counts: dict[str, int], session: AsyncClientSession) -> bool:
        """``counts[id]`` sends of each subscription, each only if that many are left, in one
        bulk write; whether every one was (if not, the caller's transaction is aborted)."""
        ops = [
            UpdateOne({"_id": key, "quota": {"$gte": n}}, {"$inc": {"quota": -n}})
            for key, n in counts.items()
        ]
        result = await self.col.bulk_write(ops, ordered=False, session=session)
        return result.modified_count == len(ops)

    async def take(self, user_id: str, template_id: str) -> bool:
        """One send of the user's quota, if any is left; whether one was."""
        taken = await self.col.update_one(
            {"_id": subscription_id(user_id, template_id), "quota": {"$gt": 0}},
            {"$inc": {"quota": -1}},
        )
        return bool(taken.modified_count)

    async def give_back(self, user_id: str, template_id: str) -> None:
        await self.col.update_one(
            {"_id": subscription_id(user_id, template_id)}, {"$inc": {"quota": 1}}
        )

    async def none_left(self, user_id: str, template_id: str) -> None:
        await self.col.update_one(
            {"_id": subscription_id(user_id, template_id)}, {"$set": {"quota": 0}}
        )
