"""The durable outbox of subscribe messages, and the worker that sends them.

Any number of server processes run a worker. Two guards keep a notice from being sent twice:
a lease in ``leases`` (``_id: "outbox"``) lets one process work the outbox at a time, and
each item is claimed on its own (``pending`` -> ``sending`` with ``claimed_by``), so even two
workers that both believe they hold the lease never send one item twice. While an item is
``sending``, its ``next_attempt_at`` is the end of the claim: an item still ``sending`` after
that (its worker died mid-send) is taken up again. That send may then happen twice; WeChat
offers no idempotency key, and a repeated reminder is better than a lost one.

The user's quota is taken once per item (``quota_taken``), before the first send, with a
conditional decrement; retries do not take it again, and a final failure gives it back.

The items and quotas are read and written by ``server.notify.store`` (``OutboxStore``,
``SubscriptionStore``), each claim and state change conditional on what was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from pymongo.errors import PyMongoError

from models.notifications import OutboxStatus
from server.identity.users import Directory
from server.notify.sms import SMS_KIND, SmsService
from server.notify.store import OutboxStore, SubscriptionStore
from server.platform.clock import Clock
from server.platform.config import NotificationSettings
from server.platform.db import Database
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


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        config: NotificationSettings,
        wechat: WeChatAdapter,
        clock: Clock,
        owner: str | None = None,
    ) -> None:
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

    # ---- one round

    async def run_once(self) -> int:
        """Take (or keep) the lease and send one batch; the number of items handled."""
        if not await self.lease.hold():
            return 0
        return await self.drain(self.config.outbox_batch)

    async def drain(self, limit: int) -> int:
        """Claim and handle up to ``limit`` due items, lease or not (item claims suffice)."""
        handled = 0
        for status in (OutboxStatus.pending, OutboxStatus.sending):
            for item in await self._due(status, limit - handled):
                if not await self._claim(item):
                    continue  # another worker was first
                await self._handle(item)
                handled += 1
                if self.lease.until is not None and not await self.lease.keep():
                    return handled  # another process has the lease now: leave it the rest
        return handled

    # ---- one item

    async def _due(self, status: OutboxStatus, limit: int) -> list[dict[str, Any]]:
        """Items of ``status`` due now, oldest first (index ``due``). For ``sending`` these
        are the items whose claim ran out: their worker died."""
        if limit <= 0:
            return []
        return await self.outbox.due(status, self.clock.now(), limit)

    async def _claim(self, item: dict[str, Any]) -> bool:
        """Make the item ours if it is still as we read it; ``item`` then shows the claim."""
        until = self.clock.now() + dt.timedelta(seconds=self.config.claim_seconds)
        claim = {
            "status": OutboxStatus.sending.value,
            "claimed_by": self.owner,
            "claimed_until": until,
            "next_attempt_at": until,
        }
        if not await self.outbox.claim(item, claim):
            return False
        item.update(claim, attempts=item["attempts"] + 1)
        return True

    async def _handle(self, item: dict[str, Any]) -> None:
        if item.get("kind") == SMS_KIND and self.sms is not None:
            await self.sms.deliver(self, item)  # 1+N: an SMS to a caller (server/notify/sms.py)
            return
        openid = await self.directory.openid_of(item["user_id"])
        if not openid:  # staff signed in with a password: the inbox and the feed only
            await self._finish(item, OutboxStatus.skipped_no_openid)
            return
        if not item.get("quota_taken") and not await self._take_quota(item):
            await self._finish(item, OutboxStatus.skipped_no_quota)
            return
        try:
            result = await self.wechat.send_subscribe_message(
                openid, item["template_id"], item["data"], item.get("page")
            )
        except WeChatError as e:
            await self._send_failed(item, e)
            return
        await self._finish(item, OutboxStatus.sent, msgid=result.get("msgid"))

    async def _take_quota(self, item: dict[str, Any]) -> bool:
        if item["template_id"] in self.long_term:
            # accepted once, sent every time: nothing is taken, so nothing is given back
            return await self.subscriptions.accepted(item["user_id"], item["template_id"])
        if not await self.subscriptions.take(item["user_id"], item["template_id"]):
            return False
        await self.outbox.quota_taken(item["_id"], self.owner)
        item["quota_taken"] = True
        return True

    async def _send_failed(self, item: dict[str, Any], error: WeChatError) -> None:
        note = f"{error.errcode}: {error.errmsg[:200]}"
        if error.errcode == NO_QUOTA:
            # WeChat knows better than our count: none left.
            await self.subscriptions.none_left(item["user_id"], item["template_id"])
            await self._finish(item, OutboxStatus.skipped_no_quota, last_error=note)
            return
        if error.errcode in TRANSIENT and item["attempts"] < self.config.max_attempts:
            await self._retry_later(item, note)
            return
        log.warning("subscribe message %s failed: %s", item["_id"], note)
        await self._give_back_quota(item)
        await self._finish(item, OutboxStatus.failed, last_error=note)

    def backoff(self, attempts: int) -> dt.timedelta:
        """Delay before the next try after ``attempts`` tries: base, 2 x base, 4 x base ..."""
        seconds = self.config.backoff_base_seconds * 2 ** max(attempts - 1, 0)
        return dt.timedelta(seconds=min(seconds, self.config.backoff_max_seconds))

    async def _retry_later(self, item: dict[str, Any], note: str) -> None:
        sets = {
            "status": OutboxStatus.pending.value,
            "next_attempt_at": self.clock.now() + self.backoff(item["attempts"]),
            "last_error": note,
        }
        await self.outbox.release(item["_id"], self.owner, sets, ("claimed_by", "claimed_until"))

    async def _give_back_quota(self, item: dict[str, Any]) -> None:
        if item.get("quota_taken"):
            await self.subscriptions.give_back(item["user_id"], item["template_id"])

    async def _finish(self, item: dict[str, Any], status: OutboxStatus, **extra: Any) -> None:
        sets = {"status": status.value, "finished_at": self.clock.now(), **extra}
        unset = ("claimed_by", "claimed_until", "next_attempt_at")
        await self.outbox.release(item["_id"], self.owner, sets, unset)

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
        while True:
            try:
                handled = await self.run_once()
            except PyMongoError as e:
                log.warning("outbox round failed: %s", type(e).__name__)
                handled = 0
            except Exception:  # a bug must not stop every future push
                log.exception("outbox round failed")
                handled = 0
            if handled:
                await asyncio.sleep(BUSY_PAUSE_SECONDS)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.outbox_idle_seconds)
