"""Edge cases found in review: odd input never becomes a 500, and nothing leaks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import pytest

from miniapp_stubs.client import MiniProgram
from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import SELF_ID, Litigant, Staff, complaint, submitted, upload

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
NOT_NULLABLE = [
    "plaintiffs",
    "defendants",
    "claims",
    "evidence",
    "elements",
    "green_channel",
    "consent_electronic_service",
]
#: too large, a NUL or a space in a key, nested, a list, a float, too many keys
BAD_ELEMENTS: list[dict[str, object]] = [
    {"x": 10**30},
    {"a\u0000b": 1},
    {"Bad Key": "v"},
    {"x": {"nested": 1}},
    {"x": [1, 2]},
    {"x": 1.5},
    {f"k{i}": 1 for i in range(61)},
]
#: base64 of: [], [1, 2], [null], ["x"], not json, [true, "bad", "x"], [true, 1, "<24 zeros>"]
BAD_CURSORS = [
    "W10",
    "WzEsIDJd",
    "W251bGxd",
    "WyJ4Il0",
    "bm90IGpzb24",
    "W3RydWUsICJiYWQiLCAieCJd",
    "W3RydWUsIDEsICIwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAiXQ",
]


@pytest.mark.gen_test
async def test_nulls_are_refused_and_the_filing_stays_readable(
    filer: Callable[[], Awaitable[MiniProgram]], services: Services
) -> None:
    mp = await filer()
    draft = await mp.create_filing(complaint([await upload(mp)]))
    fid = draft.body["id"]
    for field in NOT_NULLABLE:
        res = await mp.update_filing(fid, {field: None})
        assert (res.status, res.error_code) == (422, "validation_failed"), field
    res = await mp.create_filing(
        {"court_id": "bj-chaoyang", "case_kind": "civil", "plaintiffs": None}
    )
    assert res.status == 422
    cleared = await mp.update_filing(fid, {"fee_relief": None, "amount_fen": None})
    assert cleared.status == 200 and cleared.body["amount_fen"] is None
    assert (await mp.filing(fid)).status == 200
    assert (await mp.my_filings()).status == 200
    assert await services.db["filings"].count_documents({}) == 1


@pytest.mark.gen_test
async def test_elements_are_flat_bounded_values(
    filer: Callable[[], Awaitable[MiniProgram]],
) -> None:
    mp = await filer()
    draft = await mp.create_filing(complaint([await upload(mp)]))
    fid = draft.body["id"]
    for elements in BAD_ELEMENTS:
        res = await mp.update_filing(fid, {"elements": elements})
        assert (res.status, res.error_code) == (422, "validation_failed"), elements
    ok = await mp.update_filing(fid, {"elements": {"loan_amount_fen": 100, "note": "借条"}})
    assert ok.status == 200
    res = await mp.submit_filing(fid)  # elements without a template
    assert res.status == 422
    assert ["elements"] in [d["loc"] for d in res.body["error"]["details"]]


@pytest.mark.gen_test
async def test_odd_tokens_cursors_and_bodies_are_4xx(
    filer: Callable[[], Awaitable[MiniProgram]], staff: Staff
) -> None:
    mp = await filer()
    admin = await staff("admin")
    clerk = await staff("clerk")
    for token in ["a.é", "é.é", "\u00ff" * 40]:
        res = await mp.get("/api/v1/me", token=token)
        assert (res.status, res.error_code) == (401, "invalid_token")
    paged = [
        (mp, "/api/v1/filings"),
        (admin, "/api/v1/admin/staff"),
        (admin, "/api/v1/admin/lawyers"),
        (clerk, "/api/v1/review/filings"),
        (mp, "/api/v1/notifications"),
    ]
    for cursor in BAD_CURSORS:
        for session, path in paged:
            res = await session.get(f"{path}?cursor={cursor}")
            assert (res.status, res.error_code) == (400, "invalid_cursor"), (path, cursor)
    deep = b"[" * 5000 + b"]" * 5000
    res = await mp.request("POST", "/api/v1/filings", raw=deep)
    assert (res.status, res.error_code) == (400, "malformed_json")
    for query in ["limit=abc", "limit=-1", "status=lost"]:
        assert (await mp.get(f"/api/v1/filings?{query}")).status == 422


@pytest.mark.gen_test
async def test_full_width_digits_are_the_same_number(
    litigant: Litigant, filer: Callable[[], Awaitable[MiniProgram]]
) -> None:
    holder = await filer()  # holds SELF_ID
    other = await litigant(identity=False)
    failed = await other.verify_identity("张三", SELF_ID.translate(FULL_WIDTH), outcome="fail")
    assert (failed.status, failed.error_code) == (422, "face_verification_failed")
    # the same number: a passing face verification moves it from the holder
    res = await other.verify_identity("张三", SELF_ID.translate(FULL_WIDTH))
    assert res.status == 200 and res.body["identity"]["status"] == "verified"
    assert (await holder.me()).body["identity"] is None
    mp = await litigant()
    code = "91１１０１０５MA01ABCD1X"
    res = await mp.create_filing(
        complaint(
            [],
            defendants=[
                {"type": "organization", "name": "某公司", "credit_code": code, "address": "北京"}
            ],
        )
    )
    assert res.status == 422
    assert ["defendants", 0, "credit_code"] in [d["loc"] for d in res.body["error"]["details"]]


@pytest.mark.gen_test
async def test_an_unfiled_withdrawn_draft_stays_private(
    filer: Callable[[], Awaitable[MiniProgram]], staff: Staff, litigant: Litigant
) -> None:
    mp = await filer()
    clerk = await staff("clerk")
    draft = await mp.create_filing(complaint([await upload(mp)]))
    assert (await mp.withdraw_filing(draft.body["id"])).status == 200
    assert (await clerk.filing(draft.body["id"])).status == 404
    assert (await clerk.accept_filing(draft.body["id"])).status == 404
    assert (await mp.filing(draft.body["id"])).body["status"] == "withdrawn"


@pytest.mark.gen_test
async def test_one_complete_correction_notice_only(
    filer: Callable[[], Awaitable[MiniProgram]], staff: Staff
) -> None:
    mp = await filer()
    clerk = await staff("clerk")
    filing = await submitted(mp)
    assert (await clerk.request_correction(filing["id"], ["补充证据"])).status == 200
    assert (await mp.submit_filing(filing["id"])).status == 200
    again = await clerk.request_correction(filing["id"], ["再补充"])
    assert (again.status, again.error_code) == (409, "correction_already_requested")


@pytest.mark.gen_test
async def test_a_stuck_idempotency_claim_passes_to_a_retry(
    filer: Callable[[], Awaitable[MiniProgram]], services: Services, clock: FixedClock
) -> None:
    mp = await filer()
    draft = await mp.create_filing(complaint([await upload(mp)]))
    fid = draft.body["id"]
    path = f"/api/v1/filings/{fid}/submit"
    # a process claimed the key and died before answering
    await services.idempotency.begin(mp.user["id"], "POST", path, "retry-key-0001", b"")  # type: ignore[index]
    key = {"Idempotency-Key": "retry-key-0001"}
    busy = await mp.post(path, headers=key)
    assert (busy.status, busy.error_code) == (409, "idempotency_in_progress")
    clock.advance(seconds=61)
    retried = await mp.post(path, headers=key)
    assert retried.status == 200 and retried.body["status"] == "submitted"
    replay = await mp.post(path, headers=key)
    assert replay.body == retried.body and replay.headers["Idempotent-Replayed"] == "true"
    assert dt.datetime.fromisoformat(retried.body["submitted_at"]) == clock.now()
