"""The one reader and writer of ``workorders``: the message threads and their work orders.

The services call it by intent (load an order, a sender's page, a court's page, change an
order on the version read, the sweep's batches, the statistics' aggregations). The pure
query builders that the benchmark runs as its raw rows live here too, so a raw row runs the
very query the service runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from models.workorders import WorkOrderDoc
from server.platform import mongo
from server.platform.calendar import CourtCalendar
from server.platform.db import Database, won
from server.workorders import rollups
from server.workorders.errors import WorkOrderNotFound

#: a list item is read without the thread and the history
SUMMARY_EXCLUDE = {"thread": 0, "steps": 0, "escalations": 0, "content_check": 0}
#: what the sweep reads of an order: not its thread, attachments or history
SWEEP_FIELDS = {"thread": 0, "content_check": 0, "attachments": 0, "assignments": 0}
PERCENTILES = (0.5, 0.9)

Pipeline = list[dict[str, Any]]


def workorder_number(year: int, court_code: str, seq: int) -> str:
    return f"GD{year}{court_code}-{seq:06d}"


def mine_filter(sender_id: str, status: str | None = None) -> dict[str, Any]:
    """A sender's messages (index ``by_sender``), read newest first (``_id`` descending)."""
    return {"sender_id": sender_id, **({"status": status} if status else {})}


def caller_filter(phone: str, status: str | None = None) -> dict[str, Any]:
    """The desk's orders for a caller's phone (index ``by_caller_phone``), newest first."""
    return {"caller_phone": phone, **({"status": status} if status else {})}


# ---- the statistics' aggregations (server/workorders/stats.py explains them)


def _present(field: str) -> dict[str, Any]:
    return {"$ne": [{"$ifNull": [f"${field}", None]}, None]}


def _count(condition: dict[str, Any]) -> dict[str, Any]:
    return {"$sum": {"$cond": [condition, 1, 0]}}


def _targets(n_field: str) -> list[Any]:
    """The ranks of ``stats.ranks``, as aggregation expressions."""
    out: list[Any] = []
    for p in PERCENTILES:
        r = {"$multiply": [p, {"$subtract": [n_field, 1]}]}
        out += [{"$add": [{"$floor": r}, 1]}, {"$add": [{"$ceil": r}, 1]}]
    return out


def _window(field: str, direction: int, by_group: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "sortBy": {"s": direction, "_id": direction},
        "output": {field: {"$documentNumber": {}}},
    }
    if by_group:
        spec["partitionBy"] = "$g"
    return {"$setWindowFields": spec}


def match_stage(
    cal: CourtCalendar, courts: list[str], first: dt.date, last: dt.date
) -> dict[str, Any]:
    """The indexed first stage: created between the two court dates, inclusive."""
    created = {"$gt": cal.end_of_day(first - dt.timedelta(days=1)), "$lte": cal.end_of_day(last)}
    where: Any = courts[0] if len(courts) == 1 else {"$in": courts}
    return {"$match": {"court_id": where, "created_at": created}}


def counts_pipeline(head: Pipeline, key: str, now: dt.datetime) -> Pipeline:
    """Every count of the report, per group."""
    replied = _present("first_reply_seconds")
    group = {
        "_id": key,
        "received": {"$sum": 1},
        "called_back": _count({"$eq": ["$called_back", True]}),
        "replied": _count(replied),
        "closed": _count({"$eq": ["$status", "closed"]}),
        "due": _count({"$or": [replied, {"$lte": ["$first_reply_due_at", now]}]}),
        "on_time": _count({"$eq": ["$first_reply_on_time", True]}),
        "overdue_now": _count({"$and": [_present("overdue_at"), {"$lte": ["$overdue_at", now]}]}),
        "rated": _count(_present("rating_score")),
        "rating_sum": {"$sum": "$rating_score"},
    }
    return [*head, {"$group": group}]


def percentile_pipeline(head: Pipeline, key: str, several: bool) -> Pipeline:
    """The replies' ranks at the percentiles, per group and (numbered again only when there
    are ``several`` groups: over one group the two are the same) over every group."""
    windows = [_window("up", 1, True), _window("down", -1, True)]
    whole: dict[str, Any] = {"all_up": "$up", "all_n": "$n"}
    if several:
        windows += [_window("all_up", 1, False), _window("all_down", -1, False)]
        whole = {"all_n": {"$subtract": [{"$add": ["$all_up", "$all_down"]}, 1]}}
    at_a_rank = {
        "$or": [{"$in": ["$up", _targets("$n")]}, {"$in": ["$all_up", _targets("$all_n")]}]
    }
    return [
        *head,
        {"$match": {"first_reply_seconds": {"$ne": None}}},
        {"$project": {"g": key, "s": "$first_reply_seconds"}},
        *windows,
        {"$set": {"n": {"$subtract": [{"$add": ["$up", "$down"]}, 1]}}},
        {"$set": whole},
        {"$match": {"$expr": at_a_rank}},
        {"$project": {"_id": 0, "g": 1, "s": 1, "up": 1, "n": 1, "all_up": 1, "all_n": 1}},
    ]


