"""Hearings (开庭/调解/询问/宣判): scheduling, rescheduling, cancelling, and reminders.

A hearing starts in the future, on a working day of the court, within its hearing hours,
and never on top of another scheduled hearing in the same room. The overlap check is made
race-safe by a lock document per court, room and day (``hearing_rooms``) that every
scheduling transaction of that room and day updates: two transactions that could overlap
write the same document, so one of them is retried and then sees the other's hearing.

Reminders: the day before (a sweep, see ``sweep_reminders``; to the parties, the judge and
the clerk), and at once on a reschedule or a cancellation. ``reminder_pending`` is set when a
time is fixed and cleared in the same transaction as the reminder's notice, so any number of
sweeping processes remind once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.cases import (
    OPEN_STATUSES,
    CaseDoc,
    CaseStatus,
    HearingCancelIn,
    HearingDoc,
    HearingIn,
    HearingOut,
    HearingStatus,
    HearingUpdate,
)
from models.documents import DocumentKind
from models.filings import PARTY_GROUPS
from models.users import Caller
from server.cases import notices as court_notices
from server.cases.admin import CaseAdminService, Notice, status_conflict
from server.cases.errors import (
    HearingInPast,
    HearingNotFound,
    HearingNotScheduled,
    HearingRoomTaken,
    HearingTooFar,
    NotAWorkingDay,
    OutsideCourtHours,
)
from server.cases.served import ROLE_NAMES
from server.cases.service_of_documents import DocumentService
from server.cases.store import HearingStore
from server.cases.views import hearing_out
from server.platform.calendar import Calendars
from server.platform.clock import SHANGHAI, Clock
from server.platform.config import Settings
from server.platform.db import Database, read_decide_write, won

MAX_AHEAD = dt.timedelta(days=731)
# A new hearing may be set while the case is assigned (it becomes scheduled) or later, for
# a further session or the pronouncement, until judgment.
SCHEDULABLE = (CaseStatus.assigned, CaseStatus.scheduled, CaseStatus.heard)


class Span(NamedTuple):
    """When a hearing starts and ends, in UTC."""

    starts: dt.datetime
    ends: dt.datetime


class Scheduled(NamedTuple):
    """A scheduled hearing and its case, as read before deciding a change."""

    case: CaseDoc
    hearing: HearingDoc


def describe(h: HearingDoc) -> str:
    """``2026年11月25日 09:30 第三法庭 开庭（在线）``, in Beijing time."""
    when = h.starts_at.astimezone(SHANGHAI).strftime("%Y年%m月%d日 %H:%M")
    return f"{when} {h.room} {h.kind.value}" + ("（在线）" if h.online else "")


class HearingService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        calendars: Calendars,
        admin: CaseAdminService,
        documents: DocumentService,
    ) -> None:
        self.store = HearingStore(db)
        self.documents = documents
        self.hours = (settings.cases.hearing_day_start, settings.cases.hearing_day_end)
        self.settings = settings
        self.clock = clock
        self.calendars = calendars
        self.admin = admin

    # ---- when and where

    def _slot(self, court_id: str, at: dt.datetime, minutes: int) -> Span:
        """(start, end) in UTC, or a 422 naming why the time cannot be had."""
        starts = at.astimezone(dt.UTC).replace(microsecond=at.microsecond // 1000 * 1000)
        now = self.clock.now()
        if starts <= now:
            raise HearingInPast()
        if starts > now + MAX_AHEAD:
            raise HearingTooFar()
        ends = starts + dt.timedelta(minutes=minutes)
        cal = self.calendars.for_court(court_id)
        local_start, local_end = starts.astimezone(cal.tz), ends.astimezone(cal.tz)
        if not cal.is_working_day(local_start.date()):
            raise NotAWorkingDay()
        first, last = self.hours
        same_day = local_end.date() == local_start.date()
        if local_start.time() < first or not same_day or local_end.time() > last:
            raise OutsideCourtHours(f"开庭时间应在{first:%H:%M}至{last:%H:%M}之间")
        return Span(starts, ends)

    async def _claim_room(
        self,
        court_id: str,
        room: str,
        span: Span,
        session: AsyncClientSession,
        moving: Any = None,
    ) -> None:
        """Take the room's lock for the day, then refuse (409) any overlap with another
        scheduled hearing there; ``moving`` is the hearing being rescheduled."""
        cal = self.calendars.for_court(court_id)
        day = cal.local_date(span.starts)
        await self.store.lock_room_day(court_id, room, day, session)
        since = cal.end_of_day(day - dt.timedelta(days=1))
        for other in await self.store.starting_between(court_id, room, since, span.ends, session):
            if (
                other.id != moving
                and other.status == HearingStatus.scheduled
                and other.ends_at > span.starts
            ):
                taken = {
                    "starts_at": other.starts_at.isoformat(),
                    "ends_at": other.ends_at.isoformat(),
                }
                raise HearingRoomTaken(f"{room}在该时段已有排期", details=taken)

    # ---- scheduling

    async def schedule(self, caller: Caller, case_id: str, data: HearingIn) -> HearingOut:
        """Set a hearing; an assigned case becomes scheduled. 404; 409 case not assigned or
        already judged, room taken; 422 time in the past or outside court hours."""
        case = (await self.admin.access_case(caller, case_id)).obj
        if case.status not in SCHEDULABLE:
            raise status_conflict(case.status, "排期")
        span = self._slot(case.court_id, data.at, data.duration_minutes)
        hearing = self._new_hearing(caller, case, data, span)
        first = case.status == CaseStatus.assigned
        changes = {"status": CaseStatus.scheduled.value} if first else None
        # a first hearing set meanwhile by someone else has made the case scheduled already:
        # this one still lands (409 only when the case left both)
        both = [CaseStatus.assigned.value, CaseStatus.scheduled.value]
        expect = {"status": {"$in": both}} if first else None
        title = f"{data.kind.value}已排期"
        notice = ("hearing_scheduled", title, f"{case.case_no}：{describe(hearing)}")
        summonses = self.summonses(case, hearing)

        async def work(session: AsyncClientSession) -> None:
            await self._claim_room(case.court_id, data.room, span, session)
            await self.store.insert(hearing, session)
            await self.admin.change(
                caller,
                case,
                "排期",
                describe(hearing),
                action="hearing.schedule",
                notice=notice,
                session=session,
                changes=changes,
                expect=expect,
                data={"hearing_id": str(hearing.id)},
            )
            await self._serve(caller, case, summonses, session)

        await self.admin.in_transaction(work)
        return hearing_out(hearing)

    async def _serve(
        self,
        caller: Caller,
        case: CaseDoc,
        summonses: list[tuple[str, bytes, str]],
        session: AsyncClientSession,
    ) -> None:
        for party_id, pdf, code in summonses:
            await self.documents.serve_generated(
                caller, case, DocumentKind.summons, pdf, [party_id], session, verify_code=code
            )

    def summonses(self, case: CaseDoc, hearing: HearingDoc) -> list[tuple[str, bytes, str]]:
        """A 传票 to each party (party id, PDF, 验证码), made before the transaction: no I/O.
        A rescheduled hearing's have codes of their own (its version in them), even for a
        time it had before."""
        court = self.settings.court(case.court_id)
        assert court is not None
        made = []
        changed = (str(hearing.version),) if hearing.version > 1 else ()
        for group in PARTY_GROUPS:
            for party in getattr(case, group):
                at = hearing.starts_at.isoformat()
                code = self.documents.code_for(str(hearing.id), party.party_id, at, *changed)
                pdf = court_notices.summons(
                    case, court, hearing, party.name, ROLE_NAMES[group], code
                )
                made.append((party.party_id, pdf, code))
        return made

    def _new_hearing(
        self, caller: Caller, case: CaseDoc, data: HearingIn, span: Span
    ) -> HearingDoc:
        now = self.clock.now()
        return HearingDoc(
            id=ObjectId(),
            case_id=str(case.id),
            case_no=case.case_no,
            court_id=case.court_id,
            room=data.room,
            kind=data.kind,
            online=data.online,
            starts_at=span.starts,
            ends_at=span.ends,
            duration_minutes=data.duration_minutes,
            status=HearingStatus.scheduled,
            reminder_pending=True,
            created_by=str(caller.id),
            created_at=now,
            updated_at=now,
        )

    async def _scheduled(self, case: CaseDoc, hearing_id: str) -> HearingDoc:
        hearing = await self.store.in_case(str(case.id), hearing_id)
        if hearing is None:
            raise HearingNotFound()
        if hearing.status != HearingStatus.scheduled:
            raise HearingNotScheduled()
        if case.status not in OPEN_STATUSES:
            raise status_conflict(case.status, "变更排期")
        return hearing

    async def _move(
        self, hearing: HearingDoc, changes: dict[str, Any], session: AsyncClientSession
    ) -> HearingDoc:
        """The conditional update of a scheduled hearing (``LostRace`` if it changed
        meanwhile: ``_changed`` reads it again)."""
        raw = await self.store.move(hearing, changes, self.clock.now(), session)
        return HearingDoc.model_validate(won(raw))  # lost: read again

    async def reschedule(
        self, caller: Caller, case_id: str, hearing_id: str, data: HearingUpdate
    ) -> HearingOut:
        """A new time (and room, length); the parties are told at once, and reminded again
        the day before. 404; 409 cancelled/held or room taken; 422 bad time."""
        return await self._changed(
            caller, case_id, hearing_id, lambda found: self._reschedule(caller, found, data)
        )

    async def _changed(
        self,
        caller: Caller,
        case_id: str,
        hearing_id: str,
        decide_write: Callable[[Scheduled], Awaitable[HearingOut]],
    ) -> HearingOut:
        """Read the case and its scheduled hearing, decide and write (``_move`` in a
        transaction); read again after a lost race."""

        async def read() -> Scheduled:
            case = (await self.admin.access_case(caller, case_id)).obj
            return Scheduled(case, await self._scheduled(case, hearing_id))

        return await read_decide_write(read, decide_write, HearingNotScheduled)

    async def _reschedule(
        self, caller: Caller, found: Scheduled, data: HearingUpdate
    ) -> HearingOut:
        case, hearing = found
        room = data.room or hearing.room
        minutes = data.duration_minutes or hearing.duration_minutes
        span = self._slot(case.court_id, data.at, minutes)
        changes = {
            "starts_at": span.starts,
            "ends_at": span.ends,
            "room": room,
            "duration_minutes": minutes,
            "reminder_pending": True,
        }
        after = hearing.model_copy(update={**changes, "version": hearing.version + 1})
        summonses = self.summonses(case, after)  # as ``_move`` will leave it

        async def work(session: AsyncClientSession) -> HearingDoc:
            await self._claim_room(case.court_id, room, span, session, moving=hearing.id)
            moved = await self._move(hearing, changes, session)
            title = f"{moved.kind.value}时间变更"
            notice = ("hearing_rescheduled", title, f"{case.case_no}改为：{describe(moved)}")
            await self.admin.change(
                caller,
                case,
                "变更排期",
                f"{describe(hearing)} 改为 {describe(moved)}",
                action="hearing.reschedule",
                notice=notice,
                session=session,
                expect={"status": {"$in": [s.value for s in OPEN_STATUSES]}},
                data={"hearing_id": str(hearing.id)},
            )
            await self._serve(caller, case, summonses, session)
            return moved

        return hearing_out(await self.admin.in_transaction(work))

    async def cancel(
        self, caller: Caller, case_id: str, hearing_id: str, data: HearingCancelIn
    ) -> HearingOut:
        """Cancel, with the reason; the parties are told at once. When it was the case's last
        scheduled hearing, a scheduled case goes back to assigned. 404; 409 not scheduled."""
        return await self._changed(
            caller, case_id, hearing_id, lambda found: self._cancel(caller, found, data)
        )

    async def _cancel(self, caller: Caller, found: Scheduled, data: HearingCancelIn) -> HearingOut:
        case, hearing = found
        body = f"{case.case_no}原定{describe(hearing)}已取消：{data.reason}"
        notice: Notice = ("hearing_cancelled", f"{hearing.kind.value}已取消", body)
        changes = {
            "status": HearingStatus.cancelled.value,
            "cancel_reason": data.reason,
            "reminder_pending": False,
        }

        async def work(session: AsyncClientSession) -> HearingDoc:
            cancelled = await self._move(hearing, changes, session)
            others = await self.store.count_scheduled(str(case.id), session)
            back = case.status == CaseStatus.scheduled and others == 0
            await self.admin.change(
                caller,
                case,
                "取消排期",
                f"{describe(hearing)}：{data.reason}",
                action="hearing.cancel",
                notice=notice,
                session=session,
                changes={"status": CaseStatus.assigned.value} if back else None,
                expect={"status": case.status.value},
                data={"hearing_id": str(hearing.id)},
            )
            return cancelled

        return hearing_out(await self.admin.in_transaction(work))

    # ---- the day-before reminder

    async def sweep_reminders(self) -> int:
        """Remind the parties of every hearing that starts tomorrow (court time) and has not
        been reminded at its current time; returns how many were reminded by this call."""
        reminded = 0
        now = self.clock.now()
        for court in self.settings.courts:
            cal = self.calendars.for_court(court.id)
            today = cal.local_date(now)
            tomorrow = today + dt.timedelta(days=1)
            after, until = cal.end_of_day(today), cal.end_of_day(tomorrow)
            for hearing in await self.store.pending_reminders(court.id, after, until):
                reminded += await self._remind(hearing)
        return reminded

    async def _remind(self, hearing: HearingDoc) -> int:
        """Clear the flag and push the reminder in one transaction: another process that
        raced for the same hearing finds the flag cleared and does nothing."""
        case = await self.admin.cases.load(hearing.case_id)
        if case.status not in OPEN_STATUSES:
            return 0
        title = f"明日{hearing.kind.value}提醒"
        notice = ("hearing_reminder", title, f"{case.case_no}：{describe(hearing)}，请准时参加")

        async def work(session: AsyncClientSession) -> int:
            if not await self.store.take_reminder(hearing, self.clock.now(), session):
                return 0
            await self.admin.tell(
                case,
                notice,
                session=session,
                template="deadline_reminder",
                data={"hearing_id": str(hearing.id)},
                staff_too=True,
                dedupe_key=f"hearing:{hearing.id}:reminder:{hearing.starts_at.isoformat()}",
            )
            return 1

        return await self.admin.in_transaction(work)
