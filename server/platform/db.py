"""The database, its transactions, the read-decide-write of one document, and the creation of
every index the application's queries rely on (each package declares its own, beside the code
that owns the collection). What the embedded database needs is in ``server.platform.mongo``."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

import pymongo
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, PyMongoError

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


#: How long a transaction that lost to a concurrent writer is tried again before its error is
#: raised. Not the driver's ``with_transaction``: it retries any transient error for two
#: minutes, a database that is down included, where a request should fail at once (503).
CONFLICT_BUDGET = 10.0

Hook = Callable[[AsyncClientSession], Awaitable[None]]

#: What the current request's work must commit with: its Idempotency-Key's mark
#: (``server.platform.idempotency``), set by ``@idempotent`` for the request; None elsewhere.
_COMMITS_WITH: ContextVar[Hook | None] = ContextVar("commits_with", default=None)
#: True while ``read_decide_write`` decides and writes: a ``change_one`` there is the work.
_DECIDING: ContextVar[bool] = ContextVar("deciding", default=False)


@contextlib.contextmanager
def commits_with(hook: Hook) -> Iterator[None]:
    """Every transaction of the work done inside (``in_transaction``, and the conditional
    writes of ``read_decide_write``) also runs ``hook`` before it commits."""
    token = _COMMITS_WITH.set(hook)
    try:
        yield
    finally:
        _COMMITS_WITH.reset(token)


def commit_hook() -> Hook | None:
    """The current request's ``commits_with`` hook, for work that another task commits on its
    behalf (a group commit, ``server.platform.group_commit``)."""
    return _COMMITS_WITH.get()


async def commit_all(
    hooks: Sequence[Hook | None], session: AsyncClientSession
) -> dict[int, Exception]:
    """Many requests' hooks in one transaction (a group commit): those of a kind that offers
    ``together(hooks, session)`` (the Idempotency-Key's ``Mark``) in one call, the others
    one by one. The errors of those that refused (a key taken over), by index; a database
    error is raised (the whole transaction's)."""
    failed: dict[int, Exception] = {}
    kinds: dict[Any, list[int]] = {}
    for i, hook in enumerate(hooks):
        if hook is not None:
            kinds.setdefault(getattr(hook, "together", None), []).append(i)
    for together, indices in kinds.items():
        if together is not None:
            errors = await together([hooks[i] for i in indices], session)
            failed.update({i: e for i, e in zip(indices, errors, strict=True) if e is not None})
            continue
        for i in indices:
            try:
                await hooks[i](session)  # type: ignore[misc]
            except PyMongoError:
                raise
            except Exception as e:
                failed[i] = e
    return failed


async def also_commit(session: AsyncClientSession, *, own: bool = False) -> None:
    """Run the request's ``commits_with`` hook in ``session``'s transaction. ``own``: the
    transaction is a single write's own (``change_one``), the work only inside
    ``read_decide_write`` (elsewhere it is bookkeeping, e.g. a rate limit)."""
    hook = _COMMITS_WITH.get()
    if hook is not None and (not own or _DECIDING.get()):
        await hook(session)


def conflicted(e: PyMongoError) -> bool:
    """A write conflict with a concurrent transaction: worth trying again."""
    return e.has_error_label("TransientTransactionError") and not isinstance(e, ConnectionFailure)


#: How many transactions one process runs at once; the others queue for a turn. Concurrent
#: transactions on a hot document (a court's case or work-order counter, a filer's filing)
#: abort each other (a write conflict aborts at once, on MongoDB too), and at 64 connections
#: the retries of dozens of them left an acceptance waiting 90 s and more (the driver retried
#: for 120 s) or, bounded, failing with 503 (302 of 488 requests in 60 s): queued, a few at a
#: time, they seldom conflict (no 503 in the same run; README, "Idempotency-Key").
PARALLEL_TRANSACTIONS = 4
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
_IN_TURN: ContextVar[bool] = ContextVar("in_turn", default=False)


@contextlib.asynccontextmanager
async def _turn() -> AsyncIterator[None]:
    """A turn among this process's transactions (a transaction begun inside one, nested, takes
    none: it would wait for itself)."""
    if _IN_TURN.get():
        yield
        return
    loop = asyncio.get_running_loop()
    turns = _turns.setdefault(loop, asyncio.Semaphore(PARALLEL_TRANSACTIONS))
    async with turns:
        token = _IN_TURN.set(True)
        try:
            yield
        finally:
            _IN_TURN.reset(token)


async def in_transaction(
    db: Database, work: Callable[[AsyncClientSession], Awaitable[T]], *, queued: bool = True
) -> T:
    """Run ``work`` in one transaction, with what the request's work commits with, in its turn
    (``PARALLEL_TRANSACTIONS``); tried again after a write conflict (for ``CONFLICT_BUDGET``
    seconds of trying), never when the database is unreachable (that error is raised at once:
    a 503). ``queued=False``: the caller already waited its turn in a queue of its own, one
    transaction at a time (an acceptance, in its court's case-number queue), and does not
    queue again while holding that one: every acceptance of the court would wait for it."""
    async with db.client.start_session() as session:
        spent = 0.0
        for attempt in itertools.count(1):
            started = time.monotonic()
            try:
                async with _turn() if queued else contextlib.nullcontext():
                    started = time.monotonic()
                    return await _attempt(session, work)
            except PyMongoError as e:
                spent += time.monotonic() - started
                if not conflicted(e) or spent > CONFLICT_BUDGET:
                    raise
            pause = random.uniform(0, min(0.005 * 2**attempt, 0.2))
            spent += pause
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")


async def _attempt(
    session: AsyncClientSession, work: Callable[[AsyncClientSession], Awaitable[T]]
) -> T:
    await session.start_transaction()
    try:
        result = await work(session)
        await also_commit(session)
        await _commit(session)
        return result
    except BaseException:
        if session.in_transaction:
            with contextlib.suppress(PyMongoError):
                await session.abort_transaction()
        raise


async def _commit(session: AsyncClientSession) -> None:
    """Commit; a commit whose answer was lost on a live connection is sent again (commits
    are idempotent), as the driver does."""
    for attempt in range(3):
        try:
            await session.commit_transaction()
            return
        except PyMongoError as e:
            unknown = e.has_error_label("UnknownTransactionCommitResult")
            if not unknown or isinstance(e, ConnectionFailure) or attempt == 2:
                raise


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
        deciding = _DECIDING.set(True)
        try:
            return await decide_write(doc)
        except LostRace:
            continue
        finally:
            _DECIDING.reset(deciding)
    raise busy()


#: how long closing the client may take: it ends its sessions on the server, which waits for a
#: server (5 s) when the database is gone
CLOSE_SECONDS = 1.0


async def close(client: AsyncMongoClient[Any]) -> None:
    """Close the client, promptly even with the database gone (shutdown)."""
    with contextlib.suppress(PyMongoError), pymongo.timeout(CLOSE_SECONDS):
        await client.close()


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
