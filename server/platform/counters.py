"""Numbers counted from 1 without gaps or repeats (case numbers, work-order numbers): one
document per sequence in ``counters``, incremented in the caller's transaction, so that a
number taken by a transaction that aborts is given back with it.

Every transaction that takes a number of one sequence writes the same document, so two at
once conflict, and the loser's whole transaction is retried: 16 concurrent ``POST /messages``
took 1,233 numbers for 160 messages (7.7 tries each, 0.86 s a transaction). In one process
they queue instead (other processes may still conflict, and retry as before), and commit in
groups (``group(key, work)``): one transaction takes every item queued meanwhile (up to
``GROUP_LIMIT``), its numbers in one increment, and writes them all, each item's request's
``commits_with`` hook (its Idempotency-Key's mark) included. One at a time (a lock, as
before), a court's acceptances took ~80 ms and 16 statements each under load, some 60 of
them waiting (README, "Transactions under load"); a group shares its statements
(``insert_many``, ``bulk_write``): about 14 + k for k acceptances.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from server.platform.db import Database, Hook, commit_all, commit_hook, in_transaction
from server.platform.mongo import change_one

log = logging.getLogger("microcourt.counters")

I = TypeVar("I")  # noqa: E741 (an item of a group)
R = TypeVar("R")

#: the most items one group's transaction takes (its statements grow with it)
GROUP_LIMIT = 32

#: A group's work: in the transaction, write the items and return their answers, in order.
GroupWork = Callable[[AsyncClientSession, list[I]], Awaitable[list[R]]]


class Excluded(Exception):
    """Raised by a group's work: these items (by index) cannot be done, each for its own
    error (its filing decided meanwhile: ``LostRace``); they fail alone, with that error, and
    the others are tried again without them."""

    def __init__(self, failed: dict[int, BaseException]) -> None:
        super().__init__(failed)
        self.failed = failed


@dataclass(eq=False)
class _Member(Generic[I, R]):
    item: I
    hook: Hook | None  # the request's commits_with, run in the group's transaction
    answer: asyncio.Future[R]

    def settle(self, result: R | None = None, error: BaseException | None = None) -> None:
        if self.answer.done():
            return  # its request gave up (cancelled): nobody is waiting
        if error is not None:
            self.answer.set_exception(error)
        else:
            self.answer.set_result(result)  # type: ignore[arg-type]


class GroupCommit(Generic[I, R]):
    """One sequence's queue of items, committed in groups by one task at a time (above)."""

    def __init__(self, db: Database, work: GroupWork[I, R], limit: int = GROUP_LIMIT) -> None:
        self.db = db
        self.work = work
        self.limit = limit
        self._waiting: list[_Member[I, R]] = []
        self._committing: asyncio.Task[None] | None = None

    async def run(self, item: I) -> R:
        """Wait for ``item``'s group to commit; its answer, or its own error (or the group's:
        a database that is down, conflicts past the budget)."""
        loop = asyncio.get_running_loop()
        member: _Member[I, R] = _Member(item, commit_hook(), loop.create_future())
        self._waiting.append(member)
        if self._committing is None or self._committing.done():
            # a context of its own: no request's hook (each member's runs explicitly)
            task = loop.create_task(self._drain(), context=contextvars.Context())
            self._committing = task
        return await member.answer

    async def _drain(self) -> None:
        while self._waiting:
            group = self._waiting[: self.limit]
            del self._waiting[: self.limit]
            try:
                await self._commit(group)
            except asyncio.CancelledError:  # shutdown: no one may wait forever
                for m in [*group, *self._waiting]:
                    m.answer.cancel()
                self._waiting.clear()
                raise
            except Exception as e:  # a fault of the work's own: its group fails, not the queue
                log.exception("group commit of %d failed", len(group))
                for m in group:
                    m.settle(error=e)

    async def _commit(self, group: list[_Member[I, R]]) -> None:
        """Commit the group; without its excluded members, again, until it commits or fails
        as a whole (every member with that error)."""
        while group:
            # a member whose request has ended (cancelled: it released its key and answers
            # nothing) is not done for it, at the first try or after a conflict
            group = [m for m in group if not m.answer.done()]
            if not group:
                return
            try:
                attempt = functools.partial(self._attempt, group)
                answers = await in_transaction(self.db, attempt, queued=False)
            except Excluded as e:
                for i, error in e.failed.items():
                    group[i].settle(error=error)
                group = [m for i, m in enumerate(group) if i not in e.failed]
                continue
            except Exception as e:
                for m in group:
                    m.settle(error=e)
                return
            for m, answer in zip(group, answers, strict=True):
                m.settle(answer)
            return

    async def _attempt(self, group: list[_Member[I, R]], session: AsyncClientSession) -> list[R]:
        # the members' hooks first (their keys' marks, in one write: ``Mark``): a key renewed
        # after the snapshot and before its mark would fail the whole group
        failed = await commit_all([m.hook for m in group], session)
        if failed:
            raise Excluded(dict(failed))
        return await self.work(session, [m.item for m in group])


class Counters:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.counters = db["counters"]
        self._groups: dict[str, GroupCommit[Any, Any]] = {}

    def group(self, key: str, work: GroupWork[I, R]) -> GroupCommit[I, R]:
        """This process's group commit of the sequence ``key`` (see above); ``work`` takes
        the group's numbers (``take`` with ``count``) and writes its items. A sequence has
        one writer (one service): the ``work`` of its first call is the group's."""
        found = self._groups.get(key)
        if found is None:
            found = self._groups[key] = GroupCommit(self.db, work)
        return found

    async def take(self, key: str, session: AsyncClientSession, count: int = 1) -> int:
        """The first of the next ``count`` numbers of the sequence ``key`` (1 for a new one);
        the others follow it."""
        counter = await change_one(
            self.counters,
            {"_id": key},
            {"$inc": {"seq": count}},
            upsert=True,
            session=session,
        )
        assert counter is not None
        return int(counter["seq"]) - count + 1
