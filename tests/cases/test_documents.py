"""Electronic service (电子送达): consent, serving, read receipts, service certificates."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from typing import Any

import pytest

from miniapp_stubs.client import ApiSession
from models.cases import Viewer
from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import PDF, START, Litigant, Staff, accepted_case, kinds, submitted

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def iso(when: Any) -> str:
    return str(when.isoformat().replace("+00:00", "Z"))


async def pdf(session: ApiSession, name: str = "受理通知书.pdf") -> tuple[str, bytes]:
    data = PDF + name.encode()
    res = await session.upload(data, name, "other")
    assert res.status == 201, res.body
    return str(res.body["id"]), data


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in doc["recipients"]}


@pytest.mark.gen_test(timeout=60)
async def test_served_read_and_certified(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    case_id, plaintiff, defendant, clerk = await accepted_case(litigant, staff)
    case = await services.cases.load(case_id)
    assert case.plaintiffs[0].e_service is not None
    assert case.plaintiffs[0].e_service.address == "移动微法院账户；13800138000"
    assert case.defendants[0].e_service is None

    file_id, data = await pdf(clerk)
    served = await clerk.serve_document(
        case_id, file_id, "受理通知书", idempotency_key="serve-first"
    )
    assert served.status == 201, served.body
    doc = served.body
    assert doc["sha256"] == hashlib.sha256(data).hexdigest() and doc["title"] == "受理通知书"
    lines = by_name(doc)
    assert lines["张三"]["method"] == "electronic"
    assert lines["张三"]["delivered_at"] == iso(START)
    assert lines["李四"] == {**lines["李四"], "method": "paper", "delivered_at": None}
    assert "document_served" in await kinds(plaintiff)
    assert "document_served" not in await kinds(defendant)
    timeline = (await services.cases.load(case_id)).timeline
    assert [e.kind for e in timeline] == ["立案", *["送达"] * 4, "送达"]  # four at acceptance

    # the plaintiff reads it: read once, the first time kept
    first = clock.advance(hours=2)
    read = await plaintiff.read_document(case_id, doc["id"])
    assert read.status == 200, read.body
    assert read.body["download_url"] == f"/api/v1/files/{file_id}"
    assert [r["name"] for r in read.body["recipients"]] == ["张三"]
    assert read.body["recipients"][0]["read_at"] == iso(first)
    clock.advance(hours=3)
    again = await plaintiff.read_document(case_id, doc["id"])
    assert again.body["recipients"][0]["read_at"] == iso(first)
    assert (await clerk.read_document(case_id, doc["id"])).status == 200  # no read receipt
    assert (await plaintiff.download(file_id)).content == data
    staff_read = await clerk.read_document(case_id, doc["id"])
    assert by_name(staff_read.body)["李四"]["read_at"] is None

    # served to someone else: nothing to see
    assert (await defendant.read_document(case_id, doc["id"])).status == 404
    assert (await defendant.certificate(case_id, doc["id"])).status == 404
    assert (await defendant.download(file_id)).status == 404

    cert = await clerk.certificate(case_id, doc["id"])
    assert cert.status == 200, cert.body
    assert cert.body["case_no"] == case.case_no
    assert cert.body["document"]["sha256"] == hashlib.sha256(data).hexdigest()
    lines = {r["party_name"]: r for r in cert.body["recipients"]}
    assert lines["张三"]["delivered_at"] == iso(START)
    assert lines["张三"]["read_at"] == iso(first)
    assert lines["张三"]["served_by"] == "李四"  # the clerk's name in the staff fixture
    assert lines["李四"]["method"] == "paper"
    own = await plaintiff.certificate(case_id, doc["id"])
    assert [r["party_name"] for r in own.body["recipients"]] == ["张三"]


@pytest.mark.gen_test(timeout=60)
async def test_consent_from_the_case_and_the_next_document(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    case_id, plaintiff, defendant, clerk = await accepted_case(litigant, staff)
    first_id, _ = await pdf(clerk)
    first = await clerk.serve_document(case_id, first_id, "受理通知书")
    assert by_name(first.body)["李四"]["method"] == "paper"

    clock.advance(hours=2)
    assert (await defendant.consent(case_id, True, "not-a-phone")).status == 422
    res = await defendant.consent(case_id, True, "13900139000")
    assert res.status == 200, res.body
    assert res.body["agree"] is True and res.body["address"] == "移动微法院账户；13900139000"
    case = await services.cases.load(case_id)
    assert case.defendants[0].e_service is not None
    assert case.timeline[-1].kind == "同意电子送达"

    summons_id, _ = await pdf(clerk, "传票.pdf")
    summons = await clerk.serve_document(case_id, summons_id, "传票", title="开庭传票")
    lines = by_name(summons.body)
    assert lines["李四"]["method"] == "electronic"
    assert lines["李四"]["address"] == "移动微法院账户；13900139000"
    assert lines["李四"]["delivered_at"] == iso(clock.now())
    assert "document_served" in await kinds(defendant)

    # each sees what was served to them; staff see everything
    mine = await defendant.documents(case_id)
    assert [d["title"] for d in mine.body["items"]] == ["开庭传票"]
    theirs = await plaintiff.documents(case_id)
    # the four generated at acceptance, then the clerk's
    generated = ["受理通知书", "诉讼权利义务告知书", "举证通知书", "缴费通知书"]
    titles = [*generated, "受理通知书", "开庭传票"]
    assert [d["title"] for d in theirs.body["items"]] == titles
    assert clerk.user is not None
    staff_user = await services.users.get(str(clerk.user["id"]))
    listed = await services.service.documents_for(staff_user, case, Viewer.staff)
    assert len(listed) == 6 and len(listed[4].recipients) == 2

    # withdrawing consent is recorded, and the next document goes on paper
    assert (await plaintiff.consent(case_id, False)).status == 200
    assert (await services.cases.load(case_id)).timeline[-1].kind == "撤回电子送达同意"
    ruling_id, _ = await pdf(clerk, "裁定书.pdf")
    ruling = await clerk.serve_document(case_id, ruling_id, "裁定书")
    assert by_name(ruling.body)["张三"]["method"] == "paper"


@pytest.mark.gen_test(timeout=60)
async def test_strangers_and_other_courts_get_404(litigant: Litigant, staff: Staff) -> None:
    case_id, plaintiff, _, clerk = await accepted_case(litigant, staff)
    file_id, _ = await pdf(clerk)
    doc_id = (await clerk.serve_document(case_id, file_id, "受理通知书")).body["id"]
    stranger = await litigant()
    other_clerk = await staff("clerk", court_id="sh-pudong")
    other_file, _ = await pdf(other_clerk)
    for session in (stranger, other_clerk):
        assert (await session.read_document(case_id, doc_id)).status == 404
        assert (await session.certificate(case_id, doc_id)).status == 404
        assert (await session.documents(case_id)).status == 404
    assert (await stranger.consent(case_id)).status == 404
    res = await other_clerk.serve_document(case_id, other_file, "传票")
    assert (res.status, res.error_code) == (404, "case_not_found")
    # a document id of this case under another case's path
    second = await submitted(plaintiff, consent_electronic_service=True)
    other_case = (await clerk.accept_filing(second["id"])).body["case_id"]
    assert (await clerk.read_document(other_case, doc_id)).status == 404
    assert (await plaintiff.read_document(case_id, "0" * 24)).status == 404


@pytest.mark.gen_test(timeout=60)
async def test_bad_requests_leave_nothing(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    case_id, plaintiff, _, clerk = await accepted_case(litigant, staff)
    other_clerk = await staff("clerk")
    png = await clerk.upload(PNG, "scan.png", "other")
    theirs, _ = await pdf(other_clerk)
    evidence, _ = await pdf(plaintiff)
    mine, _ = await pdf(clerk)
    party_ids = [p.party_id for p in (await services.cases.load(case_id)).parties()]
    bad = [
        ({"file_id": png.body["id"], "kind": "传票"}, "document_not_pdf"),
        ({"file_id": theirs, "kind": "传票"}, "file_not_owned"),
        ({"file_id": evidence, "kind": "传票"}, "file_not_owned"),
        ({"file_id": mine, "kind": "通知"}, "validation_failed"),
        ({"file_id": mine, "kind": "传票", "recipients": ["nobody"]}, "unknown_party"),
        ({"file_id": mine, "kind": "传票", "recipients": []}, "validation_failed"),
        ({"file_id": "x", "kind": "传票"}, "validation_failed"),
        ({"file_id": mine, "kind": "传票", "extra": 1}, "validation_failed"),
    ]
    for body, code in bad:
        res = await clerk.post(f"/api/v1/cases/{case_id}/documents", body)
        assert (res.status, res.error_code) == (422, code), (body, res.body)
    # only the four documents generated at acceptance
    assert await services.db["served_documents"].count_documents({}) == 4
    timeline = (await services.cases.load(case_id)).timeline
    assert [e.kind for e in timeline] == ["立案", *["送达"] * 4]
    assert (await kinds(plaintiff)).count("document_served") == 4
    assert await services.db["audit"].count_documents({"action": "document.serve"}) == 4

    # only the chosen recipients; an idempotent retry serves once
    body = {"file_id": mine, "kind": "传票", "recipients": party_ids[:1]}
    path = f"/api/v1/cases/{case_id}/documents"
    first = await clerk.post(path, body, headers={"Idempotency-Key": "serve-once-1"})
    again = await clerk.post(path, body, headers={"Idempotency-Key": "serve-once-1"})
    assert first.status == again.status == 201 and first.body == again.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert [r["party_id"] for r in first.body["recipients"]] == party_ids[:1]
    assert await services.db["served_documents"].count_documents({}) == 5  # 4 + this one
    notices = await plaintiff.notifications()
    assert [n["kind"] for n in notices.body["items"]].count("document_served") == 5


@pytest.mark.gen_test(timeout=60)
async def test_without_consent_at_filing_all_on_paper(litigant: Litigant, staff: Staff) -> None:
    case_id, plaintiff, _, clerk = await accepted_case(litigant, staff, consent=False)
    file_id, _ = await pdf(clerk)
    doc = await clerk.serve_document(case_id, file_id, "缴费通知书")
    assert {r["method"] for r in doc.body["recipients"]} == {"paper"}
    assert (await plaintiff.read_document(case_id, doc.body["id"])).status == 404
    assert (await plaintiff.documents(case_id)).body["items"] == []


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_first_reads_record_one_time(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    case_id, plaintiff, _, clerk = await accepted_case(litigant, staff)
    file_id, _ = await pdf(clerk)
    doc_id = (await clerk.serve_document(case_id, file_id, "判决书")).body["id"]
    clock.advance(minutes=5)
    reads = await asyncio.gather(*(plaintiff.read_document(case_id, doc_id) for _ in range(5)))
    times = {r.body["recipients"][0]["read_at"] for r in reads}
    assert times == {iso(clock.now())}
    clock.advance(minutes=5)
    cert = await clerk.certificate(case_id, doc_id)
    lines = {r["party_name"]: r for r in cert.body["recipients"]}
    assert lines["张三"]["read_at"] == iso(START + dt.timedelta(minutes=5))


@pytest.mark.gen_test(timeout=60)
async def test_paper_service_is_recorded_once_with_its_proof(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    case_id, plaintiff, defendant, clerk = await accepted_case(litigant, staff)
    file_id, _ = await pdf(clerk, "传票.pdf")
    served = (await clerk.serve_document(case_id, file_id, "传票")).body
    lines = by_name(served)
    assert lines["李四"]["method"] == "paper" and lines["李四"]["delivered_at"] is None
    li_si = lines["李四"]["party_id"]
    receipt = await clerk.upload(PNG, "回证.png", "other")
    clock.advance(hours=3)
    signed = (clock.now() - dt.timedelta(hours=1)).isoformat()
    body = {
        "party_id": li_si,
        "way": "邮寄送达",
        "delivered_at": signed,
        "receipt_file_id": receipt.body["id"],
        "note": "EMS 1234",
    }

    far = await staff("clerk", court_id="sh-pudong")
    assert (await far.record_paper_service(case_id, served["id"], body)).status == 404
    refused = await plaintiff.post(
        f"/api/v1/cases/{case_id}/documents/{served['id']}/paper-service", body
    )
    assert refused.status == 403
    bad = [
        ({**body, "delivered_at": (clock.now() + dt.timedelta(hours=1)).isoformat()}, 422),
        ({**body, "delivered_at": "2026-11-01T10:00:00+08:00"}, 422),  # before it was sent
        ({**body, "delivered_at": "2026-11-24T10:00:00"}, 422),  # no time zone
        ({**body, "way": "托人带去"}, 422),
        ({**body, "party_id": "nobody"}, 422),
        ({**body, "receipt_file_id": "0" * 24}, 422),
        ({**body, "party_id": lines["张三"]["party_id"]}, 409),  # served electronically
    ]
    for wrong, status in bad:
        res = await clerk.record_paper_service(case_id, served["id"], wrong)
        assert res.status == status, (wrong, res.body)

    done = await clerk.record_paper_service(case_id, served["id"], body)
    assert done.status == 200, done.body
    line = by_name(done.body)["李四"]
    assert line["paper_way"] == "邮寄送达" and line["delivered_at"] is not None
    again = await clerk.record_paper_service(case_id, served["id"], body)
    assert (again.status, again.error_code) == (409, "already_served")
    cert = (await clerk.certificate(case_id, served["id"])).body
    (paper,) = [r for r in cert["recipients"] if r["party_name"] == "李四"]
    assert paper["paper_way"] == "邮寄送达" and paper["receipt_file_id"] == receipt.body["id"]
    timeline = (await services.cases.load(case_id)).timeline
    assert timeline[-1].kind == "送达" and "邮寄送达：李四（EMS 1234）" in (timeline[-1].note or "")
    # served on paper: still not readable in the app
    assert (await defendant.read_document(case_id, served["id"])).status == 404
