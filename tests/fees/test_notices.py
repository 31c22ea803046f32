"""Fee notices: issued and served with the acceptance notice, relief decisions, the overdue
sweep, and the case's fee status."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from typing import Any

import pytest
from pypdf import PdfReader

from miniapp_stubs.client import MiniProgram, StaffConsole
from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import (
    FEE_100K,
    SELF_ID,
    STAFF_PASSWORD,
    Litigant,
    Staff,
    accepted_case,
    kinds,
    submitted,
)

# 100,000 yuan in dispute (Art. 13): 50 for the first 10,000, then 2.5% of 90,000 = 2,250.
# Accepted Monday 2026-11-23: 7 days from the day after is Monday 11-30, end of day Beijing.
DUE = "2026-11-30T15:59:59.999000Z"


def pdf_text(data: bytes) -> str:
    """The text on the PDF's pages, as a reader extracts it."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


async def fees(session: MiniProgram | StaffConsole, case_id: str) -> dict[str, Any]:
    res = await session.get(f"/api/v1/cases/{case_id}/fees")
    assert res.status == 200, res.body
    return dict(res.body)


async def served_text(mp: MiniProgram, case_id: str, kind: str) -> str:
    docs = (await mp.documents(case_id)).body["items"]
    (doc,) = [d for d in docs if d["kind"] == kind]
    opened = await mp.read_document(case_id, doc["id"])
    assert opened.status == 200, opened.body
    data = await mp.download(opened.body["file_id"])
    assert data.status == 200
    return pdf_text(data.content)


