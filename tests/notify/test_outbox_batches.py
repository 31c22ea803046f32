"""The outbox in batches (issue 18 point 5): a round claims batch after batch, each claimed
while the one before is sent; two workers racing over the same items send each once; only
recipients who can receive a push are queued."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from miniapp_stubs.emulator import Emulator
from server.app import Services
from server.notify.inbox import NotificationService
from server.notify.outbox import ROUND_BATCHES, OutboxWorker
from server.platform.clock import FixedClock
from server.platform.config import NotificationSettings, Settings
from server.platform.db import Database
from tests.factories import Litigant, Staff, uid

DECIDED = "dev-tmpl-filing-decided"  # config.yaml's filing_decided template id


def batched(settings: Settings, batch: int, **more: Any) -> NotificationSettings:
    return settings.notifications.model_copy(update={"outbox_batch": batch, **more})


async def notices(services: Services, user_id: str, n: int, start: int = 0) -> None:
    for k in range(start, start + n):
        await services.notifications.notify(
            [user_id], "filing_accepted", f"通知{k}", "请留意缴费通知", template="filing_decided"
        )


async def items(db: Database, user_id: str) -> list[dict[str, Any]]:
    return await db["outbox"].find({"user_id": user_id}).sort("_id", 1).to_list()


def titles(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(m["data"]["thing1"]["value"] for m in messages)


@pytest.mark.gen_test(timeout=60)
async def test_a_round_sends_batch_after_batch_each_item_once(
    litigant: Litigant, services: Services, db: Database, settings: Settings, clock: FixedClock
) -> None:
    mp = await litigant()
    total = 2 * ROUND_BATCHES + 3  # more than a round holds, in batches of 2
    for _ in range(total):
        await mp.accept_subscriptions([DECIDED])
    await notices(services, uid(mp), total)
    worker = OutboxWorker(db, batched(settings, 2, outbox_concurrency=3), services.wechat, clock)
    assert await worker.run_once() == 2 * ROUND_BATCHES  # a round's batches, then it ends
    assert await worker.run_once() == 3
    assert await worker.run_once() == 0
    done = await items(db, uid(mp))
    assert [(i["status"], i["attempts"]) for i in done] == [("sent", 1)] * total
    assert not any({"claim", "claimed_by", "claimed_until"} & set(i) for i in done)
    messages = await mp.subscribe_messages()
    assert titles(messages) == sorted(f"通知{k}" for k in range(total))
    assert sorted(i["msgid"] for i in done) == sorted(m["msgid"] for m in messages)
    assert (await db["subscriptions"].find_one({"_id": f"{uid(mp)}:{DECIDED}"}))["quota"] == 0


@pytest.mark.gen_test(timeout=60)
async def test_two_workers_racing_over_batches_send_each_item_once(
    litigant: Litigant, services: Services, db: Database, settings: Settings, clock: FixedClock
) -> None:
    mp, other = await litigant(), await litigant()
    for who in (mp, other):
        for _ in range(9):
            await who.accept_subscriptions([DECIDED])
    await notices(services, uid(mp), 9)
    await notices(services, uid(other), 9, start=9)
    config = batched(settings, 3)
    first, second = (OutboxWorker(db, config, services.wechat, clock) for _ in range(2))
    # no lease between them (as two processes whose lease ran out mid-round): the item
    # claims alone keep each item to one worker, batch after batch
    done = await asyncio.gather(first.drain(100), second.drain(100))
    assert sum(done) == 18
    sent = [*await mp.subscribe_messages(), *await other.subscribe_messages()]
    assert titles(sent) == sorted(f"通知{k}" for k in range(18))
    for who in (mp, other):
        assert [i["attempts"] for i in await items(db, uid(who))] == [1] * 9
        quota = await db["subscriptions"].find_one({"_id": f"{uid(who)}:{DECIDED}"})
        assert quota is not None and quota["quota"] == 0
    assert await first.drain(100) + await second.drain(100) == 0


@pytest.mark.gen_test(timeout=60)
async def test_a_batch_claimed_by_a_dead_worker_is_sent_once_after_its_claim(
    litigant: Litigant, services: Services, db: Database, settings: Settings, clock: FixedClock
) -> None:
    mp = await litigant()
    for _ in range(4):
        await mp.accept_subscriptions([DECIDED])
    await notices(services, uid(mp), 4)
    config = batched(settings, 2)
    # a worker claimed the first two and died before sending them
    until = clock.now() + dt.timedelta(seconds=config.claim_seconds)
    ids = [i["_id"] for i in (await items(db, uid(mp)))[:2]]
    await db["outbox"].update_many(
        {"_id": {"$in": ids}},
        {"$set": {"status": "sending", "claimed_by": "dead", "next_attempt_at": until}},
    )
    live = OutboxWorker(db, config, services.wechat, clock)
    assert await live.drain(100) == 2  # the two pending; the claimed two wait for the claim
    assert len(await mp.subscribe_messages()) == 2
    clock.advance(seconds=config.claim_seconds + 1)
    assert await live.drain(100) == 2  # taken up again, once
    assert await live.drain(100) == 0
    assert titles(await mp.subscribe_messages()) == sorted(f"通知{k}" for k in range(4))
    assert [i["status"] for i in await items(db, uid(mp))] == ["sent"] * 4


@pytest.mark.gen_test(timeout=60)
async def test_pushes_are_queued_only_for_those_who_can_receive_them(
    litigant: Litigant,
    staff: Staff,
    services: Services,
    db: Database,
    settings: Settings,
    clock: FixedClock,
    emulator: Emulator,
) -> None:
    granted, never, clerk = await litigant(), await litigant(), await staff("clerk")
    await granted.accept_subscriptions([DECIDED])
    for who in (granted, never, clerk):
        await notices(services, uid(who), 1)
    assert [i["user_id"] for i in await db["outbox"].find({}).to_list()] == [uid(granted)]
    for who in (granted, never, clerk):  # the inbox has it all the same
        assert (await who.notifications()).body["unread"] == 1

    # a long-term template: accepted once, every notice queued; never accepted, none
    templates = dict(settings.notifications.templates)
    templates["filing_decided"] = templates["filing_decided"].model_copy(update={"long_term": True})
    emulator.state.register_templates(
        {DECIDED: {"keywords": ["thing1", "thing2", "time3"], "long_term": True}}
    )
    long_term = settings.model_copy(
        update={"notifications": settings.notifications.model_copy(update={"templates": templates})}
    )
    service = NotificationService(db, long_term, clock)
    await db["outbox"].delete_many({})
    for k in range(3):
        await service.notify(
            [uid(granted), uid(never)],
            "filing_accepted",
            f"长期{k}",
            "正文",
            template="filing_decided",
        )
    assert [i["user_id"] for i in await db["outbox"].find({}).to_list()] == [uid(granted)] * 3
    worker = OutboxWorker(db, long_term.notifications, services.wechat, clock)
    assert await worker.run_once() == 3
    assert len(await granted.subscribe_messages()) == 3 and await never.subscribe_messages() == []
