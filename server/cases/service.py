"""Cases: born when a filing is accepted. Case numbers (案号) and query codes (查询码).

A case number is ``（2026）京0105民初1234号``: the year of acceptance, the court's code, the
type code for the case kind, and a number counted per court, type and year. The count is an
``$inc`` on a counter document inside the transaction that creates the case, so an aborted
acceptance gives its number back (no gaps) and two acceptances never share one (no repeats).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, NamedTuple, TypeVar

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.cases import CaseDoc, Viewer
from models.documents import DocumentKind, OwedDocumentsDoc, consent_at_filing
from models.filings import PARTY_GROUPS, FilingDoc, PartyDoc, Procedure
from models.users import STAFF_ROLES, Caller
from server.cases.errors import CaseNotFound
from server.cases.store import CaseStore, OwedStore
from server.identity.users import UserService
from server.platform.access import Access
from server.platform.clock import Clock
from server.platform.config import CourtSettings
from server.platform.counters import Counters
from server.platform.crypto import FieldCipher
from server.platform.db import Database
from server.platform.group_commit import GroupCommit, GroupCommits, GroupWork

QUERY_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
QUERY_CODE_LENGTH = 8
I = TypeVar("I")  # noqa: E741 (an item of a group)
R = TypeVar("R")
PROCEDURE_NAMES = {Procedure.ordinary: "普通程序", Procedure.simplified: "简易程序"}


def case_number(year: int, court_code: str, type_code: str, seq: int) -> str:
    return f"（{year}）{court_code}{type_code}{seq}号"


def _number_key(court: CourtSettings, type_code: str, year: int) -> str:
    return f"case_no|{court.id}|{type_code}|{year}"


def new_query_code() -> str:
    return "".join(secrets.choice(QUERY_CODE_ALPHABET) for _ in range(QUERY_CODE_LENGTH))


class DocumentDebt(NamedTuple):
    """The acceptance documents a new case is owed (``owe_documents``), and who accepted it."""

    case_id: str
    court_id: str
    kinds: list[DocumentKind]
    by: str


class CaseNumber(NamedTuple):
    """The number counted per court, type and year, and the case number it makes."""

    seq: int
    text: str


def case_standing(caller: Caller, case: CaseDoc) -> Viewer | None:
    """How ``caller`` stands to ``case``: a party (linked by identity), an agent, the
    court's staff; None for anyone else."""
    uid = str(caller.id)
    if caller.role in STAFF_ROLES:
        return Viewer.staff if caller.court_id == case.court_id else None
    if uid in case.party_user_ids:
        return Viewer.party
    if uid in case.agent_ids:
        return Viewer.agent
    return None


