"""Notifications: every notice lands in the recipient's in-app inbox; a notice with a template
also gets an outbox item, which ``server.notify.outbox.OutboxWorker`` sends as a WeChat subscribe
message when the user has granted a send of that template. No HTTP in here.

Collections: ``inbox`` (one document per recipient and notice), ``outbox`` (one per push),
``subscriptions`` (``_id`` = ``user_id:template_id``, ``quota`` = sends the user granted).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from models.notifications import (
    NotificationOut,
    NotificationPage,
    NotificationQuery,
    OutboxStatus,
    QuotaOut,
    SubscriptionsOut,
    notification_out,
)
from server.identity.users import Directory
from server.notify.errors import NotificationNotFound, UnknownTemplate
from server.notify.templates import render
from server.platform.clock import Clock
from server.platform.config import PushTemplate, Settings
from server.platform.db import Database
from server.platform.errors import InvalidCursor
from server.platform.paging import decode_cursor, encode_cursor, object_id

log = logging.getLogger("microcourt.notifications")

DUPLICATE_KEY = 11000
MAX_STAFF_RECIPIENTS = 1000  # a court's staff; a bound, so no notice loads an unbounded list
FEW_RECIPIENTS = 10  # up to this many, notices already sent are looked up one by one


def subscription_id(user_id: str, template_id: str) -> str:
    return f"{user_id}:{template_id}"


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


class NotificationService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.inbox = db["inbox"]
        self.outbox = db["outbox"]
        self.directory = Directory(db)
        self.subscriptions = db["subscriptions"]
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
        now = self.clock.now()
        plain: dict[str, Any] = _plain(data or {})
        push = self._push(template, title, body, now, plain) if template else None
        shown_page = page or (push[0].page if push else None) or None
        docs = [
            _inbox_doc(uid, kind, title, body, plain, shown_page, template, dedupe_key, now)
            for uid in recipients
        ]
        if dedupe_key and session is not None and session.in_transaction:
            docs = await self._not_yet_sent(docs, dedupe_key, session)
        inserted = await _insert_new(self.inbox, docs, session)
        if push is None or not inserted:
            return
        tmpl, rendered = push
        items = [_outbox_doc(doc, tmpl, rendered, shown_page, now) for doc in inserted]
        await _insert_new(self.outbox, items, session)
        if self.on_enqueued is not None:
            self.on_enqueued()

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
        written: list[tuple[dict[str, Any], Any]] = []
        for n in notices:
            plain: dict[str, Any] = _plain(n.data or {})
            push = self._push(n.template, n.title, n.body, now, plain) if n.template else None
            page = n.page or (push[0].page if push else None) or None
            written += [
                (_inbox_doc(uid, n.kind, n.title, n.body, plain, page, n.template,
                            n.dedupe_key, now), (push, page))
                for uid in dict.fromkeys(str(u) for u in n.user_ids)
            ]  # fmt: skip
        inserted = await _insert_new(self.inbox, [doc for doc, _ in written], session)
        kept = {id(doc) for doc in inserted}
        items = [
            _outbox_doc(doc, push[0], push[1], page, now)
            for doc, (push, page) in written
            if push is not None and id(doc) in kept
        ]
        await _insert_new(self.outbox, items, session)
        if items and self.on_enqueued is not None:
            self.on_enqueued()

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
            staff, kind, title, body,
            data=data, template=template, page=page, dedupe_key=dedupe_key, session=session,
        )  # fmt: skip

    async def court_staff(
        self, court_id: str, roles: Iterable[str], *, session: AsyncClientSession | None = None
    ) -> list[str]:
        """Ids of the active staff of a court with those roles (index ``staff_by_court_role``)."""
        return await self.directory.staff_ids(
            court_id, roles, limit=MAX_STAFF_RECIPIENTS, session=session
        )

    def _push(
        self, name: str, title: str, body: str, now: dt.datetime, data: dict[str, Any]
    ) -> tuple[PushTemplate, dict[str, dict[str, str]]] | None:
        tmpl = self.templates.get(name)
        if tmpl is None:
            log.error("no subscribe-message template %r in notifications.templates", name)
            return None
        try:
            return tmpl, render(name, tmpl, title, body, now, data)
        except ValueError as e:
            log.error("subscribe message not queued: %s", e)
            return None

    async def _not_yet_sent(
        self, docs: list[dict[str, Any]], dedupe_key: str, session: AsyncClientSession
    ) -> list[dict[str, Any]]:
        # Inside a transaction a duplicate-key error would abort the caller's whole
        # transaction, so known duplicates are left out first; the unique index still decides
        # any race (the loser's transaction then fails and is retried by its caller).
        ids = [d["user_id"] for d in docs]
        known: set[str] = set()
        if len(ids) <= FEW_RECIPIENTS:
            # one point read each: an index serves equalities only (server.platform.mongo),
            # an $in on its first field may scan the whole inbox
            for uid in ids:
                mine = {"user_id": uid, "dedupe_key": dedupe_key}
                if await self.inbox.find_one(mine, {"_id": 1}, session=session):
                    known.add(uid)
        else:
            query = {"user_id": {"$in": ids}, "dedupe_key": dedupe_key}
            seen = self.inbox.find(query, {"user_id": 1}, session=session)
            known = {d["user_id"] async for d in seen}
        return [d for d in docs if d["user_id"] not in known]

    # ---- the inbox

    async def list_for(self, user_id: str, query: NotificationQuery) -> NotificationPage:
        """The user's notices, newest first, cursor-paged; with ``unread``, unread ones only."""
        filt: dict[str, Any] = {"user_id": user_id}
        if query.unread:
            filt["read"] = False
        if query.cursor:
            values = decode_cursor(query.cursor)
            if len(values) != 1:
                raise InvalidCursor()
            filt["_id"] = {"$lt": object_id(values[0])}
        docs = await self.inbox.find(filt).sort("_id", DESCENDING).to_list(query.limit + 1)
        more = len(docs) > query.limit
        docs = docs[: query.limit]
        return NotificationPage(
            items=[notification_out(d) for d in docs],
            next_cursor=encode_cursor([docs[-1]["_id"]]) if more else None,
            unread=await self.unread_count(user_id),
        )

    async def unread_count(self, user_id: str) -> int:
        return await self.inbox.count_documents({"user_id": user_id, "read": False})

    async def mark_read(self, user_id: str, notification_id: str) -> NotificationOut:
        """Mark one of the user's notices read; again is harmless; anyone else's is 404."""
        if not ObjectId.is_valid(notification_id):
            raise NotificationNotFound()
        mine = {"_id": ObjectId(notification_id), "user_id": user_id}
        # update_one then find_one, not findAndModify (server.platform.mongo): marked read
        # by whichever request came first, the notice as it now is
        await self.inbox.update_one(
            {**mine, "read": False}, {"$set": {"read": True, "read_at": self.clock.now()}}
        )
        doc = await self.inbox.find_one(mine)
        if doc is None:
            raise NotificationNotFound()
        return notification_out(doc)

    # ---- subscribe-message quotas

    async def add_subscriptions(self, user_id: str, template_ids: list[str]) -> SubscriptionsOut:
        """Record one more allowed send per template id accepted in the mini-program."""
        unknown = [(i, t) for i, t in enumerate(template_ids) if t not in self._names]
        if unknown:
            details = [{"loc": ["template_ids", i], "msg": f"unknown: {t}"} for i, t in unknown]
            raise UnknownTemplate(details=details)
        now = self.clock.now()
        ops = [
            UpdateOne(
                {"_id": subscription_id(user_id, tid)},
                {
                    "$inc": {"quota": 1},
                    "$set": {"updated_at": now},
                    "$setOnInsert": {"user_id": user_id, "template_id": tid},
                },
                upsert=True,
            )
            for tid in dict.fromkeys(template_ids)  # one send per template per acceptance
        ]
        try:
            await self.subscriptions.bulk_write(ops, ordered=False)
        except BulkWriteError:  # two first grants raced on the upsert: once more updates
            await self.subscriptions.bulk_write(ops, ordered=False)
        return await self.quotas(user_id)

    async def quotas(self, user_id: str) -> SubscriptionsOut:
        found = {
            d["template_id"]: int(d.get("quota", 0))
            async for d in self.subscriptions.find({"user_id": user_id})
        }
        quotas = [
            QuotaOut(
                template=name, template_id=t.template_id, remaining=found.get(t.template_id, 0)
            )
            for name, t in self.templates.items()
        ]
        return SubscriptionsOut(quotas=quotas)


