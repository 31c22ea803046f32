"""The only module that reads and writes the ``filings`` collection.

Every transition is one conditional update on the state it expects and the version the caller
read, so a lost race answers None (``won`` turns it into a retry or a 409), never a double
transition.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from models.filings import EDITABLE, FilingDoc, FilingStatus
from server.filing.queue_chunks import CAP, Chunks, Key, cut, just_before, key_of, order
from server.platform.db import Database, won
from server.platform.mongo import EPOCH, change_one, earliest_page

#: the review queue's order: green channel first, then the nearest deadline
QUEUE_SORT = [("green", -1), ("review_deadline", 1), ("_id", 1)]
SWEEP_BATCH = 500
#: the queue's chunks, one document per court (``queue_chunks``)
CHUNKS = "filing_queue_chunks"
#: what a chunk's split reads of its filings: their positions
KEY_FIELDS = {"green": 1, "review_deadline": 1}
#: what a page reads of the court's chunks: their starts, not their counts
STARTS = {"starts": 1, "version": 1}


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
    col: Any,
    court_id: str,
    after: QueuePosition | None,
    limit: int,
    *,
    now: dt.datetime,
    chunks: Chunks | None = None,
    emptied: list[int] | None = None,
) -> list[dict[str, Any]]:
    """The court's review queue in ``QUEUE_SORT`` order after ``after``, at most ``limit``:
    chunk after chunk of ``chunks`` (``queue_chunks``: each read costs its chunk's filings;
    none given, the queue is one chunk), each as ``queue_range``. The chunks read from their
    start and found empty are added to ``emptied``."""
    chunks = chunks or Chunks.whole()
    rows: list[dict[str, Any]] = []
    index = chunks.find(after) if after is not None else 0
    position = after
    while index < len(chunks.starts) and len(rows) < limit:
        got = await queue_range(col, court_id, position, chunks.end(index), limit - len(rows), now)
        if not got and emptied is not None and position == just_before(chunks.starts[index]):
            emptied.append(index)
        rows += got
        index += 1
        position = just_before(chunks.starts[index]) if index < len(chunks.starts) else None
    return rows


async def queue_range(
    col: Any,
    court_id: str,
    after: QueuePosition | None,
    until: Key | None,
    limit: int,
    now: dt.datetime,
    projection: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The queue after ``after`` and before ``until``, at most ``limit``: the green channel,
    then the rest, each read earliest deadline first in windows (``earliest_page``: one sorted
    query would read every pending filing of the court)."""
    rows: list[dict[str, Any]] = []
    for green in (True, False):
        if len(rows) >= limit or (after is not None and green and not after[0]):
            continue
        if until is not None and not green and until[0]:
            break  # the range ends within the green channel
        rows += await earliest_page(
            col,
            {**queue_filter(court_id), "green": green},
            limit - len(rows),
            field="review_deadline",
            edges=queue_windows(now),
            after=(after[1], after[2]) if after is not None and bool(after[0]) == green else None,
            until=(until[1], until[2]) if until is not None and until[0] == green else None,
            projection=projection,
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
        self._chunks = db[CHUNKS]
        self._building = asyncio.Lock()  # one build of a court's chunks at a time
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
        """The court's review queue in ``QUEUE_SORT`` order, at most ``limit`` (``queue_page``
        over the court's chunks); the chunks it found empty are dropped."""
        chunks = await self._court_chunks(court_id)
        emptied: list[int] = []
        raws = await queue_page(
            self._col, court_id, after, limit, now=now, chunks=chunks, emptied=emptied
        )
        if emptied:
            await self._rewrite(court_id, chunks.version, lambda fresh: fresh.drop(emptied))
        return [FilingDoc.model_validate(r) for r in raws]

    # ---- the queue's chunks (``queue_chunks``)

    async def _court_chunks(self, court_id: str) -> Chunks:
        doc = await self._chunks.find_one({"_id": court_id}, STARTS)
        if doc is not None:
            return Chunks.from_doc(doc)
        async with self._building:
            doc = await self._chunks.find_one({"_id": court_id})
            return Chunks.from_doc(doc) if doc is not None else await self._build(court_id)

    async def _build(self, court_id: str) -> Chunks:
        """The court's chunks from every pending filing's position: once per court."""
        filt = queue_filter(court_id)
        keys = sorted([key_of(r) async for r in self._col.find(filt, KEY_FIELDS)], key=order)
        chunks = Chunks(*cut(keys))
        try:
            await self._chunks.insert_one({"_id": court_id, "version": 0, **chunks.doc()})
        except DuplicateKeyError:  # another process built them first
            return Chunks.from_doc(await self._chunks.find_one({"_id": court_id}))
        return chunks

    async def _rewrite(self, court_id: str, version: int, change: Callable[[Chunks], None]) -> bool:
        """``change`` the court's chunks as read again now, unless they were rewritten since
        ``version`` was read (the next read or split tries again). Read again, the counts
        that submissions added meanwhile are kept, but for those between this read and the
        write (``queue_chunks``)."""
        fresh = Chunks.from_doc(await self._chunks.find_one({"_id": court_id}))
        if fresh.version != version:
            return False
        change(fresh)
        took = await self._chunks.update_one(
            {"_id": court_id, "version": version},
            {"$set": fresh.doc(), "$inc": {"version": 1}},
        )
        return bool(took.modified_count)

    async def queue_grew(self, docs: Sequence[FilingDoc], now: dt.datetime) -> None:
        """Count filings of one court just submitted (a group's) into their chunks, in one
        write, and split each chunk counted above ``CAP``: after the submissions'
        transaction (``queue_chunks``)."""
        keys: list[Key] = [(d.green, d.review_deadline, d.id) for d in docs if d.review_deadline]
        if not keys:
            return
        court_id = docs[0].court_id
        assert all(d.court_id == court_id for d in docs), "one court's filings"
        for _ in range(3):  # a rewrite moved the chunks: find the filings' chunks again
            raw = await self._chunks.find_one({"_id": court_id})
            if raw is None:
                return  # the court's next page read builds its chunks, these filings with them
            chunks = Chunks.from_doc(raw)
            added = Counter(chunks.find(key) for key in keys)
            bump = {"$inc": {f"n.{at}": n for at, n in added.items()}}
            took = await self._chunks.update_one({"_id": court_id, "version": chunks.version}, bump)
            if took.matched_count:
                break
        else:
            return
        full = [at for at, n in added.items() if chunks.counts[at] + n > CAP]
        for at in sorted(full, reverse=True):  # a split moves the chunks after it, not before
            if not await self._split(court_id, chunks, at, now):
                return  # rewritten meanwhile: the chunk's next count splits it
            chunks.version += 1

    async def _split(self, court_id: str, chunks: Chunks, at: int, now: dt.datetime) -> bool:
        start = just_before(chunks.starts[at])
        found = await queue_range(
            self._col, court_id, start, chunks.end(at), 1 << 30, now, KEY_FIELDS
        )
        keys = [key_of(r) for r in found]
        return await self._rewrite(court_id, chunks.version, lambda fresh: fresh.split(at, keys))

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

    async def move_each(
        self,
        moves: Sequence[tuple[FilingDoc, dict[str, Any]]],
        session: AsyncClientSession,
        mine: str | None = None,
    ) -> list[FilingDoc | None]:
        """``move`` of many filings in one bulk write and one read, in ``session``'s
        transaction; each moved filing, or None where the race was lost (the filing no longer
        as read, or moved by an earlier move of the list).

        ``mine``: each update ``$set``s this field to a value of its own (an acceptance: its
        case id), which tells a filing it moved from one moved by another writer. Without it
        (a submission sets nothing of its own), the filings are read first, in the
        transaction, and only those still as read are moved: a writer committing after that
        read makes the transaction conflict (it is tried again), so none moves unseen."""
        chosen = (
            [True] * len(moves) if mine is not None else await self._still_as_read(moves, session)
        )
        picked = [move for move, ok in zip(moves, chosen, strict=True) if ok]
        if picked:
            ops = [UpdateOne(_as_read(doc), update) for doc, update in picked]
            await self._col.bulk_write(ops, ordered=True, session=session)
        ids = [doc.id for doc, _update in picked]
        found = {
            raw["_id"]: raw async for raw in self._col.find({"_id": {"$in": ids}}, session=session)
        }
        return [
            FilingDoc.model_validate(raw)
            if ok
            and (raw := found.get(doc.id)) is not None
            and raw["version"] == doc.version + 1
            and (mine is None or raw.get(mine) == update["$set"][mine])
            else None
            for (doc, update), ok in zip(moves, chosen, strict=True)
        ]

    async def _still_as_read(
        self, moves: Sequence[tuple[FilingDoc, dict[str, Any]]], session: AsyncClientSession
    ) -> list[bool]:
        """Which of the filings are as their move read them (version and status), in the
        transaction's snapshot; of a filing named twice, the first such move only."""
        ids = [doc.id for doc, _update in moves]
        current = {
            raw["_id"]: raw
            async for raw in self._col.find(
                {"_id": {"$in": ids}}, {"version": 1, "status": 1}, session=session
            )
        }
        taken: set[ObjectId] = set()
        chosen = []
        for doc, _update in moves:
            raw = current.get(doc.id)
            ok = (
                raw is not None
                and doc.id not in taken
                and (raw["version"], raw["status"]) == (doc.version, doc.status.value)
            )
            if ok:
                taken.add(doc.id)
            chosen.append(ok)
        return chosen

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
