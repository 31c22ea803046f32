"""Steps the console's journeys share: what the phone side does before a clerk looks, and
how a page says it is ready. Test modules import these, never each other."""

from __future__ import annotations

from typing import Any

from miniapp_stubs.client import MiniProgram
from tests.console.conftest import Court, text_pdf
from tests.factories import complaint, documents_served, id_number

SELF_ID = id_number("19800101", "110105", "201")


IOU = text_pdf("IOU: Zhang San owes 100,000 yuan", "Signed 2026-01-05")


async def file_one(mp: MiniProgram, **extra: Any) -> str:
    """What the mini-program's filing pages do: upload the evidence, draft, submit."""
    evidence = await mp.upload(IOU, "借条.pdf")
    assert evidence.status == 201, evidence.body
    body = complaint([evidence.body["id"]], **extra)
    body["plaintiffs"][0]["id_number"] = SELF_ID
    draft = await mp.create_filing(body)
    assert draft.status == 201, draft.body
    submitted = await mp.submit_filing(draft.body["id"])
    assert submitted.status == 200, submitted.body
    return str(draft.body["id"])


READY_MARK = """(name) => new Promise((resolve) => {
    const look = () => {
      const m = performance.getEntriesByName(name)[0];
      if (m) resolve(m.startTime); else setTimeout(look, 10);
    };
    look();
})"""


async def accepted_case(court: Court, mp: MiniProgram) -> tuple[str, str, str]:
    """A filed, accepted case with a judge and clerk: (case_id, judge username, clerk id)."""
    clerk_name, clerk_id = await court.staff("clerk", name="王书记员")
    judge_name, judge_id = await court.staff("judge", name="刘法官")
    clerk = await court.api_staff(clerk_name)
    filing_id = await file_one(mp)
    accepted = await clerk.accept_filing(filing_id)
    assert accepted.status == 200, accepted.body
    case_id = accepted.body["case_id"]
    await documents_served(clerk, case_id)  # made after the acceptance commits
    assert (await clerk.assign_case(case_id, judge_id, clerk_id)).status == 200
    return case_id, judge_name, clerk_name