def _inbox_doc(
    user_id: str,
    kind: str,
    title: str,
    body: str,
    data: dict[str, Any],
    page: str | None,
    template: str | None,
    dedupe_key: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": ObjectId(),
        "user_id": user_id,
        "kind": kind,
        "title": title,
        "body": body,
        "data": data,
        "page": page,
        "template": template,
        "read": False,
        "read_at": None,
        "created_at": now,
    }
    # the unique (user_id, dedupe_key) index needs a key on every notice: its own id if none
    doc["dedupe_key"] = dedupe_key or f"id:{doc['_id']}"
    return doc


def _outbox_doc(
    notice: dict[str, Any],
    tmpl: PushTemplate,
    rendered: dict[str, dict[str, str]],
    page: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "notification_id": notice["_id"],
        "user_id": notice["user_id"],
        "template": notice["template"],
        "template_id": tmpl.template_id,
        "data": rendered,
        "page": page,
        "status": OutboxStatus.pending.value,
        "attempts": 0,
        "quota_taken": False,
        "next_attempt_at": now,
        "created_at": now,
    }


async def _insert_new(
    collection: AsyncCollection[dict[str, Any]],
    docs: list[dict[str, Any]],
    session: AsyncClientSession | None,
) -> list[dict[str, Any]]:
    """Insert all; the documents a unique index refused as duplicates are left out."""
    if not docs:
        return []
    try:
        await collection.insert_many(docs, ordered=False, session=session)
    except BulkWriteError as e:
        errors = e.details.get("writeErrors", [])
        if any(err.get("code") != DUPLICATE_KEY for err in errors) or not errors:
            raise
        refused = {err["index"] for err in errors}
        return [d for i, d in enumerate(docs) if i not in refused]
    return docs
