"""Online filings (网上立案): drafting, submission, withdrawal, reading. No HTTP in here.

Every transition goes through ``FilingStore`` as one conditional update on the state and
version read (``read_decide_write`` reads again after a lost race), so a lost race is a 409 and
never a double transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pymongo.asynchronous.client_session import AsyncClientSession

from models.common import Page
from models.filings import (
    EDITABLE,
    PARTY_GROUPS,
    FilingCreate,
    FilingDoc,
    FilingFields,
    FilingOut,
    FilingQuery,
    FilingStatus,
    FilingSummary,
    PartyDoc,
)
from models.users import STAFF_ROLES, Caller, LawyerStatus, Role
from server.files.store import Grant
from server.filing.errors import (
    FilingChanged,
    FilingIncomplete,
    FilingNotEditable,
    FilingNotFound,
    FilingNotWithdrawable,
    InvalidFiling,
    LawyerNotVerified,
    UnknownCaseKind,
)
from server.filing.parties import Problem, completeness, party_doc, party_out, problem
from server.filing.store import FilingStore, decision_update, submit_update
from server.identity.users import UserService, identity_missing
from server.notify.inbox import Notice, NotificationService
from server.platform.access import Access
from server.platform.clock import Clock, local_day
from server.platform.config import Settings
from server.platform.crypto import FieldCipher
from server.platform.db import Database, LostRace, read_decide_write
from server.platform.errors import NotFound, UnknownCourt, ValidationFailed
from server.platform.group_commit import Excluded, GroupCommit, GroupCommits
from server.platform.paging import decode_cursor, encode_cursor, object_id

if TYPE_CHECKING:
    from server.files.service import FileService
    from server.platform.calendar import Calendars

MIN_FACTS = 10


#: what its filer may still withdraw
WITHDRAWABLE = (FilingStatus.draft, FilingStatus.submitted, FilingStatus.correction_requested)


def materials(doc: FilingDoc) -> list[str]:
    """The filing's files: evidence and the power of attorney."""
    return [*doc.evidence, *([doc.power_of_attorney] if doc.power_of_attorney else [])]


def summary(doc: FilingDoc) -> FilingSummary:
    return FilingSummary(
        id=str(doc.id),
        court_id=doc.court_id,
        case_kind=doc.case_kind,
        cause=doc.cause,
        status=doc.status,
        plaintiff_names=[p.name for p in doc.plaintiffs],
        defendant_names=[p.name for p in doc.defendants],
        submitted_at=doc.submitted_at,
        review_deadline=doc.review_deadline,
        case_no=doc.case_no,
        updated_at=doc.updated_at,
    )


def filing_out(doc: FilingDoc) -> FilingOut:
    data = doc.model_dump(exclude={"id", "plaintiffs", "defendants", "third_parties"})
    return FilingOut(
        id=str(doc.id),
        plaintiffs=[party_out(p) for p in doc.plaintiffs],
        defendants=[party_out(p) for p in doc.defendants],
        third_parties=[party_out(p) for p in doc.third_parties],
        **data,
    )


def submitted_notice(doc: FilingDoc) -> Notice:
    """The clerks' notice of a filing just submitted (``notify_court_staff_many`` addresses it
    to the court's clerks)."""
    names = "、".join(p.name for p in doc.plaintiffs[:2])
    return Notice(
        (),
        "filing_submitted",
        "新的网上立案申请",
        f"{names}：{doc.cause}，请在{local_day(doc.review_deadline)}前审查",
        data={"filing_id": str(doc.id), "green_channel": doc.green},
        template="filing_submitted",
        page=f"pages/review/detail?id={doc.id}",
        dedupe_key=f"filing:{doc.id}:submitted:{doc.version}",
    )


@dataclass(frozen=True)
class Submission:
    """One submission, read and checked before its court's group's transaction
    (``_file_group``)."""

    doc: FilingDoc  # as read
    update: dict[str, Any]  # ``submit_update``
    clients: list[str]  # a lawyer's clients: they may read the materials too


class FilingStanding(StrEnum):
    """How a caller stands to a filing: why they may read it."""

    filer = "filer"
    client = "client"  # a plaintiff, by identity, of a lawyer's filing
    court = "court"  # staff of the filing's court, once it is filed


