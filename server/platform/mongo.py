"""Every accommodation of the embedded database, each with its reason, written once here.

The development stack, the tests and the demos run on SecantusDB, an embedded server that
speaks MongoDB's wire protocol but plans and executes some queries differently from MongoDB;
production may run either. The services ask for what they mean (``change_one``,
``first_page``, ``earliest_page``, ``due``; ``connect`` for the client) and never name the
database; the reasons, with the figures measured, are kept here and in README's "embedded
database's limits".

What SecantusDB does that the rest of the code must not depend on knowing:

- ``findAndModify`` scans the whole collection, even by ``_id`` (hundreds of ms at 20,000
  documents, where a point update plus a point read take a few): ``change_one``.
- A query's every match is materialised before its sort and limit, so a court's newest page
  read as one sorted query costs the whole court (110 s at 1M cases): ``first_page``.
- The same for a queue read earliest first (the review queue: ~2 s per 10k pending
  filings as one sorted query): ``earliest_page``.
- A range open below is served from the start of the index, where the nulls sort: the
  escalation sweep's ``sweep_at <= now`` at 1M orders (most null) read every null each round
  (2.9 s per 50k nulls) until given a lower bound (4 ms): ``due``.
- The planner uses an index only when it holds every field of the filter (equalities first,
  then at most one range), passes over partial indexes whose filter is ``$exists``/``$type``
  (hence sparse unique indexes), takes a compound index for equalities only (an ``$in`` on its
  first field scans), and a hinted find walks the whole index: so each query's owner declares
  an index with every field it filters on, and hints only a query the planner cannot serve.
- A busy server (a bulk load beside a query reading 1M cases) can answer the driver's
  heartbeat later than 5 s: ``connect``.
- Its TTL sweeper parks between sweeps holding its WiredTiger session, cursors positioned
  where its scans stopped, next to where new entries of those indexes go: the page they grow
  cannot be evicted, and the database stalled for up to a minute at a time after bursts of
  writes: ``run_embedded`` starts it with ``embedded_storage()``.
- Its transaction registry reaps idle transactions on every transactional statement, under
  the lock every statement takes, waiting for each running statement of every other
  transaction; and on every retryable write it scans (and past 10,000, sorts) every record
  it keeps: ``run_embedded`` starts it with ``EmbeddedRegistry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError
from pymongo.write_concern import WriteConcern

from server.platform.db import also_commit, conflicted

Collection = AsyncCollection[dict[str, Any]]


# ---- the client

DURABLE = WriteConcern(w="majority", j=True, wtimeout=10000)


def connect(
    uri: str,
    write_concern: WriteConcern = DURABLE,
    timeout_ms: int = 5000,
    heartbeat_timeout_ms: int = 30000,
) -> AsyncMongoClient[dict[str, Any]]:
    """The client. Its write concern is every write's, GridFS's and each transaction's commit
    (``mongodb.write_concern``: durable by default, so nothing acknowledged is lost when the
    database dies; SecantusDB without ``--sync-on-commit`` and w:1 lost 15-19 acknowledged
    writes per kill -9). A server not found within ``timeout_ms`` fails the request. The monitor's
    heartbeat waits ``heartbeat_timeout_ms`` (``connectTimeoutMS`` is its socket timeout): a
    heartbeat that times out makes PyMongo clear the pool and cancel every operation in
    flight, and a busy SecantusDB (a bulk load beside a query reading 1M cases) answered one
    later than 5 s, failing the sweeps, the outbox and the live feed at once."""
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        w=write_concern.document.get("w", 1),
        journal=bool(write_concern.document.get("j")),
        wTimeoutMS=write_concern.document.get("wtimeout", 0),
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=heartbeat_timeout_ms,
        appname="microcourt",
    )


# ---- the embedded server itself

#: SecantusDB aborts a transaction left idle this long (a process died inside it), at the next
#: transactional statement any client sends: it has no sweeper of its own, and its command
#: line fixes the lifetime at 60 s, which kept an API's orphaned transactions holding their
#: documents (and the plain writes waiting on them) for a minute and more after a kill -9.
#: Our transactions are short (nothing slow runs inside one), so 15 s of idleness is a dead
#: process, not a slow one; and a live one aborted so is retried (``in_transaction``).
TRANSACTION_LIFETIME_SECONDS = 15.0

#: ``python -c EMBEDDED_MAIN <path of secantusd-py> <its arguments>``: the embedded server, as
#: ``secantusd-py`` runs it, with ``TRANSACTION_LIFETIME_SECONDS`` (the path only names the
#: process, for whoever looks for it).
EMBEDDED_MAIN = (
    "import sys; from server.platform.mongo import run_embedded; sys.exit(run_embedded())"
)


def run_embedded() -> int:
    """``secantusd-py``'s main, its server made with our transaction lifetime (a constructor
    argument its command line does not expose), ``EmbeddedRegistry`` and ``EmbeddedStorage``
    (and, with ``MICROCOURT_WT_STATS`` set, ``sample_wiredtiger``)."""
    from secantus import cli
    from secantus import server as made_by

    from server.platform.wt_stats import WT_STATS_ENV, sample_wiredtiger

    made_by.TransactionRegistry = embedded_registry(reaper=True)
    made_by.Storage = embedded_storage()
    made = cli.SecantusDBServer
    lifetime = TRANSACTION_LIFETIME_SECONDS
    stats_path = os.environ.get(WT_STATS_ENV)

    def server(*args: Any, **kwargs: Any) -> Any:
        made_server = made(*args, transaction_lifetime_seconds=lifetime, **kwargs)
        if stats_path:
            conn = made_server.storage._conn
            threading.Thread(
                target=sample_wiredtiger, args=(conn, stats_path), name="wt-stats", daemon=True
            ).start()
        return made_server

    cli.SecantusDBServer = server
    return int(cli.main(sys.argv[2:]))


def embedded_storage() -> type:
    """SecantusDB's ``Storage``, its TTL sweeper letting go of what it read once a sweep ends.

    The sweeper reads every TTL index once a minute, and only afterwards parks until the next
    sweep, still holding its WiredTiger session as the sweep left it: its read snapshot, and its
    cursors positioned where the scans stopped, each a hazard pointer on that page. A scan of a
    TTL index stops at its first entry not yet expired: for entries that live a minute
    (rate-limit windows), one of the newest, on the page where the new ones go; and every index
    of every collection lives in one table (``secantus_index_entries``). So the page the inserts
    grew could not be evicted: measured in the bench smoke, WiredTiger's statistics counted
    1,500-3,500 forced evictions a second refused by a hazard pointer, all on that table, for up
    to a minute at a time (until the next sweep moved the cursors), every write that touched the
    page waited in ``__wt_page_in_func``, and first payment callbacks fell from ~40 to 4 a
    second, paced messages to p50 9 s. It happened in 3 of 7 smokes, wherever the cursors came
    to rest; a smaller cache (128, 256 MB) only moved the odds. SecantusDB releases a
    connection's session before it waits for the next request (``release_thread_snapshot``), but
    its sweeper's only before each sweep: here also after it."""
    from secantus.storage import Storage

    class EmbeddedStorage(Storage):
        def prune_ttl_all_collections(self, *, now: dt.datetime | None = None) -> int:
            try:
                return int(super().prune_ttl_all_collections(now=now))
            finally:
                self.release_thread_snapshot()

    return EmbeddedStorage


