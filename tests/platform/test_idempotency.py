"""An Idempotency-Key's work commits with the key's mark (issue 18, point 2): a retry never
does the work twice, never replays an answer the database does not hold, and a failed attempt
frees the key at once, even when the database was down as it failed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from miniapp_stubs.client import MiniProgram
from server.app import Services
from server.platform.clock import FixedClock
from server.platform.db import Database, commits_with, in_transaction
from server.platform.errors import IdempotencyInProgress
from server.platform.idempotency import Claim, IdempotencyStore
from tests.factories import Staff, submitted

KEY = {"Idempotency-Key": "accept-0001-abcdef"}


def fail_once(obj: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``obj.name`` raises AutoReconnect (the database gone) on its first call only."""
    real = getattr(obj, name)
    calls: list[int] = []

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise AutoReconnect("connection closed")
        return await real(*args, **kwargs)

    monkeypatch.setattr(obj, name, flaky)
    return calls


@pytest.mark.gen_test(timeout=60)
async def test_work_committed_but_answer_lost_is_never_done_again(
    filer: Callable[[], Awaitable[MiniProgram]],
    staff: Staff,
    services: Services,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mp = await filer()
    clerk = await staff("clerk")
    filing = await submitted(mp)
    path = f"/api/v1/review/filings/{filing['id']}/accept"
    fail_once(services.idempotency, "finish", monkeypatch)  # the database goes after the commit
    first = await clerk.post(path, {"procedure": "ordinary"}, headers=KEY)
    assert (first.status, first.error_code) == (503, "database_unavailable")
    again = await clerk.post(path, {"procedure": "ordinary"}, headers=KEY)
    assert (again.status, again.error_code) == (409, "idempotency_answer_lost")
    assert await db["cases"].count_documents({"filing_id": filing["id"]}) == 1
    assert (await mp.get(f"/api/v1/filings/{filing['id']}")).body["status"] == "accepted"
    # an answer that was stored is replayed as it was
    other = await submitted(mp)
    key = {"Idempotency-Key": "accept-0002-abcdef"}
    other_path = f"/api/v1/review/filings/{other['id']}/accept"
    done = await clerk.post(other_path, {"procedure": "ordinary"}, headers=key)
    replay = await clerk.post(other_path, {"procedure": "ordinary"}, headers=key)
    assert done.status == 200 and (replay.status, replay.body) == (200, done.body)
    assert replay.headers.get("Idempotent-Replayed") == "true"


@pytest.mark.gen_test(timeout=60)
async def test_failed_attempt_frees_the_key_even_when_the_release_fails(
    filer: Callable[[], Awaitable[MiniProgram]],
    staff: Staff,
    services: Services,
    db: Database,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mp = await filer()
    clerk = await staff("clerk")
    filing = await submitted(mp)
    path = f"/api/v1/review/filings/{filing['id']}/accept"
    fail_once(services.review, "accept", monkeypatch)  # the database goes before the work
    fail_once(services.idempotency, "_delete", monkeypatch)  # and is still gone for the release
    first = await clerk.post(path, {"procedure": "ordinary"}, headers=KEY)
    assert (first.status, first.error_code) == (503, "database_unavailable")
    assert await db["cases"].count_documents({"filing_id": filing["id"]}) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("database unavailable: POST" in m and "AutoReconnect" in m for m in warned)

    held = await clerk.post(path, {"procedure": "ordinary"}, headers=KEY)
    assert (held.status, held.error_code) == (409, "idempotency_in_progress")
    clock.advance(seconds=6)  # the claim lapses within seconds, not after a minute
    done = await clerk.post(path, {"procedure": "ordinary"}, headers=KEY)
    assert done.status == 200, done.body
    assert done.body["case_no"]
    assert await db["cases"].count_documents({"filing_id": filing["id"]}) == 1


@pytest.mark.gen_test(timeout=30)
async def test_a_claim_taken_over_cannot_commit_its_work(db: Database, clock: FixedClock) -> None:
    store = IdempotencyStore(db, clock)
    ident = ("u1", "POST", "/api/v1/x", "key-00000001")
    first = await store.begin(*ident, b"{}")
    assert isinstance(first, Claim)
    clock.advance(seconds=6)  # its process died, a retry takes the key over
    second = await store.begin(*ident, b"{}")
    assert isinstance(second, Claim) and second.token != first.token

    async def work(session: Any) -> None:
        await db["things"].insert_one({"_id": "thing"}, session=session)

    with pytest.raises(IdempotencyInProgress), commits_with(lambda s: store.mark(first, s)):
        await in_transaction(db, work)  # the first one, waking up late
    assert await db["things"].count_documents({}) == 0
    with commits_with(lambda s: store.mark(second, s)):
        await in_transaction(db, work)
    assert (await db["idempotency"].find_one({"_id": second.doc_id}))["state"] == "applied"
    assert await db["things"].count_documents({}) == 1
    # the first one's failure does not free the key the second one's work holds
    await store.release(first)
    assert await db["idempotency"].count_documents({"_id": second.doc_id}) == 1
