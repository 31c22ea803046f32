"""Online filing: drafts, submission, review decisions, case numbers, pushes."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from miniapp_stubs.client import MiniProgram, StaffConsole
from server.app import Services
from server.identity.creditcode import credit_check_char
from server.platform.clock import FixedClock
from tests.factories import (
    DEFENDANT_ID,
    SELF_ID,
    STAFF_PASSWORD,
    Litigant,
    Staff,
    complaint,
    kinds,
    submitted,
    upload,
)

COMPANY = "91110105MA01" + "ABCD1"
COMPANY += credit_check_char(COMPANY)


@pytest.mark.gen_test(timeout=30)
async def test_from_draft_to_case(
    filer: Callable[[], Awaitable[MiniProgram]],
    litigant: Litigant,
    staff: Staff,
    services: Services,
) -> None:
    mp = await filer()
    defendant = await litigant(identity=False)
    assert (await defendant.verify_identity("李四", DEFENDANT_ID)).status == 200
    clerk, other_clerk = await staff("clerk"), await staff("clerk", court_id="sh-pudong")

    filing = await submitted(mp)
    assert filing["status"] == "submitted"
    assert filing["plaintiffs"][0]["id_number_masked"] == "110***********" + SELF_ID[-4:]
    assert SELF_ID not in str(filing) and DEFENDANT_ID not in str(filing)
    # submitted Monday 2026-11-23; 7 days from the day after: Monday 11-30, end of day Beijing
    assert filing["review_deadline"] == "2026-11-30T15:59:59.999000Z"
    assert "filing_submitted" in await kinds(clerk)
    assert "filing_submitted" not in await kinds(other_clerk)

    await _queued_for_its_court_only(filing["id"], clerk, other_clerk, defendant)
    path = f"/api/v1/review/filings/{filing['id']}/accept"
    accepted = await clerk.post(path, {"procedure": "simplified"})
    assert accepted.status == 200, accepted.body
    assert accepted.body["case_no"] == "（2026）京0105民初1号"
    assert accepted.body["filing"]["status"] == "accepted"
    again = await clerk.post(path, {"procedure": "simplified"})
    assert (again.status, again.error_code) == (409, "filing_not_pending")

    mine = await mp.get(f"/api/v1/filings/{filing['id']}")
    assert mine.body["case_no"] == "（2026）京0105民初1号"
    assert [d["action"] for d in mine.body["decisions"]] == ["submitted", "accepted"]
    assert mine.body["decisions"][1]["by"] == clerk.user["id"]  # type: ignore[index]
    assert "filing_accepted" in await kinds(mp)
    case = await services.db["cases"].find_one({"_id": _oid(accepted.body["case_id"])})
    assert case is not None and case["case_no"] == accepted.body["case_no"]
    assert sorted(case["party_user_ids"]) == sorted([mp.user["id"], defendant.user["id"]])  # type: ignore[index]
    assert case["timeline"][0]["kind"] == "立案" and case["procedure"] == "simplified"
    assert "query_code" not in case and len(services.cases.query_code(case)) == 8
    assert "filing_accepted" in await kinds(defendant)  # linked by identity, told at once


async def _queued_for_its_court_only(
    filing_id: str, clerk: StaffConsole, other_clerk: StaffConsole, defendant: MiniProgram
) -> None:
    """In its court's review queue, with the working days left; nobody else sees it."""
    queue = await clerk.get("/api/v1/review/filings")
    assert [i["id"] for i in queue.body["items"]] == [filing_id]
    assert queue.body["items"][0]["working_days_left"] == 5
    assert queue.body["items"][0]["overdue"] is False
    assert (await other_clerk.get("/api/v1/review/filings")).body["items"] == []
    assert (await other_clerk.get(f"/api/v1/filings/{filing_id}")).status == 404
    path = f"/api/v1/review/filings/{filing_id}/accept"
    assert (await other_clerk.post(path, {"procedure": "ordinary"})).status == 404
    assert (await defendant.get(f"/api/v1/filings/{filing_id}")).status == 404


def _oid(value: str) -> Any:
    from bson import ObjectId

    return ObjectId(value)


