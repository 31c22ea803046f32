"""The acceptance documents, made and served after the acceptance commits: they arrive; a
crash after the commit is completed by the recovery sweep, once; the worker and the sweep
(of two processes) racing serve one document per case and kind; the bytes are the same
whenever they are made."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import re
from collections import Counter
from typing import Any

import pytest
from pypdf import PdfReader
from tornado.web import Application

from miniapp_stubs.client import MiniProgram, StaffConsole
from server.app import Services
from server.filing.acceptance_documents import SWEEP_GRACE, make
from server.platform.clock import FixedClock
from tests.factories import (
    ACCEPTANCE_DOCUMENTS,
    DEFENDANT_ID,
    SELF_ID,
    Litigant,
    Staff,
    documents_served,
    submitted,
)


def code_of(data: bytes) -> str:
    """The 验证码 printed on a PDF."""
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    found = re.search(r"验证码：([0-9A-Z]{16})", re.sub(r"\s+", "", text))
    assert found, "no 验证码 on the document"
    return found.group(1)


EVERY_KIND = [*ACCEPTANCE_DOCUMENTS, "缴费通知书"]
VERIFY = "/api/v1/documents/verify"


async def accepted_without_worker(
    litigant: Litigant, staff: Staff, services: Services
) -> tuple[str, MiniProgram, StaffConsole]:
    """A case accepted while the worker is stopped, as if the process died at the commit:
    (case id, plaintiff, clerk)."""
    await services.acceptance_documents.stop()
    plaintiff = await litigant(identity=False)
    assert (await plaintiff.verify_identity("张三", SELF_ID, "13800138000")).status == 200
    defendant = await litigant(identity=False)
    assert (await defendant.verify_identity("李四", DEFENDANT_ID)).status == 200
    clerk = await staff("clerk")
    filing = await submitted(plaintiff, consent_electronic_service=True)
    res = await clerk.accept_filing(filing["id"])
    assert res.status == 200, res.body
    return str(res.body["case_id"]), plaintiff, clerk


async def owed_only(services: Services, case_id: str, clerk: StaffConsole) -> None:
    """The case, its fee notice and its debt committed; no document served yet."""
    owed = await services.cases.documents_owed(case_id)
    assert owed is not None and [k.value for k in owed.kinds] == EVERY_KIND
    assert (await clerk.documents(case_id)).body["items"] == []
    (notice,) = (await clerk.fees(case_id)).body["notices"]
    assert notice["document_id"] is None


async def served_once(
    services: Services, case_id: str, clerk: StaffConsole, plaintiff: MiniProgram
) -> list[dict[str, Any]]:
    """Exactly one document per kind, the fee notice pointing at its own, the debt gone, one
    送达 event and one push per document; each verifiable by its code."""
    docs = await documents_served(clerk, case_id)
    assert sorted(Counter(d["kind"] for d in docs).items()) == sorted((k, 1) for k in EVERY_KIND)
    assert await services.cases.documents_owed(case_id) is None
    (notice,) = (await clerk.fees(case_id)).body["notices"]
    assert notice["document_id"] == next(d["id"] for d in docs if d["kind"] == "缴费通知书")
    case = (await clerk.case(case_id)).body
    assert [e["kind"] for e in case["timeline"]].count("送达") == len(EVERY_KIND)
    told = await plaintiff.notifications()
    served_news = [n for n in told.body["items"] if n["kind"] == "document_served"]
    assert len(served_news) == len(EVERY_KIND)
    for doc in docs:
        opened = (await clerk.read_document(case_id, doc["id"])).body
        data = (await clerk.download(opened["file_id"])).content
        assert hashlib.sha256(data).hexdigest() == doc["sha256"]
        found = await clerk.get(f"{VERIFY}?code={code_of(data)}")
        assert found.status == 200 and found.body["sha256"] == doc["sha256"], found.body
        assert found.body["kind"] == doc["kind"]
    return docs


@pytest.mark.gen_test(timeout=90)
async def test_documents_arrive_after_the_acceptance(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    plaintiff = await litigant(identity=False)
    assert (await plaintiff.verify_identity("张三", SELF_ID, "13800138000")).status == 200
    clerk = await staff("clerk")
    filing = await submitted(plaintiff, consent_electronic_service=True)
    res = await clerk.accept_filing(filing["id"])
    assert res.status == 200, res.body
    case_id = str(res.body["case_id"])
    await served_once(services, case_id, clerk, plaintiff)
    mine = {d["kind"] for d in (await plaintiff.documents(case_id)).body["items"]}
    assert mine == set(EVERY_KIND)  # the plaintiff consented: each served to them


@pytest.mark.gen_test(timeout=90)
async def test_a_crash_after_the_commit_is_completed_by_the_sweep_once(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    case_id, plaintiff, clerk = await accepted_without_worker(litigant, staff, services)
    await owed_only(services, case_id, clerk)
    documents = services.acceptance_documents
    assert await documents.sweep() == 0  # within the grace, the debt is the worker's
    await owed_only(services, case_id, clerk)
    clock.advance(seconds=SWEEP_GRACE.total_seconds() + 1)
    assert await documents.sweep() == 1
    docs = await served_once(services, case_id, clerk, plaintiff)
    assert await documents.sweep() == 0  # nothing twice
    assert not await documents.complete(case_id)
    again = (await clerk.documents(case_id)).body["items"]
    assert [d["id"] for d in again] == [d["id"] for d in docs]


@pytest.mark.gen_test(timeout=120)
async def test_worker_and_sweeps_of_two_processes_racing_serve_each_kind_once(
    litigant: Litigant,
    staff: Staff,
    services: Services,
    other_app: Application,
    clock: FixedClock,
) -> None:
    other: Services = other_app.settings["services"]
    case_id, plaintiff, clerk = await accepted_without_worker(litigant, staff, services)
    clock.advance(seconds=SWEEP_GRACE.total_seconds() + 1)
    ours, theirs = services.acceptance_documents, other.acceptance_documents
    results = await asyncio.gather(
        ours.complete(case_id), theirs.complete(case_id), ours.sweep(), theirs.sweep()
    )
    assert sum(results) == 1, results
    await served_once(services, case_id, clerk, plaintiff)
    stored = await services.db["files.files"].count_documents(
        {"metadata.purpose": "court_document"}
    )
    assert stored == len(EVERY_KIND)  # the losers' files were undone with their transactions


@pytest.mark.gen_test(timeout=90)
async def test_the_same_bytes_whenever_they_are_made(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    """Made after the commit from the stored case (its times to the millisecond), the
    documents are the bytes made from the case as it was built (to the microsecond)."""
    case_id, plaintiff, clerk = await accepted_without_worker(litigant, staff, services)
    documents = services.acceptance_documents
    owed = await services.cases.documents_owed(case_id)
    assert owed is not None
    case = await services.cases.load(case_id)
    notice = await services.fees.unserved(case_id)
    making = documents.making(case, owed, notice)
    built = case.model_copy(update={"accepted_at": case.accepted_at.replace(microsecond=654321)})
    assert make(dataclasses.replace(making, case=built)) == make(making)
    expected = {kind.value: hashlib.sha256(pdf).hexdigest() for kind, pdf in make(making)}
    assert await documents.complete(case_id)
    docs = await served_once(services, case_id, clerk, plaintiff)
    assert {d["kind"]: d["sha256"] for d in docs} == expected
