"""The only code that reads or writes the collections cases owns: ``cases``, ``hearings``
with the rooms' day locks (``hearing_rooms``), ``served_documents`` and ``documents_owed``.

``documents_owed`` holds, per case, the acceptance documents still to be made and served.

The services say what they want (``cases.with_number``, ``hearings.take_reminder``,
``documents.record_paper`` ...); the filters and updates live here. The pure builders the
benchmark runs as its raw rows (``SUMMARY_FIELDS``, ``party_scopes``, the page limits) live
here too, so that a raw row runs the very query the service runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.cases import CaseDoc, HearingDoc, HearingStatus
from models.documents import OwedDocumentsDoc, ServedDocumentDoc
from models.filings import PARTY_GROUPS
from server.platform.db import Database
from server.platform.mongo import change_one, due, first_page

#: (index to name or None, filter, whether an index serves the filter as a prefix) of one
#: of GET /cases' queries
Scope = tuple[str | None, dict[str, Any], bool]
SUMMARY_FIELDS = {
    f: 1
    for f in (
        "case_no",
        "court_id",
        "cause",
        "procedure",
        "status",
        "plaintiffs.name",
        "defendants.name",
        "judge_id",
        "accepted_at",
        "last_activity_at",
    )
}
MAX_HEARINGS = 100  # per case, in the case detail
MAX_DOCUMENTS = 500  # per case, in the case detail
SWEEP_BATCH = 500
SCHEDULED = HearingStatus.scheduled.value


def party_scopes(user_id: str, extra: dict[str, Any]) -> list[Scope]:
    """A party's and an agent's cases: two queries, each read whole, left to the planner."""
    return [
        (None, {"party_user_ids": user_id, **extra}, False),
        (None, {"agent_ids": user_id, **extra}, False),
    ]


def _oid(value: str) -> ObjectId | None:
    return ObjectId(value) if ObjectId.is_valid(value) else None


class CaseStore:
    def __init__(self, db: Database) -> None:
        self.col = db["cases"]

    async def insert_many(self, cases: list[dict[str, Any]], session: AsyncClientSession) -> None:
        await self.col.insert_many(cases, session=session)

    async def get(self, case_id: str) -> CaseDoc | None:
        oid = _oid(case_id)
        raw = await self.col.find_one({"_id": oid}) if oid else None
        return CaseDoc.model_validate(raw) if raw else None

    async def with_number(self, case_no: str) -> CaseDoc | None:
        raw = await self.col.find_one({"case_no": case_no})
        return CaseDoc.model_validate(raw) if raw else None

    async def summaries(
        self, scope: Scope, limit: int, now: dt.datetime, after: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """One page of one of GET /cases' queries, newest activity first (``first_page``)."""
        index, filt, indexed = scope
        return await first_page(
            self.col,
            filt,
            SUMMARY_FIELDS,
            limit,
            field="last_activity_at",
            now=now,
            after=after,
            indexed_scope=indexed,
            index=index,
        )

    async def add_event(
        self,
        case_id: Any,
        events: list[dict[str, Any]],
        changes: dict[str, Any],
        expect: dict[str, Any],
        session: AsyncClientSession | None,
    ) -> CaseDoc | None:
        """Append ``events`` (one update, however many) with ``changes``, if ``expect``."""
        now = events[-1]["at"]
        raw = await change_one(
            self.col,
            {"_id": case_id, **expect},
            {
                "$set": {**changes, "updated_at": now, "last_activity_at": now},
                "$inc": {"version": 1},
                "$push": {"timeline": {"$each": events}},
            },
            session=session,
        )
        return CaseDoc.model_validate(raw) if raw else None

    async def link_party(
        self, case_id: Any, id_hash: str, paths: list[str], user_id: str
    ) -> CaseDoc | None:
        """Set ``user_id`` on the parties at ``paths`` if they still hold ``id_hash``."""
        raw = await change_one(
            self.col,
            {"_id": case_id, **{f"{path}.id_hash": id_hash for path in paths}},
            {
                "$set": {f"{path}.user_id": user_id for path in paths},
                "$addToSet": {"party_user_ids": user_id},
            },
        )
        return CaseDoc.model_validate(raw) if raw else None

    async def move_links(
        self, id_hash: str, from_user: str, to_user: str, session: AsyncClientSession
    ) -> int:
        """Hand the parties holding ``id_hash`` that ``from_user`` was linked to over to
        ``to_user`` (the ID number moved between accounts), ``party_user_ids`` made again from
        the parties; the number of cases changed."""
        moved = 0
        fields = dict.fromkeys(PARTY_GROUPS, 1)
        cursor = self.col.find({"party_user_ids": from_user}, fields, session=session)
        async for raw in cursor:
            parties = {g: list(raw.get(g) or []) for g in PARTY_GROUPS}
            sets: dict[str, Any] = {}
            for group, members in parties.items():
                for i, party in enumerate(members):
                    if party.get("id_hash") == id_hash and party.get("user_id") == from_user:
                        party["user_id"] = to_user
                        sets[f"{group}.{i}.user_id"] = to_user
            if not sets:
                continue
            linked = {p["user_id"] for g in parties.values() for p in g if p.get("user_id")}
            sets["party_user_ids"] = sorted(linked)
            await self.col.update_one({"_id": raw["_id"]}, {"$set": sets}, session=session)
            moved += 1
        return moved


