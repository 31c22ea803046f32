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
from typing import Any, TypeVar

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
    HearingStatus,
    Viewer,
)
from models.users import Role, UserDoc
from server.cases.errors import (
    AssigneesNotAllowed,
    AssigneesRequired,
    CaseNotFound,
    CaseStatusConflict,
)
from server.cases.service import CaseService
from server.cases.views import CaseViews
from server.identity.errors import InvalidAssignee
from server.identity.users import UserService
from server.notify.inbox import NotificationService
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
        self.hearings = db["hearings"]
        self.clock = clock
        self.cases = cases
        self.views = views
        self.users = users
        self.notifications = notifications

    async def in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        return await in_transaction(self.db, work)

    async def for_staff(self, staff: UserDoc, case_id: str) -> CaseDoc:
        """The case, if ``staff`` works at its court; 404 otherwise."""
        case, viewer = await self.cases.get_for(staff, case_id)
        if viewer != Viewer.staff:
            raise CaseNotFound()
        return case

    async def change(
        self,
        case: CaseDoc,
        staff: UserDoc,
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
            case.id, kind, str(staff.id), note, changes=changes,
            expect=expect or {"status": case.status.value}, session=session,
        )  # fmt: skip
        if done is None:
            raise status_conflict(case.status, kind)
        await self.users.record(
            str(staff.id), f"case.{action}", str(case.id), session, court_id=case.court_id
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
        await self.notifications.notify(
            [*self.cases.audience(case), *staff], kind, title, body,
            data={"case_id": str(case.id), "case_no": case.case_no,
                  "status": case.status.value, **(data or {})},
            template=template, page=f"pages/case/detail?id={case.id}",
            dedupe_key=dedupe_key or f"case:{case.id}:{kind}:{case.version}", session=session,
        )  # fmt: skip

    # ---- assignment (分案)

    async def assign(self, staff: UserDoc, case_id: str, data: AssignIn) -> CaseOut:
        """Name the judge and the clerk. On an accepted case this is the 分案 milestone;
        later it changes who handles the case (until it is closed)."""
        case = await self.for_staff(staff, case_id)
        if case.status not in OPEN_STATUSES:
            raise status_conflict(case.status, "变更承办人员")
        return await self._assign(staff, case, data)

    async def _assign(self, staff: UserDoc, case: CaseDoc, data: AssignIn) -> CaseOut:
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
                case, staff, kind, note, action="assign", notice=notice, session=session,
                changes=changes,
            )  # fmt: skip

        return await self.views.view(await self.in_transaction(work), staff, Viewer.staff)

    async def _assignees(self, case: CaseDoc, data: AssignIn) -> tuple[UserDoc, UserDoc]:
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
        return found[0], found[1]

    # ---- milestones

    async def record_event(self, staff: UserDoc, case_id: str, data: EventIn) -> CaseOut:
        """A milestone in order; 分案 with judge_id and clerk_id does the assignment."""
        case = await self.for_staff(staff, case_id)
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
            return await self._assign(staff, case, who)
        notice = ("case_event", EVENT_TITLES[data.kind],
                  f"{case.case_no}：{data.note or STATUS_NAMES[to]}")  # fmt: skip

        async def work(session: AsyncClientSession) -> CaseDoc:
            done = await self.change(
                case, staff, data.kind.value, data.note, action=f"event.{to.value}",
                notice=notice, session=session, changes={"status": to.value},
            )  # fmt: skip
            if data.kind == EventKind.hear:
                await self._held(case, session)
            if data.kind in CLOSING:
                await self._drop_hearings(case, session)
            return done

        return await self.views.view(await self.in_transaction(work), staff, Viewer.staff)

    async def _drop_hearings(self, case: CaseDoc, session: AsyncClientSession) -> None:
        """A closed case keeps no hearing: any still scheduled is cancelled (no reminder, the
        room freed)."""
        now = self.clock.now()
        await self.hearings.update_many(
            {"case_id": str(case.id), "status": HearingStatus.scheduled.value},
            {"$set": {"status": HearingStatus.cancelled.value, "reminder_pending": False,
                      "cancel_reason": "结案", "updated_at": now}, "$inc": {"version": 1}},
            session=session,
        )  # fmt: skip

    async def _held(self, case: CaseDoc, session: AsyncClientSession) -> None:
        """The hearings of the case that have begun are now held (no more reminders)."""
        now = self.clock.now()
        await self.hearings.update_many(
            {"case_id": str(case.id), "status": HearingStatus.scheduled.value,
             "starts_at": {"$lte": now}},
            {"$set": {"status": HearingStatus.held.value, "reminder_pending": False,
                      "updated_at": now}, "$inc": {"version": 1}},
            session=session,
        )  # fmt: skip
