"""Work started ahead: a request's independent round trips (a read, a count, WeChat's content
check) run at once and are awaited in the order their errors take precedence, so the request
waits for the slowest of them instead of their sum, and answers as if it had done them one
after another. Whatever is still running when an earlier one fails is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")


def _retrieve(task: asyncio.Future[object]) -> None:
    """A dropped task's error is not the request's (an earlier one is): no warning for it."""
    if not task.cancelled():
        task.exception()


class Ahead:
    """``async with Ahead() as ahead: x = ahead.start(read()); ...; await x``."""

    def __init__(self) -> None:
        self._started: list[asyncio.Future[object]] = []

    def start(self, work: Awaitable[T]) -> asyncio.Future[T]:
        """``work`` running now; await what this returns where its answer is needed."""
        task = asyncio.ensure_future(work)
        self._started.append(task)  # type: ignore[arg-type]
        return task

    async def __aenter__(self) -> Ahead:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._started:
            if not task.done():
                task.cancel()
            task.add_done_callback(_retrieve)
