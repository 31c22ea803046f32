"""The documents an acceptance owes: made and served after the acceptance commits.

The acceptance's transaction writes the case with its number, the fee notice and a debt
(``documents_owed``, owned by cases: one per case, naming the kinds owed and the clerk who
accepted it). After the commit the accepting process wakes its worker, which renders the
受理通知书 (with the query code), 诉讼权利义务告知书, 举证通知书 and, when a fee is
prepaid, the 缴费通知书 away from the IOLoop (``Offload``), then serves them all in one
transaction that first deletes the debt: that delete is the claim, so a case is served once
whoever serves it (the worker, the sweep, another process; a racer's transaction conflicts,
is tried again and finds no debt). A debt left by a crash, a failed round or a stopped worker
is taken by the recovery sweep (a ``Periodic`` under a lease) once it is older than
``SWEEP_GRACE``. The documents are the same bytes whenever they are made: each is a pure
function of the case, the court's settings, the notice and its 验证码 (server/cases/notices.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pymongo.asynchronous.client_session import AsyncClientSession

from models.cases import CaseDoc
from models.documents import DocumentKind, OwedDocumentsDoc
from models.fee_notices import FeeNoticeDoc
from server.cases import notices as court_notices
from server.cases.service import CaseService
from server.cases.service_of_documents import Generated
from server.identity.users import UserService
from server.platform.clock import Clock
from server.platform.config import CourtSettings, Settings
from server.platform.db import Database, in_transaction
from server.platform.offload import Offload
from server.platform.periodic import cancel

if TYPE_CHECKING:
    from server.cases.service_of_documents import DocumentService
    from server.fees.notices import FeeNoticeService
    from server.platform.calendar import Calendars

log = logging.getLogger("microcourt.acceptance_documents")

#: made at every acceptance, in this order; the fee notice follows when a fee is prepaid
ACCEPTANCE_KINDS = (
    DocumentKind.acceptance_notice,
    DocumentKind.rights_notice,
    DocumentKind.evidence_notice,
)
#: how long a debt is left to the worker of the process that accepted the case before the
#: sweep takes it (the worker serves one in about a second; a backlog under load, longer)
SWEEP_GRACE = dt.timedelta(seconds=60)
SWEEP_BATCH = 50
#: cases made and served at once by one process's worker: one, so that the documents' own
#: transactions take at most one of the process's turns from the requests
WORKERS = 1


@dataclass(frozen=True)
class Making:
    """What one case's documents are made from (picklable: made in a worker process)."""

    case: CaseDoc
    court: CourtSettings
    kinds: tuple[DocumentKind, ...]
    codes: dict[DocumentKind, str]
    query_code: str
    evidence_days: int
    evidence_due: dt.datetime
    notice: FeeNoticeDoc | None


def make(m: Making) -> list[tuple[DocumentKind, bytes]]:
    """The PDFs of ``m``, in the order of its kinds: pure, no I/O but the font and seal."""
    made: list[tuple[DocumentKind, bytes]] = []
    for kind in m.kinds:
        code = m.codes[kind]
        if kind == DocumentKind.acceptance_notice:
            pdf = court_notices.acceptance_notice(m.case, m.court, m.query_code, code)
        elif kind == DocumentKind.rights_notice:
            pdf = court_notices.rights_notice(m.case, m.court, code)
        elif kind == DocumentKind.evidence_notice:
            pdf = court_notices.evidence_notice(
                m.case, m.court, m.evidence_days, m.evidence_due, code
            )
        else:
            assert kind == DocumentKind.fee_notice and m.notice is not None
            pdf = court_notices.fee_notice(m.case, m.court, m.notice, code)
        made.append((kind, pdf))
    return made


def owed_kinds(fee: bool) -> list[DocumentKind]:
    """The kinds an acceptance owes: the three notices, and the fee notice when prepaid."""
    return [*ACCEPTANCE_KINDS, *([DocumentKind.fee_notice] if fee else [])]


