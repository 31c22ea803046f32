"""Edge cases of cases found in review: nothing odd becomes a 500, closed cases keep no
hearings, read receipts cannot be skipped, consent repeats change nothing."""

from __future__ import annotations

import base64
import json

import pytest
from bson import ObjectId

from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import PDF, TUESDAY, Litigant, Staff, assigned_case, plaintiff, relogin


def cursor(values: list[object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.gen_test(timeout=60)
async def test_edge_dates_are_4xx(litigant: Litigant, staff: Staff) -> None:
    client, clerk, judge = await plaintiff(litigant), await staff("clerk"), await staff("judge")
    case_id, _ = await assigned_case(client, clerk, judge)
    for when in ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]:
        for session in (client, clerk):
            res = await session.get(f"/api/v1/cases?cursor={cursor([when, str(ObjectId())])}")
            assert (res.status, res.error_code) == (400, "invalid_cursor")
        queue = f"/api/v1/review/filings?cursor={cursor([False, when, str(ObjectId())])}"
        assert (await clerk.get(queue)).status == 400
    for at in ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", 1798000000]:
        res = await clerk.post(f"/api/v1/cases/{case_id}/hearings", {"at": at, "room": "A"})
        assert (res.status, res.error_code) == (422, "validation_failed"), at
    res = await clerk.schedule_hearing(case_id, TUESDAY.format("09:30"), "A\u0000")
    assert res.status == 422


@pytest.mark.gen_test(timeout=60)
async def test_room_spellings_are_one_room(litigant: Litigant, staff: Staff) -> None:
    client, clerk, judge = await plaintiff(litigant), await staff("clerk"), await staff("judge")
    first, _ = await assigned_case(client, clerk, judge)
    second, _ = await assigned_case(client, clerk, judge)
    assert (await clerk.schedule_hearing(first, TUESDAY.format("09:30"), "第1法庭")).status == 201
    res = await clerk.schedule_hearing(second, TUESDAY.format("10:00"), " 第１法庭")
    assert (res.status, res.error_code) == (409, "hearing_room_taken")


@pytest.mark.gen_test(timeout=90)
async def test_a_closed_case_keeps_no_hearing(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    client, clerk, judge = await plaintiff(litigant), await staff("clerk"), await staff("judge")
    case_id, _ = await assigned_case(client, clerk, judge)
    other, _ = await assigned_case(client, clerk, judge)
    assert (await clerk.schedule_hearing(case_id, TUESDAY.format("09:30"), "A")).status == 201
    later = await clerk.schedule_hearing(case_id, "2026-11-26T10:00:00+08:00", "A")
    assert later.status == 201
    clock.set(clock.now().replace(day=24, hour=3))  # Tuesday 11:00 Beijing: the first began
    await relogin(clerk)
    for kind in ["庭审", "宣判", "结案"]:
        res = await clerk.case_event(case_id, kind)
        assert res.status == 200, (kind, res.body)
    hearing = await services.db["hearings"].find_one({"_id": ObjectId(later.body["id"])})
    assert hearing is not None and hearing["status"] == "cancelled"
    clock.set(clock.now().replace(day=25))  # Wednesday: the day before the dropped hearing
    assert await services.hearings.sweep_reminders() == 0
    await relogin(clerk)
    freed = await clerk.schedule_hearing(other, "2026-11-26T10:30:00+08:00", "A")
    assert freed.status == 201, freed.body


@pytest.mark.gen_test(timeout=60)
async def test_a_recipient_reaches_the_file_only_through_the_document(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    client, clerk, judge = await plaintiff(litigant), await staff("clerk"), await staff("judge")
    case_id, _ = await assigned_case(client, clerk, judge)
    assert (await client.consent(case_id, True, "13800138000")).status == 200
    upload = await clerk.upload(PDF, "举证通知书.pdf", "other")
    served = await clerk.serve_document(case_id, upload.body["id"], "举证通知书")
    assert served.status == 201, served.body
    doc_id = served.body["id"]
    listed = (await client.case(case_id)).body["documents"]
    assert listed and all(d["file_id"] is None and d["download_url"] is None for d in listed)
    assert all(d["file_id"] is None for d in (await client.documents(case_id)).body["items"])
    read = await client.get(f"/api/v1/cases/{case_id}/documents/{doc_id}")
    assert read.status == 200 and read.body["download_url"].endswith(upload.body["id"])
    assert read.body["recipients"][0]["read_at"] is not None
    staff_docs = (await clerk.case(case_id)).body["documents"]
    (staff_view,) = [d for d in staff_docs if d["id"] == doc_id]
    assert staff_view["file_id"] == upload.body["id"]


@pytest.mark.gen_test(timeout=60)
async def test_consent_repeats_change_nothing(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    client, clerk, judge = await plaintiff(litigant), await staff("clerk"), await staff("judge")
    case_id, _ = await assigned_case(client, clerk, judge)
    before = await services.db["cases"].find_one({"_id": ObjectId(case_id)})
    assert before is not None
    first = await client.consent(case_id, True, "13800138000")
    for _ in range(5):
        again = await client.consent(case_id, True, "13800138000")
        assert again.status == 200 and again.body == first.body
    after = await services.db["cases"].find_one({"_id": ObjectId(case_id)})
    assert after is not None
    entries = len(after["timeline"]) - len(before["timeline"])
    res = await client.post(f"/api/v1/cases/{case_id}/consent", {"agree": 1})
    assert res.status == 422
    assert entries == 1  # the first consent only: the repeats wrote nothing
