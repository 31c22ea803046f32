"""Group commit (issue 18, point 4): the transactions waiting for one sequence commit together,
with consecutive numbers and each item's own Idempotency-Key hook; an item that fails alone
gets its own error and the others commit without it, with no number lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import AutoReconnect, OperationFailure

from server.platform.clock import FixedClock
from server.platform.counters import Counters
from server.platform.db import Database, commits_with
from server.platform.errors import IdempotencyInProgress
from server.platform.group_commit import Excluded, GroupCommits
from server.platform.idempotency import Claim, IdempotencyStore
from tests.waiting import until

KEY = "test|group"


class Refused(Exception):
    """An item's own failure."""


class Ledger:
    """A group's work: the items' numbers taken at once, then one insert of them all; an item
    named ``bad-…`` fails alone. Records each group's items."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.counters = Counters(db)
        self.groups: list[list[str]] = []

    async def work(self, session: AsyncClientSession, items: list[str]) -> list[int]:
        self.groups.append(list(items))
        first = await self.counters.take(KEY, session, len(items))
        numbers = list(range(first, first + len(items)))
        docs = [{"_id": item, "seq": n} for item, n in zip(items, numbers, strict=True)]
        await self.db["ledger"].insert_many(docs, session=session)
        bad = {i: Refused(item) for i, item in enumerate(items) if item.startswith("bad-")}
        if bad:
            raise Excluded(bad)
        return numbers

    async def stored(self) -> dict[str, int]:
        return {d["_id"]: d["seq"] async for d in self.db["ledger"].find()}


async def run_all(ledger: Ledger, items: list[str]) -> list[Any]:
    group = GroupCommits(ledger.db).group(KEY, ledger.work)
    return await asyncio.gather(*(group.run(i) for i in items), return_exceptions=True)


@pytest.mark.gen_test(timeout=30)
async def test_waiting_items_commit_together_with_consecutive_numbers(db: Database) -> None:
    ledger = Ledger(db)
    items = [f"item-{i}" for i in range(12)]
    answers = await run_all(ledger, items)
    assert sorted(answers) == list(range(1, 13))
    assert await ledger.stored() == dict(zip(items, answers, strict=True))
    assert len(ledger.groups) < len(items)  # they waited together, not one at a time
    more = await run_all(ledger, ["item-12", "item-13"])
    assert sorted(more) == [13, 14]  # the sequence goes on, gapless


@pytest.mark.gen_test(timeout=30)
async def test_an_item_that_fails_gets_its_own_error_and_the_others_commit(
    db: Database,
) -> None:
    ledger = Ledger(db)
    items = ["a-1", "bad-1", "a-2", "a-3", "bad-2", "a-4"]
    answers = dict(zip(items, await run_all(ledger, items), strict=True))
    assert isinstance(answers["bad-1"], Refused) and str(answers["bad-1"]) == "bad-1"
    assert isinstance(answers["bad-2"], Refused) and str(answers["bad-2"]) == "bad-2"
    good = {i: a for i, a in answers.items() if not i.startswith("bad-")}
    assert sorted(good.values()) == [1, 2, 3, 4]  # the failed attempt gave its numbers back
    assert await ledger.stored() == good
    assert ledger.groups[-1] == ["a-1", "a-2", "a-3", "a-4"]  # tried again without them


@pytest.mark.gen_test(timeout=30)
async def test_each_item_commits_with_its_own_hook(db: Database) -> None:
    """Each request's ``commits_with`` hook (its Idempotency-Key's mark) runs in the group's
    transaction; a hook that refuses (its key taken over) fails its item alone."""
    ledger = Ledger(db)
    group = GroupCommits(db).group(KEY, ledger.work)

    async def request(item: str) -> int:
        async def mark(session: AsyncClientSession) -> None:
            if item == "taken-over":
                raise Refused(item)
            await db["marks"].insert_one({"_id": item}, session=session)

        with commits_with(mark):
            return await group.run(item)

    items = ["k-1", "taken-over", "k-2", "k-3"]
    done = await asyncio.gather(*map(request, items), return_exceptions=True)
    answers = dict(zip(items, done, strict=True))
    assert isinstance(answers.pop("taken-over"), Refused)
    assert sorted(answers.values()) == [1, 2, 3]
    assert {d["_id"] async for d in db["marks"].find()} == {"k-1", "k-2", "k-3"}
    assert await ledger.stored() == answers


@pytest.mark.gen_test(timeout=30)
async def test_a_database_error_fails_every_item_of_the_group(db: Database) -> None:
    ledger = Ledger(db)

    async def gone(session: AsyncClientSession, items: list[str]) -> list[int]:
        await ledger.work(session, items)
        raise AutoReconnect("connection closed")  # as the driver raises a database gone

    group = GroupCommits(db).group(KEY, gone)
    answers = await asyncio.gather(*(group.run(f"x-{i}") for i in range(5)), return_exceptions=True)
    assert all(isinstance(a, AutoReconnect) for a in answers)
    assert await ledger.stored() == {}  # nothing of the group committed
    assert await db["counters"].count_documents({}) == 0


@pytest.mark.gen_test(timeout=30)
async def test_keys_are_marked_together_and_a_key_taken_over_fails_alone(
    db: Database, clock: FixedClock
) -> None:
    """The members' Idempotency-Keys are marked in one write (``Mark.together``); the one
    whose key a retry took over (its request woke late) gets 409 ``idempotency_in_progress``
    and its work does not commit; the others' keys are ``applied`` with their work."""
    store = IdempotencyStore(db, clock)
    claims = {}
    for name in ("late", "k-1", "k-2"):
        claim = await store.begin("u1", "POST", f"/api/v1/{name}", f"key-{name}-0001", b"{}")
        assert isinstance(claim, Claim)
        claims[name] = claim
    clock.advance(seconds=6)
    retry = await store.begin("u1", "POST", "/api/v1/late", "key-late-0001", b"{}")
    assert isinstance(retry, Claim)  # the retry took the first one's key over
    for name in ("k-1", "k-2"):  # the others renewed theirs meanwhile (``hold``)
        await db["idempotency"].update_one(
            {"_id": claims[name].doc_id}, {"$set": {"claimed_until": clock.now()}}
        )
    ledger = Ledger(db)
    group = GroupCommits(db).group(KEY, ledger.work)

    async def request(name: str) -> int:
        with commits_with(store.marking(claims[name])):
            return await group.run(name)

    names = ["k-1", "late", "k-2"]
    done = await asyncio.gather(*map(request, names), return_exceptions=True)
    answers = dict(zip(names, done, strict=True))
    assert isinstance(answers.pop("late"), IdempotencyInProgress)
    assert sorted(answers.values()) == [1, 2]
    assert await ledger.stored() == answers
    states = {d["_id"]: d["state"] async for d in db["idempotency"].find()}
    assert states == {
        claims["k-1"].doc_id: "applied",
        claims["k-2"].doc_id: "applied",
        retry.doc_id: "running",  # the retry's, to do its own work
    }