def _swept(raw: dict[str, Any]) -> WorkOrderDoc:
    return WorkOrderDoc.model_validate({**raw, "thread": []})


class WorkOrderStore:
    def __init__(self, db: Database, zone_of: rollups.ZoneOf) -> None:
        self.col = db["workorders"]
        self.rollups = db["workorder_rollups"]
        self.zone_of = zone_of

    # ---- one order

    async def load(self, order_id: str) -> WorkOrderDoc:
        """The order; 404 for an id that names none."""
        raw = (
            await self.col.find_one({"_id": ObjectId(order_id)})
            if ObjectId.is_valid(order_id)
            else None
        )
        if raw is None:
            raise WorkOrderNotFound()
        return WorkOrderDoc.model_validate(raw)

    async def insert_many(self, docs: list[dict[str, Any]], session: AsyncClientSession) -> None:
        """New orders, and what they add to the rollups, in the caller's transaction."""
        await self.col.insert_many(docs, session=session)
        await self._roll([(None, doc) for doc in docs], session)

    async def change_on_version(
        self, doc: WorkOrderDoc, update: dict[str, Any], session: AsyncClientSession
    ) -> WorkOrderDoc:
        """Apply ``update`` if the order is still at the version read; ``LostRace`` if not."""
        raw = await mongo.change_one(
            self.col, {"_id": doc.id, "version": doc.version}, update, session=session
        )
        new = WorkOrderDoc.model_validate(won(raw))
        await self._roll([(doc, new)], session)
        return new

    # ---- lists

    async def senders_page(self, filt: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` orders' summaries (no thread), newest first: a sender's list."""
        cursor = self.col.find(filt, SUMMARY_EXCLUDE).sort("_id", -1).limit(limit)
        return await cursor.to_list()

    async def senders_pages(
        self, filters: list[dict[str, Any]], after: ObjectId | None, limit: int
    ) -> list[dict[str, Any]]:
        """``senders_page`` over several filters (mine; for my phone), merged newest first."""
        found: dict[Any, dict[str, Any]] = {}
        for filt in filters:
            if after is not None:
                filt = {**filt, "_id": {"$lt": after}}
            found.update((r["_id"], r) for r in await self.senders_page(filt, limit))
        return sorted(found.values(), key=lambda r: r["_id"], reverse=True)[:limit]

    async def by_link(self, token: str) -> WorkOrderDoc | None:
        """The desk order whose SMS link carries ``token`` (index ``by_link``)."""
        raw = await self.col.find_one({"link_token": token})
        return WorkOrderDoc.model_validate(raw) if raw else None

    async def court_page(
        self,
        filt: dict[str, Any],
        limit: int,
        after: dict[str, Any] | None,
        *,
        windowed: bool,
        now: dt.datetime,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` orders' summaries, newest first, after ``after``: a staff list, read
        a page at a time when an index serves ``filt`` as a prefix (``first_page``)."""
        return await mongo.first_page(
            self.col, filt, SUMMARY_EXCLUDE, limit, now=now, after=after, indexed_scope=windowed
        )

    # ---- the sweep

    async def due_batches(self, now: dt.datetime, size: int) -> AsyncGenerator[list[WorkOrderDoc]]:
        """The orders due at ``now`` (index ``sweep``, the earliest first), ``size`` at a time,
        through one cursor: a query may read every match, limit or not
        (``server.platform.mongo``), so a query per batch could read the whole backlog."""
        cursor = self.col.find({"sweep_at": mongo.due(now)}, SWEEP_FIELDS)
        batch: list[WorkOrderDoc] = []
        async with cursor.batch_size(size) as found:
            async for raw in found:
                batch.append(_swept(raw))
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    async def due_first(self, now: dt.datetime, limit: int) -> list[WorkOrderDoc]:
        """The first ``limit`` orders due at ``now`` (the earliest first)."""
        cursor = self.col.find({"sweep_at": mongo.due(now)}, SWEEP_FIELDS)
        return [_swept(raw) for raw in await cursor.limit(limit).to_list()]

    async def escalate_batch(
        self,
        updates: list[tuple[WorkOrderDoc, dict[str, Any]]],
        token: str,
        session: AsyncClientSession,
    ) -> set[ObjectId]:
        """One bulk write of ``updates``, each conditional on the version its order was read
        at and marking it with ``token``; the ids of the orders that now carry the token
        (another writer's change makes an update miss)."""
        ops = [UpdateOne({"_id": d.id, "version": d.version}, u) for d, u in updates]
        await self.col.bulk_write(ops, ordered=False, session=session)
        before = {d.id: d for d, _ in updates}
        fields: dict[str, Any] = {"sweep_token": 1, **rollups.COUNTED}
        read = self.col.find({"_id": {"$in": list(before)}}, fields, session=session)
        mine = [raw async for raw in read if raw.get("sweep_token") == token]
        await self._roll([(before[raw["_id"]], raw) for raw in mine], session)
        return {raw["_id"] for raw in mine}

    # ---- the statistics' rollups (server/workorders/rollups.py)

    async def _roll(self, changes: list[tuple[Any, Any]], session: AsyncClientSession) -> None:
        """What ``changes`` (before, after) make of the rollups, in the same transaction: an
        update per cell that changes (made on first use), then the removal of the deadlines
        it brought to 0."""
        ops: list[UpdateOne] = []
        for cid, (fields, keys) in rollups.delta(changes, self.zone_of).items():
            inc: dict[str, int] = {}
            sets: dict[str, Any] = {}
            blobs = await self._seconds(
                cid, [k for k, c in keys.items() if any(c.seconds.values())], session
            )
            for name, change in keys.items():
                inc.update({f"g.{name}.{f}": n for f, n in change.inc.items() if n})
                sets[f"g.{name}.key"] = change.key
                if name in blobs:
                    sets[f"g.{name}.s"] = rollups.applied(blobs[name], change.seconds)
            update = {"$setOnInsert": fields, "$set": sets, **({"$inc": inc} if inc else {})}
            ops.append(UpdateOne({"_id": cid}, update, upsert=True))
            ops += [
                UpdateOne({"_id": cid, path: {"$lte": 0}}, {"$unset": {path: ""}})
                for path, n in inc.items()
                if n < 0 and path.split(".")[2] in rollups.MAPS
            ]
        if ops:
            await self.rollups.bulk_write(ops, ordered=True, session=session)

    async def _seconds(
        self, cid: str, names: list[str], session: AsyncClientSession
    ) -> dict[str, bytes | None]:
        """The packed seconds of the keys ``names`` of one cell, read in the transaction."""
        if not names:
            return {}
        fields = {f"g.{name}.s": 1 for name in names}
        raw = await self.rollups.find_one({"_id": cid}, fields, session=session) or {}
        return {name: raw.get("g", {}).get(name, {}).get("s") for name in names}

    async def rollup_cells(
        self, courts: list[str], group_by: str, first: dt.date, last: dt.date
    ) -> list[dict[str, Any]]:
        """The cells of one grouping over the courts' days ``first`` to ``last`` (index
        ``cells``)."""
        where: Any = courts[0] if len(courts) == 1 else {"$in": courts}
        days = {"$gte": first.isoformat(), "$lte": last.isoformat()}
        found = self.rollups.find({"court_id": where, "by": group_by, "day": days})
        return await found.to_list()

    async def cells_from_orders(self, batch: int = 1000) -> dict[str, dict[str, Any]]:
        """Every cell as the orders make it now, built in memory a batch at a time (their
        seconds not yet packed: ``rollups.packed``)."""
        cells: dict[str, dict[str, Any]] = {}
        chunk: list[dict[str, Any]] = []
        async with self.col.find({}, rollups.COUNTED).batch_size(batch) as orders:
            async for raw in orders:
                chunk.append(raw)
                if len(chunk) >= batch:
                    rollups.build(chunk, self.zone_of, cells)
                    chunk = []
        return rollups.build(chunk, self.zone_of, cells)

    async def cells_kept(self) -> dict[str, dict[str, Any]]:
        """Every cell as stored (the tests' comparison with ``cells_from_orders``)."""
        return {raw["_id"]: raw async for raw in self.rollups.find({})}

    async def rebuild_rollups(self, batch: int = 1000) -> int:
        """Every cell again from the orders (the backfill, for orders stored before the
        rollups, or to mend them), written over the old ones: the same orders give the same
        cells, so it may be run again. Run it with no orders changing: a change made while
        it runs may be missing from its cells."""
        built = [rollups.packed(c) for c in (await self.cells_from_orders(batch)).values()]
        await self.rollups.delete_many({})
        for i in range(0, len(built), batch):
            await self.rollups.insert_many(built[i : i + batch])
        return len(built)

    # ---- the statistics from the orders themselves

    async def count_rows(self, head: Pipeline, key: str, now: dt.datetime) -> list[dict[str, Any]]:
        """The rows of ``counts_pipeline``: one per group."""
        cursor = await self.col.aggregate(counts_pipeline(head, key, now))
        return await cursor.to_list()

    async def percentile_rows(
        self, head: Pipeline, key: str, several: bool
    ) -> list[dict[str, Any]]:
        """The rows of ``percentile_pipeline``: at most four per group."""
        cursor = await self.col.aggregate(
            percentile_pipeline(head, key, several), allowDiskUse=True
        )
        return await cursor.to_list()
