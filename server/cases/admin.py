"""Case administration by the staff of the case's court: assignment (分案) and milestones.

A case moves one way: accepted -> assigned -> scheduled -> heard -> judged -> closed ->
archived, or is closed early, before judgment, by 撤诉结案 or 调解结案 (models.cases.TRANSITIONS;
the fee's halving is then a refund with that reason). Each move is a conditional update on
the status it expects (CaseService.add_event), so a lost race or an event out of order is a 409
``case_status_conflict``. The change, its timeline entry, the audit row and the push to the
parties and agents commit in one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from models.cases import (
    CLOSING,
    OPEN_STATUSES,
    STATUS_NAMES,
    TRANSITIONS,
    AssignIn,
    CaseDoc,
    CaseOut,
    CaseStatus,
    EventIn,
    EventKind,
    Viewer,
)
from models.users import Caller, Role, UserDoc
from server.cases.errors import (
    AssigneesNotAllowed,
    AssigneesRequired,
    CaseStatusConflict,
)
from server.cases.service import CaseService
from server.cases.store import HearingStore
from server.cases.views import CaseViews
from server.identity.errors import InvalidAssignee
from server.identity.users import UserService
from server.notify.inbox import NotificationService
from server.platform.access import Access
from server.platform.clock import Clock
from server.platform.db import Database, in_transaction
from server.platform.errors import Conflict, NotFound

T = TypeVar("T")
Notice = tuple[str, str, str]  # kind, title, body
EVENT_TITLES = {
    EventKind.schedule: "案件已排期",
    EventKind.hear: "案件已开庭审理",
    EventKind.judge: "案件已宣判",
    EventKind.close: "案件已结案",
    EventKind.archive: "案件已归档",
    EventKind.withdraw: "案件已撤诉结案",
    EventKind.mediate: "案件已调解结案",
}


class Assignees(NamedTuple):
    judge: UserDoc
    clerk: UserDoc


def status_conflict(status: CaseStatus, action: str) -> Conflict:
    return CaseStatusConflict(
        f"案件当前状态为“{STATUS_NAMES[status]}”，不能{action}", details={"status": status.value}
    )


class CaseAdminService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        cases: CaseService,
        views: CaseViews,
        users: UserService,
        notifications: NotificationService,
    ) -> None:
        self.db = db
        self.hearings = HearingStore(db)
        self.clock = clock
        self.cases = cases
        self.views = views
        self.users = users
        self.notifications = notifications

    async def in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        return await in_transaction(self.db, work)

    async def access_case(self, caller: Caller, case_id: str) -> Access[CaseDoc, Viewer]:
        """The case, if ``caller`` works at its court; 404 otherwise."""
        return await self.cases.access_court_case(caller, case_id)

    async def change(
        self,
        caller: Caller,
        case: CaseDoc,
        kind: str,
        note: str | None,
        *,
        action: str,
        notice: Notice,
        session: AsyncClientSession,
        changes: dict[str, Any] | None = None,
        expect: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> CaseDoc:
        """One recorded change: the timeline entry (and ``changes``) if the case still matches
        ``expect`` (409 otherwise), the audit row and the push, all in ``session``."""
        done = await self.cases.add_event(
            case.id,
            kind,
            str(caller.id),
            note,
            changes=changes,
            expect=expect or {"status": case.status.value},
            session=session,
        )
        if done is None:
            raise status_conflict(case.status, kind)
        await self.users.record(
            str(caller.id), f"case.{action}", str(case.id), session, court_id=case.court_id
        )
        await self.tell(done, notice, session=session, data=data)
        return done

    async def tell(
        self,
        case: CaseDoc,
        notice: Notice,
        *,
        session: AsyncClientSession | None = None,
        data: dict[str, Any] | None = None,
        template: str = "case_update",
        dedupe_key: str | None = None,
        staff_too: bool = False,
    ) -> None:
        """Push news of a case to its parties (with an account) and agents; with
        ``staff_too``, to its judge and clerk as well."""
        kind, title, body = notice
        staff = [u for u in (case.judge_id, case.clerk_id) if u] if staff_too else []
        about = {"case_id": str(case.id), "case_no": case.case_no, "status": case.status.value}
        await self.notifications.notify(
            [*self.cases.audience(case), *staff],
            kind,
            title,
            body,
            data={**about, **(data or {})},
            template=template,
            page=f"pages/case/detail?id={case.id}",
            dedupe_key=dedupe_key or f"case:{case.id}:{kind}:{case.version}",
            session=session,
        )

    # ---- assignment (分案)

    async def assign(self, caller: Caller, case_id: str, data: AssignIn) -> CaseOut:
        """Name the judge and the clerk. On an accepted case this is the 分案 milestone;
        later it changes who handles the case (until it is closed)."""
        case = (await self.access_case(caller, case_id)).obj
        if case.status not in OPEN_STATUSES:
            raise status_conflict(case.status, "变更承办人员")
        return await self._assign(caller, case, data)

    async def _assign(self, caller: Caller, case: CaseDoc, data: AssignIn) -> CaseOut:
        judge, clerk = await self._assignees(case, data)
        first = case.status == CaseStatus.accepted
        kind = EventKind.assign.value if first else "变更承办人员"
        note = f"承办法官：{judge.name}；书记员：{clerk.name}"
        note += f"；{data.note}" if data.note else ""
        changes: dict[str, Any] = {"judge_id": data.judge_id, "clerk_id": data.clerk_id}
        if first:
            changes["status"] = CaseStatus.assigned.value
        title = "案件已分案" if first else "承办人员变更"
        notice = ("case_assigned", title, f"{case.case_no}承办法官：{judge.name}")

        async def work(session: AsyncClientSession) -> CaseDoc:
            return await self.change(
                caller,
                case,
                kind,
                note,
                action="assign",
                notice=notice,
                session=session,
                changes=changes,
            )

        return await self._staff_view(caller, await self.in_transaction(work))

    async def _staff_view(self, caller: Caller, case: CaseDoc) -> CaseOut:
        return await self.views.view(caller, Access(case, Viewer.staff))

    async def _assignees(self, case: CaseDoc, data: AssignIn) -> Assignees:
        """Both active staff of the case's court, a judge and a clerk; 422 naming each
        problem otherwise."""
        found: list[UserDoc] = []
        problems = []
        wanted = (("judge_id", Role.judge, "法官"), ("clerk_id", Role.clerk, "书记员"))
        for field, role, label in wanted:
            try:
                user: UserDoc | None = await self.users.get(getattr(data, field))
            except NotFound:
                user = None
            fits = user and user.active and user.role == role and user.court_id == case.court_id
            if user is None or not fits:
                problems.append({"loc": [field], "msg": f"不是本院在职的{label}"})
            else:
                found.append(user)
        if problems:
            raise InvalidAssignee(details=problems)
        return Assignees(found[0], found[1])

    # ---- milestones

    async def record_event(self, caller: Caller, case_id: str, data: EventIn) -> CaseOut:
        """A milestone in order; 分案 with judge_id and clerk_id does the assignment."""
        case = (await self.access_case(caller, case_id)).obj
        need, to = TRANSITIONS[data.kind]
        assigning = data.kind == EventKind.assign
        if assigning and not (data.judge_id and data.clerk_id):
            raise AssigneesRequired()
        if not assigning and (data.judge_id or data.clerk_id):
            raise AssigneesNotAllowed()
        if case.status not in need:
            raise status_conflict(case.status, data.kind.value)
        if assigning:
            assert data.judge_id and data.clerk_id
            who = AssignIn(judge_id=data.judge_id, clerk_id=data.clerk_id, note=data.note)
            return await self._assign(caller, case, who)
        return await self._milestone(caller, case, data, to)

    async def _milestone(
        self, caller: Caller, case: CaseDoc, data: EventIn, to: CaseStatus
    ) -> CaseOut:
        body = f"{case.case_no}：{data.note or STATUS_NAMES[to]}"
        notice = ("case_event", EVENT_TITLES[data.kind], body)

        async def work(session: AsyncClientSession) -> CaseDoc:
            done = await self.change(
                caller,
                case,
                data.kind.value,
                data.note,
                action=f"event.{to.value}",
                notice=notice,
                session=session,
                changes={"status": to.value},
            )
            now = self.clock.now()
            if data.kind == EventKind.hear:
                # the hearings that have begun are held: no more reminders
                await self.hearings.mark_held(str(case.id), now, session)
            if data.kind in CLOSING:
                # a closed case keeps no hearing: no reminder, the room freed
                await self.hearings.cancel_scheduled(str(case.id), "结案", now, session)
            return done

        return await self._staff_view(caller, await self.in_transaction(work))
