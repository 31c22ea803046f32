"""A filing's whole journey as the people involved see it: the mini-program, the clerk's live
feed and inbox, WeChat subscribe messages through the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from miniapp_stubs.client import MiniProgram, StaffConsole
from server.app import Services
from tests.factories import PDF, Staff, complaint, id_number, next_kind, open_feed

PLAINTIFF_ID = id_number("19850301", "110105", "011")
DECIDED = "dev-tmpl-filing-decided"


@pytest.mark.gen_test(timeout=60)
async def test_file_correct_resubmit_accept_with_pushes(
    phone: Callable[[], MiniProgram], staff: Staff, services: Services
) -> None:
    services.feed.start()
    await asyncio.wait_for(services.feed.ready.wait(), 10)
    try:
        await _journey(phone, staff, services)
    finally:
        await services.feed.stop()


async def _journey(phone: Callable[[], MiniProgram], staff: Staff, services: Services) -> None:
    mp = await _signed_in(phone())
    clerk, elsewhere = await staff("clerk"), await staff("clerk", court_id="sh-pudong")
    clerk_feed, other_feed = await open_feed(clerk), await open_feed(elsewhere)

    templates = await mp.templates()
    assert "private-lending" in [t["id"] for t in templates.body["items"]]
    evidence = await mp.upload(PDF, "借条.pdf")
    body = complaint([evidence.body["id"]])
    body["plaintiffs"][0].update(name="王五", id_number=PLAINTIFF_ID)
    draft = await mp.create_filing(body)
    assert draft.status == 201, draft.body
    fid = draft.body["id"]
    assert (await mp.submit_filing(fid, "journey-submit-1")).status == 200

    assert await next_kind(clerk_feed) == "filing_submitted"  # live, at once
    with pytest.raises(TimeoutError):
        await other_feed.next(timeout=0.3)  # another court's clerk hears nothing
    listed = await clerk.review_queue()
    assert [i["id"] for i in listed.body["items"]] == [fid]
    file_res = await clerk.download(evidence.body["id"])  # the court may now read it
    assert file_res.status == 200 and file_res.content == PDF
    assert (await elsewhere.download(evidence.body["id"])).status == 404

    await _correction_reaches_the_phone(fid, clerk, mp, services)

    assert (
        await mp.update_filing(fid, {"facts": body["facts"] + "已补充银行流水。"})
    ).status == 200
    assert (await mp.submit_filing(fid, "journey-submit-2")).status == 200
    assert await next_kind(clerk_feed) == "filing_submitted"
    accepted = await clerk.accept_filing(fid, "simplified")
    assert accepted.status == 200 and accepted.body["case_no"].startswith("（2026）京0105民初")

    await _acceptance_reaches_the_phone(accepted.body["case_no"], mp, services)
    clerk_feed.close()
    other_feed.close()


async def _signed_in(mp: MiniProgram) -> MiniProgram:
    assert (await mp.login()).status == 200
    assert (await mp.verify_identity("王五", PLAINTIFF_ID, "13900001111")).status == 200
    granted = await mp.accept_subscriptions([DECIDED])  # the page asked; the user said yes
    assert granted.status == 200
    return mp


async def _correction_reaches_the_phone(
    fid: str, clerk: StaffConsole, mp: MiniProgram, services: Services
) -> None:
    corr = await clerk.request_correction(fid, ["请补充借款交付的银行流水"], due_days=10)
    assert corr.status == 200
    assert await services.outbox.run_once() >= 1
    sent = await mp.subscribe_messages()
    assert [m["template_id"] for m in sent] == [DECIDED]
    assert "补正" in str(sent[0]["data"])


async def _acceptance_reaches_the_phone(case_no: str, mp: MiniProgram, services: Services) -> None:
    await services.outbox.run_once()
    assert len(await mp.subscribe_messages()) == 1  # one grant, one send: no quota left
    inbox = await mp.notifications()
    assert [n["kind"] for n in inbox.body["items"]][:2] == ["filing_accepted", "filing_correction"]
    assert case_no in inbox.body["items"][0]["body"]
    mine = await mp.my_filings()
    assert mine.body["items"][0]["case_no"] == case_no
