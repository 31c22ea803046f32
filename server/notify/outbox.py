"""The durable outbox of subscribe messages, and the worker that sends them.

Any number of server processes run a worker. Two guards keep a notice from being sent twice:
a lease in ``leases`` (``_id: "outbox"``) lets one process work the outbox at a time, and
each item is claimed conditionally (``pending`` -> ``sending`` with ``claimed_by``, only while
still pending and due), so even two workers that both believe they hold the lease never send
one item twice. While an item is ``sending``, its ``next_attempt_at`` is the end of the claim:
an item still ``sending`` after that (its worker died mid-send) is taken up again. That send
may then happen twice; WeChat offers no idempotency key, and a repeated reminder is better
than a lost one.

The user's quota is taken once per item (``quota_taken``), before the first send, with a
conditional decrement; retries do not take it again, and a final failure gives it back.

Rounds work in batches (``outbox_batch``), because on the embedded database each commit, not
each document, is what costs: one transaction claims the batch and takes its quotas, the
sends run concurrently (``outbox_concurrency``, paced to ``outbox_max_per_second``), one
transaction writes every outcome. A round works up to ``ROUND_BATCHES`` batches as a
pipeline: the next batch is claimed while one is sent, and a batch's outcomes are written
while the next is sent, so the database's share and WeChat's round trips overlap. Only
those who can receive a push are queued (``NotificationService``), so no round spends writes
on skipping. Issue 18 measured ~10 items/s with one item at a time (five commits and a send
each, the clerks' pushes skipped one by one); bench/outbox.py measures it now (README).

The items and quotas are read and written by ``server.notify.store`` (``OutboxStore``,
``SubscriptionStore``), each claim and state change conditional on what was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import PyMongoError

from models.notifications import OutboxStatus
from server.identity.users import Directory
from server.notify.sms import SMS_KIND, SmsService
from server.notify.store import OutboxStore, SubscriptionStore, subscription_id
from server.platform.clock import Clock
from server.platform.config import NotificationSettings
from server.platform.db import Database, LostRace, in_transaction
from server.platform.lease import Lease
from server.platform.periodic import cancel
from server.wechat.miniprogram import WeChatAdapter, WeChatError

log = logging.getLogger("microcourt.outbox")

LEASE_ID = "outbox"
NO_QUOTA = 43101  # the user has not (or no longer) accepted this template
# Worth another try later: unreachable (None), system busy (-1), access-token trouble that
# wechatpy's own single retry did not cure, and rate limits. Anything else is permanent
# (40003 bad openid, 47003 bad data, 40037 bad template id ...).
TRANSIENT = frozenset({None, -1, 40001, 40014, 42001, 45009, 45011})
BUSY_PAUSE_SECONDS = 0.05
# A notice is queued inside its caller's transaction and the worker is woken before that
# commits: a round that finds nothing right after a wake-up looks again after these pauses
# rather than at the next idle poll (seconds later).
AFTER_WAKE_SECONDS = (0.02, 0.1, 0.3, 1.0)
# A round's batches, each claimed while the one before is sent; then the round ends (a pause,
# a look at the lease) and the next one starts again from the oldest due.
ROUND_BATCHES = 5

Doc = dict[str, Any]
Release = tuple[Any, Doc, tuple[str, ...]]  # (item id, fields to set, fields to unset)


def needs_quota(item: Doc) -> bool:
    """A subscribe message whose one-time quota is still to take (not an SMS, not a
    long-term template, which is accepted once and sent every time)."""
    if item.get("kind") == SMS_KIND or "long_term_accepted" in item:
        return False
    return bool(item["openid"]) and not item.get("quota_taken")


class Batch:
    """One round's due items, its claim, and whose quota it can take: ``counts`` sends of
    each subscription, for the ``lucky`` items (the first of each user's, as many as left)."""

    def __init__(self, due: list[Doc], claim: Doc) -> None:
        self.due = due
        self.claim = claim
        self.wanting: dict[str, list[Doc]] = {}
        for item in due:
            if needs_quota(item):
                key = subscription_id(item["user_id"], item["template_id"])
                self.wanting.setdefault(key, []).append(item)
        self.counts: dict[str, int] = {}
        self.lucky: list[Doc] = []

    def keys(self) -> list[str]:
        return list(self.wanting)

    def count(self, left: dict[str, int]) -> None:
        self.counts = {k: min(left[k], len(v)) for k, v in self.wanting.items() if left.get(k)}
        self.lucky = [item for key, n in self.counts.items() for item in self.wanting[key][:n]]

    def claimed(self, items: list[Doc], lucky: list[Doc]) -> list[Doc]:
        """``items`` as claimed: the claim on each, ``quota_taken`` on the lucky ones."""
        for item in items:
            item.update(self.claim, attempts=item["attempts"] + 1)
        for item in lucky:
            item["quota_taken"] = True
        return items


class Outcomes:
    """The outcomes of a worker's batches, each batch's written in one transaction while the
    worker goes on (claims and sends the next); one write at a time, in order."""

    def __init__(self, outbox: OutboxStore, owner: str) -> None:
        self.outbox = outbox
        self.owner = owner
        self._writing: asyncio.Future[None] | None = None

    def write(self, releases: list[Release]) -> None:
        before = self._writing
        self._writing = asyncio.ensure_future(self._after(before, releases))

    async def _after(self, before: asyncio.Future[None] | None, releases: list[Release]) -> None:
        try:
            if before is not None:
                await before
        finally:  # one batch's failed write does not lose the next batch's outcomes
            await self.outbox.release_many(self.owner, releases)

    async def settle(self) -> None:
        """Wait for every outcome written; the first failure raised."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        config: NotificationSettings,
        wechat: WeChatAdapter,
        clock: Clock,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.outbox = OutboxStore(db)
        self.directory = Directory(db)
        self.subscriptions = SubscriptionStore(db)
        self.config = config
        self.wechat = wechat
        self.clock = clock
        self.lease = Lease(db, LEASE_ID, config.outbox_lease_seconds, clock, owner)
        self.owner = self.lease.owner
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.long_term = frozenset(t.template_id for t in config.templates.values() if t.long_term)
        self.sms: SmsService | None = None  # set by server/app.py: sends the SMS items
        self._sending = asyncio.Semaphore(config.outbox_concurrency)

    # ---- one round

    async def run_once(self) -> int:
        """Take (or keep) the lease and send up to ``ROUND_BATCHES`` batches; the number of
        items handled. The lease is renewed only once half of it has gone, not written every
        round."""
        if not await self.lease.keep():
            return 0
        return await self.drain(self.config.outbox_batch * ROUND_BATCHES)

    async def drain(self, limit: int) -> int:
        """Claim and handle up to ``limit`` due items, lease or not (item claims suffice),
        batch after batch (``outbox_batch`` each), pending items first, then those whose
        worker died. Each batch's sends overlap the database's work of its neighbours: the
        next batch is claimed while it is sent, and its outcomes are written while the next is
        sent (the sends wait on WeChat, the claims and outcomes on the database)."""
        handled = 0
        outcomes = Outcomes(self.outbox, self.owner)
        try:
            for status in (OutboxStatus.pending, OutboxStatus.sending):
                if not await self._still_mine():
                    break
                handled += await self._drain(status, limit - handled, outcomes)
        finally:
            await outcomes.settle()
        return handled

    async def _drain(self, status: OutboxStatus, limit: int, outcomes: Outcomes) -> int:
        handled = 0
        items = await self._claim_due(status, min(self.config.outbox_batch, limit))
        while items:
            started = time.monotonic()
            sending = asyncio.ensure_future(self._send_all(items))
            handled += len(items)
            try:
                full = len(items) == self.config.outbox_batch  # if not, what is due was taken
                following = await self._claim_next(status, limit - handled) if full else []
            finally:  # a claimed batch's outcomes are written whatever became of the next
                outcomes.write(await sending)
            await self._pace(len(items), time.monotonic() - started)
            items = following
        return handled

    async def _claim_next(self, status: OutboxStatus, left: int) -> list[Doc]:
        if left <= 0 or not await self._still_mine():
            return []  # done, or another process has the lease now: leave it the rest
        return await self._claim_due(status, min(self.config.outbox_batch, left))

    async def _still_mine(self) -> bool:
        """Whether to go on: the lease kept, if this worker works under one (``drain``
        called alone works on item claims only)."""
        return self.lease.until is None or await self.lease.keep()

    async def _pace(self, sent: int, took: float) -> None:
        """Keep to ``outbox_max_per_second`` (see NotificationSettings for WeChat's limits)."""
        least = sent / self.config.outbox_max_per_second
        if took < least:
            await asyncio.sleep(least - took)

    # ---- a batch

    async def _claim_due(self, status: OutboxStatus, limit: int) -> list[Doc]:
        """Due items of ``status`` (for ``sending``: those whose worker died), oldest first,
        claimed, and their quotas taken, in one transaction: the claims, each item's send of
        its user's quota and the items' ``quota_taken`` marks (a retry does not take it
        again), one write per item and one commit for the batch. The quotas are read first;
        if anything changed meanwhile (another worker, a grant) it is all undone and done
        item by item instead."""
        if limit <= 0:
            return []
        now = self.clock.now()
        due = await self.outbox.due(status, now, limit)
        if not due:
            return []
        await self._prepare(due)
        batch = Batch(due, self._claim(now))
        if batch.wanting:
            batch.count(await self.subscriptions.left(batch.keys()))
        try:
            await in_transaction(self.db, lambda session: self._take(batch, status, now, session))
        except LostRace:
            return await self._claim_one_by_one(batch, status, now)
        return batch.claimed(batch.due, batch.lucky)

    async def _prepare(self, due: list[Doc]) -> None:
        """What the round needs to know of its items beyond what was queued, read for the
        batch at once: the openids of items queued before openids were looked up at queueing,
        and whether the users still accept the long-term templates (accepted once, sent every
        time: nothing is taken, so nothing is given back)."""
        pushes = [item for item in due if item.get("kind") != SMS_KIND]
        unknown = [item for item in pushes if "openid" not in item]
        if unknown:
            openids = await self.directory.openids_of(list({i["user_id"] for i in unknown}))
            for item in unknown:
                item["openid"] = openids.get(item["user_id"])
        long_term = [i for i in pushes if i["openid"] and i["template_id"] in self.long_term]
        if long_term:
            keys = [subscription_id(i["user_id"], i["template_id"]) for i in long_term]
            left = await self.subscriptions.left(list(dict.fromkeys(keys)))
            for item, key in zip(long_term, keys, strict=True):
                item["long_term_accepted"] = left.get(key, 0) > 0

    def _claim(self, now: dt.datetime) -> Doc:
        until = now + dt.timedelta(seconds=self.config.claim_seconds)
        return {
            "status": OutboxStatus.sending.value,
            "claimed_by": self.owner,
            "claimed_until": until,
            "next_attempt_at": until,
            "claim": ObjectId(),  # this round's: tells which items it claimed
        }

    async def _take(
        self, batch: Batch, status: OutboxStatus, now: dt.datetime, session: AsyncClientSession
    ) -> None:
        lucky = [i["_id"] for i in batch.lucky]
        taken = set(lucky)
        rest = [i["_id"] for i in batch.due if i["_id"] not in taken]
        with_quota = {**batch.claim, "quota_taken": True}
        won = await self.outbox.claim(lucky, status, now, with_quota, session)
        won += await self.outbox.claim(rest, status, now, batch.claim, session)
        if won != len(batch.due):
            raise LostRace
        if batch.counts and not await self.subscriptions.take_many(batch.counts, session):
            raise LostRace

    async def _claim_one_by_one(
        self, batch: Batch, status: OutboxStatus, now: dt.datetime
    ) -> list[Doc]:
        ids = [i["_id"] for i in batch.due]
        if await self.outbox.claim(ids, status, now, batch.claim) != len(ids):
            mine = await self.outbox.claimed(ids, batch.claim["claim"])
            batch.due = [i for i in batch.due if i["_id"] in mine]
        wanting = [i for i in batch.due if needs_quota(i)]
        lucky = []
        for item in wanting:
            if await self.subscriptions.take(item["user_id"], item["template_id"]):
                lucky.append(item)
        await self.outbox.quota_taken([i["_id"] for i in lucky], self.owner)
        return batch.claimed(batch.due, lucky)

    async def _send_all(self, items: list[Doc]) -> list[Release]:
        """The sends made concurrently (at most ``outbox_concurrency`` at once); the outcomes
        to write (an SMS writes its own)."""
        releases = await asyncio.gather(*(self._handle(item) for item in items))
        return [r for r in releases if r is not None]

    # ---- one item

    async def _handle(self, item: Doc) -> Release | None:
        if item.get("kind") == SMS_KIND and self.sms is not None:
            # 1+N: an SMS to a caller (server/notify/sms.py); its outcome is written at once,
            # before a delivery receipt parked meanwhile is looked for
            await self.sms.deliver(self, item)
            return None
        if not item["openid"]:  # staff signed in with a password: the inbox and the feed only
            return self._finish(item, OutboxStatus.skipped_no_openid)
        if not item.get("quota_taken") and not item.get("long_term_accepted"):
            return self._finish(item, OutboxStatus.skipped_no_quota)
        try:
            async with self._sending:
                result = await self.wechat.send_subscribe_message(
                    item["openid"], item["template_id"], item["data"], item.get("page")
                )
        except WeChatError as e:
            return await self._send_failed(item, e)
        return self._finish(item, OutboxStatus.sent, msgid=result.get("msgid"))

    async def _send_failed(self, item: Doc, error: WeChatError) -> Release:
        note = f"{error.errcode}: {error.errmsg[:200]}"
        if error.errcode == NO_QUOTA:
            # WeChat knows better than our count: none left.
            await self.subscriptions.none_left(item["user_id"], item["template_id"])
            return self._finish(item, OutboxStatus.skipped_no_quota, last_error=note)
        if error.errcode in TRANSIENT and item["attempts"] < self.config.max_attempts:
            return self._retry_later(item, note)
        log.warning("subscribe message %s failed: %s", item["_id"], note)
        await self._give_back_quota(item)
        return self._finish(item, OutboxStatus.failed, last_error=note)

    def backoff(self, attempts: int) -> dt.timedelta:
        """Delay before the next try after ``attempts`` tries: base, 2 x base, 4 x base ..."""
        seconds = self.config.backoff_base_seconds * 2 ** max(attempts - 1, 0)
        return dt.timedelta(seconds=min(seconds, self.config.backoff_max_seconds))

    def _retry_later(self, item: Doc, note: str) -> Release:
        sets = {
            "status": OutboxStatus.pending.value,
            "next_attempt_at": self.clock.now() + self.backoff(item["attempts"]),
            "last_error": note,
        }
        return item["_id"], sets, ("claimed_by", "claimed_until")

    async def _give_back_quota(self, item: Doc) -> None:
        if item.get("quota_taken"):
            await self.subscriptions.give_back(item["user_id"], item["template_id"])

    def _finish(self, item: Doc, status: OutboxStatus, **extra: Any) -> Release:
        sets = {"status": status.value, "finished_at": self.clock.now(), **extra}
        return item["_id"], sets, ("claimed_by", "claimed_until", "next_attempt_at")

    # ---- the background task

    def wake(self) -> None:
        """New items were queued in this process: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run_forever(), name="outbox-worker")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        await cancel(task)
        with contextlib.suppress(PyMongoError):
            await self.lease.release()  # the next process need not wait for it to expire

    async def _run_forever(self) -> None:
        after_wake: tuple[float, ...] = ()
        while True:
            if await self._round():
                await asyncio.sleep(BUSY_PAUSE_SECONDS)
                continue
            self._wake.clear()
            pause = after_wake[0] if after_wake else self.config.outbox_idle_seconds
            after_wake = after_wake[1:]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
                after_wake = AFTER_WAKE_SECONDS

    async def _round(self) -> int:
        try:
            return await self.run_once()
        except PyMongoError as e:
            log.warning("outbox round failed: %s", type(e).__name__)
        except Exception:  # a bug must not stop every future push
            log.exception("outbox round failed")
        return 0
