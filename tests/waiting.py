"""Waiting in tests: poll for a condition instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

Predicate = Callable[[], Any] | Callable[[], Awaitable[Any]]


async def until(predicate: Predicate, timeout: float = 5.0, every: float = 0.01) -> Any:
    """Poll ``predicate`` (a function or a coroutine function) until it returns something truthy,
    and return that; ``TimeoutError`` after ``timeout`` seconds. A fast machine does not wait
    longer than needed, a loaded one gets the time it needs."""
    async with asyncio.timeout(timeout):
        while True:
            found = predicate()
            if inspect.isawaitable(found):
                found = await found
            if found:
                return found
            await asyncio.sleep(every)
