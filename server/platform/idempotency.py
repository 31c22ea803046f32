"""Idempotency keys: a retried state change returns the first result instead of acting twice.

The first request with a key claims it (a unique ``_id``); its successful answer is stored and
replayed for any repeat within 24 hours. A repeat that arrives while the first is still running
is a 409; a failed first attempt releases the key so that the retry can run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from pymongo.errors import DuplicateKeyError

from server.platform.clock import Clock
from server.platform.db import Database
from server.platform.errors import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")
# A claim not finished within this long (its process died) may be taken over by a retry.
CLAIM = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: str


class IdempotencyStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.keys = db["idempotency"]
        self.clock = clock

    @staticmethod
    def _id(user_id: str, method: str, path: str, key: str) -> str:
        return f"{user_id}:{method}:{path}:{key}"

    async def begin(
        self, user_id: str, method: str, path: str, key: str, body: bytes
    ) -> StoredAnswer | None:
        """Claim ``key``; or return the stored answer of the request that claimed it first."""
        if not KEY_PATTERN.fullmatch(key):
            raise InvalidIdempotencyKey()
        fingerprint = hashlib.sha256(body).hexdigest()
        doc_id = self._id(user_id, method, path, key)
        now = self.clock.now()
        try:
            await self.keys.insert_one(
                {
                    "_id": doc_id,
                    "fingerprint": fingerprint,
                    "state": "running",
                    "claimed_until": now + CLAIM,
                    "created_at": now,
                }
            )
            return None
        except DuplicateKeyError:
            pass
        first = await self.keys.find_one({"_id": doc_id})
        if first is not None and first["fingerprint"] != fingerprint:
            raise IdempotencyKeyReused()
        if first is not None and first["state"] == "done":
            return StoredAnswer(first["status"], first["body"])
        if first is not None and await self._take_over(first, now):
            return None
        raise IdempotencyInProgress()

    async def _take_over(self, first: dict[str, Any], now: dt.datetime) -> bool:
        """A claim whose process died (still running past its time) passes to this retry."""
        if first["claimed_until"] > now:
            return False
        taken = await self.keys.update_one(
            {"_id": first["_id"], "state": "running", "claimed_until": first["claimed_until"]},
            {"$set": {"claimed_until": now + CLAIM}},
        )
        return taken.modified_count == 1

    async def finish(
        self, user_id: str, method: str, path: str, key: str, answer: StoredAnswer
    ) -> None:
        await self.keys.update_one(
            {"_id": self._id(user_id, method, path, key)},
            {"$set": {"state": "done", "status": answer.status, "body": answer.body}},
        )

    async def release(self, user_id: str, method: str, path: str, key: str) -> None:
        await self.keys.delete_one(
            {"_id": self._id(user_id, method, path, key), "state": "running"}
        )
