"""The database, its transactions, the read-decide-write of one document, and the creation of
every index the application's queries rely on (each package declares its own, beside the code
that owns the collection). What the embedded database needs is in ``server.platform.mongo``."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger("microcourt.db")

Database = AsyncDatabase[dict[str, Any]]

#: The packages that own collections. Each declares, in its ``indexes`` module, the collections
#: it owns (``COLLECTIONS``: only that package's modules read or write them; the other
#: capabilities call its services, as tests/platform/test_ownership.py checks) and their
#: ``INDEXES``.
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


T = TypeVar("T")
D = TypeVar("D")

#: how many times a read-decide-write reads again after losing a race before it answers 409
ATTEMPTS = 3


async def in_transaction(db: Database, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction (retried by the driver on transient conflicts)."""
    async with db.client.start_session() as session:
        return await session.with_transaction(work)


class LostRace(Exception):
    """A conditional write found the document no longer as it was read: read again."""


def won(raw: T | None) -> T:
    """The result of a conditional write (``change_one``), or ``LostRace`` if it matched
    nothing."""
    if raw is None:
        raise LostRace
    return raw


async def read_decide_write(
    read: Callable[[], Awaitable[D]],
    decide_write: Callable[[D], Awaitable[T]],
    busy: Callable[[], Exception],
    attempts: int = ATTEMPTS,
) -> T:
    """Change one document by what its current state allows, safe against concurrent writers.

    ``read`` loads it (raising its 404); ``decide_write`` decides from the state read
    (raising the typed 403/409/422 that state calls for) and writes conditionally on it (the
    version or the status read; ``won`` of a ``change_one``), raising ``LostRace`` when the
    condition no longer holds: a transaction around the write is then aborted with it, and
    the document read again and decided anew. After ``attempts`` lost races, ``busy()`` (a
    409) is raised.
    """
    for _ in range(attempts):
        doc = await read()
        try:
            return await decide_write(doc)
        except LostRace:
            continue
    raise busy()


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
