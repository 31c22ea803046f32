"""Notifications: every notice lands in the recipient's in-app inbox; a notice with a template
also gets an outbox item, which ``server.notify.outbox.OutboxWorker`` sends as a WeChat subscribe
message when the user has granted a send of that template. No HTTP in here.

The collections (``inbox``, ``outbox``, ``subscriptions``) are read and written by store.py.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from models.notifications import (
    NotificationOut,
    NotificationPage,
    NotificationQuery,
    QuotaOut,
    SubscriptionsOut,
    notification_out,
)
from models.users import Caller
from server.identity.users import Directory
from server.notify.errors import NotificationNotFound, UnknownTemplate
from server.notify.store import (
    InboxStore,
    OutboxStore,
    SubscriptionStore,
    inbox_doc,
    outbox_doc,
    subscription_id,
)
from server.notify.templates import render
from server.platform.clock import Clock
from server.platform.config import PushTemplate, Settings
from server.platform.db import Database
from server.platform.errors import InvalidCursor
from server.platform.paging import decode_cursor, encode_cursor, object_id

log = logging.getLogger("microcourt.notifications")

MAX_STAFF_RECIPIENTS = 1000  # a court's staff; a bound, so no notice loads an unbounded list
Push = tuple[PushTemplate, dict[str, dict[str, str]]]


def _plain(value: Any) -> Any:
    """``data`` as BSON and JSON both take it: ids and decimals as strings, dates as ISO."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, ObjectId | decimal.Decimal):
        return str(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Notice:
    """One notice for ``notify_many``: the arguments of ``notify``."""

    user_ids: Sequence[str]
    kind: str
    title: str
    body: str
    data: dict[str, Any] | None = None
    template: str | None = None
    page: str | None = None
    dedupe_key: str | None = None


@dataclass(frozen=True)
class Written:
    """One recipient's inbox document of a notice, with the notice's push and page."""

    doc: dict[str, Any]
    push: Push | None
    page: str | None


class NotificationService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.inbox = InboxStore(db)
        self.outbox = OutboxStore(db)
        self.directory = Directory(db)
        self.subscriptions = SubscriptionStore(db)
        self.templates = settings.notifications.templates
        self.clock = clock
        self.on_enqueued = on_enqueued  # wakes this process's outbox worker
        self._names = {t.template_id: name for name, t in self.templates.items()}

    # ---- sending notices

    async def notify(
        self,
        user_ids: Iterable[str],
        kind: str,
        title: str,
        body: str,
        *,
        data: dict[str, Any] | None = None,
        template: str | None = None,
        page: str | None = None,
        dedupe_key: str | None = None,
        session: AsyncClientSession | None = None,
    ) -> None:
        """One inbox notice per recipient and, with ``template``, one subscribe-message push.

        Callers write their state change first and notify after it: a crash in between loses
        the notice (and its push), never the state change. Pass the ``session`` of a
        transaction to have both or neither. With ``dedupe_key`` a repeated call is a no-op
        for each recipient who already has that notice. A template that is not configured,
        or whose fields cannot be filled from this notice, costs the push only (logged as an
        error): templates are configuration, and a config edit must not fail a filing.
        """
        recipients = list(dict.fromkeys(str(u) for u in user_ids))
        if not recipients:
            return
        notice = Notice(recipients, kind, title, body, data, template, page, dedupe_key)
        written = self._written(notice, self.clock.now())
        if dedupe_key and session is not None and session.in_transaction:
            # Inside a transaction a duplicate-key error would abort the caller's whole
            # transaction, so known duplicates are left out first; the unique index still
            # decides any race (the loser's transaction then fails and is retried).
            known = await self.inbox.already_sent(recipients, dedupe_key, session)
            written = [w for w in written if w.doc["user_id"] not in known]
        await self._write(written, session)

    async def notify_notice(
        self, notice: Notice, *, session: AsyncClientSession | None = None
    ) -> None:
        """``notify`` of one ``Notice``."""
        n = notice
        await self.notify(
            n.user_ids,
            n.kind,
            n.title,
            n.body,
            data=n.data,
            template=n.template,
            page=n.page,
            dedupe_key=n.dedupe_key,
            session=session,
        )

    async def notify_many(
        self, notices: Iterable[Notice], *, session: AsyncClientSession | None = None
    ) -> None:
        """Many different notices, each written as ``notify`` writes it, in one insert into
        the inbox and one into the outbox (a sweep's hundreds, a transaction each).

        Unlike ``notify`` it does not look for notices already sent first: callers make each
        one new by the conditional update they hold in the same ``session``. Outside a
        transaction a repeat is left out by the unique dedupe index; inside one it fails the
        transaction rather than push twice.
        """
        now = self.clock.now()
        await self._write([w for n in notices for w in self._written(n, now)], session)

    async def _write(self, written: list[Written], session: AsyncClientSession | None) -> None:
        """The inbox documents, and the pushes of those the inbox took (not duplicates)."""
        inserted = await self.inbox.insert_new([w.doc for w in written], session)
        kept = {id(doc) for doc in inserted}
        pushed = [w for w in written if w.push is not None and id(w.doc) in kept]
        items = await self._receivable(pushed, session)
        await self.outbox.insert_new(items, session)
        if items and self.on_enqueued is not None:
            self.on_enqueued()

    async def _receivable(
        self, pushed: list[Written], session: AsyncClientSession | None
    ) -> list[dict[str, Any]]:
        """The outbox items of the pushes WeChat would take: to a user with an openid (staff,
        who sign in by password, get the inbox and the feed only) who has a send of the
        template left (a long-term one: who accepted it once; its count is never taken).
        Issue 18: a clerk's item per filing, and a litigant's without a grant, were queued and
        skipped later one by one, each two writes of the outbox's time. A grant that comes
        after the notice does not bring its push back; one used up between queueing and
        sending still ends the item ``skipped_no_quota`` (the worker takes quotas)."""
        if not pushed:
            return []
        users = list(dict.fromkeys(w.doc["user_id"] for w in pushed))
        openids = await self.directory.openids_of(users, session)
        wanted = [
            (w, w.push, subscription_id(w.doc["user_id"], w.push[0].template_id))
            for w in pushed
            if w.push is not None and w.doc["user_id"] in openids
        ]
        if not wanted:
            return []
        keys = list(dict.fromkeys(key for _w, _push, key in wanted))
        left = await self.subscriptions.left(keys, session)
        return [
            outbox_doc(w.doc, openids[w.doc["user_id"]], *push, w.page, w.doc["created_at"])
            for w, push, key in wanted
            if left.get(key, 0) > 0
        ]

    def _written(self, n: Notice, now: dt.datetime) -> list[Written]:
        """The inbox documents of one notice, each with its push and page (``notify``'s)."""
        plain: dict[str, Any] = _plain(n.data or {})
        push = self._push(n.template, n.title, n.body, now, plain) if n.template else None
        page = n.page or (push[0].page if push else None) or None
        return [
            Written(
                inbox_doc(uid, n.kind, n.title, n.body, plain, page, n.template, n.dedupe_key, now),
                push,
                page,
            )
            for uid in dict.fromkeys(str(u) for u in n.user_ids)
        ]

    async def notify_court_staff(
        self,
        court_id: str,
        roles: Iterable[str],
        kind: str,
        title: str,
        body: str,
        *,
        data: dict[str, Any] | None = None,
        template: str | None = None,
        page: str | None = None,
        dedupe_key: str | None = None,
        session: AsyncClientSession | None = None,
    ) -> None:
        """``notify`` every active staff member of ``court_id`` having one of ``roles``."""
        staff = await self.court_staff(court_id, roles, session=session)
        await self.notify(
            staff,
            kind,
            title,
            body,
            data=data,
            template=template,
            page=page,
            dedupe_key=dedupe_key,
            session=session,
        )

    async def notify_court_staff_many(
        self,
        court_id: str,
        roles: Iterable[str],
        notices: Sequence[Notice],
        *,
        session: AsyncClientSession | None = None,
    ) -> None:
        """``notify_court_staff`` of many notices (a group's submissions): the staff read once,
        each notice to them (and to its own ``user_ids``, if any), written as ``notify_many``
        writes them: no look for notices already sent, each made new by the conditional
        update the caller holds in the same ``session``."""
        if not notices:
            return
        staff = await self.court_staff(court_id, roles, session=session)
        addressed = [replace(n, user_ids=[*staff, *n.user_ids]) for n in notices]
        await self.notify_many(addressed, session=session)

    async def court_staff(
        self, court_id: str, roles: Iterable[str], *, session: AsyncClientSession | None = None
    ) -> list[str]:
        """Ids of the active staff of a court with those roles (index ``staff_by_court_role``)."""
        return await self.directory.staff_ids(
            court_id, roles, limit=MAX_STAFF_RECIPIENTS, session=session
        )

    def _push(
        self, name: str, title: str, body: str, now: dt.datetime, data: dict[str, Any]
    ) -> Push | None:
        tmpl = self.templates.get(name)
        if tmpl is None:
            log.error("no subscribe-message template %r in notifications.templates", name)
            return None
        try:
            return tmpl, render(name, tmpl, title, body, now, data)
        except ValueError as e:
            log.error("subscribe message not queued: %s", e)
            return None

    # ---- the inbox

    async def list_for(self, caller: Caller, query: NotificationQuery) -> NotificationPage:
        """The caller's notices, newest first, cursor-paged; with ``unread``, unread ones only."""
        before = None
        if query.cursor:
            values = decode_cursor(query.cursor)
            if len(values) != 1:
                raise InvalidCursor()
            before = object_id(values[0])
        docs = await self.inbox.page(
            str(caller.id), unread=query.unread, before=before, limit=query.limit + 1
        )
        more = len(docs) > query.limit
        docs = docs[: query.limit]
        return NotificationPage(
            items=[notification_out(d) for d in docs],
            next_cursor=encode_cursor([docs[-1]["_id"]]) if more else None,
            unread=await self.unread_count(caller),
        )

    async def unread_count(self, caller: Caller) -> int:
        return await self.inbox.unread_count(str(caller.id))

    async def mark_read(self, caller: Caller, notification_id: str) -> NotificationOut:
        """Mark one of the caller's notices read; again is harmless; anyone else's is 404."""
        if not ObjectId.is_valid(notification_id):
            raise NotificationNotFound()
        doc = await self.inbox.mark_read(
            str(caller.id), ObjectId(notification_id), self.clock.now()
        )
        if doc is None:
            raise NotificationNotFound()
        return notification_out(doc)

    # ---- subscribe-message quotas

    async def add_subscriptions(self, caller: Caller, template_ids: list[str]) -> SubscriptionsOut:
        """Record one more allowed send per template id accepted in the mini-program."""
        unknown = [(i, t) for i, t in enumerate(template_ids) if t not in self._names]
        if unknown:
            details = [{"loc": ["template_ids", i], "msg": f"unknown: {t}"} for i, t in unknown]
            raise UnknownTemplate(details=details)
        # one send per template per acceptance
        await self.subscriptions.grant(
            str(caller.id), dict.fromkeys(template_ids), self.clock.now()
        )
        return await self.quotas(caller)

    async def quotas(self, caller: Caller) -> SubscriptionsOut:
        found = await self.subscriptions.quotas(str(caller.id))
        quotas = [
            QuotaOut(
                template=name, template_id=t.template_id, remaining=found.get(t.template_id, 0)
            )
            for name, t in self.templates.items()
        ]
        return SubscriptionsOut(quotas=quotas)
