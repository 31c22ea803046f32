"""Leases in MongoDB: one process at a time works a background job.

A lease is one document in ``leases``, ``{_id: name, owner, expires_at}``. Taking it is one
upsert that matches only when the lease has expired or is already the caller's; when another
process holds it, the upsert's insert collides with the existing ``_id`` and the caller
learns it is not the holder. A holder renews it as it goes and gives it back on shutdown, so
the next process need not wait for it to expire. A process that dies simply lets it expire.

A lease saves work, it is not what makes a job safe: jobs still move each document by a
conditional update, so two processes that both believe they hold a lease (a clock jump, a
pause longer than the lease) do nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid

import pymongo
from pymongo.errors import DuplicateKeyError, PyMongoError

from server.platform.clock import Clock
from server.platform.db import Database

#: how long giving a lease back may take (it expires by itself anyway)
RELEASE_SECONDS = 1.0


class Lease:
    def __init__(
        self, db: Database, name: str, seconds: float, clock: Clock, owner: str | None = None
    ) -> None:
        self.leases = db["leases"]
        self.name = name
        self.seconds = seconds
        self.clock = clock
        self.owner = owner or uuid.uuid4().hex
        self.until: dt.datetime | None = None  # while held, as far as this process knows

    async def hold(self) -> bool:
        """Take the lease, or renew it if it is ours; False while another process holds it."""
        now = self.clock.now()
        until = now + dt.timedelta(seconds=self.seconds)
        try:
            await self.leases.update_one(
                {"_id": self.name, "$or": [{"expires_at": {"$lt": now}}, {"owner": self.owner}]},
                {"$set": {"owner": self.owner, "expires_at": until}},
                upsert=True,
            )
        except DuplicateKeyError:  # the lease exists and another process holds it
            self.until = None
            return False
        self.until = until
        return True

    async def keep(self) -> bool:
        """Between batches: renew once half the lease has gone; False if it was lost."""
        if self.until is not None and self.clock.now() < self.until - self._half():
            return True
        return await self.hold()

    def _half(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.seconds / 2)

    async def release(self) -> None:
        """Give the lease back (on shutdown): expired now, if still ours."""
        self.until = None
        past = self.clock.now() - dt.timedelta(seconds=1)
        # bounded: on shutdown with the database gone, each release waited for a server (5 s)
        with (
            contextlib.suppress(PyMongoError, asyncio.CancelledError),
            pymongo.timeout(RELEASE_SECONDS),
        ):
            await self.leases.update_one(
                {"_id": self.name, "owner": self.owner}, {"$set": {"expires_at": past}}
            )
