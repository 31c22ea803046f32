"""A court's submissions under concurrency commit in groups (issue 18, point 4): each filing
filed once, its materials granted and every clerk told once, in the transaction of its move;
each answer what is stored, each Idempotency-Key replaying its own; a submission whose filing
changed meanwhile fails alone (read again: its own 409), and a key retried into the same group
does the work once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from bson import ObjectId

from miniapp_stubs.client import MiniProgram, Response
from server.app import Services
from server.filing.queue_chunks import Chunks
from server.platform import idempotency
from server.platform.clock import FixedClock
from server.platform.db import Database
from server.platform.group_commit import GroupCommit
from tests.factories import Staff, complaint, submitted, uid, upload
from tests.waiting import until

COURT = "bj-chaoyang"


def key(n: int) -> dict[str, str]:
    return {"Idempotency-Key": f"group-submit-{n:04d}"}


def submit(mp: MiniProgram, filing_id: str, n: int) -> asyncio.Future[Response]:
    return asyncio.ensure_future(mp.post(f"/api/v1/filings/{filing_id}/submit", headers=key(n)))


async def draft(mp: MiniProgram) -> str:
    res = await mp.post("/api/v1/filings", complaint([await upload(mp)]))
    assert res.status == 201, res.body
    return str(res.body["id"])


class Tries:
    """Each try of the court's submission groups (their filings' ids); a try holding
    ``held`` waits, in its transaction, until ``release``."""

    def __init__(self, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
        self.services = services
        self.tries: list[list[str]] = []
        self.held: str | None = None
        self.gate = asyncio.Event()
        work = services.filings._file_group

        async def recording(session: Any, group: list[Any]) -> Any:
            ids = [str(s.doc.id) for s in group]
            self.tries.append(ids)
            if self.held in ids:
                await self.gate.wait()
            return await work(session, group)

        monkeypatch.setattr(services.filings, "_file_group", recording)

    @property
    def queue(self) -> GroupCommit[Any, Any]:
        return self.services.filings._submitting(COURT)

    async def hold(self, mp: MiniProgram, n: int) -> asyncio.Future[Response]:
        """A submission whose group holds the court's queue: the next ones wait together."""
        self.held = await draft(mp)
        holding = submit(mp, self.held, n)
        await until(lambda: self.tries)
        return holding

    def release(self) -> None:
        self.gate.set()


@pytest.fixture
def tries(services: Services, monkeypatch: pytest.MonkeyPatch) -> Tries:
    return Tries(services, monkeypatch)


async def notices(db: Database, filing_id: str) -> list[tuple[str, str]]:
    """The clerks' notices of the filing: (recipient, dedupe key)."""
    found = db["inbox"].find({"kind": "filing_submitted", "data.filing_id": filing_id})
    return sorted([(d["user_id"], d["dedupe_key"]) async for d in found])


@pytest.mark.gen_test(timeout=120)
async def test_concurrent_submits_are_filed_once_announced_once_and_replayed(
    filer: Callable[[], Awaitable[MiniProgram]],
    staff: Staff,
    db: Database,
    tries: Tries,
) -> None:
    mp = await filer()
    clerks, judge = [await staff("clerk"), await staff("clerk")], await staff("judge")
    drafts = [await draft(mp) for _ in range(11)]
    corrected = (await submitted(mp))["id"]  # a resubmission takes the same path
    asked = {"items": ["补充借条原件照片"]}
    res = await clerks[0].post(f"/api/v1/review/filings/{corrected}/request-correction", asked)
    assert res.status == 200, res.body
    assert (await clerks[0].get("/api/v1/review/filings")).body["items"] == []  # chunks built
    await db["inbox"].delete_many({})
    del tries.tries[:]  # the first submission's

    ids = [*drafts, corrected]
    answers = await asyncio.gather(*(submit(mp, f, n) for n, f in enumerate(ids)))
    assert [a.status for a in answers] == [200] * 12, [a.body for a in answers]
    assert max(len(t) for t in tries.tries) > 1  # they did commit together
    assert sorted(f for t in tries.tries for f in t) == sorted(ids)  # each tried once
    for f, answer in zip(ids, answers, strict=True):
        seen = await mp.get(f"/api/v1/filings/{f}")
        assert answer.body == seen.body  # answered as stored
        actions = [d["action"] for d in seen.body["decisions"]]
        again = ["submitted", "correction_requested", "resubmitted"]
        assert actions == (again if f == corrected else ["submitted"])
        dedupe = f"filing:{f}:submitted:{4 if f == corrected else 2}"  # its version
        assert await notices(db, f) == sorted((uid(c), dedupe) for c in clerks)
        evidence = {"_id": {"$in": [ObjectId(e) for e in seen.body["evidence"]]}}
        files = db["files.files"].find(evidence)
        assert [COURT in d["metadata"]["court_ids"] async for d in files] == [True]
    assert await db["inbox"].count_documents({"user_id": uid(judge)}) == 0
    chunks = Chunks.from_doc(await db["filing_queue_chunks"].find_one({"_id": COURT}))
    assert sum(chunks.counts) == 12  # counted into the queue, each once
    queue = await clerks[1].get("/api/v1/review/filings?limit=50")
    assert sorted(i["id"] for i in queue.body["items"]) == sorted(ids)

    tried = len(tries.tries)
    replays = await asyncio.gather(*(submit(mp, f, n) for n, f in enumerate(ids)))
    for answer, replay in zip(answers, replays, strict=True):
        assert (replay.status, replay.body) == (200, answer.body)
        assert replay.headers.get("Idempotent-Replayed") == "true"
    assert len(tries.tries) == tried  # no work for the replays