#: How often the embedded server's transaction registry looks for idle transactions and
#: expired retryable-write records (SecantusDB looks on every statement and every write).
REAP_EVERY_SECONDS = 1.0


def embedded_registry(reaper: bool = False) -> type:
    """SecantusDB's ``TransactionRegistry``, its two sweeps made cheap (same outcomes).

    SecantusDB reaps idle transactions at every transactional statement, commit and abort,
    holding the registry's lock (which every statement takes) while it takes, one after
    another, the mutex of every transaction it knows; a transaction's mutex is held while a
    statement of it runs. So each statement waited for the running statements of all the
    others, and the rest queued behind it on the lock: measured in the bench after a load of
    payment callbacks, with the database's CPU ~80 % idle, a one-document ``find`` inside a
    transaction took p50 78 ms / p90 306 ms between arriving and being answered, a credit
    1.4 s, and the server and the bench's own raw client together completed ~3 credits/s for
    40 s (against ~40/s before). A transaction whose mutex is held is running a statement,
    so it is not idle: the reaper here passes it by instead of waiting, counts it as used
    now, and looks at most once per ``REAP_EVERY_SECONDS`` (an idle transaction is aborted at
    most that much after its lifetime, 15 s). Counted so, a transaction's idleness runs from
    the end of its last statement, not the start: SecantusDB's reaper aborted the escalation
    sweep's transaction (``NoSuchTransaction`` on its next statement) after a bulk write of
    300 orders that took over 15 s on the loaded bench database. Retryable-write records are
    likewise expired once per second, and past the cap the oldest are dropped in insertion
    order (the order they were recorded) rather than by sorting all 10,000 on every write.

    ``reaper``: also look every ``REAP_EVERY_SECONDS`` from a thread of its own. SecantusDB
    reaps only when a transactional statement arrives, so a transaction a client left open
    (its uncommitted writes holding their documents) outlived its lifetime for as long as no
    other transaction came; each one reaped is logged as a warning in ``secantusd.log``."""
    from secantus import transactions
    from secantus.transactions import TransactionRegistry, TxnState

    reaped_log = logging.getLogger("microcourt.embedded")
    keep_seconds = transactions._RETRYABLE_RECORD_LIFETIME_SECONDS  # its own limits
    keep_most = transactions._RETRYABLE_RECORD_MAX

    class EmbeddedRegistry(TransactionRegistry):
        _next_reap = 0.0
        _next_expiry = 0.0

        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            if reaper:
                name = "microcourt-transaction-reaper"
                threading.Thread(target=self._reap_forever, name=name, daemon=True).start()

        def _reap_forever(self) -> None:
            while True:
                time.sleep(REAP_EVERY_SECONDS)
                self.prune_expired()

        def _prune_locked(self) -> int:
            now = self._time()
            if now < self._next_reap:
                return 0
            self._next_reap = now + REAP_EVERY_SECONDS
            cutoff, reaped = now - self._lifetime, 0
            for txn in list(self._txns.values()):
                if txn.state is not TxnState.IN_PROGRESS:
                    continue
                if not txn.mutex.acquire(blocking=False):
                    txn.last_use = now  # a statement of it is running: in use, not idle
                    continue
                try:
                    if txn.state is TxnState.IN_PROGRESS and txn.last_use < cutoff:
                        self._rollback_quietly(txn)
                        txn.state = TxnState.ABORTED
                        reaped += 1
                        idle, number = now - txn.last_use, txn.txn_number
                        reaped_log.warning("aborted transaction %d, idle %.1f s", number, idle)
                finally:
                    txn.mutex.release()
            return reaped

        def _prune_retryable_locked(self) -> None:
            records = self._retryable
            now = self._time()
            if now >= self._next_expiry:
                self._next_expiry = now + REAP_EVERY_SECONDS
                cutoff = now - keep_seconds
                for key in [k for k, (_r, at, _i) in records.items() if at < cutoff]:
                    del records[key]
            while len(records) > keep_most:
                del records[next(iter(records))]

    return EmbeddedRegistry


