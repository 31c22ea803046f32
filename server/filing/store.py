"""The only module that reads and writes the ``filings`` collection.

Every transition is one conditional update on the state it expects and the version the caller
read, so a lost race answers None (``won`` turns it into a retry or a 409), never a double
transition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.filings import EDITABLE, FilingDoc, FilingStatus
from server.platform.db import Database, won
from server.platform.mongo import EPOCH, change_one, earliest_page

#: the review queue's order: green channel first, then the nearest deadline
QUEUE_SORT = [("green", -1), ("review_deadline", 1), ("_id", 1)]
SWEEP_BATCH = 500


def queue_filter(court_id: str) -> dict[str, Any]:
    """The review queue's filter (index ``review_queue``), read in ``QUEUE_SORT`` order."""
    return {"court_id": court_id, "status": FilingStatus.submitted.value}


#: A position in the queue: (green, review deadline, id) of the previous page's last filing.
QueuePosition = tuple[bool, dt.datetime, ObjectId]


def queue_windows(now: dt.datetime) -> list[dt.datetime]:
    """Where the queue's windows of review deadlines start (``earliest_page``): long overdue,
    overdue this month, this week, due today, this week, within two months, later."""
    days = (-30, -7, 0, 1, 7, 60)
    return [EPOCH, *(now + dt.timedelta(days=d) for d in days)]


async def queue_page(
    col: Any, court_id: str, after: QueuePosition | None, limit: int, *, now: dt.datetime
) -> list[dict[str, Any]]:
    """The court's review queue in ``QUEUE_SORT`` order after ``after``, at most ``limit``:
    the green channel, then the rest, each read earliest deadline first in windows
    (``earliest_page``: one sorted query would read every pending filing of the court)."""
    rows: list[dict[str, Any]] = []
    for green in (True, False):
        if len(rows) >= limit or (after is not None and green and not after[0]):
            continue
        since = (after[1], after[2]) if after is not None and bool(after[0]) == green else None
        rows += await earliest_page(
            col,
            {**queue_filter(court_id), "green": green},
            limit - len(rows),
            field="review_deadline",
            edges=queue_windows(now),
            after=since,
        )
    return rows


def submit_update(by: str, action: str, now: dt.datetime, deadline: dt.datetime) -> dict[str, Any]:
    """The update that files a draft (or a corrected filing) at ``now``."""
    return {
        "$set": {
            "status": FilingStatus.submitted.value,
            "submitted_at": now,
            "review_deadline": deadline,
            "deadline_flag": None,
            "updated_at": now,
        },
        "$inc": {"version": 1},
        "$push": {"decisions": {"action": action, "by": by, "at": now}},
    }


def decision_update(
    changes: dict[str, Any], decision: dict[str, Any], by: str, now: dt.datetime
) -> dict[str, Any]:
    """A move of the filing, recorded in its ``decisions`` by whom and when."""
    return {
        "$set": {**changes, "updated_at": now},
        "$inc": {"version": 1},
        "$push": {"decisions": {**decision, "by": by, "at": now}},
    }


def _as_read(doc: FilingDoc, statuses: Sequence[FilingStatus] | None = None) -> dict[str, Any]:
    """The filing as the caller read it (its version, and its status or one of ``statuses``)."""
    status: Any = {"$in": [s.value for s in statuses]} if statuses else doc.status.value
    return {"_id": doc.id, "version": doc.version, "status": status}


class FilingStore:
    def __init__(self, db: Database) -> None:
        self._col = db["filings"]
        self.db = db  # the transactions of submission and review run on it

    # ---- reading

    async def load(self, filing_id: str) -> FilingDoc | None:
        if not ObjectId.is_valid(filing_id):
            return None
        raw = await self._col.find_one({"_id": ObjectId(filing_id)})
        return FilingDoc.model_validate(raw) if raw is not None else None

    async def by_filer(
        self, filer_id: str, status: FilingStatus | None, before: ObjectId | None, limit: int
    ) -> list[FilingDoc]:
        """A filer's filings, newest first (index ``by_filer``), at most ``limit``."""
        filt: dict[str, Any] = {"filer_id": filer_id}
        if status:
            filt["status"] = status.value
        if before is not None:
            filt["_id"] = {"$lt": before}
        raws = await self._col.find(filt).sort("_id", -1).limit(limit).to_list()
        return [FilingDoc.model_validate(r) for r in raws]

    async def pending_for_court(
        self, court_id: str, after: QueuePosition | None, limit: int, now: dt.datetime
    ) -> list[FilingDoc]:
        """The court's review queue in ``QUEUE_SORT`` order, at most ``limit`` (``queue_page``)."""
        raws = await queue_page(self._col, court_id, after, limit, now=now)
        return [FilingDoc.model_validate(r) for r in raws]

    # ---- writing

    async def insert(self, doc: dict[str, Any]) -> FilingDoc:
        result = await self._col.insert_one(doc)
        return FilingDoc.model_validate({**doc, "_id": result.inserted_id})

    async def edit(self, doc: FilingDoc, changes: dict[str, Any]) -> FilingDoc:
        """Change the fields of a filing still editable, as read."""
        raw = await change_one(
            self._col, _as_read(doc, EDITABLE), {"$set": changes, "$inc": {"version": 1}}
        )
        return FilingDoc.model_validate(won(raw))

    async def move(
        self, doc: FilingDoc, update: dict[str, Any], session: AsyncClientSession | None = None
    ) -> FilingDoc:
        """Apply a transition (``submit_update``, ``decision_update`` …) to the filing as
        read; a lost race raises (``won``)."""
        raw = await change_one(self._col, _as_read(doc), update, session=session)
        return FilingDoc.model_validate(won(raw))

    # ---- the deadline sweep

    async def unflagged(
        self, court_id: str, window: dict[str, Any], before: list[str | None]
    ) -> AsyncIterator[FilingDoc]:
        """Pending filings of the court whose review deadline falls in ``window`` and whose flag
        is one of ``before`` (index ``deadline_sweep``), at most ``SWEEP_BATCH``."""
        filt = {
            "court_id": court_id,
            "status": FilingStatus.submitted.value,
            "review_deadline": window,
            "deadline_flag": {"$in": before},
        }
        async for raw in self._col.find(filt).limit(SWEEP_BATCH):
            yield FilingDoc.model_validate(raw)

    async def flag(self, doc: FilingDoc, flag: str) -> bool:
        """Set the deadline flag unless someone else changed it first: so each filing is
        flagged (and announced) once per state, however many processes sweep."""
        took = await self._col.update_one(
            {"_id": doc.id, "version": doc.version, "deadline_flag": doc.deadline_flag},
            {"$set": {"deadline_flag": flag}},
        )
        return bool(took.modified_count)
