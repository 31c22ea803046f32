"""Messages to the court (联系法官): from a party's message to its answer, closing and rating;
bad input; who sees and answers what; numbers; retries."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable
from typing import Any

import pytest
from bson import ObjectId

from miniapp_stubs.client import ApiSession, Response, StaffConsole
from miniapp_stubs.emulator import Emulator
from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import (
    STAFF_PASSWORD,
    Litigant,
    Staff,
    accepted,
    assigned_case,
    at,
    desk_message,
    error,
    iso,
    kinds,
    lawyer_case,
    next_kind,
    open_feed,
    plaintiff,
    relogin,
    uid,
    upload,
    written,
)

TEMPLATE = "dev-tmpl-workorder-update"  # config.yaml notifications.templates.workorder_update
NUMBER = re.compile(r"^GD2026京0105-\d{6}$")


async def risky(emulator: Emulator, *words: str) -> None:
    """Words WeChat's content check flags from now on."""
    res = await ApiSession(emulator.url).post("/_emulator/content/risky-words", {"words": words})
    assert res.status == 200, res.body


async def footprint(services: Services) -> tuple[int, int, int, int]:
    """Orders, counters, inbox notices and audit rows: to prove nothing half written."""
    db = services.db
    return (
        await db["workorders"].count_documents({}),
        await db["counters"].count_documents({"_id": {"$regex": "^workorder_no"}}),
        await db["inbox"].count_documents({}),
        await db["audit"].count_documents({"action": {"$regex": "^workorder"}}),
    )


