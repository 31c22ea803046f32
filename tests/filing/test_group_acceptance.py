"""A court's acceptances under concurrency commit in groups (issue 18, point 4): their case
numbers gapless and consecutive, every answer what is stored, each Idempotency-Key replaying its
own answer, and an acceptance whose filing was decided meanwhile failing alone with its 409."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from miniapp_stubs.client import MiniProgram, Response
from server.app import Services
from server.platform.db import Database
from tests.factories import Staff, submitted

ACCEPT = {"procedure": "ordinary"}


def key(n: int) -> dict[str, str]:
    return {"Idempotency-Key": f"group-accept-{n:04d}"}


@pytest.mark.gen_test(timeout=90)
async def test_concurrent_acceptances_are_gapless_stored_as_answered_and_replayed(
    filer: Callable[[], Awaitable[MiniProgram]], staff: Staff, db: Database
) -> None:
    mp = await filer()
    clerks = [await staff("clerk"), await staff("judge")]
    filings = [await submitted(mp) for _ in range(12)]
    paths = [f"/api/v1/review/filings/{f['id']}/accept" for f in filings]

    answers: list[Response] = await asyncio.gather(
        *(clerks[i % 2].post(p, ACCEPT, headers=key(i)) for i, p in enumerate(paths))
    )
    assert [a.status for a in answers] == [200] * 12, [a.body for a in answers]
    numbers = [a.body["case_no"] for a in answers]
    assert sorted(numbers) == sorted(f"（2026）京0105民初{n}号" for n in range(1, 13))

    for f, answer in zip(filings, answers, strict=True):
        case = await db["cases"].find_one({"filing_id": f["id"]})
        assert case is not None
        assert (str(case["_id"]), case["case_no"]) == (
            answer.body["case_id"],
            answer.body["case_no"],
        )
        seen = await mp.get(f"/api/v1/filings/{f['id']}")
        assert (seen.body["status"], seen.body["case_no"]) == ("accepted", answer.body["case_no"])
        assert answer.body["filing"]["case_id"] == answer.body["case_id"]
        assert await db["fee_notices"].count_documents({"case_id": answer.body["case_id"]}) == 1
        assert await db["documents_owed"].count_documents({"_id": answer.body["case_id"]}) == 1

    replays = await asyncio.gather(
        *(clerks[i % 2].post(p, ACCEPT, headers=key(i)) for i, p in enumerate(paths))
    )
    for answer, replay in zip(answers, replays, strict=True):
        assert (replay.status, replay.body) == (200, answer.body)
        assert replay.headers.get("Idempotent-Replayed") == "true"
    assert await db["cases"].count_documents({}) == 12


@pytest.mark.gen_test(timeout=90)
async def test_an_acceptance_of_a_filing_decided_meanwhile_fails_alone(
    filer: Callable[[], Awaitable[MiniProgram]],
    staff: Staff,
    db: Database,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same filing accepted twice at once, among others: both read it pending and wait in
    the court's queue together; one is accepted, the other gets its 409 (its key released),
    and the rest commit, numbered without a gap."""
    mp = await filer()
    clerk = await staff("clerk")
    filings = [await submitted(mp) for _ in range(6)]
    paths = [f"/api/v1/review/filings/{f['id']}/accept" for f in filings]
    twice = [*paths, paths[0]]
    groups: list[int] = []
    register = services.review._register

    async def counting(session: object, group: list[object]) -> object:
        groups.append(len(group))
        return await register(session, group)  # type: ignore[arg-type]

    monkeypatch.setattr(services.review, "_register", counting)
    answers = await asyncio.gather(
        *(clerk.post(p, ACCEPT, headers=key(100 + i)) for i, p in enumerate(twice))
    )
    statuses = [a.status for a in answers]
    assert sorted(statuses) == [200] * 6 + [409], [a.body for a in answers]
    assert {answers[0].status, answers[-1].status} == {200, 409}
    lost = answers[0] if answers[0].status == 409 else answers[-1]
    assert lost.error_code == "filing_not_pending"
    won = [a for a in answers if a.status == 200]
    assert sorted(a.body["case_no"] for a in won) == sorted(
        f"（2026）京0105民初{n}号" for n in range(1, 7)
    )
    assert await db["cases"].count_documents({"filing_id": filings[0]["id"]}) == 1
    assert max(groups) > 1  # they did commit together
    # the failed attempt released its key: a retry runs again, and is still a 409
    lost_key = key(100) if lost is answers[0] else key(100 + 6)
    again = await clerk.post(paths[0], ACCEPT, headers=lost_key)
    assert (again.status, again.error_code) == (409, "filing_not_pending")
    assert again.headers.get("Idempotent-Replayed") is None