def standing_of(caller: Caller, doc: FilingDoc) -> FilingStanding | None:
    """The filer; a client named as a party (by identity); staff of the court once filed."""
    filed = doc.submitted_at is not None  # a draft withdrawn unfiled stays private
    if caller.role in STAFF_ROLES:
        same_court = caller.court_id == doc.court_id
        return FilingStanding.court if same_court and filed else None
    if doc.filer_id == str(caller.id):
        return FilingStanding.filer
    mine = caller.identity.id_hash if caller.identity else None
    return FilingStanding.client if mine and mine in doc.party_hashes and filed else None


class FilingService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        cipher: FieldCipher,
        clock: Clock,
        users: UserService,
        files: FileService,
        calendars: Calendars,
        notifications: NotificationService,
    ) -> None:
        self.store = FilingStore(db)
        self.groups = GroupCommits(db)  # the courts' submissions (``_submitting``)
        self.settings = settings
        self.cipher = cipher
        self.clock = clock
        self.users = users
        self.files = files
        self.calendars = calendars
        self.notifications = notifications

    # ---- reading

    async def load(self, filing_id: str) -> FilingDoc:
        doc = await self.store.load(filing_id)
        if doc is None:
            raise FilingNotFound()
        return doc

    async def materials_of(self, filing_id: str) -> list[str] | None:
        """The files of a filing (evidence, power of attorney); None when there is no such
        filing."""
        doc = await self.store.load(filing_id)
        return materials(doc) if doc is not None else None

    async def access_filing(
        self, caller: Caller, filing_id: str
    ) -> Access[FilingDoc, FilingStanding]:
        """The filing and how the caller stands to it; 404 for anyone who may not see it."""
        doc = await self.load(filing_id)
        standing = standing_of(caller, doc)
        if standing is None:
            raise FilingNotFound()
        return Access(doc, standing)

    async def list_mine(self, caller: Caller, query: FilingQuery) -> Page[FilingSummary]:
        before = decode_cursor(query.cursor, object_id)[0] if query.cursor else None
        found = await self.store.by_filer(str(caller.id), query.status, before, query.limit + 1)
        docs = found[: query.limit]
        more = len(found) > query.limit
        return Page[FilingSummary](
            items=[summary(d) for d in docs],
            next_cursor=encode_cursor([docs[-1].id]) if more and docs else None,
        )

    # ---- drafting

    async def create(self, caller: Caller, data: FilingCreate) -> FilingDoc:
        court = self.settings.court(data.court_id)
        if court is None:
            raise UnknownCourt(details=[problem(["court_id"], "法院不存在")])
        if data.case_kind not in court.case_types:
            msg = "该法院不受理此类案件"
            raise UnknownCaseKind(msg, details=[problem(["case_kind"], msg)])
        if data.as_agent:
            self._require_verified_lawyer(caller)
        now = self.clock.now()
        doc: dict[str, Any] = {
            "court_id": data.court_id,
            "case_kind": data.case_kind,
            "filer_id": str(caller.id),
            "as_agent": data.as_agent,
            "green": False,
            "status": FilingStatus.draft.value,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        doc.update(await self._fields(caller, data, {}))
        return await self.store.insert(doc)

    @staticmethod
    def _require_verified_lawyer(caller: Caller) -> None:
        if (
            caller.role != Role.lawyer
            or not caller.lawyer
            or caller.lawyer.status != LawyerStatus.verified
        ):
            raise LawyerNotVerified()

    async def update(self, caller: Caller, filing_id: str, data: FilingFields) -> FilingDoc:
        async def decide_write(doc: FilingDoc) -> FilingDoc:
            if doc.filer_id != str(caller.id):
                raise FilingNotFound()
            if doc.status not in EDITABLE:
                raise FilingNotEditable()
            changes = await self._fields(caller, data, self._parties_by_id(doc))
            changes["updated_at"] = self.clock.now()
            return await self.store.edit(doc, changes)

        return await read_decide_write(lambda: self.load(filing_id), decide_write, FilingChanged)

    @staticmethod
    def _parties_by_id(doc: FilingDoc) -> dict[str, PartyDoc]:
        return {p.party_id: p for g in PARTY_GROUPS for p in getattr(doc, g)}

    async def _fields(
        self, caller: Caller, data: FilingFields, kept: dict[str, PartyDoc]
    ) -> dict[str, Any]:
        """The stored form of the fields given; every problem is reported at once (422)."""
        problems: list[Problem] = []
        given = data.model_dump(exclude_unset=True, exclude={"court_id", "case_kind", "as_agent"})
        today = self.clock.now().date()
        for group in PARTY_GROUPS:
            if getattr(data, group) is not None:
                parties = [
                    party_doc(group, i, p, kept, self.cipher, today, problems)
                    for i, p in enumerate(getattr(data, group))
                ]
                given[group] = [p.model_dump() for p in parties]
        if data.template_id is not None:
            self._check_template(data.template_id, problems)
        await self._check_files(caller, data, problems)
        if problems:
            raise InvalidFiling(problems[0]["msg"], details=problems)
        if data.green_channel is not None:
            given["green"] = bool(data.green_channel)
        if data.plaintiffs is not None:
            # the plaintiffs' identities: a lawyer's client follows the filing by these
            given["party_hashes"] = sorted(
                {p["id_hash"] for p in given["plaintiffs"] if p.get("id_hash")}
            )
        return given

    def _check_template(self, template_id: str, problems: list[Problem]) -> None:
        from server.filing.templates import get_template

        try:
            get_template(template_id)
        except NotFound:
            problems.append(problem(["template_id"], "要素式模板不存在"))

    async def _check_files(
        self, caller: Caller, data: FilingFields, problems: list[Problem]
    ) -> None:
        ids = list(data.evidence or [])
        if data.power_of_attorney:
            ids.append(data.power_of_attorney)
        if not ids:
            return
        try:
            await self.files.check_owned(str(caller.id), ids)
        except ValidationFailed as e:
            problems.append(problem(["evidence"], e.message))

    # ---- submission and withdrawal

    def completeness(self, caller: Caller, doc: FilingDoc) -> list[Problem]:
        """Everything still missing, all at once."""
        found: list[Problem] = []
        if not doc.cause:
            found.append(problem(["cause"], "请填写案由"))
        if not doc.plaintiffs:
            found.append(problem(["plaintiffs"], "请至少填写一名原告（申请人）"))
        if not doc.defendants:
            found.append(problem(["defendants"], "请至少填写一名被告（被申请人）"))
        for group in PARTY_GROUPS:
            found += completeness(group, getattr(doc, group))
        if not doc.claims:
            found.append(problem(["claims"], "请填写诉讼请求"))
        if not doc.facts or len(doc.facts.strip()) < MIN_FACTS:
            found.append(problem(["facts"], f"请填写事实与理由（不少于{MIN_FACTS}字）"))
        if not doc.evidence:
            found.append(problem(["evidence"], "请上传证据材料"))
        if doc.as_agent and not doc.power_of_attorney:
            found.append(problem(["power_of_attorney"], "代理立案须上传授权委托书"))
        if not doc.as_agent and not self._filer_is_plaintiff(caller, doc):
            found.append(problem(["plaintiffs"], "本人应为原告之一；为他人起诉请由律师代理立案"))
        found += self._template_problems(doc)
        return found

    @staticmethod
    def _filer_is_plaintiff(caller: Caller, doc: FilingDoc) -> bool:
        mine = caller.identity.id_hash if caller.identity else None
        return any(
            (p.id_hash and p.id_hash == mine)
            or (p.type == "organization" and p.legal_representative == caller.identity.name)
            for p in doc.plaintiffs
            if caller.identity
        )

    def _template_problems(self, doc: FilingDoc) -> list[Problem]:
        if not doc.template_id:
            return [problem(["elements"], "填写要素须先选择要素式模板")] if doc.elements else []
        from server.filing.templates import get_template, validate_elements

        try:
            template = get_template(doc.template_id)
        except NotFound:
            return [problem(["template_id"], "要素式模板不存在")]
        today = self.calendars.for_court(doc.court_id).local_date(self.clock.now())
        return validate_elements(template, doc.elements, today)

    async def submit(self, caller: Caller, filing_id: str) -> FilingDoc:
        """File it: the transition, the court's access to the materials and the clerks'
        notices commit together, or not at all."""

        async def decide_write(doc: FilingDoc) -> FilingDoc:
            self._check_submittable(caller, doc)
            return await self._submit(caller, doc)

        return await read_decide_write(lambda: self.load(filing_id), decide_write, FilingChanged)

    async def _submit(self, caller: Caller, doc: FilingDoc) -> FilingDoc:
        """Prepare the submission (its deadline, a lawyer's clients: outside the transaction),
        then wait for its court's group to commit it (``_file_group``)."""
        now = self.clock.now()
        court = self.settings.court(doc.court_id)
        assert court is not None
        days = court.deadlines.review_days.get(doc.case_kind, court.deadlines.default_review_days)
        deadline = self.calendars.for_court(doc.court_id).deadline_at(now, days)
        action = "resubmitted" if doc.status == FilingStatus.correction_requested else "submitted"
        update = submit_update(str(caller.id), action, now, deadline)
        submission = Submission(doc, update, await self.clients(doc))
        return await self._submitting(doc.court_id).run(submission)

    def _submitting(self, court_id: str) -> GroupCommit[Submission, FilingDoc]:
        """The court's submissions commit in groups (``server.platform.group_commit``): one
        transaction for those waiting meanwhile, in none of the ``PARALLEL_TRANSACTIONS``
        turns (a submission took a turn each, and under load waited for it longer than any
        other request: README, "Transactions under load"). After each group's commit, its
        filings are counted into the court's review queue in one write
        (``FilingStore.queue_grew``, outside the transaction: see ``queue_chunks``)."""
        return self.groups.group(f"filing_submit|{court_id}", self._file_group, self._queued)

    async def _file_group(
        self, session: AsyncClientSession, group: list[Submission]
    ) -> list[FilingDoc]:
        """A group of one court's submissions in one transaction: the filings' moves (a filing
        changed meanwhile excludes its own submission: ``LostRace``, then read again and
        decided anew), the grants of the materials and the clerks' notices, each kind in one
        write."""
        moved = await self.store.move_each([(s.doc, s.update) for s in group], session)
        lost: dict[int, BaseException] = {i: LostRace() for i, d in enumerate(moved) if d is None}
        if lost:
            raise Excluded(lost)
        filed = [d for d in moved if d is not None]
        await self._announce(group, filed, session)
        return filed

    async def _queued(self, _group: list[Submission], filed: list[FilingDoc]) -> None:
        """After a group's commit: its filings counted into the court's review queue."""
        await self.store.queue_grew(filed, self.clock.now())

    def _check_submittable(self, caller: Caller, doc: FilingDoc) -> None:
        if doc.filer_id != str(caller.id):
            raise FilingNotFound()
        if caller.identity is None:
            raise identity_missing(caller)
        if doc.status not in EDITABLE:
            raise FilingNotEditable("立案申请已提交，不能重复提交")
        problems = self.completeness(caller, doc)
        if problems:
            raise FilingIncomplete(f"立案材料不完整，共{len(problems)}处需要补充", details=problems)

    async def _announce(
        self, group: list[Submission], filed: list[FilingDoc], session: AsyncClientSession
    ) -> None:
        """The court (and a lawyer's clients) may now read the materials, and every clerk hears
        of each filing at once."""
        grants = [
            Grant(materials(d), s.clients, [d.court_id]) for s, d in zip(group, filed, strict=True)
        ]
        await self.files.grant_each(grants, session)
        await self.notifications.notify_court_staff_many(
            filed[0].court_id,
            [Role.clerk.value],
            [submitted_notice(d) for d in filed],
            session=session,
        )

    async def clients(self, doc: FilingDoc) -> list[str]:
        """A lawyer's clients: the plaintiffs who hold an account (matched by identity)."""
        if not doc.as_agent:
            return []
        return sorted((await self.users.by_identity(doc.party_hashes)).values())

    async def withdraw(self, caller: Caller, filing_id: str) -> FilingDoc:
        async def decide_write(doc: FilingDoc) -> FilingDoc:
            if doc.filer_id != str(caller.id):
                raise FilingNotFound()
            if doc.status not in WITHDRAWABLE:
                raise FilingNotWithdrawable()
            withdrawn = {"status": FilingStatus.withdrawn.value}
            by = str(caller.id)
            update = decision_update(withdrawn, {"action": "withdrawn"}, by, self.clock.now())
            return await self.store.move(doc, update)

        return await read_decide_write(lambda: self.load(filing_id), decide_write, FilingChanged)
