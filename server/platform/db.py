"""The MongoDB client, and the creation of every index the application's queries rely on (each
package declares its own, beside the code that owns the collection)."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger("microcourt.db")

Database = AsyncDatabase[dict[str, Any]]

#: The packages that own collections. Each declares, in its ``indexes`` module, the collections
#: it owns (``COLLECTIONS``: only that package's modules read or write them; the other
#: capabilities call its services, as tests/test_ownership.py checks) and their ``INDEXES``.
OWNERS = ("platform", "identity", "files", "notify", "filing", "cases", "workorders", "fees")


def ownership() -> dict[str, tuple[str, ...]]:
    """Package -> the collections it owns."""
    return {pkg: importlib.import_module(f"server.{pkg}.indexes").COLLECTIONS for pkg in OWNERS}


def all_indexes() -> dict[str, list[IndexModel]]:
    """Collection -> its indexes, gathered from the packages that own them."""
    found: dict[str, list[IndexModel]] = {}
    for pkg in OWNERS:
        found.update(importlib.import_module(f"server.{pkg}.indexes").INDEXES)
    return found


#: before every date the application writes (see ``due_by``)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def due_by(at: dt.datetime) -> dict[str, Any]:
    """``{field: due_by(now)}``: a date on or before ``at``, never null. SecantusDB serves a
    range open below from the start of the index, where the nulls are: the escalation sweep's
    ``sweep_at <= now`` at 1M orders (most of them null, nothing left to escalate) read every
    null order each round (2.9 s per 50k nulls) until given this lower bound (4 ms)."""
    return {"$gt": EPOCH, "$lte": at}


async def update_returning(
    collection: AsyncCollection[dict[str, Any]],
    query: dict[str, Any],
    update: dict[str, Any],
    *,
    upsert: bool = False,
    session: AsyncClientSession | None = None,
) -> dict[str, Any] | None:
    """A conditional update, then the document as it now is; None when nothing matched.

    What find_one_and_update(..., AFTER) does, as two indexed operations: SecantusDB's
    findAndModify scans the whole collection, even by _id. ``query`` must name ``_id``, or
    still match the document after the update (as a unique key such as ``openid`` does).
    """
    result = await collection.update_one(query, update, upsert=upsert, session=session)
    if result.upserted_id is not None:
        return await collection.find_one({"_id": result.upserted_id}, session=session)
    if result.matched_count == 0:
        return None
    again = {"_id": query["_id"]} if "_id" in query else query
    return await collection.find_one(again, session=session)


T = TypeVar("T")


async def in_transaction(db: Database, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction (retried by the driver on transient conflicts)."""
    async with db.client.start_session() as session:
        return await session.with_transaction(work)


def connect(
    uri: str, timeout_ms: int = 5000, heartbeat_timeout_ms: int = 30000
) -> AsyncMongoClient[dict[str, Any]]:
    """The client: a server not found within ``timeout_ms`` fails the request. The monitor's
    heartbeat waits ``heartbeat_timeout_ms`` (``connectTimeoutMS`` is its socket timeout): a
    heartbeat that times out makes PyMongo clear the pool and cancel every operation in
    flight, and a busy SecantusDB (a bulk load beside a query reading 1M cases) answered one
    later than 5 s, failing the sweeps, the outbox and the live feed at once."""
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=heartbeat_timeout_ms,
        appname="microcourt",
    )


async def ensure_indexes(db: Database) -> None:
    """Create every index, and drop the ones this code no longer names; safe to run on every
    start-up and from every process."""
    indexes = all_indexes()
    for collection, models in indexes.items():
        wanted = {m.document["name"] for m in models} | {"_id_"}
        existing = [ix["name"] async for ix in await db[collection].list_indexes()]
        for name in set(existing) - wanted:
            await db[collection].drop_index(name)
            log.info("dropped index %s.%s", collection, name)
        await db[collection].create_indexes(models)
    log.info("indexes ready on %d collections", len(indexes))
