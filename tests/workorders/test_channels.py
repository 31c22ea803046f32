"""Every channel, one work order (1+N): the service desk opens orders for callers; answers go
out by SMS (Tencent Cloud SMS, emulated) and count once delivered or once a call-back reached
the caller; escalation and statistics as for mini-program messages."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest

from miniapp_stubs.client import ApiSession, MiniProgram, Response, StaffConsole
from miniapp_stubs.emulator import Emulator
from models.workorders import CallbackIn, DeskOrderCreate
from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import (
    STAFF_PASSWORD,
    Litigant,
    Staff,
    assigned_case,
    at,
    desk_message,
    error,
    iso,
    kinds,
    plaintiff,
    relogin,
    uid,
)
from tests.waiting import until

NUMBER = re.compile(r"^GD2026京0105-\d{6}$")
LINK = re.compile(r"/w/([A-Za-z0-9_-]+)$")
CALLER = {"name": "王五", "phone": "13912345678"}


@pytest.fixture
def sms(emulator: Emulator, api_url: str, clock: FixedClock) -> Emulator:
    """The SMS emulator on the test clock, posting its receipts to this test's server."""
    emulator.sms.clock = lambda: clock.now().timestamp()
    emulator.sms.callback_url = f"{api_url}/api/v1/sms/status-callback"
    return emulator


def desk_body(**over: Any) -> dict[str, Any]:
    body = {
        "channel": "hotline_12368",
        "caller": dict(CALLER),
        "category": "庭审安排",
        "content": "来电人询问开庭时间，请承办法官答复。",
    }
    return {**body, **over}


async def open_order(desk: StaffConsole, key: str | None = None, **over: Any) -> Response:
    headers = {"Idempotency-Key": key} if key else None
    return await desk.post("/api/v1/workorders", desk_body(**over), headers=headers)


async def sent_to(emulator: Emulator, phone: str) -> list[dict[str, Any]]:
    res = await ApiSession(emulator.url).get(f"/_emulator/sms?phone={phone}")
    assert res.status == 200, res.body
    return list(res.body["messages"])


async def detail(session: ApiSession, order_id: str) -> dict[str, Any]:
    res = await session.get(f"/api/v1/messages/{order_id}")
    assert res.status == 200, res.body
    return dict(res.body)


async def callback(session: ApiSession, order_id: str, result: str, **kw: Any) -> Response:
    body = {"result": result, **kw}
    return await session.post(f"/api/v1/workorders/{order_id}/callbacks", body)