class HearingStore:
    def __init__(self, db: Database) -> None:
        self.col = db["hearings"]
        self.rooms = db["hearing_rooms"]

    async def of_case(self, case_id: str) -> list[HearingDoc]:
        cursor = self.col.find({"case_id": case_id}).sort([("starts_at", 1)])
        raws = await cursor.limit(MAX_HEARINGS).to_list()
        return [HearingDoc.model_validate(r) for r in raws]

    async def in_case(self, case_id: str, hearing_id: str) -> HearingDoc | None:
        oid = _oid(hearing_id)
        raw = await self.col.find_one({"_id": oid, "case_id": case_id}) if oid else None
        return HearingDoc.model_validate(raw) if raw else None

    async def insert(self, hearing: HearingDoc, session: AsyncClientSession) -> None:
        await self.col.insert_one(hearing.model_dump(by_alias=True), session=session)

    async def lock_room_day(
        self, court_id: str, room: str, day: dt.date, session: AsyncClientSession
    ) -> None:
        """Write the room's lock for the day: two transactions that could overlap in that
        room write the same document, so one of them is retried."""
        await self.rooms.update_one(
            {"_id": f"{court_id}|{room}|{day.isoformat()}"},
            {"$inc": {"claims": 1}, "$set": {"court_id": court_id, "room": room}},
            upsert=True,
            session=session,
        )

    async def starting_between(
        self,
        court_id: str,
        room: str,
        since: dt.datetime,
        before: dt.datetime,
        session: AsyncClientSession,
    ) -> list[HearingDoc]:
        filt = {"court_id": court_id, "room": room, "starts_at": {"$gt": since, "$lt": before}}
        raws = await self.col.find(filt, session=session).to_list()
        return [HearingDoc.model_validate(r) for r in raws]

    async def move(
        self,
        hearing: HearingDoc,
        changes: dict[str, Any],
        now: dt.datetime,
        session: AsyncClientSession,
    ) -> dict[str, Any] | None:
        """The conditional update of a scheduled hearing; None if it changed meanwhile."""
        return await change_one(
            self.col,
            {"_id": hearing.id, "version": hearing.version, "status": SCHEDULED},
            {"$set": {**changes, "updated_at": now}, "$inc": {"version": 1}},
            session=session,
        )

    async def count_scheduled(self, case_id: str, session: AsyncClientSession) -> int:
        return await self.col.count_documents(
            {"case_id": case_id, "status": SCHEDULED}, session=session
        )

    async def cancel_scheduled(
        self, case_id: str, reason: str, now: dt.datetime, session: AsyncClientSession
    ) -> None:
        """Cancel every scheduled hearing of the case (no reminder, the room freed)."""
        changes = {
            "status": HearingStatus.cancelled.value,
            "reminder_pending": False,
            "cancel_reason": reason,
            "updated_at": now,
        }
        await self.col.update_many(
            {"case_id": case_id, "status": SCHEDULED},
            {"$set": changes, "$inc": {"version": 1}},
            session=session,
        )

    async def mark_held(self, case_id: str, now: dt.datetime, session: AsyncClientSession) -> None:
        """The scheduled hearings of the case that have begun are held (no more reminders)."""
        changes = {"status": HearingStatus.held.value, "reminder_pending": False, "updated_at": now}
        await self.col.update_many(
            {"case_id": case_id, "status": SCHEDULED, "starts_at": {"$lte": now}},
            {"$set": changes, "$inc": {"version": 1}},
            session=session,
        )

    async def pending_reminders(
        self, court_id: str, after: dt.datetime, until: dt.datetime
    ) -> list[HearingDoc]:
        # only a scheduled hearing is pending: cancelling or holding it clears the flag
        filt = {
            "court_id": court_id,
            "reminder_pending": True,
            "starts_at": {"$gt": after, "$lte": until},
        }
        raws = await self.col.find(filt).limit(SWEEP_BATCH).to_list()
        return [HearingDoc.model_validate(r) for r in raws]

    async def take_reminder(
        self, hearing: HearingDoc, now: dt.datetime, session: AsyncClientSession
    ) -> bool:
        """Clear the hearing's reminder flag; False if another process took it first."""
        took = await self.col.update_one(
            {"_id": hearing.id, "reminder_pending": True, "version": hearing.version},
            {"$set": {"reminder_pending": False, "reminded_at": now}},
            session=session,
        )
        return bool(took.modified_count)