class AcceptanceDocuments:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        calendars: Calendars,
        users: UserService,
        cases: CaseService,
        service: DocumentService,
        fees: FeeNoticeService,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.calendars = calendars
        self.users = users
        self.cases = cases
        self.service = service
        self.fees = fees
        self.offload = Offload(settings.cases.render_processes)
        self._queue: collections.deque[str] = collections.deque()
        self._queued: set[str] = set()  # queued or being served by this process's worker
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    # ---- the worker

    def wake(self, case_id: str) -> None:
        """Serve the case's documents soon (after its acceptance committed)."""
        if self._stopped or case_id in self._queued:
            return
        self._queued.add(case_id)
        self._queue.append(case_id)
        if sum(not t.done() for t in self._tasks) < WORKERS:  # a done one may linger here
            # a context of its own: not the request's (its Idempotency-Key's commit hook)
            task = asyncio.get_running_loop().create_task(
                self._drain(), name="acceptance-documents", context=contextvars.Context()
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        # stopped: a cancellation landing in the driver (the database gone) can come back as
        # the driver's error, logged below; the loop must not go on to the next case then
        while self._queue and not self._stopped:
            case_id = self._queue.popleft()
            try:
                await self.complete(case_id)
            except Exception:
                log.exception("documents of case %s not served: left to the sweep", case_id)
            finally:
                self._queued.discard(case_id)

    async def stop(self) -> None:
        """Stop serving (shutdown): what is still owed is left to the sweep."""
        self._stopped = True
        for task in list(self._tasks):
            await cancel(task)
        self._queue.clear()
        self._queued.clear()

    # ---- the recovery sweep

    async def sweep(self) -> int:
        """Serve the cases owed documents for longer than ``SWEEP_GRACE`` (a crash, a failed
        round, a stopped worker): how many this round served."""
        before = self.clock.now() - SWEEP_GRACE
        served = 0
        for owed in await self.cases.documents_owed_since(before, SWEEP_BATCH):
            if owed.id in self._queued:
                continue  # this process's worker has it
            try:
                served += await self.complete(owed.id)
            except Exception:
                log.exception("documents of case %s not served by the sweep", owed.id)
        return served

    # ---- making and serving one case's documents

    async def complete(self, case_id: str) -> bool:
        """Make and serve what the case is owed; False when nothing was (left) owed."""
        owed = await self.cases.documents_owed(case_id)
        if owed is None:
            return False
        case = await self.cases.load(case_id)
        clerk = await self.users.get(owed.by)
        fee = DocumentKind.fee_notice in owed.kinds
        notice = await self.fees.unserved(case_id) if fee else None
        making = self.making(case, owed, notice)
        made = await self.offload.run(make, making)

        plaintiffs = [p.party_id for p in case.plaintiffs]
        to_plaintiffs = {DocumentKind.acceptance_notice, DocumentKind.fee_notice}
        served = [
            Generated(kind, pdf, plaintiffs if kind in to_plaintiffs else None, making.codes[kind])
            for kind, pdf in made
        ]

        async def serve(session: AsyncClientSession) -> bool:
            if not await self.cases.settle_documents(case_id, session):
                return False  # served meanwhile by another
            docs = await self.service.serve_all(clerk, case, served, session)
            if notice is not None:
                fee = next(d for d in docs if d.kind == DocumentKind.fee_notice)
                await self.fees.attach_document(notice, str(fee.id), session)
            return True

        return await in_transaction(self.db, serve)

    def making(self, case: CaseDoc, owed: OwedDocumentsDoc, notice: FeeNoticeDoc | None) -> Making:
        court = self.settings.court(case.court_id)
        assert court is not None
        days = court.documents.evidence_days[case.procedure.value]
        due = self.calendars.for_court(case.court_id).deadline_at(case.accepted_at, days)
        kinds = tuple(k for k in owed.kinds if k != DocumentKind.fee_notice or notice)
        codes = {k: self.service.code_for(str(case.id), k.name) for k in ACCEPTANCE_KINDS}
        if notice is not None:
            codes[DocumentKind.fee_notice] = self.fees.code_for(self.service, notice)
        return Making(
            case=case,
            court=court,
            kinds=kinds,
            codes=codes,
            query_code=self.cases.query_code(case),
            evidence_days=days,
            evidence_due=due,
            notice=notice,
        )
