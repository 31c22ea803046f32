"""Notifications: the inbox, dedupe, court staff, subscribe quotas and the durable outbox.

The live feed (WebSocket) is tested in test_feed.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from bson import ObjectId
from tornado.httpserver import HTTPServer
from tornado.web import Application

from miniapp_stubs.emulator import Emulator, make_emulator_app
from models.notifications import NotificationQuery
from server.app import Services
from server.notify.inbox import NotificationService
from server.notify.outbox import OutboxWorker
from server.notify.store import SubscriptionStore
from server.notify.templates import keyword_value
from server.platform.clock import FixedClock
from server.platform.config import ConfigError, Settings, load_settings
from server.platform.db import Database
from tests.factories import Litigant, Staff, uid
from tests.waiting import until

DECIDED = "dev-tmpl-filing-decided"  # config.yaml's filing_decided template id


async def outbox_items(db: Database, user_id: str) -> list[dict[str, Any]]:
    return await db["outbox"].find({"user_id": user_id}).sort("_id", 1).to_list()


async def quota(db: Database, user_id: str, template_id: str = DECIDED) -> int:
    doc = await db["subscriptions"].find_one({"_id": f"{user_id}:{template_id}"})
    return int(doc["quota"]) if doc else 0


async def decided(services: Services, user_id: str, title: str = "立案成功", **kw: Any) -> None:
    await services.notifications.notify(
        [user_id],
        "filing_accepted",
        title,
        "案号（2026）京0105民初1号，请留意缴费通知",
        template="filing_decided",
        page="pages/filing/detail?id=1",
        **kw,
    )


# ---- the inbox


@pytest.mark.gen_test
async def test_inbox_lists_newest_first_counts_unread_and_marks_read(
    litigant: Litigant, services: Services
) -> None:
    mp, other = await litigant(), await litigant()
    note = services.notifications
    await note.notify([uid(mp)], "case_update", "开庭通知", "定于12月1日开庭", data={"n": 1})
    await note.notify([uid(mp)], "case_update", "文书送达", "判决书已送达", data={"n": 2})
    res = await mp.notifications()
    assert res.status == 200, res.body
    assert [i["title"] for i in res.body["items"]] == ["文书送达", "开庭通知"]
    assert res.body["unread"] == 2 and res.body["next_cursor"] is None
    newest = res.body["items"][0]
    assert (
        newest["data"] == {"n": 2} and newest["read"] is False and newest["kind"] == "case_update"
    )

    first = await mp.read_notification(newest["id"])
    assert first.status == 200 and first.body["read"] is True and first.body["read_at"]
    again = await mp.read_notification(newest["id"])
    assert again.status == 200 and again.body["read_at"] == first.body["read_at"]
    unread = await mp.notifications(unread="true")
    assert [i["title"] for i in unread.body["items"]] == ["开庭通知"]
    assert unread.body["unread"] == 1

    theirs = await other.read_notification(newest["id"])
    assert (theirs.status, theirs.error_code) == (404, "notification_not_found")
    assert (await other.notifications()).body == {"items": [], "next_cursor": None, "unread": 0}
    missing = await mp.read_notification(str(ObjectId()))
    assert missing.status == 404


@pytest.mark.gen_test
async def test_inbox_pages_by_cursor(litigant: Litigant, services: Services) -> None:
    mp = await litigant()
    for n in range(5):
        await services.notifications.notify([uid(mp)], "case_update", f"通知{n}", "内容")
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        res = await mp.notifications(limit=2, **({"cursor": cursor} if cursor else {}))
        assert res.status == 200, res.body
        seen += [i["title"] for i in res.body["items"]]
        cursor = res.body["next_cursor"]
    assert seen == ["通知4", "通知3", "通知2", "通知1", "通知0"] and cursor is None
    bad = await mp.notifications(cursor="not-a-cursor")
    assert (bad.status, bad.error_code) == (400, "invalid_cursor")
    assert (await mp.notifications(limit=0)).status == 422


@pytest.mark.gen_test
async def test_dedupe_key_makes_a_repeat_a_no_op_per_recipient(
    litigant: Litigant, services: Services, db: Database
) -> None:
    a, b, c = await litigant(), await litigant(), await litigant()
    for who in (a, b, c):
        await who.accept_subscriptions([DECIDED])
    for recipients in ([uid(a), uid(b)], [uid(a), uid(b)], [uid(a), uid(b), uid(c)]):
        await services.notifications.notify(
            recipients,
            "filing_accepted",
            "立案成功",
            "请留意缴费通知",
            template="filing_decided",
            dedupe_key="filing:1:accepted",
        )
    for who in (a, b, c):
        assert await db["inbox"].count_documents({"user_id": uid(who)}) == 1
        assert len(await outbox_items(db, uid(who))) == 1
    await services.notifications.notify(
        [uid(a)], "filing_accepted", "立案成功", "再次", dedupe_key="x"
    )
    assert await db["inbox"].count_documents({"user_id": uid(a)}) == 2


@pytest.mark.gen_test
async def test_notify_inside_a_transaction_skips_known_duplicates(
    litigant: Litigant, services: Services, db: Database
) -> None:
    mp = await litigant()
    client = db.client
    for _ in range(2):
        async with client.start_session() as session, await session.start_transaction():
            await services.notifications.notify(
                [uid(mp)],
                "case_update",
                "开庭通知",
                "内容",
                dedupe_key="hearing:1",
                session=session,
            )
    assert await db["inbox"].count_documents({"user_id": uid(mp)}) == 1


@pytest.mark.gen_test(timeout=30)  # four staff accounts: ~5 s on a loaded 2-core machine
async def test_court_staff_are_the_active_staff_of_that_court_with_those_roles(
    staff: Staff, services: Services, db: Database, clock: FixedClock
) -> None:
    clerks = [await staff("clerk"), await staff("clerk")]
    judge = await staff("judge")
    elsewhere = await staff("clerk", court_id="sh-pudong")
    inactive = await db["users"].insert_one(
        {"role": "clerk", "court_id": "bj-chaoyang", "active": False, "created_at": clock.now()}
    )
    await services.notifications.notify_court_staff(
        "bj-chaoyang",
        ["clerk"],
        "filing_submitted",
        "新的网上立案申请",
        "张三：民间借贷纠纷",
        template="filing_submitted",
        dedupe_key="filing:9:submitted",
    )
    for clerk in clerks:
        assert (await clerk.notifications()).body["unread"] == 1
    for nobody in (judge, elsewhere):
        assert (await nobody.notifications()).body["unread"] == 0
    assert await db["inbox"].count_documents({"user_id": str(inactive.inserted_id)}) == 0
    # Staff signed in with a password have no openid: inbox (and feed) only, never queued.
    assert await db["outbox"].count_documents({}) == 0
    assert await services.outbox.run_once() == 0


@pytest.mark.gen_test(timeout=30)
async def test_pushes_are_queued_only_for_those_with_an_openid(
    litigant: Litigant, staff: Staff, services: Services, db: Database
) -> None:
    mp, clerk = await litigant(), await staff("clerk")
    await mp.accept_subscriptions([DECIDED])
    await decided(services, uid(mp))
    await decided(services, uid(clerk))
    [item] = await db["outbox"].find({}).to_list()
    assert (item["user_id"], item["openid"]) == (uid(mp), mp.openid)
    assert (await clerk.notifications()).body["unread"] == 1  # the inbox still has it
    # An item queued before openids were kept on it is still sent (looked up when sent).
    await db["outbox"].update_one({"_id": item["_id"]}, {"$unset": {"openid": ""}})
    assert await services.outbox.run_once() == 1
    assert [m["template_id"] for m in await mp.subscribe_messages()] == [DECIDED]


# ---- subscriptions and the outbox


@pytest.mark.gen_test
async def test_with_a_quota_exactly_one_message_is_sent_and_the_quota_used(
    litigant: Litigant, services: Services, db: Database
) -> None:
    mp = await litigant()
    res = await mp.accept_subscriptions([DECIDED])
    assert res.status == 200, res.body
    mine = {q["template"]: q["remaining"] for q in res.body["quotas"]}
    assert mine["filing_decided"] == 1 and mine["filing_submitted"] == 0
    await decided(services, uid(mp), title="立案成功：原告张三诉被告李四民间借贷纠纷一案")
    assert await services.outbox.run_once() == 1
    assert await services.outbox.run_once() == 0
    messages = await mp.subscribe_messages()
    assert len(messages) == 1
    sent = messages[0]
    assert sent["template_id"] == DECIDED and sent["page"] == "pages/filing/detail?id=1"
    assert sent["data"]["thing1"]["value"] == "立案成功：原告张三诉被告李四民间借贷纠…"  # 20 chars
    assert sent["data"]["time3"]["value"] == "2026-11-23 10:00"  # Beijing time
    assert await quota(db, uid(mp)) == 0
    [item] = await outbox_items(db, uid(mp))
    assert item["status"] == "sent" and item["msgid"] == sent["msgid"]
    assert "claimed_by" not in item


@pytest.mark.gen_test
async def test_without_a_grant_nothing_is_queued_but_the_inbox_keeps_it(
    litigant: Litigant, services: Services, db: Database
) -> None:
    mp, granted = await litigant(), await litigant()
    await granted.accept_subscriptions([DECIDED])
    await granted.accept_subscriptions(["dev-tmpl-filing-submitted"])  # another template
    await mp.accept_subscriptions(["dev-tmpl-filing-submitted"])  # not this one
    await services.notifications.notify(
        [uid(mp), uid(granted)],
        "filing_accepted",
        "立案成功",
        "请留意缴费通知",
        template="filing_decided",
    )
    assert await outbox_items(db, uid(mp)) == []  # WeChat would refuse it: not queued
    assert await services.outbox.run_once() == 1
    assert await mp.subscribe_messages() == []
    assert (await mp.notifications()).body["unread"] == 1
    assert [m["template_id"] for m in await granted.subscribe_messages()] == [DECIDED]
    # the grant spent, the next notice is not queued either; a new grant, the one after is
    await decided(services, uid(granted))
    assert len(await outbox_items(db, uid(granted))) == 1  # the one sent
    await granted.accept_subscriptions([DECIDED])
    await decided(services, uid(granted))
    assert await services.outbox.run_once() == 1
    assert len(await granted.subscribe_messages()) == 2


@pytest.mark.gen_test
async def test_wechat_43101_means_no_quota_and_resets_our_count(
    litigant: Litigant, services: Services, db: Database
) -> None:
    mp = await litigant()
    # Our API heard of a grant that WeChat never counted (say, a replayed request).
    res = await mp.post("/api/v1/me/subscriptions", {"template_ids": [DECIDED, DECIDED]})
    assert res.status == 200 and await quota(db, uid(mp)) == 1  # once per acceptance
    await decided(services, uid(mp))
    assert await services.outbox.run_once() == 1
    [item] = await outbox_items(db, uid(mp))
    assert item["status"] == "skipped_no_quota" and item["last_error"].startswith("43101")
    assert await quota(db, uid(mp)) == 0


@pytest.mark.gen_test
async def test_subscriptions_take_only_configured_template_ids(litigant: Litigant) -> None:
    mp = await litigant()
    res = await mp.post("/api/v1/me/subscriptions", {"template_ids": [DECIDED, "no-such-tmpl"]})
    assert (res.status, res.error_code) == (422, "unknown_template")
    assert res.body["error"]["details"][0]["loc"] == ["template_ids", 1]
    bad: list[dict[str, Any]] = [{}, {"template_ids": []}, {"template_ids": ["a b"]}]
    for body in [*bad, {"template_ids": "x"}, {"template_ids": [DECIDED], "extra": 1}]:
        assert (await mp.post("/api/v1/me/subscriptions", body)).status == 422, body
    logical = await mp.post("/api/v1/me/subscriptions", {"template_ids": ["filing_decided"]})
    assert logical.status == 422  # WeChat template ids only, as wx.requestSubscribeMessage
    ok = await mp.post("/api/v1/me/subscriptions", {"template_ids": [DECIDED]})
    assert ok.status == 200


async def _restart(emulator: Emulator) -> HTTPServer:
    """The same emulator (same state, same port) back up."""
    server = HTTPServer(make_emulator_app(emulator.state))
    server.listen(emulator.port, "127.0.0.1")
    return server


@pytest.mark.gen_test(timeout=30)
async def test_wechat_down_is_retried_with_backoff_then_sent(
    litigant: Litigant, services: Services, db: Database, clock: FixedClock, emulator: Emulator
) -> None:
    mp = await litigant()
    await mp.accept_subscriptions([DECIDED])
    await emulator.stop()
    await decided(services, uid(mp))
    worker = services.outbox
    for attempt, wait in ((1, 30), (2, 60)):
        assert await worker.run_once() == 1
        [item] = await outbox_items(db, uid(mp))
        assert (item["status"], item["attempts"]) == ("pending", attempt)
        assert item["next_attempt_at"] == clock.now() + dt.timedelta(seconds=wait)
        assert item["last_error"].startswith("None")  # unreachable
        assert await worker.run_once() == 0  # not due yet
        clock.advance(seconds=wait)
    assert await quota(db, uid(mp)) == 0  # taken once, before the first try
    server = await _restart(emulator)
    try:
        assert await worker.run_once() == 1
    finally:
        server.stop()
    [item] = await outbox_items(db, uid(mp))
    assert (item["status"], item["attempts"]) == ("sent", 3)
    assert len(emulator.state.messages_for(mp.openid)) == 1
    assert await quota(db, uid(mp)) == 0


@pytest.mark.gen_test(timeout=30)
async def test_wechat_down_fails_after_max_attempts_and_gives_the_quota_back(
    litigant: Litigant,
    services: Services,
    db: Database,
    clock: FixedClock,
    emulator: Emulator,
    settings: Settings,
) -> None:
    mp = await litigant()
    await mp.accept_subscriptions([DECIDED])
    await emulator.stop()
    await decided(services, uid(mp))
    config = settings.notifications.model_copy(update={"max_attempts": 2})
    worker = OutboxWorker(db, config, services.wechat, clock)
    assert await worker.run_once() == 1
    clock.advance(seconds=30)
    assert await worker.run_once() == 1
    [item] = await outbox_items(db, uid(mp))
    assert (item["status"], item["attempts"]) == ("failed", 2)
    assert await quota(db, uid(mp)) == 1  # never delivered: the grant is still good
    clock.advance(days=1)
    assert await worker.run_once() == 0


@pytest.mark.gen_test(timeout=30)
async def test_two_workers_send_each_item_exactly_once(
    litigant: Litigant, services: Services, other_app: Application, db: Database
) -> None:
    mp = await litigant()
    for _ in range(12):
        await mp.accept_subscriptions([DECIDED])
    other: Services = other_app.settings["services"]
    for n in range(6):
        await decided(services, uid(mp), title=f"通知{n}")
    done = await asyncio.gather(services.outbox.run_once(), other.outbox.run_once())
    assert sorted(done) == [0, 6]  # the lease: one process works the outbox at a time
    # Without the lease (or with a lease that expired mid-batch) the item claims still hold.
    for n in range(6, 12):
        await decided(other, uid(mp), title=f"通知{n}")
    done = await asyncio.gather(services.outbox.drain(12), other.outbox.drain(12))
    assert sum(done) == 6
    titles = [m["data"]["thing1"]["value"] for m in await mp.subscribe_messages()]
    assert sorted(titles) == sorted(f"通知{n}" for n in range(12))
    assert await quota(db, uid(mp)) == 0


@pytest.mark.gen_test(timeout=30)
async def test_the_lease_passes_on_when_released_or_expired(
    litigant: Litigant, services: Services, other_app: Application, clock: FixedClock
) -> None:
    mp = await litigant()
    for _ in range(3):
        await mp.accept_subscriptions([DECIDED])
    other: Services = other_app.settings["services"]
    await decided(services, uid(mp), title="一")
    assert await services.outbox.run_once() == 1
    await decided(services, uid(mp), title="二")
    assert await other.outbox.run_once() == 0  # the first worker holds the lease
    clock.advance(seconds=31)
    assert await other.outbox.run_once() == 1  # expired: taken over
    await decided(services, uid(mp), title="三")
    await other.outbox.lease.release()
    assert await services.outbox.run_once() == 1


@pytest.mark.gen_test(timeout=30)
async def test_an_item_stuck_in_sending_is_taken_up_again(
    litigant: Litigant, services: Services, db: Database, clock: FixedClock
) -> None:
    mp = await litigant()
    await mp.accept_subscriptions([DECIDED])
    await decided(services, uid(mp))
    until = clock.now() + dt.timedelta(seconds=60)
    await db["outbox"].update_many(  # a worker claimed it and died
        {}, {"$set": {"status": "sending", "claimed_by": "dead", "next_attempt_at": until}}
    )
    assert await services.outbox.run_once() == 0
    clock.advance(seconds=61)
    assert await services.outbox.run_once() == 1
    [item] = await outbox_items(db, uid(mp))
    assert item["status"] == "sent" and len(await mp.subscribe_messages()) == 1


@pytest.mark.gen_test(timeout=30)
async def test_the_background_worker_sends_soon_after_notify(
    litigant: Litigant, services: Services, db: Database
) -> None:
    mp = await litigant()
    await mp.accept_subscriptions([DECIDED])
    services.outbox.start()
    try:
        await decided(services, uid(mp))
        await until(mp.subscribe_messages)
    finally:
        await services.outbox.stop()
    assert len(await mp.subscribe_messages()) == 1
    lease = await db["leases"].find_one({"_id": "outbox"})
    assert lease is not None and lease["expires_at"] < services.clock.now()  # released


# ---- templates and configuration


def test_keyword_values_fit_wechat_limits() -> None:
    assert keyword_value("thing1", "一" * 30) == "一" * 19 + "…"
    assert keyword_value("thing2", "第一行\n第二行") == "第一行 第二行"
    assert keyword_value("phrase3", "已受理 accepted") == "已受理"
    # WeChat's character_string takes <= 32 letters, digits and symbols: a 案号 is refused
    # whole rather than sent without its characters (a different-looking case number) ...
    with pytest.raises(ValueError):
        keyword_value("character_string4", "（2026）京0105民初1号 A-1")
    assert keyword_value("character_string4", "WO-2026-000123") == "WO-2026-000123"
    # ... and a thing keyword (<= 20 characters of any kind) keeps it whole
    assert keyword_value("thing4", "（2026）京0105民初1号") == "（2026）京0105民初1号"
    assert keyword_value("time5", dt.datetime(2026, 1, 1, 16, 30, tzinfo=dt.UTC)) == (
        "2026-01-02 00:30"
    )
    assert keyword_value("date6", "2026-03-01T20:00:00+00:00") == "2026-03-02"
    assert keyword_value("amount7", "50.00元") == "50.00元"
    with pytest.raises(ValueError):
        keyword_value("number8", "五十")
    with pytest.raises(ValueError):
        keyword_value("phrase9", "accepted")


@pytest.mark.gen_test
async def test_a_template_that_cannot_be_filled_costs_the_push_only(
    litigant: Litigant, services: Services, db: Database, clock: FixedClock
) -> None:
    mp = await litigant()
    await services.notifications.notify([uid(mp)], "x", "标题", "内容", template="no_such")
    due = {"template_id": "dev-due", "fields": {"thing1": "title", "time2": "data.due_at"}}
    configured = load_settings(notifications={"templates": {"due": due}})
    service = NotificationService(db, configured, clock)
    await SubscriptionStore(db).grant(uid(mp), ["dev-due"], clock.now())  # not ours to accept
    await service.notify([uid(mp)], "fee_due", "缴费提醒", "请缴纳诉讼费", template="due")
    assert await db["inbox"].count_documents({"user_id": uid(mp)}) == 2
    assert await db["outbox"].count_documents({}) == 0
    when = dt.datetime(2026, 11, 30, 15, 59, tzinfo=dt.UTC)
    await service.notify(
        [uid(mp)], "fee_due", "缴费提醒", "请缴纳", template="due", data={"due_at": when}
    )
    [item] = await outbox_items(db, uid(mp))
    assert item["data"] == {"thing1": {"value": "缴费提醒"}, "time2": {"value": "2026-11-30 23:59"}}
    caller = await services.users.get(uid(mp))
    [notice] = (await services.notifications.list_for(caller, NotificationQuery())).items[:1]
    assert notice.data == {"due_at": when.replace(tzinfo=dt.UTC)}


@pytest.mark.parametrize(
    ("templates", "named"),
    [
        ({"t": {"template_id": "a", "fields": {"bogus": "title"}}}, "WeChat keyword"),
        ({"t": {"template_id": "a", "fields": {"thing1": "nowhere"}}}, "source must be"),
        ({"t": {"template_id": "a b", "fields": {"thing1": "title"}}}, "template_id"),
        (
            {
                "t": {"template_id": "a", "fields": {"thing1": "title"}},
                "u": {"template_id": "a", "fields": {"thing1": "body"}},
            },
            "unique",
        ),
    ],
)
def test_bad_templates_are_refused_at_start_up(templates: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(notifications={"templates": templates})
