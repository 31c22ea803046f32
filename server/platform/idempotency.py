"""Idempotency keys: a retried state change returns the first result instead of acting twice.

The first request with a key claims it (a unique ``_id`` and a token of its own). The work it
does commits with the key's mark: every transaction of the request (``in_transaction``, and
the conditional write of ``read_decide_write``) also moves the key, still held by that token,
to ``applied`` (``server.platform.db.commits_with``). So the work is done at most once per
key, whatever dies when: a retry finds ``applied`` and never runs the work again, and a claim
taken over by a retry (the first request still running past ``CLAIM``) makes the first one's
commit fail instead of doing the work a second time. The successful answer is then stored
(``done``) and replayed for any repeat within 24 hours; a repeat of a key whose work committed
but whose answer was never stored (the process died, or the database went away, between the
two) gets 409 ``idempotency_answer_lost``: the work is done, and no answer is invented.

A repeat that arrives while the first is still running is a 409. The claim is short
(``CLAIM``) and renewed while its request runs (``hold``), so the claim of a process that died
or of a request that failed lapses within seconds; a failed first attempt whose work did not
commit also releases the key at once, and when that release fails too (the database down),
the claim simply lapses: a retry after the outage waits seconds, not a minute, and whichever
process it reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, PyMongoError

from server.platform.clock import Clock
from server.platform.db import Database
from server.platform.errors import (
    IdempotencyAnswerLost,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)

log = logging.getLogger("microcourt.idempotency")

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")
#: A claim not renewed within this long (its request failed, its process died) may be taken
#: over by a retry; taking over is safe, as the first one's work can no longer commit.
CLAIM = dt.timedelta(seconds=5)
#: how often a running request renews its claim
RENEW_SECONDS = 1.5


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: str


@dataclass
class Claim:
    """One request's hold on its key: ``token`` tells its writes from a later taker's."""

    doc_id: str
    token: str
    open: bool = True


@dataclass(frozen=True)
class Mark:
    """A request's ``commits_with`` hook: its key marked ``applied`` in the work's
    transaction. A group commit marks its members' keys ``together``, first and in one
    write: a key renewed by its request (``hold``) after the transaction's snapshot was taken
    and before its mark would make the mark, and the whole group, conflict (at 32 keys
    renewed every 1.5 s, most groups did, and were tried again until their 503)."""

    store: IdempotencyStore
    claim: Claim

    async def __call__(self, session: AsyncClientSession) -> None:
        await self.store.mark(self.claim, session)

    @staticmethod
    async def together(
        marks: Sequence[Mark], session: AsyncClientSession
    ) -> list[Exception | None]:
        """Each mark's error (``IdempotencyInProgress``: its key taken over) or None."""
        if not marks:
            return []
        done = await marks[0].store.mark_many([m.claim for m in marks], session)
        return [None if ok else IdempotencyInProgress() for ok in done]


class IdempotencyStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.keys = db["idempotency"]
        self.clock = clock

    @staticmethod
    def _id(user_id: str, method: str, path: str, key: str) -> str:
        return f"{user_id}:{method}:{path}:{key}"

    async def begin(
        self, user_id: str, method: str, path: str, key: str, body: bytes
    ) -> StoredAnswer | Claim:
        """Claim ``key``; or return the stored answer of the request that claimed it first."""
        if not KEY_PATTERN.fullmatch(key):
            raise InvalidIdempotencyKey()
        fingerprint = hashlib.sha256(body).hexdigest()
        claim = Claim(self._id(user_id, method, path, key), secrets.token_hex(8))
        now = self.clock.now()
        try:
            await self.keys.insert_one(
                {
                    "_id": claim.doc_id,
                    "fingerprint": fingerprint,
                    "state": "running",
                    "token": claim.token,
                    "claimed_until": now + CLAIM,
                    "created_at": now,
                }
            )
            return claim
        except DuplicateKeyError:
            pass
        first = await self.keys.find_one({"_id": claim.doc_id})
        if first is not None and first["fingerprint"] != fingerprint:
            raise IdempotencyKeyReused()
        if first is not None and first["state"] == "done":
            return StoredAnswer(first["status"], first["body"])
        if first is not None and first["state"] == "applied":
            raise IdempotencyAnswerLost()
        if first is not None and await self._take_over(first, claim, now):
            return claim
        raise IdempotencyInProgress()

    async def _take_over(self, first: dict[str, Any], claim: Claim, now: dt.datetime) -> bool:
        """A claim whose process died (still running past its time) passes to this retry."""
        if first["claimed_until"] > now:
            return False
        taken = await self.keys.update_one(
            {"_id": first["_id"], "state": "running", "claimed_until": first["claimed_until"]},
            {"$set": {"claimed_until": now + CLAIM, "token": claim.token}},
        )
        return taken.modified_count == 1

    async def mark(self, claim: Claim, session: AsyncClientSession) -> None:
        """In the work's transaction: the key's work is done (``applied``), if the key is still
        this request's; otherwise (a retry took it over) the work must not commit."""
        if not claim.open:
            return  # a task the request left behind: not its work
        marked = await self.keys.update_one(
            {"_id": claim.doc_id, "token": claim.token},
            {"$set": {"state": "applied"}},
            session=session,
        )
        if marked.matched_count != 1:
            raise IdempotencyInProgress()

    def marking(self, claim: Claim) -> Mark:
        """The request's ``commits_with`` hook: ``mark`` of its claim."""
        return Mark(self, claim)

    async def mark_many(self, claims: Sequence[Claim], session: AsyncClientSession) -> list[bool]:
        """``mark`` of many claims in one write (a group commit); False for each key no longer
        its request's: taken over by a retry (which may wait in the same group: the key's
        token says whose it is), or released by its request, which has ended (cancelled) and
        answered nothing. That work must not commit."""
        live = [c for c in claims if c.open]
        if live:
            ids, tokens = [c.doc_id for c in live], [c.token for c in live]
            filt = {"_id": {"$in": ids}, "token": {"$in": tokens}}  # tokens are random
            marked = await self.keys.update_many(
                filt, {"$set": {"state": "applied"}}, session=session
            )
            if marked.matched_count != len(live):
                found = self.keys.find(filt, {"token": 1}, session=session)
                held = {(d["_id"], d["token"]) async for d in found}
                return [c.open and (c.doc_id, c.token) in held for c in claims]
        return [c.open for c in claims]

    async def finish(self, claim: Claim, answer: StoredAnswer) -> None:
        claim.open = False
        await self.keys.update_one(
            {"_id": claim.doc_id, "token": claim.token},
            {"$set": {"state": "done", "status": answer.status, "body": answer.body}},
        )

    async def hold(self, claim: Claim) -> None:
        """Renew ``claim`` while its request runs (a task, cancelled when it ends)."""
        while claim.open:
            await asyncio.sleep(RENEW_SECONDS)
            with contextlib.suppress(PyMongoError):
                await self.keys.update_one(
                    {"_id": claim.doc_id, "token": claim.token, "state": "running"},
                    {"$set": {"claimed_until": self.clock.now() + CLAIM}},
                )

    async def release(self, claim: Claim, undone: bool = False) -> None:
        """After a failure: free the key unless its work committed (then it stays
        ``applied``), or ``undone``: the service answered with a typed error after undoing
        what it had committed. With the database down, the claim is left to lapse
        (``CLAIM``)."""
        claim.open = False
        try:
            await self._delete(claim, undone)
        except PyMongoError as e:
            log.warning("idempotency key %s left to lapse: %s", claim.doc_id, e)

    async def _delete(self, claim: Claim, undone: bool = False) -> None:
        running = {} if undone else {"state": "running"}
        await self.keys.delete_one({"_id": claim.doc_id, "token": claim.token, **running})