# ---- one document changed, and exactly its new state


async def change_one(
    collection: Collection,
    query: dict[str, Any],
    update: dict[str, Any],
    *,
    upsert: bool = False,
    session: AsyncClientSession | None = None,
) -> dict[str, Any] | None:
    """A conditional update of one document, and the state that update produced (what
    ``find_one_and_update(..., AFTER)`` returns); None when nothing matched.

    Done as a point update then a point read, because SecantusDB's ``findAndModify`` scans
    the whole collection. The read sees exactly our own write, never a later writer's,
    because both run in one transaction: the caller's (``session`` inside a transaction),
    or else a short one of its own (one round trip more for the commit). ``query`` must name
    ``_id``, or still match the document after the update (as a unique key does).
    """
    if session is not None and session.in_transaction:
        return await _update_then_read(collection, query, update, upsert, session)
    async with collection.database.client.start_session() as own:
        for attempt in range(1, OWN_ATTEMPTS + 1):
            await own.start_transaction()
            try:
                found = await _update_then_read(collection, query, update, upsert, own)
                if found is not None:
                    await also_commit(own, own=True)
                await own.commit_transaction()
                return found
            except PyMongoError as e:
                if own.in_transaction:
                    await own.abort_transaction()
                if not conflicted(e) or attempt == OWN_ATTEMPTS:
                    raise
            except BaseException:
                if own.in_transaction:
                    with contextlib.suppress(PyMongoError):
                        await own.abort_transaction()
                raise
            await asyncio.sleep(random.uniform(0, 0.005 * attempt))
    raise AssertionError("unreachable")