@pytest.mark.gen_test(timeout=60)
async def test_acceptance_issues_and_serves_the_fee_notice(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    case_id, plaintiff, defendant, clerk = await accepted_case(litigant, staff)
    (notice,) = (await fees(plaintiff, case_id))["notices"]
    assert notice["fee_kind"] == "property" and notice["basis_amount_fen"] == 10_000_000
    assert notice["full_fee_fen"] == FEE_100K and notice["amount_fen"] == FEE_100K
    assert notice["status"] == "pending" and notice["paid_fen"] == 0
    assert notice["due_at"] == DUE and notice["overdue"] is False

    case = (await plaintiff.case(case_id)).body
    assert case["fees"] == {
        "status": "pending",
        "amount_fen": FEE_100K,
        "paid_fen": 0,
        "due_at": DUE,
    }
    kinds_served = sorted(d["kind"] for d in case["documents"])
    assert kinds_served == ["举证通知书", "受理通知书", "缴费通知书", "诉讼权利义务告知书"]
    assert [e["kind"] for e in case["timeline"]] == ["立案", "送达", "送达", "送达", "送达"]

    acceptance = await served_text(plaintiff, case_id, "受理通知书")
    code = case["query_code"]
    assert code and f"案件查询码：{code}" in acceptance.replace("\n", "")
    assert case["case_no"] in acceptance.replace("\n", "")
    fee_text = (await served_text(plaintiff, case_id, "缴费通知书")).replace("\n", "")
    assert "2,300.00元" in fee_text and "2026年11月30日前" in fee_text and "按撤诉处理" in fee_text

    # the defendant is not served the plaintiffs' notices and does not see their query code
    assert (await defendant.documents(case_id)).body["items"] == []
    assert (await fees(defendant, case_id))["notices"][0]["amount_fen"] == FEE_100K
    assert "fee_overdue" not in await kinds(clerk)


@pytest.mark.gen_test(timeout=60)
async def test_simplified_procedure_halves_the_fee(litigant: Litigant, staff: Staff) -> None:
    case_id, plaintiff, _, _ = await accepted_case(litigant, staff, procedure="simplified")
    (notice,) = (await fees(plaintiff, case_id))["notices"]
    assert notice["full_fee_fen"] == FEE_100K // 2 and notice["amount_fen"] == FEE_100K // 2


@pytest.mark.gen_test(timeout=60)
async def test_fee_relief_is_decided_at_acceptance(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    relief = {"fee_relief": {"type": "reduce", "reason": "低保户，无力全额缴纳"}}
    plaintiff = await litigant(identity=False)
    assert (await plaintiff.verify_identity("张三", SELF_ID)).status == 200
    clerk = await staff("clerk")
    filing = await submitted(plaintiff, **relief)

    undecided = await clerk.accept_filing(filing["id"])
    assert undecided.status == 422 and undecided.error_code == "fee_relief_undecided"
    too_much = await clerk.accept_filing(
        filing["id"], fee_relief={"grant": "reduce", "amount_fen": FEE_100K}
    )
    assert too_much.status == 422 and too_much.error_code == "fee_relief_amount"
    mismatched = await clerk.accept_filing(filing["id"], fee_relief={"grant": "reduce"})
    assert mismatched.status == 422
    assert await services.db["cases"].count_documents({}) == 0  # nothing half written
    assert await services.db["fee_notices"].count_documents({}) == 0

    ok = await clerk.accept_filing(
        filing["id"], fee_relief={"grant": "reduce", "amount_fen": 100_000, "reason": "核实"}
    )
    assert ok.status == 200, ok.body
    (notice,) = (await fees(plaintiff, ok.body["case_id"]))["notices"]
    assert notice["full_fee_fen"] == FEE_100K and notice["amount_fen"] == 100_000
    assert notice["relief"] == "reduce"


@pytest.mark.gen_test(timeout=60)
async def test_a_waived_fee(litigant: Litigant, staff: Staff) -> None:
    waive = {"fee_relief": {"type": "waive", "reason": "特困供养人员"}}
    case_id, plaintiff, _, _ = await accepted_case(
        litigant, staff, filing=waive, fee_relief={"grant": "waive"}
    )
    (notice,) = (await fees(plaintiff, case_id))["notices"]
    assert notice["status"] == "waived" and notice["amount_fen"] == 0
    assert (await plaintiff.case(case_id)).body["fees"]["status"] == "waived"


@pytest.mark.gen_test(timeout=60)
async def test_a_deferred_fee(litigant: Litigant, staff: Staff) -> None:
    defer = {"fee_relief": {"type": "defer", "reason": "暂时困难"}}
    # 2027-01-01 is New Year's Day: the last day moves to the next working day
    case_id, plaintiff, _, _ = await accepted_case(
        litigant, staff, filing=defer, fee_relief={"grant": "defer", "due_date": "2027-01-01"}
    )
    (notice,) = (await fees(plaintiff, case_id))["notices"]
    due = dt.datetime.fromisoformat(notice["due_at"].replace("Z", "+00:00"))
    assert due.astimezone(dt.timezone(dt.timedelta(hours=8))).date() > dt.date(2027, 1, 1)
    assert notice["amount_fen"] == FEE_100K and notice["relief"] == "defer"


@pytest.mark.gen_test(timeout=60)
async def test_relief_only_when_asked_for(litigant: Litigant, staff: Staff) -> None:
    plaintiff = await litigant(identity=False)
    assert (await plaintiff.verify_identity("张三", SELF_ID)).status == 200
    clerk = await staff("clerk")
    filing = await submitted(plaintiff)
    res = await clerk.accept_filing(filing["id"], fee_relief={"grant": "waive"})
    assert res.status == 422 and res.error_code == "fee_relief_not_requested"


@pytest.mark.gen_test(timeout=60)
async def test_unpaid_past_deadline_flags_the_case_once(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    case_id, plaintiff, _, clerk = await accepted_case(litigant, staff)
    clock.set(dt.datetime(2026, 11, 30, 15, 59, tzinfo=dt.UTC))  # 23:59 Beijing, the last day
    assert await services.fees.sweep_overdue() == 0
    clock.set(dt.datetime(2026, 11, 30, 16, 0, 1, tzinfo=dt.UTC))
    flagged = await asyncio.gather(services.fees.sweep_overdue(), services.fees.sweep_overdue())
    assert sorted(flagged) == [0, 1]
    assert await services.fees.sweep_overdue() == 0

    await clerk.login(clerk.user["username"], STAFF_PASSWORD)  # type: ignore[index]
    await plaintiff.login()  # a week on: the old sessions have expired
    assert (await kinds(clerk)).count("fee_overdue") == 1
    case = (await clerk.case(case_id)).body
    assert case["fees"]["status"] == "overdue"
    assert case["timeline"][-1]["kind"] == "缴费逾期"
    assert (await services.cases.load(case_id)).fee_overdue is True
    assert (await fees(plaintiff, case_id))["notices"][0]["overdue"] is True


@pytest.mark.gen_test(timeout=60)
async def test_execution_cases_prepay_nothing(litigant: Litigant, staff: Staff) -> None:
    case_id, plaintiff, _, _ = await accepted_case(
        litigant, staff, filing={"case_kind": "execution", "cause": "申请执行"}
    )
    assert (await fees(plaintiff, case_id))["notices"] == []
    case = (await plaintiff.case(case_id)).body
    assert case["fees"]["status"] == "not_issued"
    assert [d["kind"] for d in case["documents"]] == [
        "受理通知书",
        "诉讼权利义务告知书",
        "举证通知书",
    ]


@pytest.mark.gen_test(timeout=60)
async def test_fees_are_the_case_readers_only(litigant: Litigant, staff: Staff) -> None:
    case_id, _, _, _ = await accepted_case(litigant, staff)
    stranger = await litigant()
    other_court = await staff("clerk", court_id="sh-pudong")
    for who in (stranger, other_court):
        res = await who.get(f"/api/v1/cases/{case_id}/fees")
        assert res.status == 404 and res.error_code == "case_not_found"