@pytest.mark.gen_test
async def test_submit_lists_every_missing_item(
    filer: Callable[[], Awaitable[MiniProgram]], services: Services
) -> None:
    mp = await filer()
    draft = await mp.post("/api/v1/filings", {"court_id": "bj-chaoyang", "case_kind": "civil"})
    assert draft.status == 201 and draft.body["status"] == "draft"
    res = await mp.post(f"/api/v1/filings/{draft.body['id']}/submit")
    assert (res.status, res.error_code) == (422, "filing_incomplete")
    locs = {tuple(d["loc"]) for d in res.body["error"]["details"]}
    assert {
        ("cause",),
        ("plaintiffs",),
        ("defendants",),
        ("claims",),
        ("facts",),
        ("evidence",),
    } <= locs
    assert all(d["msg"] for d in res.body["error"]["details"])
    stored = await services.db["filings"].find_one({"_id": _oid(draft.body["id"])})
    assert stored is not None and stored["status"] == "draft"


BadDraft = tuple[dict[str, Any], str, tuple[Any, ...] | None]


def _bad_drafts(mine: str, theirs: str, bad_id: str) -> list[BadDraft]:
    """Drafts that must be refused: (body, error code, the location named in the details)."""
    bad_company = {"type": "organization", "name": "某公司", "credit_code": COMPANY[:-1] + "0"}
    return [
        (complaint([mine], court_id="nowhere"), "unknown_court", ("court_id",)),
        (complaint([mine], case_kind="space_law"), "unknown_case_kind", ("case_kind",)),
        (
            complaint([mine], plaintiffs=[{"name": "张三", "id_number": bad_id}]),
            "invalid_filing",
            ("plaintiffs", 0, "id_number"),
        ),
        (
            complaint([mine], defendants=[bad_company]),
            "invalid_filing",
            ("defendants", 0, "credit_code"),
        ),
        (complaint([theirs]), "invalid_filing", ("evidence",)),
        (complaint([mine], template_id="no-such-form"), "invalid_filing", ("template_id",)),
        (complaint([mine], amount_fen=-1), "validation_failed", None),
        (complaint([mine], amount_fen=10**20), "validation_failed", None),
        (complaint([mine], amount_fen="many"), "validation_failed", None),
        (complaint(["not-an-id"]), "validation_failed", None),
        (complaint([mine], colour="red"), "validation_failed", None),
        ({"court_id": "bj-chaoyang"}, "validation_failed", None),
    ]


@pytest.mark.gen_test
async def test_bad_drafts_are_refused_and_nothing_is_written(
    filer: Callable[[], Awaitable[MiniProgram]], litigant: Litigant, services: Services
) -> None:
    mp = await filer()
    other = await litigant()
    theirs = await upload(other)
    mine = await upload(mp)
    bad_id = SELF_ID[:17] + ("1" if SELF_ID[17] != "1" else "2")
    cases = _bad_drafts(mine, theirs, bad_id)
    for body, code, loc in cases:
        res = await mp.post("/api/v1/filings", body)
        assert (res.status, res.error_code) == (422, code), (body, res.body)
        if loc:
            assert list(loc) in [d["loc"] for d in res.body["error"]["details"]]
        assert bad_id not in str(res.body)
    assert await services.db["filings"].count_documents({}) == 0
    company = {
        "type": "organization",
        "name": "某科技有限公司",
        "credit_code": COMPANY,
        "address": "北京市朝阳区某路3号",
    }
    ok = await mp.post("/api/v1/filings", complaint([mine], defendants=[company]))
    assert ok.status == 201 and ok.body["defendants"][0]["credit_code"] == COMPANY


@pytest.mark.gen_test
async def test_submitted_filings_are_frozen_and_submit_is_idempotent(
    filer: Callable[[], Awaitable[MiniProgram]], litigant: Litigant
) -> None:
    mp = await filer()
    draft = await mp.post("/api/v1/filings", complaint([await upload(mp)]))
    fid = draft.body["id"]
    stranger = await litigant()
    assert (await stranger.post(f"/api/v1/filings/{fid}/submit")).status == 404
    assert (await stranger.request("PATCH", f"/api/v1/filings/{fid}", {"cause": "x"})).status == 404
    key = {"Idempotency-Key": "submit-0001-abcdef"}
    first = await mp.post(f"/api/v1/filings/{fid}/submit", headers=key)
    assert first.status == 200
    replay = await mp.post(f"/api/v1/filings/{fid}/submit", headers=key)
    assert replay.status == 200 and replay.body == first.body
    assert replay.headers.get("Idempotent-Replayed") == "true"
    twice = await mp.post(f"/api/v1/filings/{fid}/submit")
    assert (twice.status, twice.error_code) == (409, "filing_not_editable")
    edit = await mp.request("PATCH", f"/api/v1/filings/{fid}", {"cause": "买卖合同纠纷"})
    assert (edit.status, edit.error_code) == (409, "filing_not_editable")
    reused = await mp.post(f"/api/v1/filings/{fid}/withdraw", headers=key)
    assert reused.status == 200  # a key is scoped to its endpoint
    assert (await mp.get(f"/api/v1/filings/{fid}")).body["status"] == "withdrawn"


