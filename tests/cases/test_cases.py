"""Reading cases: who sees which case and what of it; lookup by number and query code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import ObjectId

from miniapp_stubs.client import MiniProgram, StaffConsole
from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import (
    DEFENDANT_ID,
    SELF_ID,
    STAFF_PASSWORD,
    Litigant,
    Staff,
    accepted,
    defendant,
    lawyer_case,
    plaintiff,
    upload,
)


def by_name(case: dict[str, Any], group: str, name: str) -> dict[str, Any]:
    return next(p for p in case[group] if p["name"] == name)


@pytest.mark.gen_test(timeout=60)
async def test_each_reader_sees_what_they_may(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    client, other = await plaintiff(litigant), await defendant(litigant)
    lawyer, stranger = await litigant(name="周律师"), await litigant()
    clerk, admin = await staff("clerk"), await staff("admin", court_id=None)
    far_clerk = await staff("clerk", court_id="sh-pudong")
    case_id = await lawyer_case(lawyer, clerk, admin)

    for reader, seen_as in ((client, "party"), (other, "party"), (lawyer, "agent")):
        listed = await reader.cases()
        assert [c["id"] for c in listed.body["items"]] == [case_id], listed.body
        assert "query_code" not in json.dumps(listed.body)
        res = await reader.case(case_id)
        assert res.status == 200 and res.body["viewer"] == seen_as, res.body
        assert res.body["court_name"] == "北京市朝阳区人民法院"
        assert res.body["status"] == "accepted" and res.body["status_name"] == "已立案"
        assert res.body["fees"]["status"] == "pending"
        assert res.body["fees"]["amount_fen"] == 230_000  # 100,000 yuan: 50 + 2.5% of 90,000
        assert [e["kind"] for e in res.body["timeline"]] == ["立案", *["送达"] * 4]
        assert len(res.body["query_code"]) == 8  # parties and the filing agent only
        assert SELF_ID not in res.content.decode() and DEFENDANT_ID not in res.content.decode()
    code = (await client.case(case_id)).body["query_code"]
    assert services.cases.query_code(await services.cases.load(case_id)) == code

    mine = (await client.case(case_id)).body
    assert by_name(mine, "plaintiffs", "张三")["phone"] == "13800138000"
    assert (
        by_name(mine, "plaintiffs", "张三")["id_number_masked"] == "110***********" + SELF_ID[-4:]
    )
    assert by_name(mine, "defendants", "李四")["address"] is None  # the other side's contacts
    theirs = (await other.case(case_id)).body
    assert by_name(theirs, "defendants", "李四")["address"] == "北京市海淀区中关村大街2号"
    assert by_name(theirs, "plaintiffs", "张三")["phone"] is None
    agent = (await lawyer.case(case_id)).body
    assert by_name(agent, "plaintiffs", "张三")["phone"] == "13800138000"  # the client's
    assert by_name(agent, "defendants", "李四")["address"] is None

    for outsider in (stranger, far_clerk):
        assert (await outsider.cases()).body["items"] == []
        res = await outsider.case(case_id)
        assert (res.status, res.error_code) == (404, "case_not_found")
    assert (await client.case(str(ObjectId()))).status == 404

    court = await clerk.case(case_id)
    assert court.status == 200 and court.body["viewer"] == "staff"
    assert court.body["query_code"] is None
    assert by_name(court.body, "defendants", "李四")["address"] == "北京市海淀区中关村大街2号"
    assert court.body["timeline"][0]["by"] == clerk.user["id"]  # type: ignore[index]
    assert mine["timeline"][0]["by"] is None
    audit = await services.db["audit"].find_one({"action": "case.read", "target": case_id})
    assert audit is not None and audit["actor_id"] == clerk.user["id"]  # type: ignore[index]
    listed = await clerk.cases()
    assert [c["id"] for c in listed.body["items"]] == [case_id]
    assert "query_code" not in json.dumps(listed.body)


@pytest.mark.gen_test(timeout=60)
async def test_lookup_links_a_defendant_who_registered_later(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    client, clerk = await plaintiff(litigant), await staff("clerk")
    case_id, case_no = await accepted(client, clerk)
    code = (await client.case(case_id)).body["query_code"]
    late = await defendant(litigant)  # registers after the case was accepted
    assert (await late.cases()).body["items"] == []
    assert (await late.case(case_id)).status == 404
    filing = await services.db["filings"].find_one({"case_id": case_id})
    assert filing is not None and filing["evidence"]
    evidence = filing["evidence"][0]
    assert (await late.download(evidence)).status == 404

    wrong = "2" * 8 if code != "2" * 8 else "3" * 8
    unknown = case_no.replace("民初1号", "民初999号")
    stranger = await litigant()
    refusals = [
        await late.lookup_case(case_no, wrong),
        await late.lookup_case(unknown, code),
        await stranger.lookup_case(case_no, code),  # right pair, but not a party
    ]
    for res in refusals:
        assert res.status == 404 and res.body["error"]["code"] == "case_lookup_failed"
        assert res.body["error"]["message"] == refusals[0].body["error"]["message"]
        assert code not in res.content.decode()
    for bad_no in ("(2026)京0105民初1号x", "2026京0105民初1号", "（2026）京0105民初01号", ""):
        res = await late.lookup_case(bad_no, code)
        assert (res.status, res.error_code) == (422, "validation_failed"), bad_no
    assert (await late.lookup_case(case_no, "short")).status == 422
    assert (await late.post("/api/v1/cases/lookup", {"case_no": case_no})).status == 422

    typed = case_no.replace("（", "(").replace("）", ")")  # ASCII parentheses, as phones type
    found = await late.lookup_case(typed, code.lower())
    assert found.status == 200, found.body
    assert found.body["viewer"] == "party" and found.body["query_code"] == code
    assert by_name(found.body, "defendants", "李四")["address"] == "北京市海淀区中关村大街2号"
    assert [c["id"] for c in (await late.cases()).body["items"]] == [case_id]
    assert (await late.case(case_id)).status == 200
    assert (await late.download(evidence)).status == 200  # the materials, now a party
    stored = await services.db["cases"].find_one({"_id": ObjectId(case_id)})
    assert stored is not None and late.user is not None
    assert late.user["id"] in stored["party_user_ids"]
    assert stored["defendants"][0]["user_id"] == late.user["id"]
    assert (await late.lookup_case(case_no, code)).status == 200  # again: still a party
    body = {"case_no": case_no, "query_code": code}
    assert (await clerk.post("/api/v1/cases/lookup", body)).status == 403  # staff: the list


@pytest.mark.gen_test(timeout=60)
async def test_lookup_attempts_are_rate_limited(litigant: Litigant, staff: Staff) -> None:
    client, clerk = await plaintiff(litigant), await staff("clerk")
    case_id, case_no = await accepted(client, clerk)
    code = (await client.case(case_id)).body["query_code"]
    guesser = await litigant()
    statuses = [(await guesser.lookup_case(case_no, "ABCDEFGH")).status for _ in range(11)]
    assert statuses == [404] * 10 + [429]
    res = await guesser.lookup_case(case_no, code)
    assert (res.status, res.error_code) == (429, "rate_limited")  # even the right pair, now

    # counted per caller and number: strangers guessing cannot lock the real party out
    for _ in range(3):
        others = await litigant()
        for _ in range(5):
            assert (await others.lookup_case(case_no, "ABCDEFGH")).status == 404
    assert (await (await litigant()).lookup_case(case_no, "ABCDEFGH")).status == 404
    assert (await client.lookup_case(case_no, code)).status == 200


@pytest.mark.gen_test(timeout=90)
async def test_lists_are_paged_by_activity_and_filtered_for_staff(
    litigant: Litigant, staff: Staff, clock: FixedClock
) -> None:
    client, clerk, judge = await plaintiff(litigant), await staff("clerk"), await staff("judge")
    first, _ = await accepted(client, clerk)
    clock.advance(days=1)  # Tuesday 2026-11-24
    await clerk.login(clerk.user["username"], STAFF_PASSWORD)  # type: ignore[index]
    await judge.login(judge.user["username"], STAFF_PASSWORD)  # type: ignore[index]
    second, _ = await accepted(client, clerk)
    clock.advance(minutes=5)
    third, _ = await accepted(client, clerk)
    clock.advance(minutes=5)
    assigned = await clerk.assign_case(first, judge.user["id"], clerk.user["id"])  # type: ignore[index]
    assert assigned.status == 200, assigned.body

    async def walk(session: MiniProgram | StaffConsole, **params: Any) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            extra = {"cursor": cursor} if cursor else {}
            res = await session.cases(limit=2, **params, **extra)
            assert res.status == 200, res.body
            assert len(res.body["items"]) <= 2
            seen += [c["id"] for c in res.body["items"]]
            cursor = res.body["next_cursor"]
            if not cursor:
                return seen

    assert await walk(client) == [first, third, second]  # the assignment is the newest news
    assert await walk(clerk) == [first, third, second]
    assert await walk(clerk, status="accepted") == [third, second]
    assert await walk(clerk, judge_id=judge.user["id"]) == [first]  # type: ignore[index]
    assert await walk(clerk, accepted_from="2026-11-24") == [third, second]
    assert await walk(clerk, accepted_to="2026-11-23") == [first]
    assert await walk(clerk, accepted_from="2026-11-25") == []
    assert await walk(client, status="assigned") == [first]
    assert (await clerk.cases(cursor="bad")).status == 400
    assert (await clerk.cases(status="lost")).status == 422
    assert (await clerk.cases(accepted_from="24/11/2026")).status == 422
    assert (await clerk.cases(limit=0)).status == 422
    assert (await clerk.cases(accepted_from="0001-01-01")).status == 422
    sysadmin = await staff("admin", court_id=None)
    assert (await sysadmin.cases()).error_code == "no_court"


@pytest.mark.gen_test(timeout=60)
async def test_the_detail_lists_the_documents_served_to_the_reader(
    litigant: Litigant, staff: Staff
) -> None:
    client, other, clerk = await plaintiff(litigant), await defendant(litigant), await staff()
    case_id, _ = await accepted(client, clerk)
    assert (await client.case(case_id)).body["documents"] == []
    assert (await client.consent(case_id)).status == 200
    notice = await upload(clerk, "举证通知书.pdf", "other")  # type: ignore[arg-type]
    served = await clerk.serve_document(case_id, notice, "举证通知书")
    assert served.status in (200, 201), served.body
    mine = (await client.case(case_id)).body["documents"]
    assert [d["id"] for d in mine] == [served.body["id"]]
    assert mine[0]["recipients"][0]["delivered_at"] is not None
    assert (await other.case(case_id)).body["documents"] == []  # no consent: served on paper
    court = (await clerk.case(case_id)).body["documents"]
    generated = ["受理通知书", "诉讼权利义务告知书", "举证通知书", "缴费通知书"]
    assert [d["kind"] for d in court] == [*generated, "举证通知书"]
    assert len(court[-1]["recipients"]) == 2
