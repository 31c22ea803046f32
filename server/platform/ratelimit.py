"""Rate limits (sign-in, case lookup, uploads, messages), counted in the database so that
every server process shares them.

A limit is a fixed window: one counter document per (limiter, key, window) in
``rate_limits``, ``{_id, n, expires_at}``, bumped by one upsert that returns the new count
(one round trip), and dropped by the TTL index once its window is over. A fixed window lets
a user spend up to twice the limit across a window's edge; for blunting guessing and floods
that is enough, and it costs one small write instead of a list of timestamps per key.

Hits on one key at once share a write: while a key's upsert is in flight, the hits that
arrive wait for the next one, which adds them all (``$inc`` by their number) and gives each its
own count, in order. One user's burst of 64 messages at once had cost 64 upserts of one
document, each waiting on the one before (SecantusDB writes a collection one statement at a
time), and took the API from 250 to 88 messages a second (README, "Performance").

The cheap path: once a key is over its limit, this process remembers it until the window
ends and refuses without asking the database again. A limiter made without a database (tests,
tools) counts in this process alone, in a sliding window.

The upsert is a ``findAndModify``, which SecantusDB runs by scanning the collection (see
``server.platform.mongo``); here that is cheap, as the TTL index keeps ``rate_limits`` to the
windows still open, and one round trip beats ``change_one``'s transaction for a counter whose
exactness under a race matters little (two racing hits may both see the higher count).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import ReturnDocument, WriteConcern
from pymongo.errors import DuplicateKeyError

from server.platform.clock import Clock
from server.platform.db import Database
from server.platform.errors import RateLimited

COLLECTION = "rate_limits"
#: a counter is only a guard: losing the last second of counts in a crash is harmless, and
#: waiting for the journal on every sign-in or message would not be
_FAST = WriteConcern(w=1, j=False)


@dataclass
class _Batch:
    """Hits on one counter waiting for its next write, and the count after it."""

    total: asyncio.Future[int]
    hits: int = 0


class RateLimiter:
    def __init__(
        self,
        limit: int,
        window_seconds: float,
        clock: Callable[[], float] = time.time,
        *,
        db: Database | None = None,
        name: str = "",
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self.name = name
        self._clock = clock
        self._counters = None if db is None else db.get_collection(COLLECTION, write_concern=_FAST)
        self._hits: dict[str, deque[float]] = {}
        self._blocked: dict[str, tuple[float, int]] = {}  # key -> (its window's end, count)
        self._queued: dict[str, _Batch] = {}  # counter -> the hits waiting for its next write
        self._writing: dict[str, asyncio.Task[None]] = {}  # counter -> its writer, while busy

    @classmethod
    def shared(
        cls, db: Database, name: str, limit: int, window_seconds: float, clock: Clock
    ) -> RateLimiter:
        """The limit ``name`` counted in ``db``, shared by every process, on ``clock``."""
        return cls(limit, window_seconds, lambda: clock.now().timestamp(), db=db, name=name)

    async def hit(self, key: str) -> None:
        """Count one attempt under ``key``; raise RateLimited past the limit."""
        now = self._clock()
        if self._counters is None:
            self._hit_here(key, now)
            return
        self.refuse_known(key, now)
        window = math.floor(now / self.window)
        end = (window + 1) * self.window
        count = await self._count(f"{self.name}|{key}|{window}", end)
        if count > self.limit:
            if len(self._blocked) > 10_000:
                self._blocked = {k: v for k, v in self._blocked.items() if v[0] > now}
            self._blocked[key] = (end, count)
            raise RateLimited(details={"retry_after_seconds": math.ceil(end - now)})

    def refuse_known(self, key: str, now: float | None = None) -> None:
        """The cheap path alone: RateLimited if this process knows ``key`` is over its limit
        in this window (before a request starts work it would waste: ``Ahead``)."""
        now = self._clock() if now is None else now
        until, count = self._blocked.get(key, (0.0, 0))
        if now < until and count > self.limit:
            raise RateLimited(details={"retry_after_seconds": math.ceil(until - now)})

    async def _count(self, counter_id: str, end: float) -> int:
        """The counter bumped by one, with the other hits on it meanwhile (above): this hit's
        count."""
        batch = self._queued.get(counter_id)
        if batch is None:
            batch = self._queued[counter_id] = _Batch(asyncio.get_running_loop().create_future())
            if counter_id not in self._writing:
                # a context of its own: the writer serves every request of the key
                task = asyncio.create_task(
                    self._write(counter_id, end), context=contextvars.Context()
                )
                self._writing[counter_id] = task
        batch.hits += 1
        mine = batch.hits
        total = await asyncio.shield(batch.total)  # a request gone leaves the others theirs
        return total - batch.hits + mine

    async def _write(self, counter_id: str, end: float) -> None:
        """The key's queued hits, a batch at a time, until none is left."""
        try:
            while (batch := self._queued.pop(counter_id, None)) is not None:
                try:
                    batch.total.set_result(await self._bump(counter_id, end, batch.hits))
                except Exception as e:  # every hit of the batch gets it
                    batch.total.set_exception(e)
                    batch.total.exception()  # retrieved, whether or not a hit still waits
                except asyncio.CancelledError:  # shutting down: nobody waits for ever
                    batch.total.cancel()
                    raise
        finally:
            del self._writing[counter_id]
            if (left := self._queued.pop(counter_id, None)) is not None:
                left.total.cancel()  # only when cancelled: otherwise the loop took them all

    async def _bump(self, counter_id: str, end: float, hits: int) -> int:
        """The counter after adding ``hits``: one upsert (again if a racing upsert inserted
        it)."""
        assert self._counters is not None
        expires = datetime.fromtimestamp(end, UTC)
        for attempt in range(2):
            try:
                doc = await self._counters.find_one_and_update(
                    {"_id": counter_id},
                    {"$inc": {"n": hits}, "$setOnInsert": {"expires_at": expires}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                    projection={"n": True},
                )
            except DuplicateKeyError:
                if attempt:
                    raise
                continue
            return int(doc["n"]) if doc else hits
        return hits  # pragma: no cover - the loop returns or raises

    def _hit_here(self, key: str, now: float) -> None:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            raise RateLimited(details={"retry_after_seconds": int(hits[0] + self.window - now) + 1})
        hits.append(now)
        if len(self._hits) > 100_000:
            for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
                del self._hits[k]
