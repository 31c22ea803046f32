"""A background job run every few seconds until stopped; a failed round is logged, not fatal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("microcourt.periodic")


class Periodic:
    def __init__(self, name: str, job: Callable[[], Awaitable[object]], seconds: float) -> None:
        self.name = name
        self.job = job
        self.seconds = seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: round failed", self.name)
            await asyncio.sleep(self.seconds)
