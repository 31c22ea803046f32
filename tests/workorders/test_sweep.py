"""Work-order deadlines on the court's working calendar, and the escalation sweep (督办): at the
deadline to the supervisors, at twice the time to the division heads, each pushed once, with
one process or two."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import pytest
from bson import ObjectId
from tornado.web import Application

from server.app import Services
from server.platform.calendar import Calendars
from server.platform.clock import FixedClock
from server.platform.config import Settings
from server.workorders.rules import deadlines
from tests.factories import (
    Litigant,
    Staff,
    assigned_case,
    at,
    desk_message,
    iso,
    kinds,
    plaintiff,
    relogin,
    uid,
    written,
)

ESCALATED = "workorder_escalated"


def local(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%m-%d %H:%M")


# laid out by hand, not by the formatter: a table, each row's six step times in order
@pytest.mark.parametrize(
    ("created", "expected"),
    [
        # Monday 10:00: 1 working hour, 1 working day (7 h), 5 working days; twice each
        (at(23, 10), ["11-23 11:00", "11-23 12:00", "11-24 10:00", "11-25 10:00",
                      "11-30 10:00", "12-07 10:00"]),
        # Friday 17:00: half an hour that day, the rest on Monday
        (at(27, 17), ["11-30 09:30", "11-30 10:30", "11-30 17:00", "12-01 17:00",
                      "12-04 17:00", "12-11 17:00"]),
        # Saturday noon: counting starts at Monday 09:00
        (at(28, 12), ["11-30 10:00", "11-30 11:00", "11-30 17:30", "12-01 17:30",
                      "12-04 17:30", "12-11 17:30"]),
        # the lunch break does not count
        (at(23, 12, 30), ["11-23 14:30", "11-23 15:30", "11-24 12:00", "11-25 12:00",
                          "11-30 12:00", "12-07 12:00"]),
        # the eve of National Day: 1-7 October off, Saturday 10 October a make-up working day
        (dt.datetime(2026, 9, 30, 9, 0, tzinfo=dt.UTC),
         ["10-08 09:30", "10-08 10:30", "10-08 17:00", "10-09 17:00",
          "10-13 17:00", "10-20 17:00"]),
    ],
)  # fmt: skip
def test_deadlines_count_working_time_only(
    settings: Settings, created: dt.datetime, expected: list[str]
) -> None:
    cal = Calendars(settings).for_court("bj-chaoyang")
    court = settings.court("bj-chaoyang")
    assert court is not None
    found = deadlines(cal, court.deadlines.workorder, created)
    assert [local(s["at"]) for s in found["steps"]] == expected
    assert [s["level"] for s in found["steps"]] == [1, 2] * 3
    assert found["assign_due_at"] == found["steps"][0]["at"]
    assert found["first_reply_due_at"] == found["steps"][2]["at"]
    assert found["close_due_at"] == found["steps"][4]["at"]


async def escalations(services: Services, order_id: str) -> list[tuple[str, int]]:
    raw = await services.db["workorders"].find_one({"_id": ObjectId(order_id)})
    assert raw is not None
    return [(e["kind"], e["level"]) for e in raw["escalations"]]


async def escalation_notices(services: Services, user_id: str) -> Counter[str]:
    """Escalation notices of one user, by dedupe key (each must appear once)."""
    found = services.db["inbox"].find({"user_id": user_id, "kind": ESCALATED})
    return Counter([d["dedupe_key"] async for d in found])


@pytest.mark.gen_test(timeout=120)
async def test_an_unanswered_message_is_escalated_once_at_each_level(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    client = await plaintiff(litigant)
    clerk, judge = await staff("clerk"), await staff("judge")
    supervisor = await staff("clerk", supervisor=True)
    head = await staff("judge", division_head=True)
    case_id, _ = await assigned_case(client, clerk, judge)
    oid = str((await written(client, case_id=case_id))["id"])  # Monday 10:00

    clock.set(at(24, 9, 59))
    assert await services.workorder_sweep.sweep() == 0
    clock.set(at(24, 10))  # the first reply's deadline: 督办
    assert await services.workorder_sweep.sweep() == 1
    assert await services.workorder_sweep.sweep() == 0
    assert await escalations(services, oid) == [("reply", 1)]
    await relogin(judge, supervisor, head)  # a staff session lasts 12 hours
    assert ESCALATED in await kinds(supervisor) and ESCALATED in await kinds(judge)
    assert ESCALATED not in await kinds(head)
    seen = (await client.message(oid)).body
    assert seen["overdue"] is True and seen["escalation_level"] == 1
    assert seen["overdue_since"] == iso(at(24, 10)) and seen["status"] == "assigned"
    overdue = (await supervisor.workorders(overdue="true")).body["items"]
    assert [o["id"] for o in overdue] == [oid]
    assert (await supervisor.workorders(overdue="false")).body["items"] == []

    clock.set(at(25, 10))  # twice the time: the division head
    assert await services.workorder_sweep.sweep() == 1
    assert await escalations(services, oid) == [("reply", 1), ("reply", 2)]
    await relogin(judge, supervisor, head)
    assert ESCALATED in await kinds(head)
    late = await judge.reply_message(oid, "抱歉回复晚了，开庭时间另行通知。")
    assert late.status == 201, late.body
    assert late.body["overdue"] is False  # answered: now only the closing deadline runs
    raw = await services.db["workorders"].find_one({"_id": ObjectId(oid)})
    assert raw is not None and raw["first_reply_on_time"] is False
    assert raw["first_reply_seconds"] == 2 * 24 * 3600

    clock.set(at(30, 10))  # the closing deadline
    assert await services.workorder_sweep.sweep() == 1
    clock.set(at(37, 10))  # Monday 7 December: twice the time
    assert await services.workorder_sweep.sweep() == 1
    assert await escalations(services, oid) == [
        ("reply", 1),
        ("reply", 2),
        ("close", 1),
        ("close", 2),
    ]
    await relogin(judge)
    assert (await judge.close_workorder(oid)).status == 200
    clock.set(at(60, 10))
    assert await services.workorder_sweep.sweep() == 0
    for person in (supervisor, head):
        counted = await escalation_notices(services, uid(person))
        assert set(counted.values()) == {1}, counted
    assert len(await escalation_notices(services, uid(judge))) == 4
    assert len(await escalation_notices(services, uid(supervisor))) == 2  # the two level-1s
    assert len(await escalation_notices(services, uid(head))) == 2


@pytest.mark.gen_test(timeout=120)
async def test_an_unassigned_message_is_escalated_for_assignment(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    other = await litigant()
    supervisor = await staff("clerk", supervisor=True)  # no division head in this court
    admin = await staff("admin")
    desk = await desk_message(other)  # Monday 10:00: to be assigned by 11:00
    clock.set(at(23, 12))  # both steps of the assignment deadline have come
    assert await services.workorder_sweep.sweep() == 2
    assert await escalations(services, desk) == [("assign", 1), ("assign", 2)]
    # no division head: level 2 goes to the supervisors too
    assert len(await escalation_notices(services, uid(supervisor))) == 2
    assert await escalation_notices(services, uid(admin)) == Counter()
    await relogin(supervisor)
    assert (await supervisor.assign_workorder(desk, uid(supervisor))).status == 200
    clock.set(at(24, 10))  # the first reply's deadline still runs
    assert await services.workorder_sweep.sweep() == 1
    assert await escalations(services, desk) == [("assign", 1), ("assign", 2), ("reply", 1)]


@pytest.mark.gen_test(timeout=180)
async def test_two_processes_escalate_and_push_each_step_once(
    litigant: Litigant,
    staff: Staff,
    services: Services,
    other_app: Application,
    clock: FixedClock,
) -> None:
    other: Services = other_app.settings["services"]
    senders = [await litigant(), await litigant()]
    supervisor = await staff("judge", supervisor=True)
    head = await staff("judge", division_head=True)
    orders = [await desk_message(senders[i % 2], f"第{i}个问题") for i in range(12)]
    for sweep in (services.workorder_sweep, other.workorder_sweep):
        sweep.config = sweep.config.model_copy(update={"sweep_batch": 5})  # interleave batches

    clock.set(at(23, 11))  # every order's level-1 assignment step
    first = await asyncio.gather(services.workorder_sweep.sweep(), other.workorder_sweep.sweep())
    assert sum(first) == 12, first
    clock.set(at(24, 10))  # level 2 of assignment and level 1 of the first reply
    runs = [s.workorder_sweep.sweep() for s in (services, other) for _ in range(2)]
    second = await asyncio.gather(*runs)
    assert sum(second) == 24, second
    for oid in orders:
        assert sorted(await escalations(services, oid)) == [
            ("assign", 1),
            ("assign", 2),
            ("reply", 1),
        ]
    sup = await escalation_notices(services, uid(supervisor))
    top = await escalation_notices(services, uid(head))
    assert len(sup) == 24 and set(sup.values()) == {1}  # assign 1 and reply 1 of each
    assert len(top) == 12 and set(top.values()) == {1}  # assign 2 of each
    staff_pushes = {"user_id": {"$in": [uid(supervisor), uid(head)]}}
    assert await services.db["outbox"].count_documents(staff_pushes) == 0  # inbox and feed

    # the periodic rounds take the lease: one process sweeps at a time
    clock.set(at(25, 10))  # level 2 of the first reply
    rounds = await asyncio.gather(
        services.workorder_sweep.run_once(), other.workorder_sweep.run_once()
    )
    assert sorted(rounds) == [0, 12], rounds
    lease = await services.db["leases"].find_one({"_id": "workorder-sweep"})
    assert lease is not None
    holder = next(s for s in (services, other) if s.workorder_sweep.owner == lease["owner"])
    await holder.workorder_sweep.lease.release()
    waiting = other if holder is services else services
    clock.set(at(30, 10))  # the closing deadline of every order
    assert await waiting.workorder_sweep.run_once() == 12  # the lease passed on
    assert await holder.workorder_sweep.run_once() == 0  # held by the other now


@pytest.mark.gen_test(timeout=60)
async def test_a_sweep_that_read_an_order_before_another_escalated_it_writes_nothing(
    litigant: Litigant, staff: Staff, services: Services, other_app: Application, clock: FixedClock
) -> None:
    other: Services = other_app.settings["services"]
    supervisor = await staff("clerk", supervisor=True)
    desk = await desk_message(await litigant())
    clock.set(at(23, 11))
    stale = await other.workorder_sweep.due(clock.now())  # read, then beaten to it
    assert [str(d.id) for d in stale] == [desk]
    assert await services.workorder_sweep.sweep() == 1
    assert await other.workorder_sweep.escalate(stale, clock.now()) == (0, 0)
    assert await escalations(services, desk) == [("assign", 1)]
    assert len(await escalation_notices(services, uid(supervisor))) == 1