@pytest.mark.gen_test(timeout=30)
async def test_a_key_and_its_retry_in_one_group_do_the_work_once(
    db: Database, clock: FixedClock
) -> None:
    """A request and the retry that took its key over, waiting in the same group: only the
    key's holder (by its token) commits its work; the other gets 409."""
    store = IdempotencyStore(db, clock)
    first = await store.begin("u1", "POST", "/api/v1/messages", "key-dup-0001", b"{}")
    assert isinstance(first, Claim)
    clock.advance(seconds=6)  # the first one's renewals late: a retry takes the key over
    retry = await store.begin("u1", "POST", "/api/v1/messages", "key-dup-0001", b"{}")
    assert isinstance(retry, Claim) and retry.token != first.token
    ledger = Ledger(db)
    group = GroupCommits(db).group(KEY, ledger.work)

    async def request(claim: Claim, item: str) -> int:
        with commits_with(store.marking(claim)):
            return await group.run(item)

    done = await asyncio.gather(
        request(first, "first"), request(retry, "retry"), return_exceptions=True
    )
    assert isinstance(done[0], IdempotencyInProgress)
    assert done[1] == 1
    assert await ledger.stored() == {"retry": 1}
    key = await db["idempotency"].find_one({"_id": retry.doc_id})
    assert key is not None and key["state"] == "applied" and key["token"] == retry.token