class DocumentStore:
    def __init__(self, db: Database) -> None:
        self.col = db["served_documents"]

    async def insert(self, docs: list[ServedDocumentDoc], session: AsyncClientSession) -> None:
        raws = [d.model_dump(by_alias=True) for d in docs]
        for raw in raws:
            if raw.get("verify_code") is None:
                del raw["verify_code"]  # the unique index is sparse: only the generated hold one
        await self.col.insert_many(raws, session=session)

    async def with_code(self, code: str) -> ServedDocumentDoc | None:
        raw = await self.col.find_one({"verify_code": code})
        return ServedDocumentDoc.model_validate(raw) if raw else None

    async def in_case(self, case_id: str, doc_id: str) -> ServedDocumentDoc | None:
        oid = _oid(doc_id)
        raw = await self.col.find_one({"_id": oid, "case_id": case_id}) if oid else None
        return ServedDocumentDoc.model_validate(raw) if raw else None

    async def of_case(self, case_id: str) -> list[ServedDocumentDoc]:
        cursor = self.col.find({"case_id": case_id}).sort([("_id", 1)]).limit(MAX_DOCUMENTS)
        return [ServedDocumentDoc.model_validate(r) for r in await cursor.to_list()]

    async def mark_read(
        self, doc: ServedDocumentDoc, lines: set[str], reader: str, now: dt.datetime
    ) -> ServedDocumentDoc:
        """Set ``read_at`` on each unread line of ``lines``, each by a conditional update so
        that concurrent first reads record one time; the document as it then is."""
        for i, r in enumerate(doc.recipients):
            if r.party_id in lines and r.read_at is None:
                line = f"recipients.{i}"
                await self.col.update_one(
                    {"_id": doc.id, f"{line}.party_id": r.party_id, f"{line}.read_at": None},
                    {"$set": {f"{line}.read_at": now, f"{line}.read_by": reader}},
                )
        raw = await self.col.find_one({"_id": doc.id})
        assert raw is not None
        return ServedDocumentDoc.model_validate(raw)

    async def record_paper(
        self,
        doc_id: Any,
        index: int,
        party_id: str,
        fields: dict[str, Any],
        session: AsyncClientSession,
    ) -> bool:
        """Set ``fields`` on the recipient line ``index`` if it is still undelivered; False
        when it was delivered meanwhile."""
        line = f"recipients.{index}"
        took = await self.col.update_one(
            {"_id": doc_id, f"{line}.party_id": party_id, f"{line}.delivered_at": None},
            {"$set": {f"{line}.{k}": v for k, v in fields.items()}},
            session=session,
        )
        return bool(took.modified_count)


class OwedStore:
    """The acceptance documents still owed: one document per case, inserted with the case and
    deleted by the transaction that serves them, so that deleting it is the claim (two
    servers racing: one deletes it, the other's transaction conflicts, is tried again and
    finds nothing to delete)."""

    def __init__(self, db: Database) -> None:
        self.col = db["documents_owed"]

    async def insert_many(self, owed: list[OwedDocumentsDoc], session: AsyncClientSession) -> None:
        await self.col.insert_many([o.model_dump(by_alias=True) for o in owed], session=session)

    async def get(self, case_id: str) -> OwedDocumentsDoc | None:
        raw = await self.col.find_one({"_id": case_id})
        return OwedDocumentsDoc.model_validate(raw) if raw else None

    async def owed_since(self, before: dt.datetime, limit: int) -> list[OwedDocumentsDoc]:
        """Owed since ``before`` or earlier, oldest first."""
        cursor = self.col.find({"since": due(before)}).sort([("since", 1)]).limit(limit)
        return [OwedDocumentsDoc.model_validate(r) for r in await cursor.to_list()]

    async def settle(self, case_id: str, session: AsyncClientSession) -> bool:
        """Remove the case's debt in ``session``'s transaction; False if it was already gone."""
        done = await self.col.delete_one({"_id": case_id}, session=session)
        return bool(done.deleted_count)
