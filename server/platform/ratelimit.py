"""In-process sliding-window rate limits (per process; enough to blunt guessing)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from server.platform.errors import RateLimited


class RateLimiter:
    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> None:
        """Count one attempt under ``key``; raise RateLimited past the limit."""
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            raise RateLimited(details={"retry_after_seconds": int(hits[0] + self.window - now) + 1})
        hits.append(now)
        if len(self._hits) > 100_000:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]