@pytest.mark.gen_test(timeout=30)
async def test_a_request_cancelled_while_its_group_retries_is_not_done(
    db: Database, clock: FixedClock
) -> None:
    """A request that ended (cancelled: it released its key and answered nothing) while its
    group was being tried: the group's next try leaves it out, so no work is committed that
    a retry of its key would do again."""
    store = IdempotencyStore(db, clock)
    claims = []
    for n in range(3):
        claim = await store.begin("u1", "POST", f"/api/v1/m{n}", f"key-cancel-000{n}", b"{}")
        assert isinstance(claim, Claim)
        claims.append(claim)
    ledger = Ledger(db)
    gate = asyncio.Event()
    tries: list[list[str]] = []

    async def work(session: AsyncClientSession, items: list[str]) -> list[int]:
        tries.append(list(items))
        if len(tries) == 1:  # the first try waits, then loses to a concurrent writer
            await gate.wait()
            raise OperationFailure(
                "WriteConflict", 112, {"errorLabels": ["TransientTransactionError"]}
            )
        return await ledger.work(session, items)

    group = GroupCommits(db).group(KEY, work)

    async def request(claim: Claim, item: str) -> int:  # as ``@idempotent`` runs one
        try:
            with commits_with(store.marking(claim)):
                return await group.run(item)
        except BaseException:
            await store.release(claim)
            raise

    tasks = [asyncio.create_task(request(c, f"m{n}")) for n, c in enumerate(claims)]
    while not tries:
        await asyncio.sleep(0.01)
    tasks[1].cancel()
    await asyncio.sleep(0.05)
    gate.set()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert sorted([done[0], done[2]]) == [1, 2]
    assert tries[-1] == ["m0", "m2"]
    assert await ledger.stored() == {"m0": done[0], "m2": done[2]}
    keys = {d["_id"]: d["state"] async for d in db["idempotency"].find()}
    assert keys == {claims[0].doc_id: "applied", claims[2].doc_id: "applied"}


@pytest.mark.gen_test(timeout=30)
async def test_after_follows_each_commit_once_before_its_members_are_answered(
    db: Database,
) -> None:
    """``after`` runs once per committed group, with its items and answers (an excluded item
    not among them), before those members are answered; the next group does not wait for
    it."""
    ledger = Ledger(db)
    followed: list[dict[str, int]] = []
    gate = asyncio.Event()

    async def after(items: list[str], answers: list[int]) -> None:
        followed.append(dict(zip(items, answers, strict=True)))
        await gate.wait()

    group = GroupCommits(db).group(KEY, ledger.work, after)
    items = ["a-1", "bad-1", "a-2"]
    tasks = {i: asyncio.create_task(group.run(i)) for i in items}
    await until(lambda: followed)
    assert isinstance(tasks["bad-1"].exception(), Refused)
    assert not tasks["a-1"].done() and not tasks["a-2"].done()  # answered after ``after``
    later = asyncio.create_task(group.run("a-3"))
    await until(lambda: len(followed) == 2)  # committed while the first group's after waits
    gate.set()
    answers = {i: await tasks[i] for i in ("a-1", "a-2")} | {"a-3": await later}
    assert followed == [{"a-1": answers["a-1"], "a-2": answers["a-2"]}, {"a-3": answers["a-3"]}]
    assert await ledger.stored() == answers


@pytest.mark.gen_test(timeout=30)
async def test_a_failed_after_fails_its_members_with_its_error(db: Database) -> None:
    """As when each request followed its own commit: the work stays committed, the members
    get the error of what follows it."""
    ledger = Ledger(db)

    async def after(items: list[str], answers: list[int]) -> None:
        raise AutoReconnect("connection closed")

    group = GroupCommits(db).group(KEY, ledger.work, after)
    done = await asyncio.gather(*(group.run(f"x-{i}") for i in range(3)), return_exceptions=True)
    assert all(isinstance(a, AutoReconnect) for a in done)
    assert sorted((await ledger.stored()).values()) == [1, 2, 3]