@pytest.mark.gen_test(timeout=120)
async def test_a_submit_whose_filing_was_withdrawn_meanwhile_fails_alone(
    filer: Callable[[], Awaitable[MiniProgram]],
    staff: Staff,
    db: Database,
    tries: Tries,
) -> None:
    """Four submissions wait together behind a group; one's filing is withdrawn before their
    group's transaction: it gets its own 409 (read again: no longer editable, its key
    released), and the other three commit, tried again without it."""
    mp = await filer()
    clerk = await staff("clerk")
    holding = await tries.hold(mp, 0)
    drafts = [await draft(mp) for _ in range(4)]
    waiting = [submit(mp, f, n) for n, f in enumerate(drafts, 1)]
    await until(lambda: tries.queue.waiting == 4)
    withdrawn = await mp.post(f"/api/v1/filings/{drafts[1]}/withdraw")
    assert withdrawn.status == 200, withdrawn.body
    tries.release()
    assert (await holding).status == 200
    answers = await asyncio.gather(*waiting)
    assert [a.status for a in answers] == [200, 409, 200, 200], [a.body for a in answers]
    assert answers[1].error_code == "filing_not_editable"
    together = [sorted(t) for t in tries.tries[1:]]  # in the order they arrived
    assert together == [sorted(drafts), sorted([drafts[0], drafts[2], drafts[3]])]
    stored = await mp.get(f"/api/v1/filings/{drafts[1]}")
    assert [d["action"] for d in stored.body["decisions"]] == ["withdrawn"]
    assert await notices(db, drafts[1]) == []
    for f in (drafts[0], drafts[2], drafts[3]):
        assert [n[0] for n in await notices(db, f)] == [uid(clerk)]
    again = await mp.post(f"/api/v1/filings/{drafts[1]}/submit", headers=key(2))
    assert (again.status, again.error_code) == (409, "filing_not_editable")
    assert again.headers.get("Idempotent-Replayed") is None  # its key was released


@pytest.mark.gen_test(timeout=120)
async def test_one_filing_submitted_thrice_in_one_group_is_filed_once(
    filer: Callable[[], Awaitable[MiniProgram]],
    staff: Staff,
    db: Database,
    tries: Tries,
) -> None:
    """Three submissions of one draft (keys of their own), read as a draft by each and
    waiting in one group: one files it, the others get 409 as the second did one at a time."""
    mp = await filer()
    clerk = await staff("clerk")
    holding = await tries.hold(mp, 0)
    f = await draft(mp)
    waiting = [submit(mp, f, n) for n in range(1, 4)]
    await until(lambda: tries.queue.waiting == 3)
    tries.release()
    assert (await holding).status == 200
    answers = await asyncio.gather(*waiting)
    assert sorted(a.status for a in answers) == [200, 409, 409], [a.body for a in answers]
    assert {a.error_code for a in answers if a.status == 409} == {"filing_not_editable"}
    assert tries.tries[1] == [f, f, f]
    stored = await mp.get(f"/api/v1/filings/{f}")
    assert [d["action"] for d in stored.body["decisions"]] == ["submitted"]
    assert await notices(db, f) == [(uid(clerk), f"filing:{f}:submitted:2")]


@pytest.mark.gen_test(timeout=120)
async def test_a_key_and_its_retry_in_one_group_submit_once(
    filer: Callable[[], Awaitable[MiniProgram]],
    staff: Staff,
    db: Database,
    tries: Tries,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A submission waiting in the court's queue while its client, having heard nothing,
    retries with the same Idempotency-Key past the claim (taken over): both in one group,
    the key's holder files it, the first gets 409, and the key replays the holder's answer."""
    monkeypatch.setattr(idempotency, "RENEW_SECONDS", 60.0)  # the first one's renewals late
    mp = await filer()
    clerk = await staff("clerk")
    holding = await tries.hold(mp, 0)
    f = await draft(mp)
    first = submit(mp, f, 1)
    await until(lambda: tries.queue.waiting == 1)
    clock.advance(seconds=6)
    retry = submit(mp, f, 1)
    await until(lambda: tries.queue.waiting == 2)
    tries.release()
    assert (await holding).status == 200
    lost, won = await first, await retry
    assert (lost.status, lost.error_code) == (409, "idempotency_in_progress")
    assert won.status == 200, won.body
    assert tries.tries[1:] == [[f]]  # the first one's key refused before any work
    stored = await mp.get(f"/api/v1/filings/{f}")
    assert [d["action"] for d in stored.body["decisions"]] == ["submitted"]
    assert await notices(db, f) == [(uid(clerk), f"filing:{f}:submitted:2")]
    replay = await submit(mp, f, 1)
    assert (replay.status, replay.body) == (200, won.body)
    assert replay.headers.get("Idempotent-Replayed") == "true"
