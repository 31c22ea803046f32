"""A background job run every few seconds until stopped; a failed round is logged, not fatal.
Given a lease, a round runs only in the process that holds it (``server/lease.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from server.platform.lease import Lease

log = logging.getLogger("microcourt.periodic")


async def cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to end. Cancelled again each second until it does: a
    cancellation that lands inside a driver call to a database that is down can come back as
    the driver's own error, which a job's loop takes for a failed round and carries on (the
    outbox worker kept a shutdown waiting ~280 s so)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


class Periodic:
    def __init__(
        self,
        name: str,
        job: Callable[[], Awaitable[object]],
        seconds: float,
        lease: Lease | None = None,
    ) -> None:
        self.name = name
        self.job = job
        self.seconds = seconds
        self.lease = lease
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel(task)
        if self.lease is not None:
            await self.lease.release()

    async def _loop(self) -> None:
        while True:
            try:
                if self.lease is None or await self.lease.hold():
                    await self.job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: round failed", self.name)
            await asyncio.sleep(self.seconds)
