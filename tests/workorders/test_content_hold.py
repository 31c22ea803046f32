"""msgSecCheck v2 as documented: ``result.suggest`` is risky, pass or review.

``risky`` is refused; ``review`` (WeChat asks for a person to read it) is kept but held for a
supervisor before it reaches the judge; and v2 judges only the text of a user who opened the
mini-program in the last two hours (errcode 61010 otherwise), which is held the same way
rather than refused or passed unread.
"""

from __future__ import annotations

import pytest

from miniapp_stubs.client import ApiSession
from miniapp_stubs.emulator import Emulator
from server.app import Services
from tests.factories import Litigant, Staff, assigned_case, error, kinds, plaintiff, written

REVIEW = "线下见面"


async def review_words(emulator: Emulator, *words: str) -> None:
    res = await ApiSession(emulator.url).post("/_emulator/content/review-words", {"words": words})
    assert res.status == 200, res.body


@pytest.mark.gen_test
async def test_review_is_held_for_a_supervisor_then_released_to_the_judge(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services
) -> None:
    client = await plaintiff(litigant)
    clerk, judge = await staff("clerk"), await staff("judge")
    head = await staff("judge", supervisor=True)
    case_id, _ = await assigned_case(client, clerk, judge)
    await review_words(emulator, REVIEW)

    sent = await written(client, f"法官您好，能否{REVIEW}？", case_id=case_id)
    oid = sent["id"]
    assert (sent["status"], sent["assignee"], sent["held"]) == ("pending", None, "content_review")
    # the judge neither sees it nor hears of it; the supervisor does
    assert error(await judge.message(oid)) == (404, "workorder_not_found")
    assert (await judge.workorders()).body["items"] == []
    assert "workorder_new" not in await kinds(judge)
    assert "workorder_held" in await kinds(head)
    assert error(await head.assign_workorder(oid, str((await judge.me()).body["id"]))) == (
        409,
        "workorder_held",
    )
    assert error(await judge.decide_hold(oid, True)) == (404, "workorder_not_found")

    released = await head.decide_hold(oid, True)
    assert released.status == 200, released.body
    assert released.body["held"] is None and released.body["status"] == "assigned"
    seen = await judge.message(oid)
    assert seen.status == 200 and seen.body["thread"][0]["content"].endswith(f"{REVIEW}？")
    assert "workorder_new" in await kinds(judge)
    assert error(await head.decide_hold(oid, True)) == (409, "workorder_not_held")
    assert error(await judge.decide_hold(oid, True)) == (403, "not_supervisor")
    audit = await services.db["audit"].find_one({"action": "workorder.release", "target": oid})
    assert audit is not None


@pytest.mark.gen_test
async def test_refused_content_closes_the_message_and_the_sender_is_told(
    litigant: Litigant, staff: Staff, emulator: Emulator
) -> None:
    client = await plaintiff(litigant)
    clerk, judge = await staff("clerk"), await staff("judge")
    head = await staff("judge", supervisor=True)
    case_id, _ = await assigned_case(client, clerk, judge)
    await review_words(emulator, REVIEW)
    oid = (await written(client, f"{REVIEW}可以吗", case_id=case_id))["id"]
    refused = await head.decide_hold(oid, False, "请勿要求私下会面")
    assert refused.status == 200
    assert (refused.body["status"], refused.body["close_note"]) == ("closed", "请勿要求私下会面")
    assert "workorder_refused" in await kinds(client)
    assert error(await judge.message(oid)) == (404, "workorder_not_found")
    assert error(await head.decide_hold(oid, True)) == (409, "workorder_closed")


@pytest.mark.gen_test
async def test_a_held_follow_up_is_hidden_from_the_judge_until_released(
    litigant: Litigant, staff: Staff, emulator: Emulator
) -> None:
    client = await plaintiff(litigant)
    clerk, judge = await staff("clerk"), await staff("judge")
    head = await staff("judge", supervisor=True)
    case_id, _ = await assigned_case(client, clerk, judge)
    oid = (await written(client, case_id=case_id))["id"]  # passes: straight to the judge
    await review_words(emulator, REVIEW)
    res = await client.reply_message(oid, f"还有，能否{REVIEW}？")
    assert res.status == 201, res.body
    assert [e["content"] for e in (await judge.message(oid)).body["thread"]] == [
        "请问案件什么时候开庭？"
    ]
    assert len((await head.message(oid)).body["thread"]) == 2
    assert (await head.decide_hold(oid, False)).status == 200  # refused: the entry goes
    thread = (await judge.message(oid)).body["thread"]
    assert len(thread) == 1 and (await head.message(oid)).body["held"] is None


@pytest.mark.gen_test
async def test_risky_is_refused_and_v1_test_strings_are_not_v2_flags(
    litigant: Litigant, emulator: Emulator
) -> None:
    client = await litigant()
    res = await ApiSession(emulator.url).post("/_emulator/content/risky-words", {"words": ["赌博"]})
    assert res.status == 200
    flagged = await client.send_message("来赌博吧", court_id="bj-chaoyang", category="其他")
    assert error(flagged) == (422, "content_flagged")
    # msgSecCheck v1's documented test string is v1's alone: v2 passes it as ordinary text
    v1_test = "特3456书yuuo莞6543李zxcz蒜7782法fgnv级"
    sent = await client.send_message(v1_test, court_id="bj-chaoyang", category="其他")
    assert sent.status == 201 and sent.body["held"] is None


@pytest.mark.gen_test
async def test_no_recent_visit_is_held_for_review_not_refused(
    litigant: Litigant, staff: Staff, emulator: Emulator
) -> None:
    client = await litigant()
    head = await staff("judge", supervisor=True)
    assert client.openid is not None
    emulator.state.users[client.openid].last_visit -= 7201  # opened more than 2 hours ago
    sent = await client.send_message("请问如何缴费？", court_id="bj-chaoyang", category="缴费退费")
    assert sent.status == 201, sent.body
    assert sent.body["held"] == "no_recent_visit"
    assert "workorder_held" in await kinds(head)
    released = await head.decide_hold(sent.body["id"], True)
    assert released.status == 200 and released.body["status"] == "pending"  # the desk's


@pytest.mark.gen_test
async def test_the_emulator_answers_v2_as_documented(emulator: Emulator) -> None:
    state = emulator.state
    openid, _ = state.login()
    body = {"content": "开庭时间？", "version": 2, "scene": 2, "openid": openid}
    state.set_review_words([REVIEW])
    assert state.check_content(body)["result"] == {"suggest": "pass", "label": 100}
    review = state.check_content({**body, "content": REVIEW})
    assert review["result"]["suggest"] == "review"
    state.users[openid].last_visit -= 7201
    with pytest.raises(Exception) as raised:
        state.check_content(body)
    assert getattr(raised.value, "errcode", None) == 61010
    # v1 keeps flagging its own documented test strings
    v1 = {"content": "特3456书yuuo莞6543李zxcz蒜7782法fgnv级"}
    with pytest.raises(Exception) as raised:
        state.check_content(v1)
    assert getattr(raised.value, "errcode", None) == 87014