#: how many times ``change_one``'s own transaction is tried when another writer conflicts.
#: Not ``with_transaction``: it retries any transient error for two minutes, a database
#: that is down included, where a request should fail at once (503).
OWN_ATTEMPTS = 5


async def _update_then_read(
    collection: Collection,
    query: dict[str, Any],
    update: dict[str, Any],
    upsert: bool,
    session: AsyncClientSession,
) -> dict[str, Any] | None:
    result = await collection.update_one(query, update, upsert=upsert, session=session)
    if result.upserted_id is not None:
        return await collection.find_one({"_id": result.upserted_id}, session=session)
    if result.matched_count == 0:
        return None
    again = {"_id": query["_id"]} if "_id" in query else query
    return await collection.find_one(again, session=session)


# ---- what is due: a bounded range

#: before every date the application writes (see ``due``)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def due(at: dt.datetime) -> dict[str, Any]:
    """``{field: due(now)}``: a date on or before ``at``, never null. Bounded below, because
    SecantusDB serves a range open below from the start of the index, where the nulls are:
    the escalation sweep's ``sweep_at <= now`` at 1M orders (most of them null, nothing left
    to escalate) read every null order each round (2.9 s per 50k nulls) until given this
    lower bound (4 ms)."""
    return {"$gt": EPOCH, "$lte": at}


# ---- newest first: the first pages of long lists
#
# An ``indexed_scope`` of ``first_page`` is equalities that an index on (scope..., field, _id)
# serves as a prefix. Such a scope is read as a few bounded ranges rather than one sort over
# it: the ties of the cursor position, then one window after another back in time
# (``WINDOWS``) until the page is full, each an equality prefix plus one range on ``field``.
# SecantusDB materialises every match of a query before its sort and limit, so a court's
# first page read in one query costs the whole court (110 s at 1M cases), in windows only
# the newest hours. Any other scope (a few documents, or a second range) is read whole: each
# window would be a collection scan. ``index`` names the index for a scope the planner cannot
# match to one (a second range); name none otherwise, since a hinted find on SecantusDB walks
# the whole index.

#: How far back each read of ``first_page`` reaches from where the page starts: one hour,
#: then eight times further each time, then everything older. A busy court's first page
#: comes from the first window or two; a quiet one costs a few empty index seeks.
WINDOWS: tuple[dt.timedelta | None, ...] = (
    *(dt.timedelta(hours=8**k) for k in range(6)),  # 1 h ... 32768 h (3.7 years)
    None,
)
WHOLE: tuple[dt.timedelta | None, ...] = (None,)


@dataclass(frozen=True)
class _PageReader:
    """One list's reads: its scope, projection, order and optional index hint."""

    col: Any
    scope: dict[str, Any]
    projection: dict[str, Any]
    field: str
    index: str | None

    @property
    def by_id(self) -> bool:
        return self.field == "_id"

    def bound(self, at: dt.datetime) -> Any:
        return ObjectId.from_datetime(at) if self.by_id else at

    async def read(self, where: dict[str, Any], room: int) -> list[dict[str, Any]]:
        order = [("_id", -1)] if self.by_id else [(self.field, -1), ("_id", -1)]
        cursor = self.col.find({**self.scope, **where}, self.projection).sort(order)
        if self.index:
            cursor = cursor.hint(self.index)
        found: list[dict[str, Any]] = await cursor.limit(room).to_list()
        return found

    async def read_up(self, where: dict[str, Any], room: int) -> list[dict[str, Any]]:
        """``read``, earliest first."""
        order = [(self.field, 1), ("_id", 1)]
        cursor = self.col.find({**self.scope, **where}, self.projection or None).sort(order)
        found: list[dict[str, Any]] = await cursor.limit(room).to_list()
        return found