@pytest.mark.gen_test(timeout=120)
async def test_a_hotline_call_from_order_to_sms_answer_call_back_closing_and_rating(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock, sms: Emulator
) -> None:
    client = await plaintiff(litigant)
    clerk, judge = await staff("clerk"), await staff("judge")
    desk = await staff("clerk", service_desk=True)
    case_id, case_no = await assigned_case(client, clerk, judge)
    code = (await client.case(case_id)).body["query_code"]

    made = await open_order(desk, "call-0001-abcdef", case_no=case_no, query_code=code)
    assert made.status == 201, made.body
    again = await open_order(desk, "call-0001-abcdef", case_no=case_no, query_code=code)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.body == made.body
    order = made.body
    oid = order["id"]
    assert NUMBER.fullmatch(order["no"]) and order["channel"] == "hotline_12368"
    assert (order["case_id"], order["case_no"], order["status"]) == (case_id, case_no, "assigned")
    assert order["assignee"]["id"] == uid(judge)  # routed to the case's judge, as a message
    assert order["first_reply_due_at"] == iso(at(24, 10))  # one working day, as a message
    assert order["caller_phone"] == CALLER["phone"] and order["sender_name"] == "王五"
    assert await services.db["workorders"].count_documents({}) == 1  # the retry made none
    assert "workorder_new" in await kinds(judge)

    clock.set(at(23, 10, 30))
    answer = await judge.reply_message(oid, "定于12月1日上午9时开庭。")
    assert answer.status == 201, answer.body
    assert answer.body["status"] == "replied" and answer.body["answered"] is False
    assert answer.body["first_replied_at"] is None  # not until it reaches the caller
    assert [(m["purpose"], m["status"]) for m in answer.body["sms"]] == [
        ("workorder_replied", "queued")
    ]
    assert error(await judge.close_workorder(oid)) == (409, "workorder_not_answered")
    assert await sent_to(sms, CALLER["phone"]) == []  # never inline: the outbox sends it

    clock.set(at(23, 10, 31))
    assert await services.outbox.run_once() >= 1
    (text,) = await sent_to(sms, CALLER["phone"])
    assert order["no"] in text["content"] and text["content"].startswith("【微法院】")
    token = LINK.search(text["content"])
    assert token is not None and text["params"] == [order["no"], token.group(1)]

    async def delivered() -> dict[str, Any] | None:
        found = await detail(judge, oid)
        return found if found["sms"][0]["status"] == "delivered" else None

    answered = await until(delivered)
    assert answered["answered"] is True and answered["first_replied_at"] == iso(at(23, 10, 31))
    assert answered["sms"][0]["serial_no"] == text["serial_no"]
    assert await services.db["workorders"].count_documents({"first_reply_on_time": True}) == 1

    assert (await callback(desk, oid, "no_answer")).status == 201
    reached = await callback(desk, oid, "reached", note="来电人表示收到短信")
    assert reached.status == 201, reached.body
    assert [c["result"] for c in reached.body["callbacks"]] == ["no_answer", "reached"]
    assert error(await callback(desk, oid, "maybe")) == (422, "validation_failed")
    actions = await services.db["audit"].distinct("action", {"target": oid})
    assert {"workorder.open", "workorder.callback", "workorder.reply"} <= set(actions)

    closed = await judge.close_workorder(oid, "已短信答复并回访")
    assert closed.status == 200 and closed.body["status"] == "closed", closed.body
    assert await services.outbox.run_once() >= 1
    assert [m["template_id"] for m in await sent_to(sms, CALLER["phone"])] == [
        "2100001",
        "2100002",
    ]

    anyone = ApiSession(judge.api_url)
    seen = await anyone.get(f"/api/v1/links/{token.group(1)}")
    assert seen.status == 200 and seen.body["status"] == "closed", seen.body
    assert seen.body["caller_phone"] is None and seen.body["callbacks"] == []  # staff only
    rated = await anyone.post(f"/api/v1/links/{token.group(1)}/rating", {"score": 5})
    assert rated.status == 200 and rated.body["rating"]["score"] == 5, rated.body
    again_rated = await anyone.post(f"/api/v1/links/{token.group(1)}/rating", {"score": 1})
    assert error(again_rated) == (409, "already_rated")
    assert error(await anyone.get("/api/v1/links/notalink0000")) == (
        404,
        "workorder_link_not_found",
    )

    await the_caller_signs_in_and_sees_it(litigant, sms, oid)
    report = await desk_stats(clerk_supervisor=await staff("clerk", supervisor=True))
    hotline = next(r for r in report["rows"] if r["key"] == "hotline_12368")
    assert (hotline["name"], hotline["received"], hotline["answered"]) == ("12368热线", 1, 1)
    assert (hotline["called_back"], hotline["callback_rate"], hotline["on_time_rate"]) == (
        1,
        1.0,
        1.0,
    )
    assert hotline["median_first_reply_seconds"] == 31 * 60
    assert hotline["average_rating"] == 5.0


async def the_caller_signs_in_and_sees_it(litigant: Litigant, sms: Emulator, oid: str) -> None:
    """王五 signs in to the mini-program and taps getPhoneNumber: the order is his."""
    caller: MiniProgram = await litigant(name="王五")
    assert (await caller.my_messages()).body["items"] == []
    assert error(await caller.get(f"/api/v1/messages/{oid}")) == (404, "workorder_not_found")
    code = await ApiSession(sms.url).post(
        "/_emulator/wx/phone-code", {"openid": caller.openid, "phone": CALLER["phone"]}
    )
    assert code.status == 200, code.body
    bad = await caller.post("/api/v1/me/phone", {"code": "not-a-code"})
    assert error(bad) == (422, "invalid_phone_code")
    me = await caller.post("/api/v1/me/phone", {"code": code.body["code"]})
    assert me.status == 200 and me.body["phone_masked"] == "139****5678", me.body
    listed = (await caller.my_messages()).body["items"]
    assert [(m["id"], m["channel"], m["rated"]) for m in listed] == [(oid, "hotline_12368", True)]
    assert (await caller.get(f"/api/v1/messages/{oid}")).status == 200


async def desk_stats(clerk_supervisor: StaffConsole, **params: Any) -> dict[str, Any]:
    res = await clerk_supervisor.workorder_stats(
        "2026-11-01", "2026-11-30", group_by="channel", **params
    )
    assert res.status == 200, res.body
    return dict(res.body)


