"""Rate limits (sign-in, case lookup, uploads, messages), counted in the database so that
every server process shares them.

A limit is a fixed window: one counter document per (limiter, key, window) in
``rate_limits``, ``{_id, n, expires_at}``, bumped by one upsert that returns the new count
(one round trip), and dropped by the TTL index once its window is over. A fixed window lets
a user spend up to twice the limit across a window's edge; for blunting guessing and floods
that is enough, and it costs one small write instead of a list of timestamps per key.

The cheap path: once a key is over its limit, this process remembers it until the window
ends and refuses without asking the database again. A limiter made without a database (tests,
tools) counts in this process alone, in a sliding window.

The upsert is a ``findAndModify``, which SecantusDB runs by scanning the collection (see
``server.platform.mongo``); here that is cheap, as the TTL index keeps ``rate_limits`` to the
windows still open, and one round trip beats ``change_one``'s transaction for a counter whose
exactness under a race matters little (two racing hits may both see the higher count).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
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
        until, count = self._blocked.get(key, (0.0, 0))
        if now < until and count > self.limit:
            raise RateLimited(details={"retry_after_seconds": math.ceil(until - now)})
        window = math.floor(now / self.window)
        end = (window + 1) * self.window
        count = await self._count(f"{self.name}|{key}|{window}", end)
        if count > self.limit:
            if len(self._blocked) > 10_000:
                self._blocked = {k: v for k, v in self._blocked.items() if v[0] > now}
            self._blocked[key] = (end, count)
            raise RateLimited(details={"retry_after_seconds": math.ceil(end - now)})

    async def _count(self, counter_id: str, end: float) -> int:
        """The counter bumped by one: one upsert (again if a racing upsert inserted it)."""
        assert self._counters is not None
        expires = datetime.fromtimestamp(end, UTC)
        for attempt in range(2):
            try:
                doc = await self._counters.find_one_and_update(
                    {"_id": counter_id},
                    {"$inc": {"n": 1}, "$setOnInsert": {"expires_at": expires}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                    projection={"n": True},
                )
            except DuplicateKeyError:
                if attempt:
                    raise
                continue
            return int(doc["n"]) if doc else 1
        return 1  # pragma: no cover - the loop returns or raises

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