@pytest.mark.gen_test(timeout=120)
async def test_a_message_from_case_to_rating(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    client = await plaintiff(litigant)
    clerk, judge = await staff("clerk"), await staff("judge")
    case_id, case_no = await assigned_case(client, clerk, judge)
    granted = await client.accept_subscriptions([TEMPLATE])
    assert granted.status == 200, granted.body
    services.feed.start()
    await asyncio.wait_for(services.feed.ready.wait(), 10)
    try:
        judge_feed = await open_feed(judge)
        photo = await upload(client, "缴费凭证.pdf")
        sent = await written(client, case_id=case_id, category="庭审安排", attachments=[photo])
        assert await next_kind(judge_feed) == "workorder_new"  # live, at once
        judge_feed.close()
    finally:
        await services.feed.stop()

    oid = sent["id"]
    assert NUMBER.fullmatch(sent["no"]) and sent["no"].endswith("-000001"), sent["no"]
    assert (sent["case_id"], sent["case_no"], sent["court_id"]) == (case_id, case_no, "bj-chaoyang")
    assert (sent["status"], sent["status_name"]) == ("assigned", "待答复")
    assert sent["assignee"] == {"id": None, "name": "李四"}  # the judge, by name only
    # Monday 10:00: assigned at once; first reply within 1 working day (7 working hours:
    # Monday 10-12 and 13:30-17:30, Tuesday 9-10), closed within 5 working days
    assert sent["first_reply_due_at"] == iso(at(24, 10))
    assert sent["close_due_at"] == iso(at(30, 10))
    assert sent["overdue"] is False and sent["escalation_level"] == 0
    assert [e["side"] for e in sent["thread"]] == ["sender"]
    assert sent["attachments"] == [photo] and sent["sender_id"] is None

    mine = (await judge.workorders()).body["items"]
    assert [(o["id"], o["assignee"]["id"]) for o in mine] == [(oid, uid(judge))]
    assert (await judge.download(photo)).status == 200  # the court may read the attachment
    assert "workorder_new" in await kinds(judge)

    clock.set(at(23, 10, 30))
    answer = await judge.reply_message(
        oid, "已排期，定于12月1日上午开庭。", idempotency_key="reply-1-abcdef"
    )
    assert answer.status == 201, answer.body
    again = await judge.reply_message(
        oid, "已排期，定于12月1日上午开庭。", idempotency_key="reply-1-abcdef"
    )
    assert again.headers.get("Idempotent-Replayed") == "true" and again.body == answer.body
    assert answer.body["status"] == "replied" and answer.body["first_replied_at"] == iso(
        at(23, 10, 30)
    )
    assert [e["side"] for e in answer.body["thread"]] == ["sender", "court"]
    assert answer.body["sender_name"] == "张三"  # staff see who wrote
    assert "workorder_replied" in await kinds(client)
    assert await services.outbox.run_once() >= 1
    pushed = [m for m in await client.subscribe_messages() if m["template_id"] == TEMPLATE]
    assert len(pushed) == 1 and pushed[0]["data"]["thing1"]["value"] == "法院已答复您的留言"

    follow = await client.reply_message(oid, "能否改为线上开庭？")
    assert follow.status == 201 and follow.body["status"] == "assigned", follow.body
    assert "workorder_followup" in await kinds(judge)
    early = await client.rate_message(oid, 5)
    assert error(early) == (409, "workorder_not_closed")
    assert error(await judge.close_workorder(oid)) == (409, "workorder_not_replied")
    assert (await judge.reply_message(oid, "可以，已为您改为线上开庭。")).status == 201
    closed = await judge.close_workorder(oid, "已答复当事人")
    assert closed.status == 200 and closed.body["status"] == "closed", closed.body
    assert closed.body["first_replied_at"] == iso(at(23, 10, 30))  # the first answer counts
    assert error(await judge.close_workorder(oid)) == (409, "workorder_closed")
    assert error(await client.reply_message(oid, "谢谢")) == (409, "workorder_closed")
    assert error(await judge.reply_message(oid, "补充")) == (409, "workorder_closed")
    assert "workorder_closed" in await kinds(client)

    rated = await client.rate_message(oid, 5, "答复及时")
    assert rated.status == 200 and rated.body["rating"]["score"] == 5, rated.body
    assert error(await client.rate_message(oid, 4)) == (409, "already_rated")
    listed = (await client.my_messages()).body["items"]
    assert [(m["id"], m["status"], m["rated"], m["replied"]) for m in listed] == [
        (oid, "closed", True, True)
    ]
    thread = (await client.message(oid)).body
    assert [e["side"] for e in thread["thread"]] == ["sender", "court", "sender", "court"]
    assert all(e["by"] is None for e in thread["thread"])  # staff ids stay with staff
    assert thread["thread"][1]["name"] == "李四"
    actions = await services.db["audit"].distinct("action", {"target": oid})
    assert {"workorder.reply", "workorder.close"} <= set(actions)


@pytest.mark.gen_test(timeout=120)
async def test_bad_messages_are_refused_and_nothing_is_written(
    litigant: Litigant, staff: Staff, services: Services, emulator: Emulator
) -> None:
    client, stranger = await plaintiff(litigant), await litigant()
    clerk, judge = await staff("clerk"), await staff("judge")
    case_id, _ = await assigned_case(client, clerk, judge)
    theirs = await upload(stranger, "别人的.pdf")
    await risky(emulator, "赌博")
    before = await footprint(services)
    bad: list[tuple[dict[str, Any], int, str]] = [
        ({"category": "进度查询", "content": "", "case_id": case_id}, 422, "validation_failed"),
        ({"category": "进度查询", "content": "   ", "case_id": case_id}, 422, "validation_failed"),
        (
            {"category": "进度查询", "content": "长" * 1001, "case_id": case_id},
            422,
            "validation_failed",
        ),
        ({"category": "催办", "content": "请问进度", "case_id": case_id}, 422, "validation_failed"),
        ({"category": "其他", "content": "请问进度"}, 422, "validation_failed"),  # no case or court
        ({"category": "其他", "content": "请问", "court_id": "nowhere"}, 422, "unknown_court"),
        (
            {"category": "其他", "content": "请问", "case_id": case_id, "court_id": "sh-pudong"},
            422,
            "unknown_court",
        ),
        (
            {"category": "其他", "content": "请问", "case_id": str(ObjectId())},
            404,
            "case_not_found",
        ),
        ({"category": "其他", "content": "请问", "case_id": "nope"}, 422, "validation_failed"),
        (
            {"category": "其他", "content": "请问", "case_id": case_id, "attachments": [theirs]},
            422,
            "file_not_owned",
        ),
        (
            {"category": "其他", "content": "你们这里能赌博吗", "case_id": case_id},
            422,
            "content_flagged",
        ),
        (
            {"category": "其他", "content": "请问", "case_id": case_id, "extra": 1},
            422,
            "validation_failed",
        ),
        ({"category": "其他", "content": "请\x00问", "case_id": case_id}, 422, "validation_failed"),
    ]
    for body, status, code in bad:
        res = await client.post("/api/v1/messages", body)
        assert error(res) == (status, code), (body, res.body)
        assert res.body["error"]["message"], res.body
    flagged = await client.post(
        "/api/v1/messages", {"category": "其他", "content": "赌博", "case_id": case_id}
    )
    assert flagged.body["error"]["message"] == "内容含有违法违规信息，请修改后再发送"
    # the case is not the stranger's: the same 404 as a case that does not exist
    res = await stranger.send_message("请问进度", case_id=case_id)
    assert error(res) == (404, "case_not_found")
    # the checks run at once, their errors in one order: the case, the files, the content
    services.messages.limiter.limit += 2  # these two count as the others do
    for body, code in (
        ({"content": "赌博", "case_id": str(ObjectId())}, "case_not_found"),
        ({"content": "赌博", "case_id": case_id, "attachments": [theirs]}, "file_not_owned"),
    ):
        res = await client.post("/api/v1/messages", {"category": "其他", **body})
        assert error(res)[1] == code, res.body
    staff_try = await clerk.post(
        "/api/v1/messages", {"category": "其他", "content": "请问", "court_id": "bj-chaoyang"}
    )
    assert error(staff_try) == (403, "role_not_allowed")
    assert (await client.post("/api/v1/messages", raw=b"{")).status == 400
    assert await footprint(services) == before

    oid = str((await written(client, case_id=case_id))["id"])
    before = await footprint(services)
    for content, status, code in (
        ("", 422, "validation_failed"),
        ("想赌博", 422, "content_flagged"),
    ):
        assert error(await client.reply_message(oid, content)) == (status, code)
    assert error(await client.reply_message(oid, "看", [theirs])) == (422, "file_not_owned")
    assert error(await stranger.reply_message(oid, "插一句")) == (404, "workorder_not_found")
    for score in (0, 6, "5", None):
        res = await client.post(f"/api/v1/messages/{oid}/rating", {"score": score})
        assert error(res) == (422, "validation_failed"), res.body
    assert await footprint(services) == before


@pytest.mark.gen_test(timeout=120)
async def test_the_service_desk_and_who_sees_and_answers_what(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    client, other = await plaintiff(litigant), await litigant()
    clerk, judge = await staff("clerk"), await staff("judge")
    colleague = await staff("judge")  # same court, nothing to do with the case
    head = await staff("judge", supervisor=True)
    far_clerk = await staff("clerk", court_id="sh-pudong", supervisor=True)
    case_id, _ = await assigned_case(client, clerk, judge)
    on_case = str((await written(client, case_id=case_id))["id"])
    desk = await desk_message(other)

    mine = await other.message(desk)
    assert mine.body["status"] == "pending" and mine.body["assignee"] is None
    assert mine.body["assign_due_at"] == iso(at(23, 11))  # within 1 working hour
    assert "workorder_new" in await kinds(head)  # the desk's message goes to supervisors
    assert "workorder_new" not in await kinds(colleague)
    # who sees what: 404 for everyone else
    assert error(await client.message(desk)) == (404, "workorder_not_found")
    assert error(await other.message(on_case)) == (404, "workorder_not_found")
    assert error(await colleague.message(on_case)) == (404, "workorder_not_found")
    assert error(await far_clerk.message(desk)) == (404, "workorder_not_found")
    assert (await clerk.message(on_case)).status == 200  # the case's clerk follows it
    assert (await colleague.workorders()).body["items"] == []
    court = [o["id"] for o in (await head.workorders()).body["items"]]
    assert court == [desk, on_case]
    assert [o["id"] for o in (await head.workorders(status="pending")).body["items"]] == [desk]
    assert (await far_clerk.workorders()).body["items"] == []
    # the case's clerk may read but not answer; only supervisors assign
    assert error(await clerk.reply_message(on_case, "收到")) == (403, "not_assignee")
    assert error(await clerk.close_workorder(on_case)) == (403, "not_assignee")
    assert error(await judge.assign_workorder(on_case, uid(clerk))) == (403, "not_supervisor")
    res = await colleague.assign_workorder(desk, uid(colleague))
    assert error(res) == (404, "workorder_not_found")
    res = await far_clerk.assign_workorder(desk, uid(far_clerk))
    assert error(res) == (404, "workorder_not_found")

    before = await footprint(services)
    for target in (uid(far_clerk), uid(client), str(ObjectId())):
        res = await head.assign_workorder(desk, target)
        assert error(res) == (422, "invalid_assignee"), res.body
    res = await head.post(f"/api/v1/workorders/{desk}/assign", {"assignee_id": "x"})
    assert error(res) == (422, "validation_failed")
    assert await footprint(services) == before
    assigned = await head.assign_workorder(desk, uid(colleague), "请及时答复")
    assert assigned.status == 200 and assigned.body["status"] == "assigned", assigned.body
    assert assigned.body["assignee"] == {"id": uid(colleague), "name": "李四"}
    assert "workorder_assigned" in await kinds(colleague)
    assert [o["id"] for o in (await colleague.workorders()).body["items"]] == [desk]
    same = await head.assign_workorder(desk, uid(colleague))  # already theirs: no news
    assert same.status == 200 and (await kinds(colleague)).count("workorder_assigned") == 1
    assert error(await colleague.reply_message(on_case, "越权")) == (404, "workorder_not_found")
    assert (await colleague.reply_message(desk, "可以申请缓交，请提交申请书。")).status == 201
    # a supervisor answers an order nobody holds and takes it
    third = await desk_message(other, "立案窗口几点开门？", category="其他")
    taken = await head.reply_message(third, "上午九点。")
    assert taken.status == 201 and taken.body["assignee"]["id"] == uid(head), taken.body
    assert (await head.close_workorder(desk)).status == 200  # supervisors close any
    assert error(await head.assign_workorder(desk, uid(judge))) == (409, "workorder_closed")
    seen = (await head.message(desk)).body
    assert [e["side"] for e in seen["thread"]] == ["sender", "court"]
    actions = await services.db["audit"].distinct("action", {"target": desk})
    assert {"workorder.assign", "workorder.reply", "workorder.close", "workorder.read"} <= set(
        actions
    )


@pytest.mark.gen_test(timeout=120)
async def test_numbers_count_per_court_and_year_without_gaps_or_repeats(
    litigant: Litigant, services: Services, clock: FixedClock, emulator: Emulator
) -> None:
    client = await litigant()
    services.messages.limiter.limit = 11  # the eight, the refused one, two more; then 429

    def send(i: int) -> Awaitable[Response]:
        key = f"wo-numbers-{i:04d}"
        return client.send_message(f"问题{i}", "其他", court_id="bj-chaoyang", idempotency_key=key)

    results = await asyncio.gather(*map(send, range(8)))  # written in groups (Counters.group)
    assert [r.status for r in results] == [201] * 8, [r.body for r in results]
    numbers = sorted(r.body["no"] for r in results)
    assert numbers == [f"GD2026京0105-{i:06d}" for i in range(1, 9)]
    for r in results:  # each answer is what is stored, and its key replays it
        stored = await services.db["workorders"].find_one({"no": r.body["no"]})
        assert stored is not None and str(stored["_id"]) == r.body["id"]
    replays = await asyncio.gather(*map(send, range(8)))
    assert [(r.status, r.body) for r in replays] == [(201, r.body) for r in results]
    await risky(emulator, "违禁")
    assert (await client.send_message("违禁内容", "其他", court_id="bj-chaoyang")).status == 422
    far = await client.send_message("浦东的问题", "其他", court_id="sh-pudong")
    assert far.body["no"] == "GD2026沪0115-000001"  # each court counts on its own
    next_one = await client.send_message("再问", "其他", court_id="bj-chaoyang")
    assert next_one.body["no"] == "GD2026京0105-000009"  # the refused one took no number
    res = await client.send_message("太多了", "其他", court_id="bj-chaoyang")
    assert error(res) == (429, "rate_limited")
    services.messages.limiter.limit = 100
    clock.set(dt.datetime(2027, 1, 4, 2, 0, tzinfo=dt.UTC))  # Monday 4 January 2027
    assert (await client.login()).status == 200  # a week's session has run out
    new_year = await client.send_message("新年第一问", "其他", court_id="bj-chaoyang")
    assert new_year.status == 201 and new_year.body["no"] == "GD2027京0105-000001", new_year.body


@pytest.mark.gen_test(timeout=120)
async def test_a_flood_is_refused_before_wechat_is_asked(
    litigant: Litigant, services: Services, emulator: Emulator
) -> None:
    client = await litigant()
    services.messages.limiter.limit = 2

    def send(text: str) -> Awaitable[Response]:
        return client.send_message(text, "其他", court_id="bj-chaoyang")

    assert [(await send(f"第{i}条")).status for i in range(2)] == [201, 201]
    assert error(await send("第三条")) == (429, "rate_limited")  # counted: now known over
    # WeChat's next content check answers "too long": a refused message must not use it up
    emulator.state.add_faults("msg_sec_check", [45002])
    for _ in range(3):
        res = await send("还想再问")
        assert error(res) == (429, "rate_limited")
        assert 0 < res.body["error"]["details"]["retry_after_seconds"] <= 60
    services.messages.limiter.limit = 100
    assert error(await send("窗口内再问")) == (422, "content_too_long")  # the fault, still there
    assert (await send("窗口内再问")).status == 201


@pytest.mark.gen_test(timeout=120)
async def test_a_retried_message_is_one_message(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    client = await litigant()
    head = await staff("clerk", supervisor=True)
    first, second = await asyncio.gather(
        client.send_message("同一条", court_id="bj-chaoyang", idempotency_key="msg-key-00001"),
        client.send_message("同一条", court_id="bj-chaoyang", idempotency_key="msg-key-00001"),
    )
    statuses = sorted([first.status, second.status])
    assert statuses in ([201, 201], [201, 409]), (first.body, second.body)
    again = await client.send_message(
        "同一条", court_id="bj-chaoyang", idempotency_key="msg-key-00001"
    )
    assert again.status == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert await services.db["workorders"].count_documents({}) == 1
    assert (await kinds(head)).count("workorder_new") == 1
    reused = await client.send_message(
        "另一条", court_id="bj-chaoyang", idempotency_key="msg-key-00001"
    )
    assert error(reused) == (422, "idempotency_key_reused")


@pytest.mark.gen_test(timeout=120)
async def test_a_case_message_goes_to_the_clerk_when_configured_or_no_judge_yet(
    litigant: Litigant, staff: Staff, services: Services
) -> None:

    client = await plaintiff(litigant)
    clerk, judge, head = (
        await staff("clerk"),
        await staff("judge"),
        await staff("judge", supervisor=True),
    )
    unassigned, _ = await accepted(client, clerk)  # accepted, no judge named yet
    desk = await written(client, case_id=unassigned)
    assert desk["status"] == "pending" and desk["assignee"] is None
    case_id, _ = await assigned_case(client, clerk, judge)
    services.settings.court("bj-chaoyang").deadlines.workorder.route_to = "clerk"  # type: ignore[union-attr]
    to_clerk = await written(client, case_id=case_id)
    assert to_clerk["assignee"]["name"] == "李四" and to_clerk["status"] == "assigned"
    raw = await services.db["workorders"].find_one({"_id": ObjectId(to_clerk["id"])})
    assert raw is not None and raw["assignee_id"] == uid(clerk)
    assert sorted(raw["case_staff_ids"]) == sorted([uid(clerk), uid(judge)])
    # the judge of the case follows it too, and sees it in the list
    assert [o["id"] for o in (await judge.workorders()).body["items"]] == [to_clerk["id"]]
    assert {o["id"] for o in (await head.workorders()).body["items"]} == {
        desk["id"],
        to_clerk["id"],
    }
    await relogin(clerk)


@pytest.mark.gen_test(timeout=120)
async def test_lists_are_paged_and_filtered(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    client = await litigant()
    supervisor, judge = await staff("clerk", supervisor=True), await staff("judge")
    ids = [
        await desk_message(client, f"第{i}问", category=c)
        for i, c in enumerate(["执行", "投诉", "执行"])
    ]
    first = await client.my_messages(limit=2)
    assert [m["id"] for m in first.body["items"]] == ids[:0:-1]
    second = await client.my_messages(limit=2, cursor=first.body["next_cursor"])
    assert [m["id"] for m in second.body["items"]] == ids[:1] and second.body["next_cursor"] is None
    assert error(await client.my_messages(cursor="bad")) == (400, "invalid_cursor")
    assert error(await client.my_messages(status="done")) == (422, "validation_failed")
    assert error(await judge.get("/api/v1/messages")) == (403, "role_not_allowed")

    assert (await supervisor.assign_workorder(ids[0], uid(judge))).status == 200
    executions = await supervisor.workorders(category="执行")
    assert [o["id"] for o in executions.body["items"]] == [ids[2], ids[0]]
    theirs = await supervisor.workorders(assignee_id=uid(judge))
    assert [o["id"] for o in theirs.body["items"]] == [ids[0]]
    assert [
        o["id"] for o in (await judge.workorders(assignee_id=uid(supervisor))).body["items"]
    ] == []
    page = await supervisor.workorders(limit=1, status="pending")
    assert [o["id"] for o in page.body["items"]] == [ids[2]]
    rest = await supervisor.workorders(limit=1, status="pending", cursor=page.body["next_cursor"])
    assert [o["id"] for o in rest.body["items"]] == [ids[1]] and rest.body["next_cursor"] is None
    for bad in ({"category": "催办"}, {"overdue": "maybe"}, {"assignee_id": "x"}, {"limit": 0}):
        assert error(await supervisor.workorders(**bad)) == (422, "validation_failed"), bad
    # a follow-up on an order nobody holds yet goes to the supervisors, and stays pending
    follow = await client.reply_message(ids[1], "补充一点：已经超过一周了。")
    assert follow.status == 201 and follow.body["status"] == "pending"
    assert "workorder_followup" in await kinds(supervisor)
    # the court answers with a file: the sender may read it
    letter = await upload(judge, "答复函.pdf")  # type: ignore[arg-type]
    answered = await judge.reply_message(ids[0], "详见附件。", [letter])
    assert answered.status == 201 and answered.body["thread"][-1]["attachments"] == [letter]
    assert (await client.download(letter)).status == 200
    stranger = await litigant()
    assert (await stranger.download(letter)).status == 404
    res = await judge.reply_message(ids[0], "再附", [str(ObjectId())])
    assert error(res) == (422, "file_not_owned")
    res = await judge.post(f"/api/v1/messages/{ids[0]}/replies", {})
    assert error(res) == (422, "validation_failed")


@pytest.mark.gen_test(timeout=60)
async def test_nothing_is_stored_while_the_content_check_is_down(
    litigant: Litigant, services: Services, settings: Any
) -> None:
    from server.wechat.miniprogram import WeChatAdapter

    client = await litigant()
    down = WeChatAdapter(settings.wechat.appid, "secret", "http://127.0.0.1:9", 1.0)
    services.messages.wechat = down
    try:
        res = await client.send_message("请问进度", court_id="bj-chaoyang")
        assert error(res) == (503, "content_check_unavailable"), res.body
        assert await services.db["workorders"].count_documents({}) == 0
    finally:
        await down.aclose()


@pytest.mark.gen_test(timeout=120)
async def test_a_lawyer_writes_on_a_case_filed_for_a_client(
    litigant: Litigant, staff: Staff, services: Services
) -> None:

    client, lawyer = await plaintiff(litigant), await litigant(name="周律师")
    clerk, judge = await staff("clerk"), await staff("judge")
    case_id = await lawyer_case(lawyer, clerk, await staff("admin", court_id=None))
    assert (await clerk.assign_case(case_id, uid(judge), uid(clerk))).status == 200
    sent = await written(lawyer, "申请调取证据", case_id=case_id, category="证据材料")
    assert sent["assignee"]["name"] == "李四" and sent["status"] == "assigned"
    assert (await lawyer.message(sent["id"])).status == 200
    assert error(await client.message(sent["id"])) == (404, "workorder_not_found")  # the sender's
    assert (await judge.message(sent["id"])).body["sender_name"] == "周律师"


@pytest.mark.gen_test(timeout=120)
async def test_supervisors_and_division_heads_are_made_by_the_admin(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:

    admin = await staff("admin", court_id="bj-chaoyang")
    made = {}
    for username, flags in (
        ("wang.dc", {"supervisor": True}),
        ("zhao.tz", {"division_head": True}),
    ):
        res = await admin.create_staff(
            username=username,
            password=STAFF_PASSWORD,
            name="王督办",
            role="judge",
            court_id="bj-chaoyang",
            **flags,
        )
        assert res.status == 201, res.body
        assert (res.body["supervisor"], res.body["division_head"]) == (
            flags.get("supervisor", False),
            flags.get("division_head", False),
        )
        console = StaffConsole(admin.api_url)
        assert (await console.login(username, STAFF_PASSWORD)).status == 200
        made[username] = console
    bad = await admin.post(
        "/api/v1/admin/staff",
        {
            "username": "li.x",
            "password": STAFF_PASSWORD,
            "name": "李某",
            "role": "clerk",
            "court_id": "bj-chaoyang",
            "division_head": "yes",
        },
    )
    assert error(bad) == (422, "validation_failed")
    desk = await desk_message(await litigant())
    supervisor, head = made["wang.dc"], made["zhao.tz"]
    assert "workorder_new" in await kinds(supervisor)
    assert "workorder_new" not in await kinds(head)  # the desk's news goes to supervisors
    assert [o["id"] for o in (await head.workorders()).body["items"]] == [desk]  # sees it
    clock.set(at(23, 12))  # both steps of the assignment deadline
    assert await services.workorder_sweep.sweep() == 2
    await relogin(supervisor, head)
    assert (await kinds(supervisor)).count("workorder_escalated") == 1
    assert (await kinds(head)).count("workorder_escalated") == 1