@pytest.mark.gen_test(timeout=120)
async def test_bad_desk_orders_and_refused_roles(
    litigant: Litigant, staff: Staff, services: Services, sms: Emulator
) -> None:
    desk = await staff("clerk", service_desk=True)
    for wrong, code in (
        ({"caller": {"name": "王五", "phone": "12345"}}, "validation_failed"),
        ({"caller": {"name": "王五", "phone": "23912345678"}}, "validation_failed"),
        ({"caller": {"name": "", "phone": CALLER["phone"]}}, "validation_failed"),
        ({"channel": "wechat"}, "validation_failed"),
        ({"channel": "miniprogram"}, "validation_failed"),  # not a desk channel
        ({"category": "闲聊"}, "validation_failed"),
        ({"case_no": "（2026）京0105民初1号"}, "validation_failed"),  # no query code
        ({"content": ""}, "validation_failed"),
    ):
        res = await open_order(desk, **wrong)
        assert error(res) == (422, code), (wrong, res.body)
    wrong_pair = await open_order(desk, case_no="（2026）京0105民初1号", query_code="ABCDEFGH")
    assert error(wrong_pair) == (404, "case_lookup_failed")
    assert await services.db["workorders"].count_documents({}) == 0  # nothing half written

    for session in (await staff("clerk"), await staff("judge"), await staff("admin")):
        assert error(await open_order(session)) == (403, "not_service_desk")
    party = await litigant()
    assert error(await open_order(party)) == (403, "role_not_allowed")
    assert error(await ApiSession(desk.api_url).post("/api/v1/workorders", desk_body())) == (
        401,
        "unauthorized",
    )
    assert await services.db["workorders"].count_documents({}) == 0

    message = await desk_message(party)  # a mini-program message: no caller's phone
    supervisor = await staff("clerk", supervisor=True)
    assert error(await callback(supervisor, message, "reached")) == (409, "no_caller_phone")
    assert error(await callback(party, message, "reached")) == (403, "role_not_allowed")
    made = (await open_order(desk)).body
    assert error(await callback(await staff("judge"), made["id"], "reached")) == (
        404,
        "workorder_not_found",
    )  # not theirs
    receipts = ApiSession(desk.api_url)
    assert (await receipts.post("/api/v1/sms/status-callback", {"sid": "x"})).status == 400
    stray = [{"sid": "2433:1", "mobile": CALLER["phone"], "report_status": "SUCCESS"}]
    res = await receipts.post("/api/v1/sms/status-callback", stray)
    assert res.status == 200 and res.body["recorded"] == 0, res.body  # not an SMS of ours


@pytest.mark.gen_test(timeout=120)
async def test_desk_orders_escalate_as_messages_do_until_the_answer_reaches_the_caller(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock, sms: Emulator
) -> None:
    supervisor = await staff("clerk", supervisor=True)
    desk = await staff("clerk", service_desk=True)
    party = await litigant()
    await desk_message(party)  # a mini-program message, beside the desk order
    made = await open_order(
        desk, channel="service_line", caller={"name": "赵六", "phone": "13700000001"}
    )
    assert made.status == 201 and made.body["status"] == "pending", made.body  # at the desk
    oid = made.body["id"]
    assert (await kinds(supervisor)).count("workorder_new") == 2  # told like the message
    assert [o["id"] for o in (await desk.workorders()).body["items"]] == [oid]  # the desk's own

    clock.set(at(23, 12))  # both steps of the assignment deadline, for each order
    assert await services.workorder_sweep.sweep() == 4
    escalated = await services.db["workorders"].distinct("escalation_level")
    assert escalated == [2]

    # answered by a supervisor, but the SMS never reaches the caller (空号): still unanswered
    await relogin(supervisor, desk)
    sms.sms.unreachable = {"13700000001"}
    assert (await supervisor.reply_message(oid, "请携带身份证到窗口办理。")).status == 201
    assert await services.outbox.run_once() >= 1

    async def failed() -> dict[str, Any] | None:
        found = await detail(supervisor, oid)
        return found if found["sms"][0]["status"] == "failed" else None

    bounced = await until(failed)
    assert bounced["answered"] is False and "空号" in bounced["sms"][0]["error"]
    clock.set(at(24, 12))  # past the first-answer deadline (Tuesday 10:00)
    await relogin(supervisor, desk)
    assert await services.workorder_sweep.sweep() >= 1
    steps = {(e["kind"], e["level"]) for e in (await detail(supervisor, oid))["escalations"]}
    assert ("reply", 1) in steps
    reached = await callback(desk, oid, "reached", note="已电话告知")
    assert reached.status == 201 and reached.body["answered"] is True, reached.body
    assert reached.body["first_replied_at"] == iso(at(24, 12))
    assert reached.body["thread"][-1]["content"] == "电话回拨：已联系来电人。已电话告知"
    assert (await supervisor.close_workorder(oid)).status == 200