@pytest.mark.gen_test(timeout=30)
async def test_correction_restarts_the_clock(
    filer: Callable[[], Awaitable[MiniProgram]], staff: Staff, clock: FixedClock
) -> None:
    mp = await filer()
    clerk = await staff("clerk")
    filing = await submitted(mp)
    fid = filing["id"]
    base = f"/api/v1/review/filings/{fid}"
    empty = await clerk.post(f"{base}/request-correction", {"items": []})
    assert empty.status == 422
    res = await clerk.post(
        f"{base}/request-correction", {"items": ["补充借条原件照片", "补充转账记录"], "due_days": 7}
    )
    assert res.status == 200, res.body
    assert res.body["status"] == "correction_requested"
    assert res.body["correction"]["items"] == ["补充借条原件照片", "补充转账记录"]
    assert "filing_correction" in await kinds(mp)
    assert (await clerk.post(f"{base}/accept", {})).status == 409
    assert (await clerk.get("/api/v1/review/filings")).body["items"] == []

    clock.advance(days=3)  # Thursday 2026-11-26
    evidence = [filing["evidence"][0], await upload(mp, "转账记录.pdf")]
    patched = await mp.request("PATCH", f"/api/v1/filings/{fid}", {"evidence": evidence})
    assert patched.status == 200 and patched.body["evidence"] == evidence
    again = await mp.post(f"/api/v1/filings/{fid}/submit")
    assert again.status == 200
    # 7 days from Friday 11-27 end on Thursday 12-03
    assert again.body["review_deadline"] == "2026-12-03T15:59:59.999000Z"
    assert [d["action"] for d in again.body["decisions"]] == [
        "submitted",
        "correction_requested",
        "resubmitted",
    ]
    assert (await clerk.get("/api/v1/me")).error_code == "token_expired"  # 12-hour staff sessions
    assert (await clerk.login(clerk.user["username"], STAFF_PASSWORD)).status == 200  # type: ignore[index]
    accepted = await clerk.post(f"{base}/accept", {})
    assert accepted.status == 200


@pytest.mark.gen_test
async def test_rejection_needs_a_reason_and_is_final(
    filer: Callable[[], Awaitable[MiniProgram]], staff: Staff, services: Services
) -> None:
    mp = await filer()
    clerk = await staff("judge")
    filing = await submitted(mp)
    base = f"/api/v1/review/filings/{filing['id']}"
    assert (await clerk.post(f"{base}/reject", {})).status == 422
    assert (await clerk.post(f"{base}/reject", {"reason": " "})).status == 422
    res = await clerk.post(f"{base}/reject", {"reason": "不属于本院管辖，请向有管辖权的法院起诉"})
    assert res.status == 200 and res.body["status"] == "rejected"
    assert res.body["decisions"][-1]["reason"].startswith("不属于本院管辖")
    assert "filing_rejected" in await kinds(mp)
    assert (await clerk.post(f"{base}/accept", {})).status == 409
    assert (await mp.post(f"/api/v1/filings/{filing['id']}/withdraw")).status == 409
    audit = await services.db["audit"].find_one({"action": "filing.rejected"})
    assert audit is not None and audit["target"] == filing["id"]


@pytest.mark.gen_test
async def test_a_withdrawn_filing_cannot_be_accepted(
    filer: Callable[[], Awaitable[MiniProgram]], staff: Staff
) -> None:
    mp = await filer()
    clerk = await staff("clerk")
    filing = await submitted(mp)
    assert (await mp.post(f"/api/v1/filings/{filing['id']}/withdraw")).status == 200
    res = await clerk.post(f"/api/v1/review/filings/{filing['id']}/accept", {})
    assert (res.status, res.error_code) == (409, "filing_not_pending")