async def first_page(
    col: Any,
    scope: dict[str, Any],
    projection: dict[str, Any],
    limit: int,
    *,
    now: dt.datetime,
    field: str = "_id",
    after: dict[str, Any] | None = None,
    indexed_scope: bool = True,
    index: str | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` documents of ``scope``, newest ``field`` (a date, or ``_id`` whose
    ObjectIds carry their creation time) first, ``_id`` breaking ties, after ``after``: the
    last document of the previous page (its ``field`` and ``_id``). See above for
    ``indexed_scope`` and ``index``."""
    reader = _PageReader(col, scope, projection, field, index)
    rows: list[dict[str, Any]] = []
    below: dict[str, Any] = {}  # the upper bound of the next window
    edge = now
    if after is not None:
        if not reader.by_id:
            rows += await reader.read({field: after[field], "_id": {"$lt": after["_id"]}}, limit)
        below = {"$lt": after[field]}
        edge = after["_id"].generation_time if reader.by_id else after[field]
    for reach in WINDOWS if indexed_scope else WHOLE:
        if len(rows) >= limit:
            break
        # Lower bounds are exclusive and the next window takes the bound itself ($lte):
        # SecantusDB 0.7 bounds a range on a key that more keys follow by the bare key, so
        # $gte on a descending key (as $lte on an ascending one) misses the documents equal
        # to the bound (tests/platform/test_paging.py walks every edge).
        bounds = dict(below)
        if reach is not None:
            bounds["$gt"] = reader.bound(edge - reach)
            below = {"$lte": reader.bound(edge - reach)}
        rows += await reader.read({field: bounds} if bounds else {}, limit - len(rows))
    return rows


# ---- earliest first: queues read in ascending windows
#
# The same accommodation as ``first_page``, for a list read earliest first (a queue by its
# deadline): the ties of the cursor position, then one window after another forward in time
# (``edges``, chosen by the caller) until the page is full, each an equality prefix that an
# index on (scope..., field, _id) serves plus one range on ``field``. One sorted query over the
# scope would cost every match (the review queue: ~2 s at 10k pending filings, ~20 s at 100k).
# The windows take their lower bound ($gte) and leave their upper bound ($lt) to the next:
# ``field`` is ascending in the index, and SecantusDB bounds a range on a key that more keys
# follow by the bare key, so $lte there (as $gte on a descending key) misses the documents
# equal to the bound. After a cursor the range starts a millisecond (BSON's precision) past
# its position, again with $gte.


async def earliest_page(
    col: Any,
    scope: dict[str, Any],
    limit: int,
    *,
    field: str,
    edges: Sequence[dt.datetime],
    after: tuple[dt.datetime, ObjectId] | None = None,
    until: tuple[dt.datetime, ObjectId] | None = None,
    projection: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` documents of ``scope``, earliest ``field`` (a date) first, ``_id``
    breaking ties, after ``after`` (the previous page's last ``field`` and ``_id``) and before
    ``until`` (a stored ``field`` and an ``_id``: a chunk's end, exclusive).

    ``edges`` (ascending) split the dates into windows: [edges[0], edges[1]), …, then
    [edges[-1], beyond). A date before ``edges[0]`` (or none) is never read: give the earliest
    date the application writes (``EPOCH``)."""
    reader = _PageReader(col, scope, projection or {}, field, None)
    rows: list[dict[str, Any]] = []
    start = edges[0]
    if after is not None:
        when, oid = after
        ties: dict[str, Any] = {"$gt": oid}
        if until is not None and until[0] == when:
            ties["$lt"] = until[1]
        rows += await reader.read_up({field: when, "_id": ties}, limit)
        start = _to_ms(when) + dt.timedelta(milliseconds=1)
    end = until[0] if until is not None else None
    for lo, hi in zip(edges, [*edges[1:], None], strict=True):
        if len(rows) >= limit or (end is not None and lo >= end):
            break
        if hi is not None and hi <= start:
            continue
        hi = hi if end is None or (hi is not None and hi < end) else end
        if hi is not None and hi <= max(lo, start):
            continue
        bounds: dict[str, Any] = {"$gte": max(lo, start)}
        if hi is not None:
            bounds["$lt"] = hi
        rows += await reader.read_up({field: bounds}, limit - len(rows))
    if until is not None and len(rows) < limit and until[0] >= start:
        rows += await reader.read_up({field: until[0], "_id": {"$lt": until[1]}}, limit - len(rows))
    return rows


def _to_ms(when: dt.datetime) -> dt.datetime:
    """``when`` as BSON stores it (to the millisecond, truncated)."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)