class CaseService:
    def __init__(self, db: Database, users: UserService, cipher: FieldCipher, clock: Clock) -> None:
        self.store = CaseStore(db)
        self.owed = OwedStore(db)
        self.counters = Counters(db)
        self.groups = GroupCommits(db)
        self.users = users
        self.cipher = cipher
        self.clock = clock

    async def next_numbers(
        self,
        court: CourtSettings,
        type_code: str,
        year: int,
        count: int,
        session: AsyncClientSession,
    ) -> list[CaseNumber]:
        """The next ``count`` numbers of the court, type and year, consecutive."""
        first = await self.counters.take(_number_key(court, type_code, year), session, count)
        seqs = range(first, first + count)
        return [CaseNumber(seq, case_number(year, court.code, type_code, seq)) for seq in seqs]

    def numbering(
        self, court: CourtSettings, type_code: str, year: int, work: GroupWork[I, R]
    ) -> GroupCommit[I, R]:
        """The queue of the transactions that take ``next_numbers`` of a court, type and year:
        in this process they commit in groups, ``work`` writing each group, rather than
        conflict on the counter and retry (``server.platform.group_commit``)."""
        return self.groups.group(_number_key(court, type_code, year), work)

    async def linked_users(self, doc: FilingDoc) -> dict[str, str]:
        """Party ID-number hash -> user id, for every party with a verified account."""
        hashes = [p.id_hash for g in PARTY_GROUPS for p in getattr(doc, g) if p.id_hash]
        return await self.users.by_identity(hashes)

    def case_document(
        self,
        doc: FilingDoc,
        *,
        case_id: ObjectId,
        number: CaseNumber,
        year: int,
        type_code: str,
        procedure: Procedure,
        staff_id: str,
        links: dict[str, str],
    ) -> dict[str, Any]:
        now = self.clock.now()
        parties = self._parties(doc, links, now)
        party_users = sorted({p["user_id"] for g in parties.values() for p in g if p["user_id"]})
        accepted = {"at": now, "kind": "立案", "by": staff_id}
        accepted["note"] = f"{number.text}，适用{PROCEDURE_NAMES[procedure]}"
        times = dict.fromkeys(("accepted_at", "created_at", "updated_at", "last_activity_at"), now)
        return {
            "_id": case_id,
            "case_no": number.text,
            "seq": number.seq,
            "year": year,
            "court_id": doc.court_id,
            "type_code": type_code,
            "case_kind": doc.case_kind,
            "filing_id": str(doc.id),
            "cause": doc.cause,
            "procedure": procedure.value,
            "status": "accepted",
            "amount_fen": doc.amount_fen,
            **parties,
            "party_user_ids": party_users,
            "agent_ids": [doc.filer_id] if doc.as_agent else [],
            "filer_id": doc.filer_id,
            "query_code_cipher": self.cipher.encrypt(new_query_code(), b"query_code"),
            "version": 1,
            "judge_id": None,
            "clerk_id": None,
            "green_channel": [g.value for g in doc.green_channel],
            "fee_relief": doc.fee_relief.model_dump() if doc.fee_relief else None,
            "timeline": [accepted],
            **times,
        }

    def _parties(
        self, doc: FilingDoc, links: dict[str, str], now: Any
    ) -> dict[str, list[dict[str, Any]]]:
        """The filing's parties, each linked to its verified account, the filer's consent to
        electronic service copied onto their own party."""
        parties = {g: [self._linked(p, links) for p in getattr(doc, g)] for g in PARTY_GROUPS}
        consent_at_filing(
            doc.filer_id, doc.as_agent, doc.consent_electronic_service, parties["plaintiffs"], now
        )
        return parties

    @staticmethod
    def _linked(party: PartyDoc, links: dict[str, str]) -> dict[str, Any]:
        data = party.model_dump()
        data["user_id"] = links.get(party.id_hash or "")
        return data

    async def insert_many(self, cases: list[dict[str, Any]], session: AsyncClientSession) -> None:
        await self.store.insert_many(cases, session)

    def query_code(self, case: dict[str, Any] | CaseDoc) -> str:
        blob = case.query_code_cipher if isinstance(case, CaseDoc) else case["query_code_cipher"]
        return self.cipher.decrypt(blob, b"query_code")

    async def with_number(self, case_no: str) -> CaseDoc | None:
        return await self.store.with_number(case_no)

    # ---- the acceptance documents still owed (server/filing/acceptance_documents.py)

    async def owe_documents(self, debts: list[DocumentDebt], session: AsyncClientSession) -> None:
        """Record, in the acceptances' transaction, the documents each case is owed."""
        now = self.clock.now()
        owed = [
            OwedDocumentsDoc(id=d.case_id, court_id=d.court_id, kinds=d.kinds, by=d.by, since=now)
            for d in debts
        ]
        await self.owed.insert_many(owed, session)

    async def documents_owed(self, case_id: str) -> OwedDocumentsDoc | None:
        return await self.owed.get(case_id)

    async def documents_owed_since(self, before: dt.datetime, limit: int) -> list[OwedDocumentsDoc]:
        return await self.owed.owed_since(before, limit)

    async def settle_documents(self, case_id: str, session: AsyncClientSession) -> bool:
        """Claim the case's owed documents in the transaction that serves them; False when
        another server (the sweep, another process) served them first."""
        return await self.owed.settle(case_id, session)

    # ---- who may see a case, and what happens to it

    async def load(self, case_id: str) -> CaseDoc:
        case = await self.store.get(case_id)
        if case is None:
            raise CaseNotFound()
        return case

    async def access_case(self, caller: Caller, case_id: str) -> Access[CaseDoc, Viewer]:
        """The case and how the caller stands to it; 404 for anyone who may not see it."""
        case = await self.load(case_id)
        seen_as = case_standing(caller, case)
        if seen_as is None:
            raise CaseNotFound()
        return Access(case, seen_as)

    async def access_court_case(self, caller: Caller, case_id: str) -> Access[CaseDoc, Viewer]:
        """The case, if ``caller`` is staff of its court (standing ``staff``); 404 otherwise,
        for its parties too: administration is the court's."""
        seen = await self.access_case(caller, case_id)
        if seen.standing != Viewer.staff:
            raise CaseNotFound()
        return seen

    async def add_event(
        self,
        case_id: Any,
        kind: str,
        by: str | None,
        note: str | None = None,
        *,
        changes: dict[str, Any] | None = None,
        expect: dict[str, Any] | None = None,
        session: AsyncClientSession | None = None,
    ) -> CaseDoc | None:
        """Append a timeline event (with any ``changes``) if the case still matches ``expect``;
        None when it does not (the caller's 409)."""
        return await self.add_events(
            case_id, kind, by, [note], changes=changes, expect=expect, session=session
        )

    async def add_events(
        self,
        case_id: Any,
        kind: str,
        by: str | None,
        notes: list[str | None],
        *,
        changes: dict[str, Any] | None = None,
        expect: dict[str, Any] | None = None,
        session: AsyncClientSession | None = None,
    ) -> CaseDoc | None:
        """``add_event`` of one event per note, in one update (documents served together)."""
        now = self.clock.now()
        events = [{"at": now, "kind": kind, "by": by, "note": note} for note in notes]
        return await self.store.add_event(case_id, events, changes or {}, expect or {}, session)

    @staticmethod
    def audience(case: CaseDoc) -> list[str]:
        """Everyone told of a case's news: its parties with an account and its agents."""
        return sorted({*case.party_user_ids, *case.agent_ids})

    async def move_links(
        self, id_hash: str, from_user: str, to_user: str, session: AsyncClientSession
    ) -> None:
        """An ID number moved to another account (face verification): its parties in every
        case go with it, so the old account no longer reads those cases."""
        moved = await self.store.move_links(id_hash, from_user, to_user, session)
        if moved:
            await self.users.record(to_user, "case.links_moved", from_user, session, cases=moved)

    async def link_party(self, caller: Caller, case: CaseDoc) -> CaseDoc | None:
        """Link the caller to the parties of ``case`` whose ID number their verified identity
        holds (a defendant who registered after acceptance); None when there is none."""
        id_hash = caller.identity.id_hash if caller.identity and not caller.is_staff else None
        paths = [
            f"{group}.{i}"
            for group in PARTY_GROUPS
            for i, p in enumerate(getattr(case, group))
            if id_hash and p.id_hash == id_hash
        ]
        if not id_hash or not paths:
            return None
        uid = str(caller.id)
        linked = await self.store.link_party(case.id, id_hash, paths, uid)
        if linked is None:
            return None
        await self.users.record(uid, "case.link", str(case.id), court_id=case.court_id)
        return linked