@pytest.mark.gen_test(timeout=300)
async def test_a_year_by_channel_against_hand_counts(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock, sms: Emulator
) -> None:
    """The court's 2022, scaled down 250 times: 9,280 hotline calls (37), 6,515 service-line
    calls (26), every hotline caller called back; the rest from the counter, letters and the
    mini-program. Counted by hand below."""
    supervisor = await staff("clerk", supervisor=True)
    desk_console = await staff("clerk", service_desk=True)
    desk = await services.users.get(uid(desk_console))
    plan = {
        "hotline_12368": (37, 37),
        "service_line": (26, 20),
        "counter": (4, 0),
        "letter": (3, 0),
    }
    for channel, (count, reached) in plan.items():
        for i in range(count):
            data = DeskOrderCreate.model_validate(
                desk_body(channel=channel, caller={"name": "来电人", "phone": f"139{i:08d}"})
            )
            clock.set(at(23, 10))
            order = await services.workorder_desk.create(desk, data)
            clock.set(at(23, 11))
            result = "reached" if i < reached else "no_answer"
            await services.workorder_desk.callback(desk, order.id, CallbackIn(result=result))
    party = await litigant()
    messages = [await desk_message(party, f"留言{i}") for i in range(4)]
    for oid in messages[:2]:
        assert (await supervisor.reply_message(oid, "已答复")).status == 201

    report = await desk_stats(supervisor)
    rows = {r["key"]: r for r in report["rows"]}
    assert [r["key"] for r in report["rows"]] == [
        "hotline_12368",
        "service_line",
        "counter",
        "miniprogram",
        "letter",
    ]
    hand = {  # received, answered, called back
        "hotline_12368": (37, 37, 37),
        "service_line": (26, 20, 20),
        "counter": (4, 0, 0),
        "letter": (3, 0, 0),
        "miniprogram": (4, 2, 0),
    }
    for key, (received, answered, called) in hand.items():
        row = rows[key]
        assert (row["received"], row["answered"], row["called_back"]) == (
            received,
            answered,
            called,
        )
        assert row["callback_rate"] == pytest.approx(called / received)
    assert rows["hotline_12368"]["median_first_reply_seconds"] == 3600.0
    assert rows["hotline_12368"]["on_time_rate"] == 1.0
    total = report["total"]
    assert (total["received"], total["answered"], total["called_back"]) == (74, 59, 57)

    csv_res = await supervisor.get(
        "/api/v1/workorders/stats?from=2026-11-01&to=2026-11-30&group_by=channel&format=csv"
    )
    assert csv_res.status == 200 and csv_res.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(csv_res.content.decode("utf-8-sig"))))
    assert [(r["key"], r["name"], r["received"], r["called_back"]) for r in table][:2] == [
        ("hotline_12368", "12368热线", "37", "37"),
        ("service_line", "诉讼服务热线", "26", "20"),
    ]
    assert (table[-1]["name"], table[-1]["received"]) == ("合计", "74")


@pytest.mark.gen_test(timeout=120)
async def test_a_judge_teams_number_is_shown_to_the_parties(
    litigant: Litigant, staff: Staff, settings: Any
) -> None:
    admin = await staff("admin")
    made = await admin.create_staff(
        username="zhou.judge",
        password=STAFF_PASSWORD,
        name="周法官",
        role="judge",
        court_id="bj-chaoyang",
        team_phone="010-65001234",
    )
    assert made.status == 201 and made.body["team_phone"] == "010-65001234", made.body
    bad = await admin.create_staff(
        username="wu.judge",
        password=STAFF_PASSWORD,
        name="吴法官",
        role="judge",
        court_id="bj-chaoyang",
        team_phone="call me",
    )
    assert error(bad) == (422, "validation_failed")
    desk = await admin.create_staff(
        username="desk.one",
        password=STAFF_PASSWORD,
        name="服务台",
        role="clerk",
        court_id="bj-chaoyang",
        service_desk=True,
    )
    assert desk.status == 201 and desk.body["service_desk"] is True, desk.body
    judge = StaffConsole(admin.api_url)
    assert (await judge.login("zhou.judge", STAFF_PASSWORD)).status == 200
    client = await plaintiff(litigant)
    case_id, _ = await assigned_case(client, await staff("clerk"), judge)
    seen = await client.case(case_id)
    assert seen.status == 200 and seen.body["team_phone"] == "010-65001234", seen.body

    # or from the court's config, by the judge's username
    other = await staff("judge")
    assert other.user is not None
    court = settings.court("bj-chaoyang")
    court.team_numbers[other.user["username"]] = "010-65009999"
    case2, _ = await assigned_case(client, await staff("clerk"), other)
    assert (await client.case(case2)).body["team_phone"] == "010-65009999"
