"""Case administration: assignment, hearings, milestones in order, pushes and reminders."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any

import pytest
from bson import ObjectId

from miniapp_stubs.client import MiniProgram
from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import (
    TUESDAY,
    Litigant,
    Staff,
    accepted,
    assigned_case,
    defendant,
    kinds,
    lawyer_case,
    plaintiff,
    relogin,
    uid,
)


async def counts(services: Services, case_id: str) -> tuple[int, int, int]:
    """Hearings, timeline entries and inbox notices of a case: to prove nothing half written."""
    case = await services.db["cases"].find_one({"_id": ObjectId(case_id)})
    assert case is not None
    hearings = await services.db["hearings"].count_documents({"case_id": case_id})
    notices = await services.db["inbox"].count_documents({"data.case_id": case_id})
    return hearings, len(case["timeline"]), notices


@pytest.mark.gen_test(timeout=90)
async def test_a_case_from_filing_to_archive(
    litigant: Litigant, staff: Staff, clock: FixedClock, services: Services
) -> None:
    client, other, lawyer = await plaintiff(litigant), await defendant(litigant), await litigant()
    clerk, judge, admin = await staff("clerk"), await staff("judge"), await staff("admin")
    case_id = await lawyer_case(lawyer, clerk, await staff("admin", court_id=None))

    early = await judge.case_event(case_id, "宣判")
    assert (early.status, early.error_code) == (409, "case_status_conflict")
    res = await clerk.assign_case(case_id, uid(judge), uid(clerk))
    assert res.status == 200, res.body
    assert res.body["status"] == "assigned" and res.body["judge"]["name"] == "李四"
    assert res.body["judge"]["id"] == uid(judge) and res.body["clerk"]["id"] == uid(clerk)
    assert res.body["timeline"][-1]["kind"] == "分案"
    for reader in (client, other, lawyer):
        assert "case_assigned" in await kinds(reader)

    hearing = await judge.schedule_hearing(
        case_id, TUESDAY.format("09:30"), "第三法庭", online=True
    )
    assert hearing.status == 201, hearing.body
    assert hearing.body["starts_at"] == "2026-11-24T01:30:00Z"
    assert hearing.body["ends_at"] == "2026-11-24T02:30:00Z"
    assert hearing.body["status"] == "scheduled" and hearing.body["online"] is True
    seen = (await other.case(case_id)).body
    assert seen["status"] == "scheduled" and [h["id"] for h in seen["hearings"]] == [
        hearing.body["id"]
    ]
    assert "hearing_scheduled" in await kinds(other)

    clock.set(dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC))  # Tuesday 11:00, after it began
    await relogin(clerk, judge, admin)
    assert (await judge.case_event(case_id, "结案")).error_code == "case_status_conflict"
    for kind, status in (("庭审", "heard"), ("宣判", "judged"), ("结案", "closed")):
        res = await judge.case_event(case_id, kind, f"{kind}完毕")
        assert res.status == 200 and res.body["status"] == status, res.body
    assert (await judge.case_event(case_id, "宣判")).error_code == "case_status_conflict"
    archived = await admin.case_event(case_id, "归档")  # the court's admin may too
    assert archived.status == 200 and archived.body["status"] == "archived"
    late = await clerk.assign_case(case_id, uid(judge), uid(clerk))
    assert (late.status, late.error_code) == (409, "case_status_conflict")

    final = (await client.case(case_id)).body
    # four documents are served with the acceptance, a 传票 to each party with the hearing
    served, summonses = ["送达"] * 4, ["送达"] * 2
    milestones = ["立案", *served, "分案", "排期", *summonses, "庭审", "宣判", "结案", "归档"]
    assert [e["kind"] for e in final["timeline"]] == milestones
    assert final["hearings"][0]["status"] == "held"
    assert final["timeline"][milestones.index("庭审")]["note"] == "庭审完毕"
    assert (await kinds(lawyer)).count("case_event") == 4
    actions = await services.db["audit"].distinct("action", {"target": case_id})
    assert {"case.assign", "case.hearing.schedule", "case.event.judged"} <= set(actions)


@pytest.mark.gen_test(timeout=60)
async def test_assignment_needs_a_judge_and_a_clerk_of_the_court(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    client, clerk, judge = await plaintiff(litigant), await staff("clerk"), await staff("judge")
    far_judge, far_clerk = (
        await staff("judge", court_id="sh-pudong"),
        await staff("clerk", court_id="sh-pudong"),
    )
    case_id, _ = await accepted(client, clerk)
    before = await counts(services, case_id)
    bad = [
        (uid(clerk), uid(clerk), ["judge_id"]),  # a clerk is not a judge
        (uid(judge), uid(judge), ["clerk_id"]),
        (uid(far_judge), uid(clerk), ["judge_id"]),  # another court's judge
        (str(ObjectId()), str(ObjectId()), ["judge_id", "clerk_id"]),
    ]
    for judge_id, clerk_id, fields in bad:
        res = await clerk.assign_case(case_id, judge_id, clerk_id)
        assert (res.status, res.error_code) == (422, "invalid_assignee"), res.body
        assert [d["loc"][0] for d in res.body["error"]["details"]] == fields
    await services.db["users"].update_one(
        {"_id": ObjectId(uid(judge))}, {"$set": {"active": False}}
    )
    services.users.forget(uid(judge))
    inactive = await clerk.assign_case(case_id, uid(judge), uid(clerk))
    assert inactive.error_code == "invalid_assignee"
    assert (await clerk.assign_case(case_id, "nope", uid(clerk))).status == 422
    no_one = await clerk.case_event(case_id, "分案")
    assert (no_one.status, no_one.error_code) == (422, "assignees_required")
    assert (await far_clerk.assign_case(case_id, uid(far_judge), uid(far_clerk))).status == 404
    body = {"judge_id": uid(judge), "clerk_id": uid(clerk)}
    assert (await client.post(f"/api/v1/cases/{case_id}/assign", body)).status == 403
    assert await counts(services, case_id) == before

    other_judge = await staff("judge")
    res = await clerk.post(
        f"/api/v1/cases/{case_id}/events",
        {"kind": "分案", "judge_id": uid(other_judge), "clerk_id": uid(clerk)},
    )
    assert res.status == 200 and res.body["status"] == "assigned", res.body
    assert res.body["judge"]["id"] == uid(other_judge)
    again = await clerk.case_event(case_id, "分案")
    assert again.error_code == "assignees_required"
    moved = await clerk.assign_case(case_id, uid(other_judge), uid(clerk))
    assert moved.status == 200 and moved.body["status"] == "assigned"
    assert moved.body["timeline"][-1]["kind"] == "变更承办人员"


@pytest.mark.gen_test(timeout=90)
async def test_hearing_times_and_rooms(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    client, clerk, judge = await plaintiff(litigant), await staff("clerk"), await staff("judge")
    unassigned, _ = await accepted(client, clerk)
    res = await clerk.schedule_hearing(unassigned, TUESDAY.format("09:30"), "第一法庭")
    assert (res.status, res.error_code) == (409, "case_status_conflict")
    case_id, _ = await assigned_case(client, clerk, judge)
    before = await counts(services, case_id)
    refused = [
        ("2026-11-23T09:00:00+08:00", {}, "hearing_in_past"),
        ("2026-11-28T10:00:00+08:00", {}, "not_a_working_day"),  # Saturday
        ("2027-01-01T10:00:00+08:00", {}, "not_a_working_day"),  # New Year's Day
        (TUESDAY.format("08:00"), {}, "outside_court_hours"),
        (TUESDAY.format("17:00"), {}, "outside_court_hours"),  # ends 18:00
        (TUESDAY.format("09:30"), {"duration_minutes": 5}, "validation_failed"),
        (TUESDAY.format("09:30"), {"kind": "聊天"}, "validation_failed"),
        ("2026-11-24T09:30:00", {}, "validation_failed"),  # no offset
        ("2029-03-06T10:00:00+08:00", {}, "hearing_too_far"),  # a working Tuesday
        ("9999-12-31T23:30:00+08:00", {}, "validation_failed"),  # beyond any calendar
        ("0001-01-01T00:00:00+05:00", {}, "validation_failed"),
    ]
    for at, extra, code in refused:
        res = await clerk.schedule_hearing(case_id, at, "第一法庭", **extra)
        assert (res.status, res.error_code) == (422, code), (at, res.body)
    assert await counts(services, case_id) == before

    first = await clerk.schedule_hearing(case_id, TUESDAY.format("09:30"), "第一法庭")
    assert first.status == 201
    before = await counts(services, case_id)
    overlap = await clerk.schedule_hearing(case_id, TUESDAY.format("10:00"), "第一法庭")
    assert (overlap.status, overlap.error_code) == (409, "hearing_room_taken")
    assert overlap.body["error"]["details"]["starts_at"] == "2026-11-24T01:30:00+00:00"
    assert await counts(services, case_id) == before  # nothing half written
    elsewhere = await clerk.schedule_hearing(case_id, TUESDAY.format("10:00"), "第二法庭")
    assert elsewhere.status == 201
    after = await clerk.schedule_hearing(
        case_id, TUESDAY.format("10:30"), "第一法庭", kind="调解", duration_minutes=90
    )
    assert after.status == 201 and after.body["kind"] == "调解"  # starts as the first ends
    far = await staff("clerk", court_id="sh-pudong")
    assert (await far.schedule_hearing(case_id, TUESDAY.format("14:00"), "第一法庭")).status == 404


@pytest.mark.gen_test(timeout=90)
async def test_two_clerks_racing_for_one_room_get_one_hearing(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    client, clerk, judge = await plaintiff(litigant), await staff("clerk"), await staff("judge")
    other_clerk = await staff("clerk")
    cases = [(await assigned_case(client, clerk, judge))[0] for _ in range(4)]
    consoles = [clerk, other_clerk]
    results = await asyncio.gather(
        *(
            consoles[i % 2].schedule_hearing(
                c, TUESDAY.format(f"1{i}:00"), "第五法庭", duration_minutes=120
            )
            for i, c in enumerate(cases)
        )
    )
    statuses = sorted(r.status for r in results)
    # 10:00-12:00, 11:00-13:00, 12:00-14:00, 13:00-15:00: at most two fit without overlap
    assert statuses.count(201) in (1, 2) and set(statuses) <= {201, 409}, statuses
    kept = await services.db["hearings"].find({"room": "第五法庭"}).sort("starts_at").to_list()
    for a, b in itertools.pairwise(kept):
        assert a["ends_at"] <= b["starts_at"]
    assert len(kept) == statuses.count(201)


@pytest.mark.gen_test(timeout=90)
async def test_two_first_hearings_set_at_once_both_land(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    """Both read the case as assigned; the second to write finds it scheduled by the first,
    which is where it was going: no 409."""
    client, clerk, judge = await plaintiff(litigant), await staff("clerk"), await staff("judge")
    case_id, _ = await assigned_case(client, clerk, judge)
    results = await asyncio.gather(
        clerk.schedule_hearing(case_id, TUESDAY.format("09:00"), "第一法庭"),
        clerk.schedule_hearing(case_id, TUESDAY.format("14:00"), "第二法庭", kind="调解"),
    )
    assert [r.status for r in results] == [201, 201], [r.body for r in results]
    case = await services.db["cases"].find_one({"_id": ObjectId(case_id)})
    assert case is not None and case["status"] == "scheduled"
    assert [e["kind"] for e in case["timeline"]].count("排期") == 2
    assert await services.db["hearings"].count_documents({"case_id": case_id}) == 2


@pytest.mark.gen_test(timeout=90)
async def test_reschedule_and_cancel_are_pushed_at_once(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    client, other = await plaintiff(litigant), await defendant(litigant)
    clerk, judge = await staff("clerk"), await staff("judge")
    case_id, _ = await assigned_case(client, clerk, judge)
    hearing = (await clerk.schedule_hearing(case_id, TUESDAY.format("09:30"), "第一法庭")).body
    blocker = await clerk.schedule_hearing(case_id, TUESDAY.format("14:00"), "第二法庭")
    path = f"/api/v1/cases/{case_id}/hearings/{hearing['id']}"

    taken = await clerk.reschedule_hearing(
        case_id, hearing["id"], TUESDAY.format("14:30"), room="第二法庭"
    )
    assert (taken.status, taken.error_code) == (409, "hearing_room_taken")
    same_room = await clerk.reschedule_hearing(case_id, hearing["id"], TUESDAY.format("09:45"))
    assert same_room.status == 200, same_room.body  # overlapping only itself
    moved = await clerk.reschedule_hearing(
        case_id, hearing["id"], "2026-11-25T15:00:00+08:00", room="第三法庭"
    )
    assert moved.status == 200, moved.body
    assert moved.body["starts_at"] == "2026-11-25T07:00:00Z" and moved.body["room"] == "第三法庭"
    for party in (client, other):
        notices = (await party.notifications()).body["items"]
        latest = next(n for n in notices if n["kind"] == "hearing_rescheduled")
        assert "2026年11月25日 15:00 第三法庭" in latest["body"]
    assert (
        await clerk.reschedule_hearing(case_id, hearing["id"], TUESDAY.format("07:00"))
    ).status == 422
    assert (await clerk.request("PATCH", path, {"room": "第一法庭"})).status == 422

    res = await clerk.cancel_hearing(case_id, blocker.body["id"], "当事人申请延期")
    assert res.status == 200 and res.body["status"] == "cancelled"
    assert res.body["cancel_reason"] == "当事人申请延期"
    assert (await other.case(case_id)).body["status"] == "scheduled"  # one hearing is left
    res = await clerk.cancel_hearing(case_id, hearing["id"], "法官调整")
    assert res.status == 200
    assert "hearing_cancelled" in await kinds(other)
    seen = (await other.case(case_id)).body
    assert seen["status"] == "assigned"  # no hearing left: back to assigned
    assert [e["kind"] for e in seen["timeline"]][-2:] == ["取消排期", "取消排期"]
    again = await clerk.cancel_hearing(case_id, hearing["id"], "再次取消")
    assert (again.status, again.error_code) == (409, "hearing_not_scheduled")
    late = await clerk.reschedule_hearing(case_id, hearing["id"], TUESDAY.format("10:00"))
    assert late.error_code == "hearing_not_scheduled"
    assert (await clerk.cancel_hearing(case_id, str(ObjectId()), "x")).status == 404
    assert (await clerk.cancel_hearing(case_id, hearing["id"], "")).status == 422


@pytest.mark.gen_test(timeout=90)
async def test_reminders_the_day_before_exactly_once(
    litigant: Litigant, staff: Staff, clock: FixedClock, services: Services
) -> None:
    client, other = await plaintiff(litigant), await defendant(litigant)
    clerk, judge = await staff("clerk"), await staff("judge")
    await client.accept_subscriptions(["dev-tmpl-deadline-reminder"])  # other has no grant
    case_id, _ = await assigned_case(client, clerk, judge)
    tuesday = (await clerk.schedule_hearing(case_id, TUESDAY.format("09:30"), "第一法庭")).body
    await clerk.schedule_hearing(case_id, "2026-11-25T10:00:00+08:00", "第一法庭")

    async def reminders(party: MiniProgram) -> list[dict[str, Any]]:
        items = (await party.notifications(limit=50)).body["items"]
        return [n for n in items if n["kind"] == "hearing_reminder"]

    assert await services.hearings.sweep_reminders() == 1  # Monday: Tuesday's hearing only
    assert await services.hearings.sweep_reminders() == 0
    assert sum(await asyncio.gather(*(services.hearings.sweep_reminders() for _ in range(3)))) == 0
    for party in (client, other, judge, clerk):  # the parties, and the judge and clerk
        found = await reminders(party)  # type: ignore[arg-type]
        assert len(found) == 1 and found[0]["data"]["hearing_id"] == tuesday["id"]
        assert "2026年11月24日 09:30" in found[0]["body"]
    for party, pushes in ((client, 1), (other, 0)):  # queued for those who can receive it
        outbox = await services.db["outbox"].count_documents(
            {"user_id": uid(party), "template": "deadline_reminder"}
        )
        assert outbox == pushes

    moved = await clerk.reschedule_hearing(case_id, tuesday["id"], TUESDAY.format("14:00"))
    assert moved.status == 200
    assert await services.hearings.sweep_reminders() == 1  # the new time, reminded again
    assert len(await reminders(client)) == 2

    clock.set(dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.UTC))  # Tuesday 09:00
    results = await asyncio.gather(*(services.hearings.sweep_reminders() for _ in range(2)))
    assert sum(results) == 1  # Wednesday's, by one of the two sweeps
    assert await services.hearings.sweep_reminders() == 0
    assert len(await reminders(other)) == 3


@pytest.mark.gen_test(timeout=90)
async def test_a_case_closed_early_by_withdrawal_or_mediation(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    client, other = await plaintiff(litigant), await defendant(litigant)
    clerk, judge = await staff("clerk"), await staff("judge")
    case_id, _ = await assigned_case(client, clerk, judge)
    hearing = (await clerk.schedule_hearing(case_id, TUESDAY.format("09:30"), "第一法庭")).body
    done = await clerk.case_event(case_id, "撤诉结案", "原告申请撤诉，准予撤诉")
    assert done.status == 200, done.body
    assert done.body["status"] == "closed" and done.body["timeline"][-1]["kind"] == "撤诉结案"
    stored = await services.db["hearings"].find_one({"_id": ObjectId(hearing["id"])})
    assert stored is not None and stored["status"] == "cancelled"
    again = await clerk.case_event(case_id, "调解结案")
    assert (again.status, again.error_code) == (409, "case_status_conflict")
    assert (await clerk.case_event(case_id, "归档")).status == 200
    assert "case_event" in await kinds(other)