@pytest.mark.gen_test(timeout=30)
async def test_a_lawyer_files_for_a_client(litigant: Litigant, staff: Staff) -> None:
    client = await litigant(identity=False)
    assert (await client.verify_identity("张三", SELF_ID, "13800138000")).status == 200
    lawyer = await litigant(name="周律师")
    draft = await lawyer.post("/api/v1/filings", complaint([], as_agent=True))
    assert (draft.status, draft.error_code) == (403, "lawyer_not_verified")
    res = await lawyer.register_lawyer("11101201510123456", "北京市某某律师事务所")
    admin = await staff("admin", court_id=None)
    assert (await admin.verify_lawyer(res.body["id"])).status == 200

    evidence = await upload(lawyer)
    draft = await lawyer.post("/api/v1/filings", complaint([evidence], as_agent=True))
    assert draft.status == 201, draft.body
    fid = draft.body["id"]
    missing = await lawyer.post(f"/api/v1/filings/{fid}/submit")
    assert [d["loc"] for d in missing.body["error"]["details"]] == [["power_of_attorney"]]
    poa = await upload(lawyer, "授权委托书.pdf", "power_of_attorney")
    assert (
        await lawyer.request("PATCH", f"/api/v1/filings/{fid}", {"power_of_attorney": poa})
    ).status == 200
    assert (await lawyer.post(f"/api/v1/filings/{fid}/submit")).status == 200
    seen = await client.get(f"/api/v1/filings/{fid}")
    assert seen.status == 200 and seen.body["as_agent"] is True
    assert (await client.download(evidence)).status == 200  # the client reads the materials
    assert (await client.post(f"/api/v1/filings/{fid}/withdraw")).status == 404  # filer only
    clerk = await staff("clerk")
    assert (await clerk.post(f"/api/v1/review/filings/{fid}/accept", {})).status == 200
    assert "filing_accepted" in await kinds(client)
    assert "filing_accepted" in await kinds(lawyer)


@pytest.mark.gen_test(timeout=60)
async def test_case_numbers_have_no_gaps_or_repeats_under_concurrency(
    filer: Callable[[], Awaitable[MiniProgram]], staff: Staff
) -> None:
    mp = await filer()
    clerks = [await staff("clerk"), await staff("judge")]
    civil = [await submitted(mp) for _ in range(8)]
    admin_case = await submitted(mp, case_kind="administrative", cause="行政处罚")

    async def accept(i: int, filing: dict[str, Any]) -> str:
        res = await clerks[i % 2].post(f"/api/v1/review/filings/{filing['id']}/accept", {})
        assert res.status == 200, res.body
        return str(res.body["case_no"])

    numbers = await asyncio.gather(*(accept(i, f) for i, f in enumerate(civil)))
    assert set(numbers) == {f"（2026）京0105民初{n}号" for n in range(1, 9)}
    assert len(set(numbers)) == 8
    assert await accept(0, admin_case) == "（2026）京0105行初1号"


@pytest.mark.gen_test(timeout=30)
async def test_queue_puts_green_channel_first_then_deadline(
    filer: Callable[[], Awaitable[MiniProgram]], staff: Staff, clock: FixedClock
) -> None:
    mp = await filer()
    first = await submitted(mp)
    clock.advance(days=1)
    clerk = await staff("clerk")
    second = await submitted(mp)
    prosecution = await submitted(mp, case_kind="private_prosecution", cause="侮辱罪")
    green = await submitted(mp, green_channel=["migrant_wages"])
    expected = [green["id"], first["id"], second["id"], prosecution["id"]]
    seen: list[str] = []
    cursor = None
    while True:
        res = await clerk.get(
            "/api/v1/review/filings?limit=3" + (f"&cursor={cursor}" if cursor else "")
        )
        assert res.status == 200, res.body
        seen += [i["id"] for i in res.body["items"]]
        cursor = res.body["next_cursor"]
        if not cursor:
            break
    assert seen == expected
    assert (await clerk.get("/api/v1/review/filings?cursor=bad")).status == 400


@pytest.mark.gen_test(timeout=30)
async def test_deadline_sweep_reminds_clerks_once(
    filer: Callable[[], Awaitable[MiniProgram]],
    staff: Staff,
    clock: FixedClock,
    services: Services,
) -> None:
    mp = await filer()
    clerk = await staff("clerk")
    filing = await submitted(mp)  # due end of Monday 2026-11-30
    assert await services.review.sweep_deadlines() == 0
    clock.set(dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC))  # Monday 09:00 Beijing
    assert await services.review.sweep_deadlines() == 1
    assert await services.review.sweep_deadlines() == 0
    await clerk.login(clerk.user["username"], STAFF_PASSWORD)  # type: ignore[index]
    queue = await clerk.get("/api/v1/review/filings")
    assert queue.body["items"][0]["deadline_flag"] == "due_soon"
    clock.set(dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC))
    assert await services.review.sweep_deadlines() == 1
    await clerk.login(clerk.user["username"], STAFF_PASSWORD)  # type: ignore[index]
    item = (await clerk.get("/api/v1/review/filings")).body["items"][0]
    assert item["overdue"] is True and item["deadline_flag"] == "overdue"
    assert item["id"] == filing["id"]
    assert (await kinds(clerk)).count("filing_deadline") == 2
