"""Group commit: the transactions waiting for one writer's turn (a sequence's counter, a
court's submissions) commit together, one transaction per group.

Concurrent transactions on one hot document conflict, and the loser's whole transaction is
retried: 16 concurrent ``POST /messages`` took 1,233 numbers of their court's counter for 160
messages (7.7 tries each, 0.86 s a transaction). In one process they queue instead (other
processes may still conflict, and retry as before), and commit in groups: one transaction
takes every item queued meanwhile (up to ``GROUP_LIMIT``) and writes them all, each item's
request's ``commits_with`` hook (its Idempotency-Key's mark) included. One at a time, a
court's acceptances took ~80 ms and 16 statements each under load, some 60 of them waiting
(README, "Transactions under load"); a group shares its statements (``insert_many``,
``bulk_write``): about 14 + k for k acceptances. A group's work takes numbers if it wants
(``Counters.take``); a court's submissions take none, and queued only to share their
statements and to leave the ``PARALLEL_TRANSACTIONS`` turns to the rest.
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

log = logging.getLogger("microcourt.group_commit")

I = TypeVar("I")  # noqa: E741 (an item of a group)
R = TypeVar("R")

#: the most items one group's transaction takes (its statements grow with it)
GROUP_LIMIT = 32

#: A group's work: in the transaction, write the items and return their answers, in order.
GroupWork = Callable[[AsyncClientSession, list[I]], Awaitable[list[R]]]
#: What follows a group's commit, once for the group, before its members are answered: the
#: items committed and their answers (a court's review queue counts its new filings).
AfterCommit = Callable[[list[I], list[R]], Awaitable[None]]


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
    """One writer's queue of items, committed in groups by one task at a time (above)."""

    def __init__(
        self,
        db: Database,
        work: GroupWork[I, R],
        after: AfterCommit[I, R] | None = None,
        limit: int = GROUP_LIMIT,
    ) -> None:
        self.db = db
        self.work = work
        self.after = after
        self.limit = limit
        self._waiting: list[_Member[I, R]] = []
        self._committing: asyncio.Task[None] | None = None
        self._following: set[asyncio.Task[None]] = set()  # ``after`` of committed groups

    @property
    def waiting(self) -> int:
        """How many items wait for a group (the one committing not counted)."""
        return len(self._waiting)

    async def run(self, item: I) -> R:
        """Wait for ``item``'s group to commit; its answer, or its own error (or the group's:
        a database that is down, conflicts past the budget, a failed ``after``)."""
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
            self._committed(group, answers)
            return

    def _committed(self, group: list[_Member[I, R]], answers: list[R]) -> None:
        """Answer the members; with an ``after``, once it is done, in a task of its own: the
        next group need not wait for it."""
        if self.after is None:
            for m, answer in zip(group, answers, strict=True):
                m.settle(answer)
            return
        following = asyncio.get_running_loop().create_task(self._follow(group, answers))
        self._following.add(following)
        following.add_done_callback(self._following.discard)

    async def _follow(self, group: list[_Member[I, R]], answers: list[R]) -> None:
        assert self.after is not None
        try:
            # every item committed, a member cancelled meanwhile included: its work is done
            await self.after([m.item for m in group], answers)
        except asyncio.CancelledError:
            for m in group:
                m.answer.cancel()
            raise
        except Exception as e:  # each member's, as when each did its own after its commit
            log.warning("after the commit of a group of %d: %r", len(group), e)
            for m in group:
                m.settle(error=e)
            return
        for m, answer in zip(group, answers, strict=True):
            m.settle(answer)

    async def _attempt(self, group: list[_Member[I, R]], session: AsyncClientSession) -> list[R]:
        # the members' hooks first (their keys' marks, in one write: ``Mark``): a key renewed
        # after the snapshot and before its mark would fail the whole group
        failed = await commit_all([m.hook for m in group], session)
        if failed:
            raise Excluded(dict(failed))
        return await self.work(session, [m.item for m in group])


class GroupCommits:
    """A service's group commits, one per key: the service is the key's one writer."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._groups: dict[str, GroupCommit[Any, Any]] = {}

    def group(
        self, key: str, work: GroupWork[I, R], after: AfterCommit[I, R] | None = None
    ) -> GroupCommit[I, R]:
        """This process's group commit of ``key`` (see above): ``work`` writes each group
        (taking its numbers, if any: ``Counters.take`` with ``count``), ``after`` follows
        each commit. The ``work`` and ``after`` of the key's first call are the group's."""
        found = self._groups.get(key)
        if found is None:
            found = self._groups[key] = GroupCommit(self.db, work, after)
        return found
